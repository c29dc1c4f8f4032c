"""Households (Club Harry's "householding"): members who share one wallet, owned by the
owner, and the best tier of any of them.

- creating a household makes its owner the first member;
- joining takes both members' consent: the owner **invites** a member (`invite`: a pending
  invitation, nothing moves) and the member **accepts** it (`accept`) before it expires
  (`Program.household_invitation_days`). Staff and services add a member directly (`add`):
  they verify both consents in person, at the store or in the back office;
- a member who joins brings its available points into the shared wallet (points still
  pending join it when their return window passes) and earns into it from then on;
- a member who leaves takes nothing with it: it earns into its own wallet again;
- the owner cannot leave: the household lives as long as its owner.

Invitations are single use (accepting deletes it), a second invitation to the same member
replaces the first, and an owner has at most `household_max_members` members and pending
invitations together. `remove` of an invited member drops its invitation (the owner
withdraws it, the member declines it); erasure deletes a member's invitations, either side,
and dissolving a household deletes its invitations.

Whatever changes who is in a household first locks the household's row
(`LedgerSession.household_for_update`), so the member count a rule checks holds until the
unit of work commits: two members accepting the last place, or a member accepting while the
owner's erasure dissolves the household, serialize on that row.

An invitation shows the owner nothing of the invited member (only the id the owner gave):
inviting a member who already belongs to another household succeeds, and the member is told
`ALREADY_IN_HOUSEHOLD` when it accepts.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from loyalty.errors import DomainError, UserErrorCode
from loyalty.ledger import LedgerService, member_account
from loyalty.models import Household, HouseholdInvitation, Member
from loyalty.ports import BalanceEvents
from loyalty.program import Program
from loyalty.store import LedgerSession, LoyaltyStore
from loyalty.unit_of_work import run_once

NO_INVITATION = "this member has no pending invitation to this household"


def no_invitation() -> DomainError:
    """The answer to a member accepting without a pending invitation: the same whether the
    household exists, the invitation expired or was never made (so a member cannot probe
    for households)."""
    return DomainError(UserErrorCode.NOT_ALLOWED, NO_INVITATION, ("householdId",))


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
        """Staff and services: the member joins at once (they checked both consents)."""

        async def work(session: LedgerSession) -> dict[str, Any]:
            household = await session.household_for_update(household_id)
            if household is None:
                raise DomainError(UserErrorCode.NOT_FOUND, "no such household", ("householdId",))
            return await self._join(session, household, member_id)

        result = await run_once(
            self.store, "addHouseholdMember", {"h": household_id, "m": member_id}, None, work
        )
        await self._changed(result)
        return str(result["household_id"])

    async def invite(self, household_id: str, member_id: str, owner_id: str) -> HouseholdInvitation:
        """The owner (`owner_id`) invites a member: a pending invitation, replacing an
        earlier one to the same member; nothing else changes until the member accepts."""

        async def work(session: LedgerSession) -> dict[str, Any]:
            household = await session.household_for_update(household_id)
            if household is None or household.owner_id != owner_id:
                raise DomainError(
                    UserErrorCode.NOT_ALLOWED,
                    "only the household's owner invites members",
                    ("householdId",),
                )
            member = await _member(session, member_id, "memberId")
            if member.id in household.member_ids:
                raise DomainError(
                    UserErrorCode.ALREADY_IN_HOUSEHOLD,
                    "this member is already in this household",
                    ("memberId",),
                )
            now = self.clock()
            await session.drop_household_invitations(household.id, expired_at=now)
            others = [
                i for i in await session.household_invitations(household.id)
                if i.member_id != member.id
            ]  # fmt: skip
            limit = self.program.household_max_members
            if len(household.member_ids) + len(others) >= limit:
                raise DomainError(
                    UserErrorCode.LIMIT_EXCEEDED,
                    f"a household has at most {limit} members, pending invitations included",
                    ("memberId",),
                )
            invitation = HouseholdInvitation(
                household_id=household.id,
                member_id=member.id,
                invited_by_id=owner_id,
                created_at=now,
                expires_at=now + timedelta(days=self.program.household_invitation_days),
            )
            await session.save_household_invitation(invitation)
            return {"invitation": invitation}

        result = await run_once(
            self.store,
            "inviteHouseholdMember",
            {"h": household_id, "m": member_id, "by": owner_id},
            None,
            work,
        )
        invitation: HouseholdInvitation = result["invitation"]
        return invitation

    async def accept(self, household_id: str, member_id: str) -> str:
        """The invited member accepts: it joins under the household's rules, if its
        invitation is pending; the invitation is used up."""

        async def work(session: LedgerSession) -> dict[str, Any]:
            household = await session.household_for_update(household_id)
            if household is None or not await session.take_household_invitation(
                household.id, member_id, self.clock()
            ):
                raise no_invitation()
            return await self._join(session, household, member_id)

        result = await run_once(
            self.store, "acceptHouseholdInvitation", {"h": household_id, "m": member_id}, None, work
        )
        await self._changed(result)
        return str(result["household_id"])

    async def _join(
        self, session: LedgerSession, household: Household, member_id: str
    ) -> dict[str, Any]:
        """The member joins the (locked) household and brings its available points."""
        member: Member = await _member(session, member_id, "memberId")
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
        # Staff adding an invited member use its invitation up, as accepting does.
        await session.drop_household_invitations(household.id, member_id=member.id)
        await self.ledger.move_available_points(
            session,
            member,
            to=member_account(household.owner_id, "available"),
            description="Points moved to the household wallet",
        )
        return {"household_id": household.id, "affected": [*household.member_ids, member.id]}

    async def remove(self, household_id: str, member_id: str) -> str:
        """A member leaves (or is removed); a member who is only invited loses its
        invitation (the owner withdraws it, or the member declines it)."""

        async def work(session: LedgerSession) -> dict[str, Any]:
            household = await session.household_for_update(household_id)
            if household is None:
                raise DomainError(UserErrorCode.NOT_FOUND, "no such household", ("householdId",))
            invited = await session.drop_household_invitations(household.id, member_id=member_id)
            if member_id not in household.member_ids:
                if invited:
                    return {"household_id": household.id, "affected": []}
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

    async def purge_expired_invitations(self) -> int:
        """Delete every invitation expired by now (the `invitations` job). An expired one
        is never taken, only kept: this keeps no more than the pending ones. How many."""
        now = self.clock()
        async with self.store.session() as session:
            return await session.drop_expired_household_invitations(now)

    async def _changed(self, result: dict[str, Any]) -> None:
        if self.events is not None and result.get("affected"):
            await self.events.balances_changed(sorted(set(result["affected"])))


async def _member(session: LedgerSession, member_id: str, field: str) -> Member:
    member = await session.member(member_id)
    if member is None:
        raise DomainError(UserErrorCode.NOT_FOUND, "no such member", (field,))
    return member
