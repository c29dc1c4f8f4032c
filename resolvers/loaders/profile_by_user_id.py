from __future__ import annotations

from loyalty.ports import ProfilePort
from loyalty.upstreams import Profile
from resolvers.loaders.upstream_batch import UpstreamBatchLoader


class ProfileByUserIdLoader(UpstreamBatchLoader[str, Profile | None]):
    """CDP profiles: the CDP has no batch read, so the adapter fans out with bounded
    concurrency, one call per distinct user."""

    def __init__(self, cdp: ProfilePort) -> None:
        super().__init__()
        self.cdp = cdp

    async def batch_load_fn(self, keys: list[str]) -> list[Profile | None]:
        profiles = await self.cdp.profiles(keys)
        return [profiles.get(k) for k in keys]
