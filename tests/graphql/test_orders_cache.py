"""The order history cache through the schema: a second member view makes no orders call; a
new order (by webhook or at the POS) or a return shows on the next view; one customer's
orders never reach another's view; commerce down serves the cached orders stale with no
error; `PATRON_ORDERS_CACHE_TTL=0` calls commerce on every view."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from adapters.cache.cached_orders import CachedOrders
from adapters.commerce.fake import FakeLine
from gateway.app import create_app
from gateway.demo import Fakes
from gateway.settings import Settings
from loyalty.errors import UpstreamUnavailable
from loyalty.upstreams import OrderPage
from tests.conftest import Clock, Harness, SqlCounter, token
from tests.graphql.conftest import enroll, purchase
from tests.graphql.test_commerce_webhook import (
    accepted,
    order_created,
    return_info_added,
    return_item,
)

ORDERS = "{ me { orders(first: 5) { orderNumber total { amount } } } }"


async def seed(h: Harness, customer: str = "cust-1", prefix: str = "HR") -> str:
    member_id = await enroll(h, customer)
    for n, (amount, days) in enumerate((("120.00", 40), ("310.00", 3)), start=1):
        h.fakes.commerce.add_order(
            customer, amount, created_at=h.clock() - timedelta(days=days), order_number=f"{prefix}-{n}"
        )  # fmt: skip
    return member_id


async def orders(h: Harness, customer: str = "cust-1") -> list[str]:
    body = await h.gql(ORDERS, token=token(customer, "member"))
    assert "errors" not in body, body
    return [f"{o['orderNumber']} {o['total']['amount']}" for o in body["data"]["me"]["orders"]]


def orders_calls(fakes: Fakes) -> list[str]:
    """The customer predicate of each orders query commerce served."""
    return [r.params["where"] for r in fakes.commerce.requests if r.path.endswith("/orders")]


def new_order(h: Harness, customer: str = "cust-1", number: str = "HR-3") -> dict[str, Any]:
    line = FakeLine("COAT-1", "Cashmere overcoat", 1, "75.00")
    return h.fakes.commerce.add_order(
        customer, "75.00", created_at=h.clock(), order_number=number, lines=[line]
    )


BEFORE = ["HR-2 310.00", "HR-1 120.00"]
AFTER = ["HR-3 75.00", "HR-2 310.00", "HR-1 120.00"]


async def test_a_second_view_makes_no_orders_call(harness: Harness) -> None:
    h = harness
    await seed(h)
    h.fakes.reset_requests()
    assert await orders(h) == BEFORE
    assert orders_calls(h.fakes) == ['customerId="cust-1"']
    h.fakes.reset_requests()
    assert await orders(h) == BEFORE
    assert orders_calls(h.fakes) == []


async def test_a_new_order_by_webhook_shows_on_the_next_view(harness: Harness) -> None:
    h = harness
    await seed(h)
    assert await orders(h) == BEFORE
    order = new_order(h)
    assert await orders(h) == BEFORE  # cached: commerce is not asked

    assert (await accepted(h, order_created(order)))["status"] == "recorded"

    h.fakes.reset_requests()
    assert await orders(h) == AFTER
    assert orders_calls(h.fakes) == ['customerId="cust-1"']


async def test_a_pos_purchase_shows_on_the_next_view_once(harness: Harness) -> None:
    h = harness
    member_id = await seed(h)
    assert await orders(h) == BEFORE
    order = new_order(h)

    recorded = await purchase(h, member_id, order["id"], "75.00", key="pos-1")
    assert recorded["userErrors"] == []

    h.fakes.reset_requests()
    assert await orders(h) == AFTER
    assert orders_calls(h.fakes) == ['customerId="cust-1"']
    # A replay of the same purchase recorded nothing new: the cache stays.
    replay = await purchase(h, member_id, order["id"], "75.00", key="pos-1")
    assert replay["transaction"] == recorded["transaction"]
    h.fakes.reset_requests()
    assert await orders(h) == AFTER
    assert orders_calls(h.fakes) == []


async def test_a_return_drops_the_cached_orders(harness: Harness) -> None:
    h = harness
    await seed(h)
    order = new_order(h)
    assert (await accepted(h, order_created(order)))["status"] == "recorded"
    assert await orders(h) == AFTER
    h.fakes.reset_requests()
    assert await orders(h) == AFTER
    assert orders_calls(h.fakes) == []
    line_id = order["lineItems"][0]["id"]

    answer = await accepted(h, return_info_added(order["id"], [return_item(line_id, 1)]))

    assert answer["status"] == "returned"
    h.fakes.reset_requests()
    assert await orders(h) == AFTER
    assert orders_calls(h.fakes) == ['customerId="cust-1"']


async def test_another_customer_never_sees_these_orders(harness: Harness) -> None:
    h = harness
    await seed(h, "cust-1", "HR")
    await seed(h, "cust-2", "ZZ")
    assert await orders(h, "cust-1") == BEFORE
    assert await orders(h, "cust-2") == ["ZZ-2 310.00", "ZZ-1 120.00"]
    order = new_order(h, "cust-1")
    assert (await accepted(h, order_created(order)))["status"] == "recorded"

    h.fakes.reset_requests()
    assert await orders(h, "cust-2") == ["ZZ-2 310.00", "ZZ-1 120.00"]
    assert orders_calls(h.fakes) == []  # cust-2's page was not touched
    assert await orders(h, "cust-1") == AFTER
    assert await orders(h, "cust-2") == ["ZZ-2 310.00", "ZZ-1 120.00"]
    assert orders_calls(h.fakes) == ['customerId="cust-1"']


async def test_commerce_down_serves_the_cached_orders_stale_without_an_error(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness
    await seed(h)
    assert await orders(h) == BEFORE
    cached = h.gateway.services.commerce
    assert isinstance(cached, CachedOrders)
    down: list[str] = []

    async def unavailable(customer_id: str, *, limit: int = 10, offset: int = 0) -> OrderPage:
        down.append(customer_id)
        raise UpstreamUnavailable("commerce", "HTTP 503")

    fetch_orders = cached.inner.orders
    monkeypatch.setattr(cached.inner, "orders", unavailable)
    # Two minutes later: past the 60 s TTL, within the day the stale copy is kept.
    monkeypatch.setattr(cached.cache, "clock", lambda: time.time() + 120)
    new_order(h)

    body = await h.gql(ORDERS, token=token("cust-1", "member"))

    assert body == {
        "data": {
            "me": {
                "orders": [
                    {"orderNumber": "HR-2", "total": {"amount": "310.00"}},
                    {"orderNumber": "HR-1", "total": {"amount": "120.00"}},
                ]
            }
        }
    }
    assert down == ["cust-1"]  # commerce was asked first
    # Commerce back: the old copy is past its TTL, so it is not served.
    monkeypatch.setattr(cached.inner, "orders", fetch_orders)
    assert await orders(h) == AFTER


@pytest.fixture
async def uncached(settings: Settings, fakes: Fakes, clock: Clock) -> AsyncIterator[Harness]:
    """The gateway with `PATRON_ORDERS_CACHE_TTL=0`."""
    http = fakes.http_client()
    app = create_app(settings.model_copy(update={"orders_cache_ttl": 0}), http=http, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://patron.test") as client:
            yield Harness(app, client, fakes, clock, SqlCounter())
    await http.aclose()


async def test_ttl_zero_asks_commerce_on_every_view(uncached: Harness) -> None:
    h = uncached
    await seed(h)
    h.fakes.reset_requests()
    assert await orders(h) == BEFORE
    new_order(h)
    assert await orders(h) == AFTER
    assert orders_calls(h.fakes) == ['customerId="cust-1"', 'customerId="cust-1"']


async def test_forgetting_a_member_drops_its_cached_orders(harness: Harness) -> None:
    """The cached pages hold the customer's email: an erasure must not leave them behind."""
    h = harness
    member_id = await seed(h)
    assert await orders(h) == BEFORE
    forgot = await h.gql(
        "mutation($id: ID!) { forgetMember(input: {memberId: $id}) { userErrors { code } } }",
        {"id": member_id},
        token("admin-1", "admin"),
    )
    assert forgot["data"]["forgetMember"]["userErrors"] == [], forgot
    await enroll(h, "cust-1")  # the same customer may enrol again, as a new member
    h.fakes.reset_requests()
    assert await orders(h) == BEFORE
    assert orders_calls(h.fakes) == ['customerId="cust-1"']
