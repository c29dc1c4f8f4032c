"""How many points a purchase earns: convert to the program currency, apply the earn rate
and the tier multiplier, round down."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

from loyalty.errors import DomainError, UserErrorCode
from loyalty.money import Money
from loyalty.program import Program, Tier


def exact_in_program_currency(program: Program, amount: Money) -> Decimal:
    """A purchase amount converted through the program's FX table, not rounded."""
    if amount.currency == program.currency:
        return amount.amount
    rate = program.fx.get(amount.currency)
    if rate is None:
        raise DomainError(
            UserErrorCode.INVALID_AMOUNT,
            f"{program.name} does not accept {amount.currency}: no exchange rate configured",
            ("total", "currencyCode"),
        )
    return amount.amount * rate


def to_program_currency(program: Program, amount: Money) -> Money:
    """A purchase amount in the program currency (rounded to its minor unit): what counts
    toward tiers."""
    return Money(exact_in_program_currency(program, amount), program.currency).rounded()


def points_for(program: Program, amount: Money, tier: Tier) -> int:
    """Points for a purchase: converted exactly, times the earn rate and the tier
    multiplier, rounded down once at the end (72.99 USD at 1.37 is 99.9963 CAD: 99 points)."""
    points = exact_in_program_currency(program, amount) * program.points_per_currency_unit
    return int((points * tier.earn_multiplier).to_integral_value(rounding=ROUND_DOWN))


def points_preview(
    program: Program, amount: Money, tier: Tier, bonus_multiplier: Decimal = Decimal(1)
) -> int:
    """Points a cart would earn at checkout, with bonus-offer multipliers applied."""
    converted = exact_in_program_currency(program, amount)
    base = converted * program.points_per_currency_unit * tier.earn_multiplier
    return int((base * bonus_multiplier).to_integral_value(rounding=ROUND_DOWN))


def redemption_value(program: Program, points: int) -> Money:
    """What `points` are worth when redeemed or donated, in the program currency."""
    value = Decimal(points) / Decimal(program.redemption_points_per_currency_unit)
    return Money(value, program.currency).rounded()
