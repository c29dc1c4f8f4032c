"""The commercetools adapter, against its fake (wire format) and with respx (failure modes)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
import respx
from starlette.applications import Starlette
from starlette.routing import Mount

from adapters.commerce.client import (
    CommercetoolsClient,
    MalformedCommerceData,
    parse_cart,
    parse_money,
    parse_order,
)
from adapters.commerce.fake import FakeCommerce, FakeLine
from adapters.http import Upstream, UpstreamPolicy
from loyalty.errors import UpstreamTimeout, UpstreamUnavailable
from loyalty.money import Money
from loyalty.upstreams import CartLine, Order, OrderPage

PROJECT = "patron-demo"
SHIRT = FakeLine("SH-001", "Oxford shirt", 2, "89.50", "https://images.test/sh-001.jpg")
TIE = FakeLine("TI-002", "Silk tie", 1, "65.00")


def when(day: int, hour: int = 12) -> datetime:
    return datetime(2025, 3, day, hour, 0, tzinfo=UTC)


# --- against the fake -------------------------------------------------------------------------
@pytest.fixture
def fake() -> FakeCommerce:
    return FakeCommerce()


class SlowTransport(httpx.AsyncBaseTransport):
    """Delays every request, so that concurrent callers really overlap (ASGI calls never wait)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, delay: float) -> None:
        self.inner = inner
        self.delay = delay

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(self.delay)
        return await self.inner.handle_async_request(request)


@pytest.fixture
async def http(fake: FakeCommerce) -> AsyncIterator[httpx.AsyncClient]:
    """The API host serves the fake under a path prefix; the auth host serves it at the root."""
    api_host = Starlette(routes=[Mount("/ct-api", app=fake.app)])
    mounts: dict[str, httpx.AsyncBaseTransport] = {
        "http://commerce.test": httpx.ASGITransport(app=api_host),
        "http://auth.test": SlowTransport(httpx.ASGITransport(app=fake.app), 0.01),
    }
    async with httpx.AsyncClient(mounts=mounts) as client:
        yield client


def make_client(http: httpx.AsyncClient, **kwargs: Any) -> CommercetoolsClient:
    return CommercetoolsClient(
        Upstream("commerce", "http://commerce.test/ct-api", http),
        Upstream("commerce-auth", "http://auth.test", http),
        project_key=PROJECT,
        client_id=kwargs.pop("client_id", "patron-demo"),
        client_secret=kwargs.pop("client_secret", "patron-demo-secret"),
        **kwargs,
    )


def token_calls(fake: FakeCommerce) -> int:
    return sum(1 for r in fake.requests if r.path == "/oauth/token")


def api_calls(fake: FakeCommerce) -> list[str]:
    return [r.path for r in fake.requests if r.path != "/oauth/token"]


async def test_one_token_is_fetched_and_reused(fake: FakeCommerce, http: httpx.AsyncClient) -> None:
    client = make_client(http)
    fake.add_cart("c1", [TIE])

    await client.active_cart("c1")
    await client.orders("c1")
    await client.order("missing")

    assert token_calls(fake) == 1
    assert api_calls(fake) == [
        f"/{PROJECT}/carts/customer-id=c1",
        f"/{PROJECT}/orders",
        f"/{PROJECT}/orders/missing",
    ]


async def test_expired_token_is_refreshed_once_and_the_call_retried(
    fake: FakeCommerce, http: httpx.AsyncClient
) -> None:
    client = make_client(http)
    fake.add_cart("c1", [TIE])
    await client.active_cart("c1")
    fake.expire_tokens()
    fake.reset_requests()

    cart = await client.active_cart("c1")

    assert cart is not None
    assert cart.total == Money.of("65.00", "CAD")
    assert [(r.method, r.path) for r in fake.requests] == [
        ("GET", f"/{PROJECT}/carts/customer-id=c1"),
        ("POST", "/oauth/token"),
        ("GET", f"/{PROJECT}/carts/customer-id=c1"),
    ]


async def test_concurrent_callers_share_one_token_fetch(
    fake: FakeCommerce, http: httpx.AsyncClient
) -> None:
    client = make_client(http)
    for n in range(10):
        fake.add_cart(f"c{n}", [TIE])

    carts = await asyncio.gather(*(client.active_cart(f"c{n}") for n in range(10)))

    assert [cart.customer_id if cart else None for cart in carts] == [f"c{n}" for n in range(10)]
    assert token_calls(fake) == 1
    assert len(api_calls(fake)) == 10


