"""The unified member view: loyalty data owned here, joined with the CDP profile, the
commerce cart and orders, and CMS content. Every field asks a per-request DataLoader."""

from __future__ import annotations

import asyncio
import enum
import io
from datetime import datetime
from typing import Any

import segno
import strawberry
from strawberry.types import Info

from loyalty.card import card_code
from loyalty.errors import UpstreamError
from loyalty.models import Member as DomainMember
from loyalty.money import Money as DomainMoney
from loyalty.offers import offers_for_member
from loyalty.segments import Insights
from resolvers.commerce import Cart, Order
from resolvers.errors import soft_upstream_error, upstream_error
from resolvers.households import Household, HouseholdInvitation
from resolvers.loaders.orders_by_customer_id import OrdersKey
from resolvers.loaders.transactions_by_member_id import TransactionPageKey
from resolvers.money import Money
from resolvers.node import Node, to_global_id
from resolvers.offers import Offer
from resolvers.permissions import ReadsHouseholdInvitations, ReadsInsights, ReadsMember
from resolvers.points import (
    PageInfo,
    PointsBalance,
    PointsTransaction,
    PointsTransactionConnection,
    PointsTransactionEdge,
    parse_transaction_cursor,
    transaction_cursor,
)
from resolvers.profile import Profile
from resolvers.tiers import TierStatus

MAX_PAGE = 100
# Any number of households may invite a member; it is shown the newest (the others still
# expire, and any of them can be accepted by its household id).
MAX_INVITATIONS_SHOWN = 10


@strawberry.type
class ExternalIds:
    commerce_customer_id: str
    cdp_user_id: str
    email: str | None


@strawberry.type
class MemberCard:
    code: str = strawberry.field(
        description="The signed code that the member's QR card encodes; memberByCard resolves it."
    )

    @strawberry.field(description="The same code as an SVG QR image.")
    def qr_svg(self) -> str:
        out = io.BytesIO()
        segno.make(self.code, error="m").save(out, kind="svg", scale=4, xmldecl=False)
        return out.getvalue().decode()


@strawberry.enum
class RfmSegment(enum.Enum):
    NURSERY = "NURSERY"
    NURTURE = "NURTURE"
    RETAIN = "RETAIN"
    REACTIVATE = "REACTIVATE"


@strawberry.type(
    description="RFM segment and scores (rules and weights: README, Segments). Staff only."
)
class MemberInsights:
    segment: RfmSegment
    recency_days: int | None = strawberry.field(
        description="Whole days since the last purchase; null if the member never bought."
    )
    frequency12m: int = strawberry.field(description="Purchases in the last 365 days.")
    spend12m: Money = strawberry.field(
        description="Net spend (after returns) in the last 365 days, program currency."
    )
    engagement_score: float = strawberry.field(description="0..1")
    churn_risk: float = strawberry.field(description="0..1")
    computed_at: datetime = strawberry.field(
        description="When: the last `patron jobs run segments`, or now for a member it has "
        "not seen yet (computed live)."
    )

    @classmethod
    def of(cls, insights: Insights, currency: str) -> MemberInsights:
        return cls(
            segment=RfmSegment(insights.segment.value),
            recency_days=insights.recency_days,
            frequency12m=insights.frequency_12m,
            spend12m=Money.of(DomainMoney.from_minor(insights.spend_12m_minor, currency)),
            engagement_score=insights.engagement_score,
            churn_risk=insights.churn_risk,
            computed_at=insights.computed_at,
        )


