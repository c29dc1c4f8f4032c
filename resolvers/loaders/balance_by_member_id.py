from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

from aiodataloader import DataLoader

from loyalty.ledger import next_expiry
from loyalty.models import Balance, ExpiringPoints
from loyalty.program import Program
from loyalty.store import LoyaltyReader
from resolvers.loaders.household_by_member_id import HouseholdByMemberIdLoader


class BalanceByMemberIdLoader(DataLoader[str, Balance]):
    """Balances of the members' wallets (their household's when they have one), with the
    next batch of points to expire. The households come from the request's household
    loader, so a view that also shows the household or the tier reads them once."""

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

    async def batch_load_fn(self, keys: list[str]) -> list[Balance]:
        now = self.clock()
        households = await self.households.load_many(keys)
        holder = {k: h.owner_id if h else k for k, h in zip(keys, households, strict=True)}
        expiring = self.program.expiry_months > 0
        wallets, earned = await asyncio.gather(
            self.reader.wallets(list(holder.values()), now, history=expiring),
            self.reader.lifetime_earned(keys),
        )
        result = []
        for key in keys:
            wallet = wallets[holder[key]]
            upcoming = (
                next_expiry(list(wallet.credits), wallet.debits, self.program.expiry_months)
                if expiring
                else None
            )
            result.append(
                Balance(
                    available=wallet.available,
                    pending=wallet.pending,
                    lifetime_earned=earned.get(key, 0),
                    expiring_next=ExpiringPoints(*upcoming) if upcoming else None,
                )
            )
        return result
