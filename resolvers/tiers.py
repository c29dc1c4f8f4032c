from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from decimal import Decimal
from typing import Any

import strawberry
from strawberry.types import Info

from loyalty.access import Capability
from loyalty.program import Program as DomainProgram
from loyalty.program import Tier as DomainTier
from loyalty.tiers import TierStatus as DomainTierStatus
from resolvers.content import Content, load_content
from resolvers.money import Money


@strawberry.type
class Tier:
    key: str
    name: str
    rank: int
    hidden: bool
    discount_percent: Decimal | None = strawberry.field(
        description='Discount that this tier gives on eligible purchases, in percent (e.g. "10").'
    )
    earn_multiplier: Decimal
    benefits: list[str]
    min_spend: Decimal = strawberry.field(
        description="Qualifying spend (program currency) that reaches this tier; 0 for hidden."
    )

    @strawberry.field(
        description="Tier copy from the CMS (delivery key tiers/<key>); null if the CMS has none "
        "or is down."
    )
    async def content(self, info: Info[Any, Any]) -> Content | None:
        return await load_content(info, f"tiers/{self.key}")

    @classmethod
    def of(cls, tier: DomainTier) -> Tier:
        return cls(
            key=tier.key,
            name=tier.name,
            rank=tier.rank,
            hidden=tier.hidden,
            discount_percent=tier.discount_percent,
            earn_multiplier=tier.earn_multiplier,
            benefits=list(tier.benefits),
            min_spend=Decimal(0) if tier.hidden else tier.min_spend,
        )


@strawberry.type
class TierStatus:
    current: Tier
    qualifying_spend: Money = strawberry.field(
        description="Spend that counts toward tier qualification in the current period, "
        "in the program currency."
    )
    next_tier: Tier | None
    spend_to_next_tier: Money | None
    valid_until: datetime | None

    @classmethod
    def of(cls, status: DomainTierStatus) -> TierStatus:
        return cls(
            current=Tier.of(status.current),
            qualifying_spend=Money.of(status.qualifying_spend),
            next_tier=Tier.of(status.next_tier) if status.next_tier else None,
            spend_to_next_tier=(
                Money.of(status.spend_to_next_tier) if status.spend_to_next_tier else None
            ),
            valid_until=status.valid_until,
        )


@strawberry.type(description="The running loyalty program.")
class Program:
    key: str
    name: str
    currency_code: str
    points_name: str = strawberry.field(description='"points", "carats"')
    tiers: list[Tier]

    @classmethod
    def of(
        cls, program: DomainProgram, *, include_hidden: bool, held: Collection[str] = ()
    ) -> Program:
        """The program with its public tiers, and its hidden ones when `include_hidden`
        (else those in `held`)."""
        tiers = [t for t in program.tiers if include_hidden or not t.hidden or t.key in held]
        return cls(
            key=program.key,
            name=program.name,
            currency_code=program.currency,
            points_name=program.points_name,
            tiers=[Tier.of(t) for t in tiers],
        )


async def program_for_viewer(info: Info[Any, Any]) -> Program:
    """Public tiers for everyone; hidden tiers for staff, and a hidden tier also to the
    member who holds it (its own `tier.current`)."""
    viewer = info.context.viewer
    program: DomainProgram = info.context.services.program
    if viewer.can(Capability.SEE_HIDDEN_TIERS):
        return Program.of(program, include_hidden=True)
    held: set[str] = set()
    has_hidden = any(t.hidden for t in program.tiers)
    if has_hidden and viewer.is_member:
        member = await info.context.loaders.member_by_commerce_id.load(viewer.sub)
        if member is not None:
            status = await info.context.loaders.tier_status_by_member_id.load(member.id)
            if status.current.hidden:
                held.add(status.current.key)
    return Program.of(program, include_hidden=False, held=held)
