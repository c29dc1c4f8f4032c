"""The offer rules without I/O: when a birthday is due, what bonus-point offers add."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from gateway.settings import PROGRAMS_DIR
from loyalty.models import Offer, OfferKind
from loyalty.money import Money
from loyalty.offer_service import birthday_due, birthday_in, parse_birthday
from loyalty.offers import PurchasePoints, purchase_points
from loyalty.program import Tier, load_program

PROGRAM = load_program(PROGRAMS_DIR / "club-harry.toml")


def tier(key: str) -> Tier:
    found = PROGRAM.tier(key)
    assert found is not None
    return found


MEMBER, SILVER = tier("member"), tier("silver")


def bonus(key: str, points: int | None = None, multiplier: str | None = None, **kw: str) -> Offer:
    return Offer(
        id=key, key=key, kind=OfferKind.BONUS_POINTS, title=key, bonus_points=points,
        bonus_multiplier=Decimal(multiplier) if multiplier else None, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def test_birthday_traits_are_iso_dates_only() -> None:
    assert parse_birthday("1990-04-02") == date(1990, 4, 2)
    assert parse_birthday(" 1990-04-02 ") == date(1990, 4, 2)
    for bad in ("1990-02-30", "02/04/1990", "19900402", "", None, 19900402, "1990-4-2"):
        assert parse_birthday(bad) is None, bad


def test_a_leap_day_birthday_is_on_28_february_in_other_years() -> None:
    leap = date(1992, 2, 29)
    assert birthday_in(2027, leap) == date(2027, 2, 28)
    assert birthday_in(2028, leap) == date(2028, 2, 29)
    assert birthday_due(leap, date(2027, 2, 28)) == date(2027, 2, 28)
    assert birthday_due(leap, date(2027, 3, 1)) is None
    assert birthday_due(leap, date(2028, 2, 28)) is None
    assert birthday_due(leap, date(2028, 2, 29)) == date(2028, 2, 29)


def test_the_window_looks_back_across_the_new_year() -> None:
    eve = date(1980, 12, 31)
    assert birthday_due(eve, date(2027, 1, 1)) is None
    assert birthday_due(eve, date(2027, 1, 1), window_days=1) == date(2026, 12, 31)  # 2026's
    assert birthday_due(eve, date(2027, 1, 2), window_days=1) is None
    assert birthday_due(date(2030, 1, 1), date(2027, 1, 1)) is None  # not born yet


def test_bonus_offers_multiply_the_exact_base_then_add() -> None:
    cad = Money.of("99.99", "CAD")
    assert purchase_points(PROGRAM, cad, SILVER) == PurchasePoints(124)  # 124.9875
    offers = [
        bonus("x2", multiplier="2"),
        bonus("plus", 250),
        Offer("t", "t", OfferKind.BIRTHDAY, "t"),
    ]
    points = purchase_points(PROGRAM, cad, SILVER, offers)
    assert (points.base, points.bonus, points.total) == (124, 125 + 250, 499)  # 249.975 -> 249
    assert [o.key for o in points.applied] == ["x2", "plus"]


def test_bonus_offers_of_another_tier_or_on_a_purchase_that_earns_nothing_add_nothing() -> None:
    gold_only = bonus("gold", 500, tier_key="gold")
    assert purchase_points(
        PROGRAM, Money.of("100.00", "CAD"), MEMBER, [gold_only]
    ) == PurchasePoints(100)
    assert purchase_points(
        PROGRAM, Money.of("0.50", "CAD"), MEMBER, [bonus("plus", 250)]
    ) == PurchasePoints(0)
