from __future__ import annotations

from aiodataloader import DataLoader

from loyalty.models import Household
from loyalty.store import LoyaltyReader


class HouseholdByIdLoader(DataLoader[str, Household | None]):
    def __init__(self, reader: LoyaltyReader) -> None:
        super().__init__()
        self.reader = reader

    async def batch_load_fn(self, keys: list[str]) -> list[Household | None]:
        found = {h.id: h for h in await self.reader.households_by_ids(keys)}
        return [found.get(k) for k in keys]