async def test_concurrent_401s_share_one_refresh(
    fake: FakeCommerce, http: httpx.AsyncClient
) -> None:
    client = make_client(http)
    for n in range(10):
        fake.add_cart(f"c{n}", [TIE])
    await client.active_cart("c0")
    fake.expire_tokens()
    fake.reset_requests()
    fake.latency = 0.01  # all ten calls are in flight with the old token when it is refused

    # Ten different reads (identical ones would share one call: single-flight).
    carts = await asyncio.gather(*(client.active_cart(f"c{n}") for n in range(10)))

    assert [cart.customer_id if cart else None for cart in carts] == [f"c{n}" for n in range(10)]
    assert token_calls(fake) == 1
    assert len(api_calls(fake)) == 20  # each call: one 401, then one retry


async def test_token_is_refreshed_early_before_it_expires(
    fake: FakeCommerce, http: httpx.AsyncClient
) -> None:
    now = [0.0]
    fake.token_lifetime = 1000  # refreshed when less than 100 s (10%) remain
    client = make_client(http, clock=lambda: now[0])

    await client.order("x")
    now[0] = 899.0
    await client.order("x")
    assert token_calls(fake) == 1
    now[0] = 901.0
    await client.order("x")
    assert token_calls(fake) == 2


async def test_wrong_credentials_are_an_unavailable_commerce(
    fake: FakeCommerce, http: httpx.AsyncClient
) -> None:
    client = make_client(http, client_secret="wrong")

    with pytest.raises(UpstreamUnavailable) as info:
        await client.active_cart("c1")

    assert info.value.upstream == "commerce"
    assert api_calls(fake) == []


async def test_active_cart_is_parsed_exactly(fake: FakeCommerce, http: httpx.AsyncClient) -> None:
    client = make_client(http)
    fake.add_cart("c1", [TIE], last_modified_at=when(1))
    seeded = fake.add_cart("c1", [SHIRT, TIE], last_modified_at=when(2))
    fake.add_cart("c1", [SHIRT], state="Ordered", last_modified_at=when(3))

    cart = await client.active_cart("c1")

    assert cart is not None
    assert cart.id == seeded["id"]
    assert cart.customer_id == "c1"
    assert cart.state == "Active"
    assert cart.last_modified_at == when(2)
    assert cart.total == Money(Decimal("244.00"), "CAD")
    assert cart.lines == (
        CartLine(
            sku="SH-001",
            name="Oxford shirt",
            quantity=2,
            unit_price=Money(Decimal("89.50"), "CAD"),
            total=Money(Decimal("179.00"), "CAD"),
            image_url="https://images.test/sh-001.jpg",
        ),
        CartLine(
            sku="TI-002",
            name="Silk tie",
            quantity=1,
            unit_price=Money(Decimal("65.00"), "CAD"),
            total=Money(Decimal("65.00"), "CAD"),
            image_url=None,
        ),
    )


async def test_no_active_cart_is_none(fake: FakeCommerce, http: httpx.AsyncClient) -> None:
    client = make_client(http)
    fake.add_cart("c1", [TIE], state="Ordered")

    assert await client.active_cart("c1") is None
    assert await client.active_cart("nobody") is None


async def test_active_carts_of_three_customers_in_one_request(
    fake: FakeCommerce, http: httpx.AsyncClient
) -> None:
    client = make_client(http)
    fake.add_cart("alice", [TIE], last_modified_at=when(1))
    newest = fake.add_cart("alice", [SHIRT], last_modified_at=when(4))
    fake.add_cart("bob", [SHIRT, TIE], last_modified_at=when(2))
    fake.add_cart("carol", [SHIRT], state="Merged", last_modified_at=when(3))
    fake.add_cart("dave", [TIE], last_modified_at=when(3))
    await client.order("warm-up")  # fetch the token first
    fake.reset_requests()

    carts = await client.active_carts(["alice", "bob", "carol", "alice"])

    assert {key: cart.total if cart else None for key, cart in carts.items()} == {
        "alice": Money(Decimal("179.00"), "CAD"),
        "bob": Money(Decimal("244.00"), "CAD"),
        "carol": None,
    }
    alice = carts["alice"]
    assert alice is not None
    assert alice.id == newest["id"]
    assert len(fake.requests) == 1
    request = fake.requests[0]
    assert request.path == f"/{PROJECT}/carts"
    assert request.params == {
        "where": 'customerId in ("alice", "bob", "carol") and cartState="Active"',
        "sort": "lastModifiedAt desc",
        "limit": "500",
    }


