"""Households (Club Harry's "householding"): members who share one wallet, owned by the
owner, and the best tier of any of them.

- creating a household makes its owner the first member;
- a member who joins brings its available points into the shared wallet (points still
  pending join it when their return window passes) and earns into it from then on;
- a member who leaves takes nothing with it: it earns into its own wallet again;
- the owner cannot leave: the household lives as long as its owner.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from loyalty.errors import DomainError, UserErrorCode
from loyalty.ledger import LedgerService, member_account
from loyalty.ports import BalanceEvents
from loyalty.program import Program
from loyalty.store import LedgerSession, LoyaltyStore
from loyalty.unit_of_work import run_once


class HouseholdService:
    def __init__(
        self,
        store: LoyaltyStore,
        program: Program,
        clock: Callable[[], datetime],
        ledger: LedgerService,
        events: BalanceEvents | None = None,
    ) -> None:
        self.ledger = ledger
        self.store = store
        self.program = program
        self.clock = clock
        self.events = events

    async def create(self, owner_id: str) -> str:
        async def work(session: LedgerSession) -> dict[str, Any]:
            await _member(session, owner_id, "ownerId")
            if await session.household_of(owner_id) is not None:
                raise DomainError(
                    UserErrorCode.ALREADY_IN_HOUSEHOLD,
                    "this member is already in a household",
                    ("ownerId",),
                )
            household_id = str(uuid.uuid4())
            await session.add_household(household_id, owner_id, self.clock())
            return {"household_id": household_id, "affected": [owner_id]}

        result = await run_once(self.store, "createHousehold", {"owner": owner_id}, None, work)
        return str(result["household_id"])

    async def add(self, household_id: str, member_id: str) -> str:
        async def work(session: LedgerSession) -> dict[str, Any]:
            household = await session.household(household_id)
            if household is None:
                raise DomainError(UserErrorCode.NOT_FOUND, "no such household", ("householdId",))
            member = await _member(session, member_id, "memberId")
            if await session.household_of(member.id) is not None:
                raise DomainError(
                    UserErrorCode.ALREADY_IN_HOUSEHOLD,
                    "this member is already in a household",
                    ("memberId",),
                )
            limit = self.program.household_max_members
            if len(household.member_ids) >= limit:
                raise DomainError(
                    UserErrorCode.LIMIT_EXCEEDED,
                    f"a household has at most {limit} members",
                    ("memberId",),
                )
            await session.add_household_member(household.id, member.id, self.clock())
            await self.ledger.move_available_points(
                session,
                member,
                to=member_account(household.owner_id, "available"),
                description="Points moved to the household wallet",
            )
            return {"household_id": household.id, "affected": [*household.member_ids, member.id]}

        result = await run_once(
            self.store, "addHouseholdMember", {"h": household_id, "m": member_id}, None, work
        )
        await self._changed(result)
        return str(result["household_id"])

    async def remove(self, household_id: str, member_id: str) -> str:
        async def work(session: LedgerSession) -> dict[str, Any]:
            household = await session.household(household_id)
            if household is None:
                raise DomainError(UserErrorCode.NOT_FOUND, "no such household", ("householdId",))
            if member_id not in household.member_ids:
                raise DomainError(
                    UserErrorCode.NOT_FOUND, "not a member of this household", ("memberId",)
                )
            if member_id == household.owner_id:
                raise DomainError(
                    UserErrorCode.NOT_ALLOWED,
                    "the owner cannot leave its household",
                    ("memberId",),
                )
            await session.remove_household_member(household.id, member_id)
            return {"household_id": household.id, "affected": list(household.member_ids)}

        result = await run_once(
            self.store, "removeHouseholdMember", {"h": household_id, "m": member_id}, None, work
        )
        await self._changed(result)
        return str(result["household_id"])

    async def _changed(self, result: dict[str, Any]) -> None:
        if self.events is not None and result.get("affected"):
            await self.events.balances_changed(sorted(set(result["affected"])))


async def _member(session: LedgerSession, member_id: str, field: str) -> Any:
    member = await session.member(member_id)
    if member is None:
        raise DomainError(UserErrorCode.NOT_FOUND, "no such member", (field,))
    return member
