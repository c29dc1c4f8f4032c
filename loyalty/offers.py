"""Which offers a member can use now: stored offers (program-wide or personal) that fit the
member's tier, plus the standing discount of the member's tier; and what bonus-point offers
add to a purchase (`purchase_points`, shared by the cart preview and the ledger)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from loyalty.earning import points_for, points_preview
from loyalty.models import Offer, OfferKind
from loyalty.money import Money
from loyalty.program import Program, Tier


def tier_discount_offer(tier: Tier) -> Offer | None:
    if not tier.discount_percent:
        return None
    return Offer(
        id=f"tier-{tier.key}",
        key=f"tier-{tier.key}",
        kind=OfferKind.TIER_DISCOUNT,
        title=f"{tier.name}: {tier.discount_percent.normalize():f}% off",
        discount_percent=tier.discount_percent,
        tier_key=tier.key,
    )


def offers_for_member(tier: Tier, stored: Sequence[Offer]) -> list[Offer]:
    offers = [o for o in stored if o.tier_key is None or o.tier_key == tier.key]
    standing = tier_discount_offer(tier)
    return [standing, *offers] if standing else offers


def bonus_offers(tier: Tier, offers: Sequence[Offer]) -> list[Offer]:
    """The bonus-point offers among `offers` that apply to a purchase by a member of `tier`."""
    return [
        o
        for o in offers
        if o.kind is OfferKind.BONUS_POINTS and (o.tier_key is None or o.tier_key == tier.key)
    ]


@dataclass(frozen=True, slots=True)
class PurchasePoints:
    """What a purchase earns: the `base` earn (tier multiplier included) and the `bonus` of
    the bonus-point offers `applied` to it."""

    base: int
    bonus: int = 0
    applied: tuple[Offer, ...] = ()

    @property
    def total(self) -> int:
        return self.base + self.bonus


def purchase_points(
    program: Program, amount: Money, tier: Tier, offers: Sequence[Offer] = ()
) -> PurchasePoints:
    """Points a purchase earns, bonus-point offers included: the one rule behind both
    `Cart.pointsPreview` and `LedgerService.record_purchase`, so they cannot disagree.

    Only a purchase that earns (base above zero) gets a bonus. The offers' multipliers
    multiply the exact base before it is rounded down once; their fixed `bonus_points` add.
    Raises `DomainError` for a currency the program cannot convert."""
    base = points_for(program, amount, tier)
    applied = tuple(bonus_offers(tier, offers))
    if base <= 0 or not applied:
        return PurchasePoints(base)
    multiplier = Decimal(1)
    for offer in applied:
        multiplier *= offer.bonus_multiplier or Decimal(1)
    boosted = points_preview(program, amount, tier, multiplier)
    bonus = max(boosted - base, 0) + sum(o.bonus_points or 0 for o in applied)
    return PurchasePoints(base, bonus, applied)
