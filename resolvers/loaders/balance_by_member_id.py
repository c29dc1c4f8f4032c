from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from aiodataloader import DataLoader

from loyalty.models import Balance
from loyalty.store import LoyaltyReader


class BalanceByMemberIdLoader(DataLoader[str, Balance]):
    def __init__(self, reader: LoyaltyReader, clock: Callable[[], datetime]) -> None:
        super().__init__()
        self.reader = reader
        self.clock = clock

    async def batch_load_fn(self, keys: list[str]) -> list[Balance]:
        balances = await self.reader.balances(keys, self.clock())
        return [balances[k] for k in keys]
