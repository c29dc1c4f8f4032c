"""The demo: the three fake upstreams, seeded with a few customers, and the same customers
enrolled in the loyalty database with their purchase history.

`patron serve --demo` runs the fakes in process (the shared HTTP client routes the fake
hosts to them through ASGI, so every adapter speaks its real wire format); `patron fakes`
serves the same fakes over HTTP for docker-compose and the benchmarks.

Beside the vendors' paths, the fakes (and only they: no real upstream has it) answer
`GET /__patron/requests` with the requests each fake has served, so a benchmark can count
the gateway's upstream calls per member view from outside its process.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from adapters.cdp.fake import FakeSegment
from adapters.cms.fake import FakeAmplience
from adapters.commerce.fake import FakeCommerce, FakeLine

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from resolvers.context import Services

DEMO_JWT_SECRET = "patron-demo-secret-not-for-production"
DEMO_CARD_SECRET = "patron-demo-card-secret"
DEMO_WEBHOOK_SECRET = "patron-demo-webhook-secret"
DEMO_DATABASE_URL = "sqlite+aiosqlite:///./patron-demo.db"

# Where the fakes live: in process (demo, tests) these hosts are routed to them by ASGI;
# `patron fakes` serves the same prefixes on one port.
FAKE_PREFIXES = {
    "commerce_auth": "/ct-auth",
    "commerce_api": "/ct-api",
    "cms": "/cms",
    "cdp_profiles": "/cdp-profiles",
    "cdp_api": "/cdp-api",
}
IN_PROCESS_BASE = "http://fakes.patron.internal"
# Outside every vendor's prefix: the request counts of the fakes (see `Fakes.request_counts`).
REQUEST_COUNTS_PATH = "/__patron/requests"
COMMERCE_TOKEN_PATH = "/oauth/token"


def fake_upstream_env(base: str = IN_PROCESS_BASE) -> dict[str, str]:
    """The `PATRON_*` settings that point the adapters at the fakes served under `base`."""
    p = FAKE_PREFIXES
    return {
        "PATRON_COMMERCE_API_URL": f"{base}{p['commerce_api']}",
        "PATRON_COMMERCE_AUTH_URL": f"{base}{p['commerce_auth']}",
        "PATRON_COMMERCE_PROJECT_KEY": "patron-demo",
        "PATRON_COMMERCE_CLIENT_ID": "patron-demo",
        "PATRON_COMMERCE_CLIENT_SECRET": "patron-demo-secret",
        "PATRON_CMS_URL": f"{base}{p['cms']}",
        "PATRON_CMS_LOCALE": "en-GB",
        "PATRON_CDP_PROFILE_URL": f"{base}{p['cdp_profiles']}",
        "PATRON_CDP_SPACE_ID": "patron-demo",
        "PATRON_CDP_TOKEN": "patron-demo-token",
        "PATRON_CDP_TRACKING_URL": f"{base}{p['cdp_api']}",
        "PATRON_CDP_WRITE_KEY": "patron-demo-write-key",
        "PATRON_CDP_REGULATIONS_URL": f"{base}{p['cdp_api']}/regulations",
    }


@dataclass
class Fakes:
    commerce: FakeCommerce = field(default_factory=FakeCommerce)
    cms: FakeAmplience = field(default_factory=FakeAmplience)
    cdp: FakeSegment = field(default_factory=FakeSegment)

    def app(self) -> Starlette:
        """One ASGI app serving the three fakes under their prefixes, and their request
        counts at `REQUEST_COUNTS_PATH`."""
        p = FAKE_PREFIXES
        return Starlette(
            routes=[
                Route(REQUEST_COUNTS_PATH, self._request_counts, methods=["GET"]),
                Mount(p["commerce_auth"], app=self.commerce.app),
                Mount(p["commerce_api"], app=self.commerce.app),
                Mount(p["cms"], app=self.cms.app),
                Mount(p["cdp_profiles"], app=self.cdp.app),
                Mount(p["cdp_api"], app=self.cdp.app),
            ]
        )

    def http_client(self, base: str = IN_PROCESS_BASE) -> httpx.AsyncClient:
        """An HTTP client whose requests to `base` are served in process by the fakes."""
        return httpx.AsyncClient(
            mounts={base: httpx.ASGITransport(app=self.app())}, timeout=httpx.Timeout(5.0)
        )

    def reset_requests(self) -> None:
        self.commerce.reset_requests()
        self.cms.reset_requests()
        self.cdp.reset_requests()

    def set_latency(self, *, commerce: float, cms: float, cdp: float) -> None:
        """Delay every request of each fake by this many seconds (commerce: its API, not its
        OAuth token grant)."""
        self.commerce.latency = commerce
        self.cms.latency = cms
        self.cdp.latency = cdp

    def request_counts(self) -> dict[str, int]:
        """The requests each fake has served since its last reset: `commerce` counts the API
        calls only, its OAuth token grants are apart in `commerce_oauth` (one per token, not
        per member view); `cms` and `cdp` count every request (CDP: profile reads and any
        tracking or regulation call)."""
        oauth = sum(1 for r in self.commerce.requests if r.path == COMMERCE_TOKEN_PATH)
        return {
            "commerce": len(self.commerce.requests) - oauth,
            "commerce_oauth": oauth,
            "cms": len(self.cms.requests),
            "cdp": len(self.cdp.requests),
        }

    async def _request_counts(self, request: Request) -> JSONResponse:
        return JSONResponse(self.request_counts())


@dataclass(frozen=True, slots=True)
class DemoOrder:
    order_id: str
    total: str
    currency: str
    days_ago: int


@dataclass(frozen=True, slots=True)
class DemoCustomer:
    commerce_id: str
    first_name: str
    last_name: str
    email: str
    birthday: str
    traits: dict[str, Any]
    orders: tuple[DemoOrder, ...]
    cart: tuple[FakeLine, ...] = ()


def _order_id(commerce_id: str, n: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"patron-demo/{commerce_id}/{n}"))


DEMO_CUSTOMERS: tuple[DemoCustomer, ...] = (
    DemoCustomer(
        "demo-ava", "Ava", "Laurent", "ava.laurent@example.com", "1988-03-14",
        {"newsletter_subscriber": True, "big_spender": True, "preferred_store": "TOR-BLOOR"},
        (
            DemoOrder(_order_id("demo-ava", 1), "1850.00", "CAD", 200),
            DemoOrder(_order_id("demo-ava", 2), "4200.00", "CAD", 90),
            DemoOrder(_order_id("demo-ava", 3), "980.00", "USD", 45),
            DemoOrder(_order_id("demo-ava", 4), "640.00", "CAD", 10),
        ),
        (
            FakeLine("HR-CASH-COAT-48", "Cashmere overcoat", 1, "2495.00", "hr-cash-coat"),
            FakeLine("HR-SILK-TIE-NVY", "Silk tie, navy", 2, "165.00", "hr-silk-tie"),
        ),
    ),
    DemoCustomer(
        "demo-ben", "Ben", "Okafor", "ben.okafor@example.com", "1979-11-02",
        {"newsletter_subscriber": False},
        (DemoOrder(_order_id("demo-ben", 1), "310.00", "CAD", 60),),
    ),
    DemoCustomer(
        "demo-chloe", "Chloé", "Martin", "chloe.martin@example.com", "1993-07-21",
        {"newsletter_subscriber": True},
        (
            DemoOrder(_order_id("demo-chloe", 1), "2750.00", "CAD", 150),
            DemoOrder(_order_id("demo-chloe", 2), "520.00", "CAD", 5),
        ),
        (FakeLine("HR-OXF-SHIRT-WHT", "Oxford shirt, white", 1, "245.00", "hr-oxford"),),
    ),
)  # fmt: skip

DEMO_ASSOCIATE = ("assoc-0042", "TOR-BLOOR")
DEMO_MARKETER = "marketing-01"
DEMO_SERVICE = "pos-tor-bloor"

TIER_COPY = {
    "member": "Welcome to Club Harry: points on every purchase, in store and online.",
    "silver": "Silver: early access to the seasonal sale.",
    "gold": "Gold: private styling appointments with your associate.",
    "black": "Black: complimentary delivery across Canada and invitations to private events.",
}

DEMO_OFFERS = (
    {
        "key": "spring-bonus",
        "kind": "BONUS_POINTS",
        "title": "250 bonus points on your next purchase",
        "bonus_points": 250,
    },
    {
        "key": "newsletter-welcome",
        "kind": "NEWSLETTER",
        "title": "10% off for subscribing to our newsletter",
        "code": "HARRY-NEWS-10",
        "discount_percent": "10",
    },
)

OFFER_COPY = {
    "birthday": "Happy birthday from Club Harry: your gift is waiting.",
    "newsletter": "Thank you for subscribing: your welcome code.",
}


def seed_fakes(fakes: Fakes, now: datetime | None = None) -> None:
    """Carts, orders, profiles and content for the demo customers."""
    now = now or datetime.now(UTC)
    for customer in DEMO_CUSTOMERS:
        for i, order in enumerate(customer.orders, start=1):
            fakes.commerce.add_order(
                customer.commerce_id,
                order.total,
                order.currency,
                created_at=now - timedelta(days=order.days_ago),
                order_number=f"HR-{customer.commerce_id[5:].upper()}-{i:04d}",
                email=customer.email,
            )
            fakes.commerce.orders[-1]["id"] = order.order_id
        if customer.cart:
            fakes.commerce.add_cart(customer.commerce_id, customer.cart, "CAD")
        fakes.cdp.add_profile(
            customer.commerce_id,
            {
                "first_name": customer.first_name,
                "last_name": customer.last_name,
                "email": customer.email,
                "birthday": customer.birthday,
                **customer.traits,
            },
            external_ids=[("email", customer.email)],
        )
    schema = "https://schema.patron.example/tier-card.json"
    for key, copy in TIER_COPY.items():
        fakes.cms.add_content(
            f"tiers/{key}", schema, f"Tier card: {key}", {"headline": copy}, image=f"tier-{key}"
        )
    banner = "https://schema.patron.example/offer-banner.json"
    for offer in DEMO_OFFERS:
        fakes.cms.add_content(
            f"offers/{offer['key']}",
            banner,
            f"Offer banner: {offer['key']}",
            {"headline": offer["title"], "cta": "Shop now"},
            image=f"offer-{offer['key']}",
        )
    for key, headline in OFFER_COPY.items():  # the offers granted per member share a banner
        fakes.cms.add_content(
            f"offers/{key}", banner, f"Offer banner: {key}", {"headline": headline}
        )
    for key in ("gold", "black"):
        fakes.cms.add_content(
            f"offers/tier-{key}",
            banner,
            f"Offer banner: tier-{key}",
            {"headline": f"Your {key.title()} discount applies in store and online"},
        )


async def seed_database(services: Services, engine: AsyncEngine) -> dict[str, str]:
    """Enrol the demo customers and record their order history; returns member ids by
    commerce id. Safe to run twice (enrolment and purchases are idempotent by key)."""
    from decimal import Decimal

    from sqlalchemy import select

    from adapters.db import tables
    from loyalty.ledger import Purchase
    from loyalty.members import Enrolment
    from loyalty.models import Channel
    from loyalty.money import Money

    now = services.clock()
    ids: dict[str, str] = {}
    for customer in DEMO_CUSTOMERS:
        member_id = await services.members.enroll(
            Enrolment(
                commerce_customer_id=customer.commerce_id,
                email=customer.email,
                first_name=customer.first_name,
                last_name=customer.last_name,
            ),
            idempotency_key=f"demo-enrol-{customer.commerce_id}",
        )
        ids[customer.commerce_id] = member_id
        for order in sorted(customer.orders, key=lambda o: -o.days_ago):
            await services.ledger.record_purchase(
                Purchase(
                    order_id=order.order_id,
                    total=Money.of(order.total, order.currency),
                    channel=Channel.WEB,
                    member_id=member_id,
                    occurred_at=now - timedelta(days=order.days_ago),
                    source="demo",
                ),
                idempotency_key=f"demo-order-{order.order_id}",
            )
    async with engine.begin() as conn:
        existing = set((await conn.execute(select(tables.offers.c.key))).scalars())
        for offer in DEMO_OFFERS:
            if offer["key"] in existing:
                continue
            await conn.execute(
                tables.offers.insert().values(
                    id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"patron-demo/offer/{offer['key']}")),
                    key=offer["key"],
                    kind=offer["kind"],
                    title=offer["title"],
                    code=offer.get("code"),
                    discount_percent=str(Decimal(str(offer["discount_percent"])))
                    if "discount_percent" in offer
                    else None,
                    bonus_points=offer.get("bonus_points"),
                    valid_until=now + timedelta(days=60),
                    active=True,
                    created_at=now,
                )
            )
    return ids
