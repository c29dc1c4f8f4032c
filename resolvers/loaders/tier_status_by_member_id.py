from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from aiodataloader import DataLoader

from loyalty.money import Money
from loyalty.program import Program
from loyalty.store import LoyaltyReader
from loyalty.tiers import TierStatus, qualifying_window, tier_status


class TierStatusByMemberIdLoader(DataLoader[str, TierStatus]):
    """Each member's tier: two queries (qualifying spend, staff assignments) for any number."""

    def __init__(
        self, reader: LoyaltyReader, program: Program, clock: Callable[[], datetime]
    ) -> None:
        super().__init__()
        self.reader = reader
        self.program = program
        self.clock = clock

    async def batch_load_fn(self, keys: list[str]) -> list[TierStatus]:
        now = self.clock()
        since, until = qualifying_window(self.program, now)
        spend = await self.reader.qualifying_spend_minor(keys, since, until)
        assignments = await self.reader.tier_assignments(keys)
        return [
            tier_status(
                self.program,
                now,
                Money.from_minor(spend.get(k, 0), self.program.currency),
                assignments.get(k),
            )
            for k in keys
        ]
