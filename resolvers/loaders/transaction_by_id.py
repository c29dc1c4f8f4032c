from __future__ import annotations

from aiodataloader import DataLoader

from loyalty.models import Transaction
from loyalty.store import LoyaltyReader


class TransactionByIdLoader(DataLoader[int, Transaction | None]):
    def __init__(self, reader: LoyaltyReader) -> None:
        super().__init__()
        self.reader = reader

    async def batch_load_fn(self, keys: list[int]) -> list[Transaction | None]:
        found = {t.id: t for t in await self.reader.transactions_by_ids(keys)}
        return [found.get(k) for k in keys]
