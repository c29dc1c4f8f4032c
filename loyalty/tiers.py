"""Tiers: which tier a member holds, from qualifying spend, the tier it holds for the period,
its household and a staff assignment.

A member's tier is the best of:
- the public tier its qualifying spend reaches now (the last 12 months, or this calendar
  year, in the program's time zone);
- the tier it *holds* (`HeldTier`, the `member_tiers` table): raised at once by a purchase
  whose spend crosses a threshold, and kept until the end of the next period. Calendar year:
  a tier reached in 2026 is held through 2027 (valid until 1 January 2028). Rolling 12 months:
  a tier is held for 12 months from the last purchase that kept the 12-month spend at its
  threshold (the member's anniversary of reaching it);
- the best own tier (spend or held, public) of the members of its household;
- a tier staff assigned (`assignTier`): a hidden tier outranks everything; a public one
  becomes the held tier (if higher) and is a floor until the next review.

At the end of the held period `patron jobs run tiers` reviews the member (`review_held`):
the spend of the period that just ended decides; a member whose spend no longer qualifies
drops one tier, never more, and never below what the spend earns. Reads and earning do not
wait for the job: `held_at` applies the reviews due (a member who requalified was renewed
by the purchase that did it, so an ended period means one tier down).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from loyalty.dates import add_months
from loyalty.models import HeldTier, TierAssignment
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


def shift_periods(program: Program, moment: datetime, periods: int) -> datetime:
    """`moment` moved by whole qualification periods (years or 12 months), in the program's
    time zone."""
    local = moment.astimezone(program.zone)
    if program.tier_basis == "spend_calendar_year":
        return local.replace(year=local.year + periods)
    return add_months(local, 12 * periods)


def tier_for_spend(program: Program, spend: Money) -> Tier:
    """The highest public tier whose threshold the spend reaches."""
    reached = [t for t in program.public_tiers if spend.amount >= t.min_spend]
    return reached[-1] if reached else program.entry_tier


def one_below(program: Program, tier: Tier) -> Tier:
    """The public tier just below `tier` (the entry tier stays where it is)."""
    lower = [t for t in program.public_tiers if t.min_spend < tier.min_spend]
    return lower[-1] if lower else program.entry_tier


def held_tier_of(program: Program, held: HeldTier | None) -> Tier | None:
    """The program's tier a held-tier record names (None if the program no longer has it)."""
    if held is None:
        return None
    tier = program.tier(held.tier_key)
    return tier if tier is not None and not tier.hidden else None


def held_at(program: Program, held: HeldTier | None, now: datetime) -> HeldTier | None:
    """The held tier at `now`, with the reviews of the periods that have ended since applied:
    one tier down for each (a member whose spend requalified it was renewed by the purchase
    that did, so a period that ended unrenewed is one not requalified). What the tiers job
    will write; live reads and earning do not wait for it. None before the held period."""
    tier = held_tier_of(program, held)
    if held is None or tier is None or now < held.period_start:
        return None
    start, until = held.period_start, held.valid_until
    while until <= now:
        tier = one_below(program, tier)
        start, until = shift_periods(program, until, -1), shift_periods(program, until, 1)
    if tier.rank == program.entry_tier.rank:
        return None  # everyone has the entry tier: nothing is held
    return HeldTier(held.member_id, tier.key, start, until)


def held_for(program: Program, member_id: str, tier: Tier, moment: datetime) -> HeldTier:
    """The held tier of a member who reaches (or is put in) `tier` at `moment`: held to the
    end of the next period. Calendar year: from 1 January of this year to 1 January of the
    year after next. Rolling: from 12 months before `moment` to 12 months after it."""
    start, _ = qualifying_window(program, moment)
    if program.tier_basis == "spend_calendar_year":
        until = shift_periods(program, start, 2)
    else:
        until = shift_periods(program, moment, 1)
    return HeldTier(member_id, tier.key, start, until)


def promotion(
    program: Program, member_id: str, spend: Money, moment: datetime, held: HeldTier | None
) -> HeldTier | None:
    """The new held tier after a purchase at `moment` brought the period's spend to `spend`,
    or None if nothing changes: a higher tier is held at once; reaching the held tier again
    renews it (rolling 12 months: for 12 months from now; calendar year: through next year)."""
    reached = tier_for_spend(program, spend)
    if reached.rank == program.entry_tier.rank:
        return None
    candidate = held_for(program, member_id, reached, moment)
    current = held_tier_of(program, held)
    if held is None or current is None or reached.rank > current.rank:
        return candidate
    if reached.rank == current.rank and candidate.valid_until > held.valid_until:
        return candidate
    return None


def review_window(program: Program, held: HeldTier) -> tuple[datetime, datetime]:
    """The period whose spend a review of `held` looks at: the one ending at `valid_until`."""
    return shift_periods(program, held.valid_until, -1), held.valid_until


def review_held(program: Program, held: HeldTier, spend: Money) -> HeldTier:
    """The review at the end of the held period, given the spend of that period: a member
    whose spend reaches the held tier (or more) keeps it (or rises); otherwise it drops one
    tier, but never below the tier its spend earns. The new tier is held to the end of the
    next period."""
    reached = tier_for_spend(program, spend)
    tier = held_tier_of(program, held) or program.entry_tier
    if reached.rank >= tier.rank:
        new = reached
    else:
        below = one_below(program, tier)
        new = below if below.rank > reached.rank else reached
    since, until = review_window(program, held)
    return HeldTier(held.member_id, new.key, since, shift_periods(program, until, 1))


def tier_status(
    program: Program,
    now: datetime,
    spend: Money,
    assignment: TierAssignment | None = None,
    floor: Tier | None = None,
    held: HeldTier | None = None,
) -> TierStatus:
    """A member's tier: a staff-assigned hidden tier outranks everything; otherwise the best
    of the spend tier, the held tier, `floor` (the best tier in the member's household) and a
    public tier staff assigned. `valid_until` is the end of the held tier's period."""
    current = tier_for_spend(program, spend)
    held_tier = held_tier_of(program, held)
    for candidate in (held_tier, floor):
        if candidate is not None and candidate.rank > current.rank:
            current = candidate
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
    valid_until: datetime | None = None
    if current.hidden or current.rank == program.entry_tier.rank:
        valid_until = None
    elif held is not None and held_tier is not None and held_tier.key == current.key:
        valid_until = held.valid_until
    elif program.tier_basis == "spend_calendar_year":
        valid_until = held_for(program, "", current, now).valid_until
    if valid_until is not None:
        valid_until = valid_until.astimezone(program.zone)
    return TierStatus(current, spend, next_tier, to_next, valid_until)


def own_tier(
    program: Program,
    spend: Money,
    assignment: TierAssignment | None,
    held: HeldTier | None = None,
) -> Tier:
    """A member's own public tier (what it shares with its household): by spend, held, or a
    public tier staff assigned."""
    tier = tier_for_spend(program, spend)
    for candidate in (
        held_tier_of(program, held),
        program.tier(assignment.tier_key) if assignment else None,
    ):
        if candidate is not None and not candidate.hidden and candidate.rank > tier.rank:
            tier = candidate
    return tier


def best_of(tiers: list[Tier]) -> Tier | None:
    """The household's best public tier, shared by all its members."""
    return max(tiers, key=lambda t: t.rank, default=None)
