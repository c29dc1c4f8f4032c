"""The framework's ceiling for `bench.member_view`: a bare Strawberry schema with the member
view's shape (`me` with profile, points, tier with content, offers with content, cart with
pointsPreview, orders) that returns constants: no token check, no database, no upstreams.

    uvicorn bench.bare_app:app --port 8100

What is left is what every request pays anyway: uvicorn, the ASGI GraphQL view, parsing,
validation and execution of the same query, and the JSON response.

Two ceilings: `app` is strawberry as it ships (the issue's ceiling: every request parses,
0.7 ms, and validates, 2.4 ms, the member view again); `app_cached` adds strawberry's own
parser and validation caches, which the gateway has too, so the framework's best on this
machine. `python -m bench.member_view` measures both.

    uvicorn bench.bare_app:app_cached --port 8100
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import cast

import strawberry
from strawberry.asgi import GraphQL
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.scalars import JSON

NOW = datetime(2025, 1, 1, tzinfo=UTC)


@strawberry.type
class Money:
    amount: Decimal
    currency_code: str


@strawberry.type
class Content:
    delivery_id: strawberry.ID
    delivery_key: str | None
    schema: str
    name: str | None
    fields: JSON
    image_url: str | None


@strawberry.type
class Profile:
    user_id: str
    first_name: str | None
    last_name: str | None
    email: str | None
    birthday: str | None
    audiences: list[str]
    traits: JSON


@strawberry.type
class ExpiringPoints:
    points: int
    expires_at: datetime


@strawberry.type
class PointsBalance:
    available: int
    pending: int
    lifetime_earned: int
    expiring_next: ExpiringPoints | None


@strawberry.type
class Tier:
    key: str
    name: str
    rank: int
    hidden: bool
    discount_percent: Decimal | None
    earn_multiplier: Decimal
    benefits: list[str]
    min_spend: Decimal
    content: Content | None


@strawberry.type
class TierStatus:
    current: Tier
    qualifying_spend: Money
    next_tier: Tier | None
    spend_to_next_tier: Money | None
    valid_until: datetime | None


@strawberry.type
class Offer:
    id: strawberry.ID
    kind: str
    title: str
    code: str | None
    discount_percent: Decimal | None
    bonus_points: int | None
    valid_until: datetime | None
    content: Content | None


@strawberry.type
class CartLine:
    sku: str
    name: str
    quantity: int
    unit_price: Money
    total: Money
    image_url: str | None


@strawberry.type
class Cart:
    id: strawberry.ID
    total: Money
    line_items: list[CartLine]
    points_preview: int
    tier_discount: Money | None


@strawberry.type
class Order:
    id: strawberry.ID
    order_number: str | None
    total: Money
    created_at: datetime
    state: str


def _content(key: str) -> Content:
    return Content(
        delivery_id=strawberry.ID(f"content-{key}"),
        delivery_key=key,
        schema="https://schema.patron.example/banner.json",
        name=f"Banner: {key}",
        fields=cast(JSON, {"headline": f"Headline for {key}", "cta": "Shop now"}),
        image_url=f"https://images.example/{key}.jpg",
    )


def _cad(amount: str) -> Money:
    return Money(amount=Decimal(amount), currency_code="CAD")


GOLD = Tier(
    key="gold",
    name="Gold",
    rank=3,
    hidden=False,
    discount_percent=Decimal("10"),
    earn_multiplier=Decimal("1.5"),
    benefits=["Private styling appointments"],
    min_spend=Decimal("5000"),
    content=_content("tiers/gold"),
)
BLACK = Tier(
    key="black",
    name="Black",
    rank=4,
    hidden=False,
    discount_percent=Decimal("15"),
    earn_multiplier=Decimal("2"),
    benefits=["Complimentary delivery"],
    min_spend=Decimal("10000"),
    content=_content("tiers/black"),
)


@strawberry.type
class Member:
    id: strawberry.ID
    profile: Profile | None
    points: PointsBalance
    tier: TierStatus
    offers: list[Offer]
    cart: Cart | None

    @strawberry.field
    def orders(self, first: int = 10) -> list[Order]:
        return ORDERS[:first]


ORDERS = [
    Order(
        id=strawberry.ID(f"order-{i}"),
        order_number=f"HR-AVA-{i:04d}",
        total=_cad("640.00"),
        created_at=NOW,
        state="Complete",
    )
    for i in range(1, 5)
]

MEMBER = Member(
    id=strawberry.ID("TWVtYmVyOmJhcmU="),
    profile=Profile(
        user_id="demo-ava",
        first_name="Ava",
        last_name="Laurent",
        email="ava.laurent@example.com",
        birthday="1988-03-14",
        audiences=["newsletter_subscriber", "big_spender"],
        traits=cast(JSON, {"newsletter_subscriber": True, "big_spender": True}),
    ),
    points=PointsBalance(
        available=7670,
        pending=640,
        lifetime_earned=8310,
        expiring_next=ExpiringPoints(points=1850, expires_at=NOW),
    ),
    tier=TierStatus(
        current=GOLD,
        qualifying_spend=_cad("7670.00"),
        next_tier=BLACK,
        spend_to_next_tier=_cad("2330.00"),
        valid_until=NOW,
    ),
    offers=[
        Offer(
            id=strawberry.ID(f"offer-{key}"),
            kind="BONUS_POINTS",
            title=f"Offer {key}",
            code=None,
            discount_percent=None,
            bonus_points=250,
            valid_until=NOW,
            content=_content(f"offers/{key}"),
        )
        for key in ("spring-bonus", "newsletter", "tier-gold")
    ],
    cart=Cart(
        id=strawberry.ID("cart-ava"),
        total=_cad("2825.00"),
        line_items=[
            CartLine(
                sku="HR-CASH-COAT-48",
                name="Cashmere overcoat",
                quantity=1,
                unit_price=_cad("2495.00"),
                total=_cad("2495.00"),
                image_url=None,
            ),
            CartLine(
                sku="HR-SILK-TIE-NVY",
                name="Silk tie, navy",
                quantity=2,
                unit_price=_cad("165.00"),
                total=_cad("330.00"),
                image_url=None,
            ),
        ],
        points_preview=4237,
        tier_discount=_cad("282.50"),
    ),
)


@strawberry.type
class Query:
    @strawberry.field
    async def me(self) -> Member | None:
        return MEMBER


schema = strawberry.Schema(query=Query)
app = GraphQL(schema)
cached_schema = strawberry.Schema(
    query=Query,
    extensions=[lambda: ParserCache(maxsize=256), lambda: ValidationCache(maxsize=256)],
)
app_cached = GraphQL(cached_schema)