async def test_active_carts_escape_quotes_and_backslashes(
    fake: FakeCommerce, http: httpx.AsyncClient
) -> None:
    client = make_client(http)
    odd = 'o"brien\\x'
    fake.add_cart(odd, [TIE])
    fake.add_cart("o", [SHIRT])

    carts = await client.active_carts([odd, "brien"])
    single = await client.active_cart(odd)

    cart = carts[odd]
    assert cart is not None
    assert cart.total == Money(Decimal("65.00"), "CAD")
    assert carts["brien"] is None
    assert single is not None
    assert single.id == cart.id


async def test_active_carts_of_nobody_makes_no_call(
    fake: FakeCommerce, http: httpx.AsyncClient
) -> None:
    client = make_client(http)

    assert await client.active_carts([]) == {}
    assert fake.requests == []


async def test_zero_and_three_fraction_digit_currencies_are_exact(
    fake: FakeCommerce, http: httpx.AsyncClient
) -> None:
    client = make_client(http)
    fake.add_cart("tokyo", [FakeLine("WA-1", "Watch", 2, "12000")], "JPY")
    fake.add_order("manama", "1.500", "BHD", created_at=when(1))

    cart = await client.active_cart("tokyo")
    page = await client.orders("manama")

    assert cart is not None
    assert cart.total == Money(Decimal("24000"), "JPY")
    assert cart.total.formatted_amount() == "24000"
    assert cart.lines[0].unit_price == Money(Decimal("12000"), "JPY")
    assert fake.carts[0]["totalPrice"] == {
        "type": "centPrecision",
        "currencyCode": "JPY",
        "centAmount": 24000,
        "fractionDigits": 0,
    }
    assert page.orders[0].total == Money(Decimal("1.500"), "BHD")
    assert page.orders[0].total.formatted_amount() == "1.500"
    assert fake.orders[0]["totalPrice"]["centAmount"] == 1500


async def test_orders_newest_first_with_paging(fake: FakeCommerce, http: httpx.AsyncClient) -> None:
    client = make_client(http)
    first = fake.add_order("c1", "100.00", created_at=when(1), order_number="A-1", email="c@x.test")
    fake.add_order("c1", "250.00", created_at=when(3), order_number="A-3")
    fake.add_order("c1", "75.25", created_at=when(2), order_number="A-2")
    fake.add_order("c2", "999.00", created_at=when(5))

    page = await client.orders("c1", limit=2)
    rest = await client.orders("c1", limit=2, offset=2)

    assert [(o.order_number, o.total.formatted_amount()) for o in page.orders] == [
        ("A-3", "250.00"),
        ("A-2", "75.25"),
    ]
    assert (page.total, page.offset) == (3, 0)
    assert rest == OrderPage(
        orders=(
            Order(
                id=first["id"],
                customer_id="c1",
                total=Money(Decimal("100.00"), "CAD"),
                created_at=when(1),
                state="Confirmed",
                order_number="A-1",
                customer_email="c@x.test",
                payment_state="Paid",
            ),
        ),
        total=3,
        offset=2,
    )


async def test_order_by_id_and_number_or_none(fake: FakeCommerce, http: httpx.AsyncClient) -> None:
    client = make_client(http)
    seeded = fake.add_order(None, "42.00", created_at=when(1), order_number="POS-7", state="Open")

    order = await client.order(seeded["id"])

    assert order is not None
    assert (order.id, order.customer_id, order.state) == (seeded["id"], None, "Open")
    assert order.total == Money(Decimal("42.00"), "CAD")
    assert await client.order_by_number("POS-7") == order
    assert await client.order("3c1e0b2a-0000-4000-8000-000000000000") is None
    assert await client.order_by_number("POS-8") is None


