"""Tiers: which tier a member holds, from qualifying spend or a staff assignment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from loyalty.dates import add_months
from loyalty.models import TierAssignment
from loyalty.money import Money
from loyalty.program import Program, Tier


@dataclass(frozen=True, slots=True)
class TierStatus:
    current: Tier
    qualifying_spend: Money
    next_tier: Tier | None
    spend_to_next_tier: Money | None
    valid_until: datetime | None


def qualifying_window(program: Program, now: datetime) -> tuple[datetime, datetime]:
    """The period whose spend counts now: the last 12 months, or this calendar year
    (in the program's time zone)."""
    local = now.astimezone(program.zone)
    if program.tier_basis == "spend_calendar_year":
        start = local.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
        end = start.replace(year=start.year + 1)
        return start, end
    start = add_months(local, -12)
    return start, local + timedelta(microseconds=1)


def tier_for_spend(program: Program, spend: Money) -> Tier:
    """The highest public tier whose threshold the spend reaches."""
    reached = [t for t in program.public_tiers if spend.amount >= t.min_spend]
    return reached[-1] if reached else program.entry_tier


def tier_status(
    program: Program,
    now: datetime,
    spend: Money,
    assignment: TierAssignment | None = None,
    floor: Tier | None = None,
) -> TierStatus:
    """A member's tier: a staff-assigned (hidden) tier outranks spend; otherwise the best of
    the spend tier and `floor` (e.g. the best tier in the member's household)."""
    by_spend = tier_for_spend(program, spend)
    current = by_spend
    if floor is not None and floor.rank > current.rank:
        current = floor
    assigned = program.tier(assignment.tier_key) if assignment else None
    if assigned is not None and (assigned.hidden or assigned.rank > current.rank):
        current = assigned
    next_tier: Tier | None = None
    to_next: Money | None = None
    if not current.hidden:
        higher = [t for t in program.public_tiers if t.min_spend > current.min_spend]
        if higher:
            next_tier = higher[0]
            gap = max(next_tier.min_spend - spend.amount, Decimal(0))
            to_next = Money(gap, program.currency).rounded()
    valid_until = None
    if program.tier_basis == "spend_calendar_year":
        _, end = qualifying_window(program, now)
        valid_until = end.replace(year=end.year + 1) if current.rank > 0 else None
    return TierStatus(current, spend, next_tier, to_next, valid_until)


def own_tier(program: Program, spend: Money, assignment: TierAssignment | None) -> Tier:
    """A member's own public tier: by spend, or a public tier staff assigned."""
    tier = tier_for_spend(program, spend)
    assigned = program.tier(assignment.tier_key) if assignment else None
    if assigned is not None and not assigned.hidden and assigned.rank > tier.rank:
        return assigned
    return tier


def best_of(tiers: list[Tier]) -> Tier | None:
    """The household's best public tier, shared by all its members."""
    return max(tiers, key=lambda t: t.rank, default=None)