@strawberry.type
class Member(Node):
    # Every field is personal: `ReadsMember` (the member itself, its household, or a role
    # that reads any member) guards each one, whichever way the member was reached; the
    # stricter `ReadsHouseholdInvitations` (the member itself) and `ReadsInsights` (staff)
    # guard two of them.

    id: strawberry.ID = strawberry.field(permission_classes=[ReadsMember])
    enrolled_at: datetime = strawberry.field(permission_classes=[ReadsMember])
    _member: strawberry.Private[DomainMember]

    @classmethod
    def of(cls, member: DomainMember) -> Member:
        return cls(
            id=to_global_id("Member", member.id), enrolled_at=member.enrolled_at, _member=member
        )

    @strawberry.field(permission_classes=[ReadsMember])
    def external_ids(self) -> ExternalIds:
        m = self._member
        return ExternalIds(
            commerce_customer_id=m.commerce_customer_id, cdp_user_id=m.cdp_user_id, email=m.email
        )

    @strawberry.field(
        permission_classes=[ReadsMember],
        description="From the CDP adapter; null with an error if the CDP is down.",
    )
    async def profile(self, info: Info[Any, Any]) -> Profile | None:
        try:
            profile = await info.context.loaders.profile_by_user_id.load(self._member.cdp_user_id)
        except UpstreamError as exc:
            raise upstream_error(exc, info) from exc
        return Profile.of(profile) if profile else None

    @strawberry.field(permission_classes=[ReadsMember])
    async def points(self, info: Info[Any, Any]) -> PointsBalance:
        balance = await info.context.loaders.balance_by_member_id.load(self._member.id)
        return PointsBalance.of(balance)

    @strawberry.field(permission_classes=[ReadsMember])
    async def transactions(
        self, info: Info[Any, Any], first: int = 20, after: str | None = None
    ) -> PointsTransactionConnection:
        limit = max(0, min(first, MAX_PAGE))
        before_id = parse_transaction_cursor(after) if after else None
        if after and before_id is None:
            from resolvers.errors import refusal

            raise refusal("INVALID_INPUT", "after is not a cursor of this connection")
        page = await info.context.loaders.transactions_by_member_id.load(
            TransactionPageKey(self._member.id, limit + 1, before_id)
        )
        now = info.context.services.clock()
        edges = [
            PointsTransactionEdge(
                node=PointsTransaction.of(t, now), cursor=transaction_cursor(t.id)
            )
            for t in page[:limit]
        ]
        return PointsTransactionConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=len(page) > limit, end_cursor=edges[-1].cursor if edges else None
            ),
        )

    @strawberry.field(permission_classes=[ReadsMember])
    async def tier(self, info: Info[Any, Any]) -> TierStatus:
        status = await info.context.loaders.tier_status_by_member_id.load(self._member.id)
        return TierStatus.of(status)

    @strawberry.field(permission_classes=[ReadsMember])
    async def household(self, info: Info[Any, Any]) -> Household | None:
        household = await info.context.loaders.household_by_member_id.load(self._member.id)
        return Household.of(household) if household else None

    @strawberry.field(
        permission_classes=[ReadsHouseholdInvitations],
        description="Invitations to join a household that this member has not answered and "
        "that have not expired, the newest 10: it accepts one with addHouseholdMember naming "
        "itself, declines with removeHouseholdMember. The member itself only (and admins); "
        "anyone else gets null and a NOT_ALLOWED error, the rest of the member intact.",
    )
    async def household_invitations(self, info: Info[Any, Any]) -> list[HouseholdInvitation] | None:
        found = await info.context.loaders.household_invitations_by_member_id.load(self._member.id)
        return [HouseholdInvitation.of(i) for i in found[:MAX_INVITATIONS_SHOWN]]

    @strawberry.field(
        permission_classes=[ReadsHouseholdInvitations],
        description="The invitations this member sent as its household's owner that are "
        "unanswered and have not expired, newest first (empty when it owns no household): it "
        "withdraws one with removeHouseholdMember. The member itself only (and admins); anyone "
        "else gets null and a NOT_ALLOWED error, the rest of the member intact.",
    )
    async def sent_household_invitations(
        self, info: Info[Any, Any]
    ) -> list[HouseholdInvitation] | None:
        loaders = info.context.loaders
        household = await loaders.household_by_member_id.load(self._member.id)
        if household is None or household.owner_id != self._member.id:
            return []
        found = await loaders.household_invitations_by_household_id.load(household.id)
        return [HouseholdInvitation.of(i) for i in found]

    @strawberry.field(
        permission_classes=[ReadsMember],
        description="Offers this member can use now, each with its CMS content.",
    )
    async def offers(self, info: Info[Any, Any]) -> list[Offer]:
        loaders = info.context.loaders
        # Both at once: the offers' content then joins the tier content's CMS batch.
        status, stored = await asyncio.gather(
            loaders.tier_status_by_member_id.load(self._member.id),
            loaders.offers_by_member_id.load(self._member.id),
        )
        return [Offer.of(o) for o in offers_for_member(status.current, stored)]

    @strawberry.field(
        permission_classes=[ReadsMember],
        description="The active cart from the commerce adapter; null when there is none.",
    )
    async def cart(self, info: Info[Any, Any]) -> Cart | None:
        try:
            cart = await info.context.loaders.cart_by_customer_id.load(
                self._member.commerce_customer_id
            )
        except UpstreamError as exc:
            raise upstream_error(exc, info) from exc
        return Cart.of(cart, self._member.id) if cart else None

    @strawberry.field(
        permission_classes=[ReadsMember],
        description="Orders from the commerce adapter, newest first. When commerce is down the "
        "list is empty and `errors` has an UPSTREAM_* error at this path.",
    )
    async def orders(self, info: Info[Any, Any], first: int = 10) -> list[Order]:
        limit = max(0, min(first, MAX_PAGE))
        if limit == 0:
            return []
        try:
            orders = await info.context.loaders.orders_by_customer_id.load(
                OrdersKey(self._member.commerce_customer_id, limit)
            )
        except UpstreamError as exc:
            soft_upstream_error(exc, info)
            return []
        return [Order.of(o) for o in orders]

    @strawberry.field(permission_classes=[ReadsMember])
    def card(self, info: Info[Any, Any]) -> MemberCard:
        return MemberCard(code=card_code(self._member.id, info.context.services.card_secret))

    @strawberry.field(
        permission_classes=[ReadsMember, ReadsInsights],
        description="Staff only (associate, marketer, admin): RFM segment, engagement and "
        "churn risk. Anyone else gets null and a NOT_ALLOWED error.",
    )
    async def insights(self, info: Info[Any, Any]) -> MemberInsights | None:
        found = await info.context.loaders.insights_by_member_id.load(self._member.id)
        return MemberInsights.of(found, info.context.services.program.currency) if found else None


__all__ = ["Member", "MemberCard", "MemberInsights", "RfmSegment"]
