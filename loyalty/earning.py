"""How many points a purchase earns: convert to the program currency, apply the earn rate
and the tier multiplier, round down."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

from loyalty.errors import DomainError, UserErrorCode
from loyalty.money import Money
from loyalty.program import Program, Tier


def to_program_currency(program: Program, amount: Money) -> Money:
    """A purchase amount in the program currency, through the program's FX table."""
    if amount.currency == program.currency:
        return amount
    rate = program.fx.get(amount.currency)
    if rate is None:
        raise DomainError(
            UserErrorCode.INVALID_AMOUNT,
            f"{program.name} does not accept {amount.currency}: no exchange rate configured",
            ("total", "currencyCode"),
        )
    return Money(amount.amount * rate, program.currency).rounded()


def points_for(program: Program, amount_in_program_currency: Money, tier: Tier) -> int:
    """Points for an amount already in the program currency, rounded down."""
    points = amount_in_program_currency.amount * program.points_per_currency_unit
    return int((points * tier.earn_multiplier).to_integral_value(rounding=ROUND_DOWN))


def points_preview(
    program: Program, amount: Money, tier: Tier, bonus_multiplier: Decimal = Decimal(1)
) -> int:
    """Points a cart would earn at checkout, with bonus-offer multipliers applied."""
    converted = to_program_currency(program, amount)
    base = converted.amount * program.points_per_currency_unit * tier.earn_multiplier
    return int((base * bonus_multiplier).to_integral_value(rounding=ROUND_DOWN))


def redemption_value(program: Program, points: int) -> Money:
    """What `points` are worth when redeemed or donated, in the program currency."""
    value = Decimal(points) / Decimal(program.redemption_points_per_currency_unit)
    return Money(value, program.currency).rounded()
