"""The tier rules as pure functions (`loyalty.tiers`): the held period, promotion and renewal,
the review with at most one step down, and the due reviews applied on read."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.settings import PROGRAMS_DIR
from loyalty.models import HeldTier, TierAssignment
from loyalty.money import Money
from loyalty.program import load_program
from loyalty.tiers import (
    held_at,
    held_for,
    one_below,
    promotion,
    review_held,
    tier_status,
)

HARRODS = load_program(PROGRAMS_DIR / "harrods-rewards.toml")
DIAMOND = load_program(PROGRAMS_DIR / "diamond-club.toml")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def gbp(amount: str) -> Money:
    return Money.of(amount, "GBP")


def held(key: str, start: datetime, until: datetime) -> HeldTier:
    return HeldTier("m", key, start, until)


def test_one_below_walks_the_public_tiers_and_stops_at_the_entry_tier() -> None:
    names = [one_below(HARRODS, t).key for t in HARRODS.tiers]
    assert names == ["green-1", "green-1", "green-2", "gold"]
    assert one_below(DIAMOND, DIAMOND.tiers[2]).key == "marquise"


def test_a_calendar_year_tier_is_held_through_the_next_year() -> None:
    assert held_for(HARRODS, "m", HARRODS.tiers[2], utc(2026, 7, 4, 12)) == held(
        "gold", utc(2026, 1, 1), utc(2028, 1, 1)
    )


def test_promotion_raises_renews_and_never_lowers() -> None:
    at = utc(2027, 3, 1)
    gold = held("gold", utc(2026, 1, 1), utc(2028, 1, 1))
    assert promotion(HARRODS, "m", gbp("999"), at, None) is None  # Green 1: nothing held
    assert promotion(HARRODS, "m", gbp("1000"), at, None) == held(
        "green-2", utc(2027, 1, 1), utc(2029, 1, 1)
    )
    assert promotion(HARRODS, "m", gbp("5000"), at, gold) is None  # lower: kept
    assert promotion(HARRODS, "m", gbp("10000"), at, gold) == held(
        "gold", utc(2027, 1, 1), utc(2029, 1, 1)
    )  # requalified: renewed
    assert promotion(HARRODS, "m", gbp("25000"), at, gold) == held(
        "black", utc(2027, 1, 1), utc(2029, 1, 1)
    )


def test_the_review_drops_one_tier_at_most_never_below_the_spend() -> None:
    black = held("black", utc(2026, 1, 1), utc(2028, 1, 1))
    next_period = (utc(2027, 1, 1), utc(2029, 1, 1))
    cases = {"0": "gold", "12000": "gold", "26000": "black"}
    for spend, key in cases.items():
        assert review_held(HARRODS, black, gbp(spend)) == held(key, *next_period), spend
    gold = held("gold", utc(2026, 1, 1), utc(2028, 1, 1))
    assert review_held(HARRODS, gold, gbp("0")).tier_key == "green-2"


def test_due_reviews_apply_on_read_one_step_per_period() -> None:
    black = held("black", utc(2026, 1, 1), utc(2028, 1, 1))
    assert held_at(HARRODS, black, utc(2027, 12, 31, 23)) == black
    assert held_at(HARRODS, black, utc(2028, 1, 1)) == held(
        "gold", utc(2027, 1, 1), utc(2029, 1, 1)
    )
    assert held_at(HARRODS, black, utc(2029, 6, 1)) == held(
        "green-2", utc(2028, 1, 1), utc(2030, 1, 1)
    )
    assert held_at(HARRODS, black, utc(2030, 1, 1)) is None  # Green 1: nothing held
    assert held_at(HARRODS, black, utc(2025, 12, 31)) is None  # before the held period


def test_the_status_takes_the_best_and_a_hidden_assignment_outranks_all() -> None:
    now = utc(2027, 3, 1)
    gold = held("gold", utc(2026, 1, 1), utc(2028, 1, 1))
    status = tier_status(HARRODS, now, gbp("1500"), held=gold)
    assert (status.current.key, status.valid_until) == ("gold", utc(2028, 1, 1))
    assert status.next_tier is not None and status.next_tier.key == "black"
    assert status.spend_to_next_tier == gbp("23500")
    ambassador = TierAssignment("m", "ambassador", "Invited", "assoc-1", now)
    emerald = HeldTier("m", "emerald", utc(2026, 1, 1), utc(2028, 1, 1))
    status = tier_status(DIAMOND, now, Money.of("20000", "EUR"), ambassador, held=emerald)
    assert (status.current.key, status.next_tier, status.valid_until) == ("ambassador", None, None)
