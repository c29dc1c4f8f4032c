from __future__ import annotations

from decimal import Decimal

import pytest

from gateway.settings import PROGRAMS_DIR
from loyalty.earning import points_for, points_preview, redemption_value, to_program_currency
from loyalty.errors import DomainError
from loyalty.money import Money
from loyalty.program import load_program

PROGRAM = load_program(PROGRAMS_DIR / "club-harry.toml")
MEMBER, SILVER = PROGRAM.tier("member"), PROGRAM.tier("silver")
assert MEMBER and SILVER


def test_points_are_rounded_down_once_after_an_exact_conversion() -> None:
    usd = Money.of("72.99", "USD")  # x 1.37 = 99.9963 CAD
    assert points_for(PROGRAM, usd, MEMBER) == 99
    assert to_program_currency(PROGRAM, usd) == Money.of("100.00", "CAD")  # spend, to the cent


def test_the_tier_multiplier_applies_before_rounding() -> None:
    assert points_for(PROGRAM, Money.of("99.99", "CAD"), SILVER) == 124  # 124.9875


def test_a_currency_without_a_rate_is_refused() -> None:
    with pytest.raises(DomainError) as refused:
        points_for(PROGRAM, Money.of("1000", "JPY"), MEMBER)
    assert refused.value.code.value == "INVALID_AMOUNT"
    assert refused.value.field == ("total", "currencyCode")


def test_preview_with_a_bonus_multiplier_and_redemption_value() -> None:
    assert points_preview(PROGRAM, Money.of("200.00", "CAD"), SILVER, Decimal(2)) == 500
    assert redemption_value(PROGRAM, 1234) == Money.of("12.34", "CAD")
