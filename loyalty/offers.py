"""Which offers a member can use now: stored offers (program-wide or personal) that fit the
member's tier, plus the standing discount of the member's tier."""

from __future__ import annotations

from collections.abc import Sequence

from loyalty.models import Offer, OfferKind
from loyalty.program import Tier


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