async def test_orders_created_since_oldest_first(
    fake: FakeCommerce, http: httpx.AsyncClient
) -> None:
    client = make_client(http)
    fake.add_order("c1", "10.00", created_at=when(1))
    fake.add_order("c2", "30.00", created_at=when(3))
    fake.add_order("c3", "20.00", created_at=when(2))
    fake.add_order("c4", "40.00", created_at=when(4))

    page = await client.orders_created_since(when(2), limit=2)
    rest = await client.orders_created_since(when(2), limit=2, offset=2)

    assert [(o.customer_id, o.total.formatted_amount()) for o in page.orders] == [
        ("c3", "20.00"),
        ("c2", "30.00"),
    ]
    assert [o.customer_id for o in rest.orders] == ["c4"]
    assert (page.total, rest.offset) == (3, 2)
    assert fake.requests[-1].params["where"] == 'createdAt >= "2025-03-02T12:00:00.000Z"'


# --- the fake's own contract --------------------------------------------------------------
async def test_fake_refuses_bad_tokens_limits_and_credentials(
    fake: FakeCommerce, http: httpx.AsyncClient
) -> None:
    api = f"http://commerce.test/ct-api/{PROJECT}/orders"
    no_token = await http.get(api)
    assert no_token.status_code == 401
    assert no_token.json() == {
        "statusCode": 401,
        "message": "invalid_token",
        "errors": [{"code": "invalid_token", "message": "invalid_token"}],
        "error": "invalid_token",
    }

    refused = await http.post(
        "http://auth.test/oauth/token?grant_type=client_credentials", auth=("patron-demo", "no")
    )
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"

    granted = await http.post(
        "http://auth.test/oauth/token?grant_type=client_credentials",
        auth=("patron-demo", "patron-demo-secret"),
    )
    body = granted.json()
    assert (body["expires_in"], body["token_type"]) == (172800, "Bearer")
    bearer = {"Authorization": f"Bearer {body['access_token']}"}

    too_many = await http.get(api, params={"limit": "501"}, headers=bearer)
    assert too_many.status_code == 400
    assert too_many.json()["errors"][0]["code"] == "InvalidInput"
    bad_where = await http.get(api, params={"where": "customerId ~ 1"}, headers=bearer)
    assert bad_where.status_code == 400
    empty = await http.get(api, headers=bearer)
    assert empty.json() == {"limit": 20, "offset": 0, "count": 0, "total": 0, "results": []}
    missing = await http.get(f"{api}/nope", headers=bearer)
    assert missing.status_code == 404
    assert missing.json()["errors"][0]["code"] == "ResourceNotFound"


# --- parsing --------------------------------------------------------------------------------
def test_parse_money_reads_its_own_fraction_digits() -> None:
    assert parse_money(
        {"type": "centPrecision", "currencyCode": "EUR", "centAmount": 5600, "fractionDigits": 2}
    ) == Money(Decimal("56.00"), "EUR")
    assert parse_money(
        {
            "type": "highPrecision",
            "currencyCode": "EUR",
            "centAmount": 1235,
            "preciseAmount": 1234500,
            "fractionDigits": 5,
        }
    ) == Money(Decimal("12.34"), "EUR")  # 12.345 rounded half-even to the euro's 2 digits


def test_parse_cart_prefers_configured_locales_and_tolerates_absent_fields() -> None:
    eur = {"type": "centPrecision", "currencyCode": "EUR", "centAmount": 1000, "fractionDigits": 2}
    line = {
        "name": {"de": "Krawatte", "en": "Tie", "en-GB": "Neck tie"},
        "variant": {},
        "quantity": 1,
        "price": {"value": eur},
        "totalPrice": eur,
    }
    raw = {"id": "k1", "lineItems": [line], "totalPrice": eur, "cartState": "Active"}

    assert parse_cart(raw).lines[0].name == "Neck tie"
    assert parse_cart(raw, ("fr", "de")).lines[0].name == "Krawatte"
    assert parse_cart(raw, ("fr",)).lines[0].name == "Krawatte"  # else the first value
    cart = parse_cart(raw)
    assert (cart.customer_id, cart.last_modified_at, cart.lines[0].sku) == ("", None, "")


def test_parse_order_refuses_a_malformed_order() -> None:
    with pytest.raises(MalformedCommerceData):
        parse_order({"id": "o1", "orderState": "Open", "createdAt": "2025-03-01T00:00:00Z"})
    with pytest.raises(MalformedCommerceData):
        parse_order([])


