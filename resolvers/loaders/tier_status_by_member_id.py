from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

from aiodataloader import DataLoader

from loyalty.money import Money
from loyalty.program import Program
from loyalty.store import LoyaltyReader
from loyalty.tiers import (
    TierStatus,
    best_of,
    held_at,
    own_tier,
    qualifying_window,
    tier_status,
)
from resolvers.loaders.household_by_member_id import HouseholdByMemberIdLoader


class TierStatusByMemberIdLoader(DataLoader[str, TierStatus]):
    """Each member's tier, the best of its household's included: three queries (qualifying
    spend, staff assignments, held tiers) for any number of members, on one connection, and
    the households from the request's household loader."""

    def __init__(
        self,
        reader: LoyaltyReader,
        program: Program,
        clock: Callable[[], datetime],
        households: HouseholdByMemberIdLoader,
    ) -> None:
        super().__init__()
        self.reader = reader
        self.program = program
        self.clock = clock
        self.households = households

    async def batch_load_fn(self, keys: list[str]) -> list[TierStatus]:
        now = self.clock()
        since, until = qualifying_window(self.program, now)
        found = await self.households.load_many(keys)
        households = {k: h for k, h in zip(keys, found, strict=True) if h is not None}
        everyone = sorted({*keys, *(m for h in households.values() for m in h.member_ids)})
        spend, assignments, stored = await asyncio.gather(
            self.reader.qualifying_spend_minor(everyone, since, until),
            self.reader.tier_assignments(everyone),
            self.reader.held_tiers(everyone),
        )
        held = {m: held_at(self.program, h, now) for m, h in stored.items()}
        currency = self.program.currency

        def money(member_id: str) -> Money:
            return Money.from_minor(spend.get(member_id, 0), currency)

        result = []
        for key in keys:
            household = households.get(key)
            floor = (
                best_of(
                    [
                        own_tier(self.program, money(m), assignments.get(m), held.get(m))
                        for m in household.member_ids
                    ]
                )
                if household
                else None
            )
            result.append(
                tier_status(
                    self.program, now, money(key), assignments.get(key), floor, held.get(key)
                )
            )
        return result
