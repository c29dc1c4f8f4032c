from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime

from aiodataloader import DataLoader

from loyalty.ledger import next_expiry
from loyalty.models import Balance, ExpiringPoints
from loyalty.program import Program
from loyalty.store import LoyaltyReader


class BalanceByMemberIdLoader(DataLoader[str, Balance]):
    """Balances of the members' wallets (their household's when they have one), with the
    next batch of points to expire."""

    def __init__(
        self, reader: LoyaltyReader, program: Program, clock: Callable[[], datetime]
    ) -> None:
        super().__init__()
        self.reader = reader
        self.program = program
        self.clock = clock

    async def batch_load_fn(self, keys: list[str]) -> list[Balance]:
        now = self.clock()
        balances = await self.reader.balances(keys, now)
        if self.program.expiry_months <= 0:
            return [balances[k] for k in keys]
        history = await self.reader.credit_history(keys, now)
        result = []
        for key in keys:
            credits, debits = history[key]
            upcoming = next_expiry(credits, debits, self.program.expiry_months)
            expiring = ExpiringPoints(*upcoming) if upcoming else None
            result.append(dataclasses.replace(balances[key], expiring_next=expiring))
        return result