# --- failure modes, with respx ----------------------------------------------------------------
API = "https://api.europe-west1.gcp.commercetools.com"
AUTH = "https://auth.europe-west1.gcp.commercetools.com"
CART_URL = f"{API}/{PROJECT}/carts/customer-id=c1"
TOKEN = {"access_token": "t-1", "expires_in": 172800, "scope": "x", "token_type": "Bearer"}
EUR_56 = {"type": "centPrecision", "currencyCode": "EUR", "centAmount": 5600, "fractionDigits": 2}
CART = {
    "type": "Cart",
    "id": "8d4c6a6e-5b0a-4a5b-9b8e-1f2d3c4b5a69",
    "version": 3,
    "customerId": "c1",
    "cartState": "Active",
    "lineItems": [
        {
            "id": "b1",
            "productId": "p1",
            "name": {"en": "Cufflinks"},
            "variant": {"id": 1, "sku": "CF-9", "images": [{"url": "https://cdn.test/cf.jpg"}]},
            "quantity": 1,
            "price": {"id": "pr1", "value": EUR_56},
            "totalPrice": EUR_56,
        }
    ],
    "totalPrice": EUR_56,
    "createdAt": "2025-03-01T09:00:00.000Z",
    "lastModifiedAt": "2025-03-01T10:15:30.123Z",
}
NOT_FOUND = {
    "statusCode": 404,
    "message": "The Resource with ID 'customer-id=c1' was not found.",
    "errors": [{"code": "ResourceNotFound", "message": "not found"}],
}


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mock:
        mock.post(f"{AUTH}/oauth/token").respond(200, json=TOKEN)
        yield mock


@pytest.fixture
async def real_http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def real_client(
    http: httpx.AsyncClient, policy: UpstreamPolicy, scope: str | None = None
) -> CommercetoolsClient:
    return CommercetoolsClient(
        Upstream("commerce", API, http, policy),
        Upstream("commerce-auth", AUTH, http, policy),
        project_key=PROJECT,
        client_id="id",
        client_secret="secret",
        scope=scope,
    )


RETRY_TWICE = UpstreamPolicy(retries=2, backoff_base=0)


async def test_respx_cart_is_read_with_a_bearer_token(
    router: respx.MockRouter, real_http: httpx.AsyncClient
) -> None:
    route = router.get(CART_URL).respond(200, json=CART)

    cart = await real_client(real_http, RETRY_TWICE).active_cart("c1")

    assert cart is not None
    assert cart.total == Money(Decimal("56.00"), "EUR")
    assert cart.lines[0].image_url == "https://cdn.test/cf.jpg"
    assert cart.last_modified_at == datetime(2025, 3, 1, 10, 15, 30, 123000, tzinfo=UTC)
    assert route.calls.last.request.headers["authorization"] == "Bearer t-1"


async def test_token_request_sends_basic_auth_grant_and_scope(
    router: respx.MockRouter, real_http: httpx.AsyncClient
) -> None:
    router.get(CART_URL).respond(404, json=NOT_FOUND)

    await real_client(real_http, RETRY_TWICE, scope=f"view_orders:{PROJECT}").active_cart("c1")

    sent = router.routes[0].calls.last.request
    assert sent.content == f"grant_type=client_credentials&scope=view_orders%3A{PROJECT}".encode()
    assert sent.headers["authorization"] == "Basic " + base64.b64encode(b"id:secret").decode()


async def test_timeouts_become_upstream_timeout_after_the_retries(
    router: respx.MockRouter, real_http: httpx.AsyncClient
) -> None:
    route = router.get(CART_URL).mock(side_effect=httpx.ReadTimeout("slow"))

    with pytest.raises(UpstreamTimeout) as info:
        await real_client(real_http, RETRY_TWICE).active_cart("c1")

    assert info.value.upstream == "commerce"
    assert route.call_count == 3


async def test_429_with_retry_after_then_200_succeeds(
    router: respx.MockRouter, real_http: httpx.AsyncClient
) -> None:
    route = router.get(CART_URL).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "0"}, json={"statusCode": 429}),
            httpx.Response(200, json=CART),
        ]
    )

    cart = await real_client(real_http, RETRY_TWICE).active_cart("c1")

    assert cart is not None
    assert cart.id == CART["id"]
    assert route.call_count == 2


