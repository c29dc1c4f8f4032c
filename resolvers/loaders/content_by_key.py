from __future__ import annotations

from loyalty.ports import ContentPort
from loyalty.upstreams import ContentItem
from resolvers.loaders.upstream_batch import UpstreamBatchLoader


class ContentByKeyLoader(UpstreamBatchLoader[str, ContentItem | None]):
    """CMS content by delivery key: one batch fetch for every key in a query."""

    def __init__(self, cms: ContentPort) -> None:
        super().__init__()
        self.cms = cms

    async def batch_load_fn(self, keys: list[str]) -> list[ContentItem | None]:
        items = await self.cms.content_by_keys(keys)
        return [items.get(k) for k in keys]
