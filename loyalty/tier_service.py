"""Tier changes that are written down: staff assignments (`assignTier`), the held tier a
purchase raises, and the review at the end of each period (`patron jobs run tiers`).

The rules themselves are pure functions in `loyalty.tiers`; this module runs them in units
of work. Every assignment is a `tier_assignments` row (who, why, when) and revokes the
previous one, so the table is the audit trail.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from loyalty.errors import DomainError, UserErrorCode
from loyalty.models import TierAssignment
from loyalty.money import Money
from loyalty.program import Program
from loyalty.store import LedgerSession, LoyaltyStore
from loyalty.tiers import (
    held_at,
    held_for,
    held_tier_of,
    promotion,
    qualifying_window,
    review_held,
    review_window,
)
from loyalty.unit_of_work import Work, run_once

MAX_REASON = 2000


@dataclass(frozen=True, slots=True)
class TierReview:
    """What one run of the tiers job did."""

    reviewed: int = 0
    kept: int = 0  # requalified: the same tier, or a higher one
    lowered: int = 0

    def describe(self) -> str:
        members = "member" if self.reviewed == 1 else "members"
        return (
            f"{self.reviewed} {members} reviewed: {self.kept} requalified, "
            f"{self.lowered} moved down one tier"
        )


async def promote_on_purchase(
    session: LedgerSession, program: Program, member_id: str, moment: datetime
) -> None:
    """Within the purchase's unit of work (the purchase already added): raise or renew the
    member's held tier if the period's spend now reaches it."""
    stored = await session.held_tier(member_id, for_update=True)
    if stored is not None and moment < stored.period_start:
        return  # a purchase from before the held period (a late backfill) changes nothing
    since, until = qualifying_window(program, moment)
    spend = Money.from_minor(
        await session.qualifying_spend_minor(member_id, since, until), program.currency
    )
    new = promotion(program, member_id, spend, moment, held_at(program, stored, moment))
    if new is not None:
        await session.save_held_tier(new, moment)


class TierService:
    def __init__(
        self, store: LoyaltyStore, program: Program, clock: Callable[[], datetime]
    ) -> None:
        self.store = store
        self.program = program
        self.clock = clock

    async def assign(self, member_id: str, tier_key: str, reason: str, *, by: str) -> str:
        """Staff put a member in a tier. A hidden tier outranks spend until staff assign
        another; a public tier becomes the member's held tier (when higher) until the next
        review. The previous assignment is revoked; both stay as the audit trail."""
        why = reason.strip()
        if not why:
            raise DomainError(UserErrorCode.INVALID_INPUT, "a reason is required", ("reason",))
        if len(why) > MAX_REASON:
            raise DomainError(
                UserErrorCode.INVALID_INPUT,
                f"a reason is at most {MAX_REASON} characters",
                ("reason",),
            )
        tier = self.program.tier(tier_key)
        if tier is None:
            raise DomainError(UserErrorCode.NOT_FOUND, "no such tier", ("tierKey",))

        async def work(session: LedgerSession) -> dict[str, Any]:
            if await session.member(member_id) is None:
                raise DomainError(UserErrorCode.NOT_FOUND, "no such member", ("memberId",))
            now = self.clock()
            await session.add_tier_assignment(
                TierAssignment(member_id, tier.key, why, by, assigned_at=now)
            )
            if not tier.hidden and tier.rank != self.program.entry_tier.rank:
                stored = await session.held_tier(member_id, for_update=True)
                current = held_tier_of(self.program, held_at(self.program, stored, now))
                if current is None or tier.rank > current.rank:
                    await session.save_held_tier(held_for(self.program, member_id, tier, now), now)
            return {"member_id": member_id}

        payload = {"member_id": member_id, "tier": tier.key, "reason": why, "by": by}
        result = await run_once(self.store, "assignTier", payload, None, work)
        return str(result["member_id"])

    async def review(self) -> TierReview:
        """The end-of-period review of every member whose held period has ended: one unit of
        work per member. Idempotent: a reviewed member is held to the end of the next
        period, so a second run finds nothing due. A member the job missed for several
        periods is reviewed once per period (one step down at most each)."""
        now = self.clock()
        reviewed = kept = lowered = 0
        for member_id in await self.store.reader.held_tiers_due(now):
            payload = {"member_id": member_id, "at": now.isoformat()}
            work = self._reviewer(member_id, now)
            outcome = await run_once(self.store, "reviewTier", payload, None, work)
            if outcome["reviewed"]:
                reviewed += 1
                if outcome["lowered"]:
                    lowered += 1
                else:
                    kept += 1
        return TierReview(reviewed, kept, lowered)

    def _reviewer(self, member_id: str, now: datetime) -> Work:
        async def work(session: LedgerSession) -> dict[str, Any]:
            return await self._review_member(session, member_id, now)

        return work

    async def _review_member(
        self, session: LedgerSession, member_id: str, now: datetime
    ) -> dict[str, Any]:
        program = self.program
        held = await session.held_tier(member_id, for_update=True)
        if held is None or held.valid_until > now:
            return {"reviewed": False, "lowered": False}  # another run got there first
        before = held_tier_of(program, held) or program.entry_tier
        while held.valid_until <= now:
            since, until = review_window(program, held)
            spend = await session.qualifying_spend_minor(member_id, since, until)
            held = review_held(program, held, Money.from_minor(spend, program.currency))
        after = held_tier_of(program, held) or program.entry_tier
        assignment = await session.tier_assignment(member_id)
        if assignment is not None:
            assigned = program.tier(assignment.tier_key)
            if assigned is None or not assigned.hidden:
                # A public tier staff assigned was a floor until this review.
                await session.revoke_tier_assignment(member_id, now)
        if after.rank == program.entry_tier.rank:
            await session.drop_held_tier(member_id)
        else:
            await session.save_held_tier(held, now)
        return {"reviewed": True, "lowered": after.rank < before.rank}