async def test_503_three_times_is_unavailable(
    router: respx.MockRouter, real_http: httpx.AsyncClient
) -> None:
    route = router.get(CART_URL).respond(503, json={"statusCode": 503, "message": "OverCapacity"})

    with pytest.raises(UpstreamUnavailable) as info:
        await real_client(real_http, RETRY_TWICE).active_cart("c1")

    assert info.value.message == "HTTP 503"
    assert route.call_count == 3


async def test_500_then_200_succeeds(
    router: respx.MockRouter, real_http: httpx.AsyncClient
) -> None:
    route = router.get(CART_URL).mock(
        side_effect=[httpx.Response(500, json={"statusCode": 500}), httpx.Response(200, json=CART)]
    )

    cart = await real_client(real_http, RETRY_TWICE).active_cart("c1")

    assert cart is not None
    assert cart.total == Money(Decimal("56.00"), "EUR")
    assert route.call_count == 2


@pytest.mark.parametrize(
    "reply",
    [
        httpx.Response(200, content=b"<html>maintenance</html>"),
        httpx.Response(200, json={"id": "k1", "cartState": "Active"}),
        httpx.Response(200, json={**CART, "totalPrice": {"currencyCode": "EUR"}}),
    ],
)
async def test_malformed_reply_is_unavailable(
    router: respx.MockRouter, real_http: httpx.AsyncClient, reply: httpx.Response
) -> None:
    router.get(CART_URL).mock(return_value=reply)

    with pytest.raises(UpstreamUnavailable) as info:
        await real_client(real_http, RETRY_TWICE).active_cart("c1")

    assert info.value.upstream == "commerce"


async def test_resource_not_found_cart_is_none(
    router: respx.MockRouter, real_http: httpx.AsyncClient
) -> None:
    route = router.get(CART_URL).respond(404, json=NOT_FOUND)

    assert await real_client(real_http, RETRY_TWICE).active_cart("c1") is None
    assert route.call_count == 1


async def test_unexpected_status_is_unavailable(
    router: respx.MockRouter, real_http: httpx.AsyncClient
) -> None:
    router.get(f"{API}/{PROJECT}/orders").respond(400, json={"statusCode": 400})

    with pytest.raises(UpstreamUnavailable) as info:
        await real_client(real_http, RETRY_TWICE).orders("c1")

    assert info.value.message == "unexpected HTTP 400"


async def test_circuit_opens_after_consecutive_failures(
    router: respx.MockRouter, real_http: httpx.AsyncClient
) -> None:
    route = router.get(CART_URL).respond(503)
    client = real_client(real_http, UpstreamPolicy(retries=0, breaker_failures=3))

    for _ in range(3):
        with pytest.raises(UpstreamUnavailable, match="HTTP 503"):
            await client.active_cart("c1")
    with pytest.raises(UpstreamUnavailable) as info:
        await client.active_cart("c1")

    assert info.value.message == "circuit open"
    assert route.call_count == 3


async def test_auth_401_is_unavailable_commerce(real_http: httpx.AsyncClient) -> None:
    with respx.mock(assert_all_called=False) as mock:
        mock.post(f"{AUTH}/oauth/token").respond(401, json={"error": "invalid_client"})
        api = mock.get(CART_URL).respond(200, json=CART)

        with pytest.raises(UpstreamUnavailable) as info:
            await real_client(real_http, RETRY_TWICE).active_cart("c1")

    assert info.value.upstream == "commerce"
    assert api.call_count == 0


async def test_auth_timeout_is_reported_as_commerce(real_http: httpx.AsyncClient) -> None:
    with respx.mock(assert_all_called=False) as mock:
        token = mock.post(f"{AUTH}/oauth/token").mock(side_effect=httpx.ConnectTimeout("down"))

        with pytest.raises(UpstreamTimeout) as info:
            await real_client(real_http, RETRY_TWICE).active_cart("c1")

    assert info.value.upstream == "commerce"
    assert token.call_count == 3


async def test_api_401_twice_refreshes_only_once(
    router: respx.MockRouter, real_http: httpx.AsyncClient
) -> None:
    route = router.get(CART_URL).respond(401, json={"statusCode": 401, "error": "invalid_token"})

    with pytest.raises(UpstreamUnavailable, match="fresh access token"):
        await real_client(real_http, RETRY_TWICE).active_cart("c1")

    assert route.call_count == 2
    assert router.routes[0].call_count == 2
