from __future__ import annotations

from collections import defaultdict
from typing import NamedTuple

from aiodataloader import DataLoader

from loyalty.models import Transaction
from loyalty.store import LoyaltyReader


class TransactionPageKey(NamedTuple):
    member_id: str
    limit: int
    before_id: int | None


class TransactionsByMemberIdLoader(DataLoader[TransactionPageKey, list[Transaction]]):
    """A page of a member's transactions, newest first; one query per distinct page shape."""

    def __init__(self, reader: LoyaltyReader) -> None:
        super().__init__()
        self.reader = reader

    async def batch_load_fn(self, keys: list[TransactionPageKey]) -> list[list[Transaction]]:
        shapes: dict[tuple[int, int | None], list[str]] = defaultdict(list)
        for key in keys:
            shapes[(key.limit, key.before_id)].append(key.member_id)
        pages: dict[TransactionPageKey, list[Transaction]] = {}
        for (limit, before_id), member_ids in shapes.items():
            found = await self.reader.transactions(member_ids, limit=limit, before_id=before_id)
            for member_id in member_ids:
                pages[TransactionPageKey(member_id, limit, before_id)] = found.get(member_id, [])
        return [pages[k] for k in keys]
