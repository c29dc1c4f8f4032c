from __future__ import annotations

from aiodataloader import DataLoader

from loyalty.models import Member
from loyalty.store import LoyaltyReader


class MemberByIdLoader(DataLoader[str, Member | None]):
    def __init__(self, reader: LoyaltyReader) -> None:
        super().__init__()
        self.reader = reader

    async def batch_load_fn(self, keys: list[str]) -> list[Member | None]:
        found = {m.id: m for m in await self.reader.members_by_ids(keys)}
        return [found.get(k) for k in keys]
