from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from aiodataloader import DataLoader

from loyalty.models import Offer
from loyalty.store import LoyaltyReader


class OffersByMemberIdLoader(DataLoader[str, list[Offer]]):
    """Stored offers open to each member (its own and the program-wide ones)."""

    def __init__(self, reader: LoyaltyReader, clock: Callable[[], datetime]) -> None:
        super().__init__()
        self.reader = reader
        self.clock = clock

    async def batch_load_fn(self, keys: list[str]) -> list[list[Offer]]:
        found = await self.reader.offers_for_members(keys, self.clock())
        return [found.get(k, []) for k in keys]
