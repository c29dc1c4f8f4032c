"""Our own parts failing: PostgreSQL or Redis gone while the gateway runs, then back.

Each server is reached through a `TcpProxy` the test cuts (every open connection dropped,
new ones refused) and restores, so the outage is real for the gateway's drivers and pools
while the servers the rest of the suite uses keep running.

- Database down: the loyalty fields fail with `DATABASE_UNAVAILABLE` (no 500, no
  traceback), mutations and webhooks write nothing and say so, `program` still answers,
  `/readyz` is 503; once it is back everything answers again with no restart.
- Redis down: `/readyz` says degraded and the gateway serves without its cache; once it is
  back the cache is used again.

Needs PATRON_TEST_DATABASE_URL (and PATRON_TEST_REDIS_URL for the Redis case).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from adapters.commerce.fake import FakeLine
from gateway.app import create_app
from gateway.demo import Fakes
from gateway.settings import Settings
from gateway.webhooks import sign
from tests.conftest import REDIS_URL, TEST_WEBHOOK_SECRET, Clock, settings_for, token
from tests.graphql.conftest import ENROLL, RECORD
from tests.tcp_proxy import TcpProxy

VIEW = """
{
  me {
    points { available pending }
    tier { current { key } }
    profile { firstName }
    cart { total { amount } }
  }
}
"""


@asynccontextmanager
async def gateway(
    settings: Settings, clock: Clock
) -> AsyncIterator[tuple[httpx.AsyncClient, Fakes]]:
    fakes = Fakes()
    http = fakes.http_client()
    app = create_app(settings, http=http, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client, fakes
    await http.aclose()


def proxied(url: str, proxy: TcpProxy) -> str:
    return make_url(url).set(host=proxy.host, port=proxy.port).render_as_string(False)


async def gql(
    client: httpx.AsyncClient, query: str, bearer: str | None, variables: Any = None
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
async def pg_proxy(postgres_database: str | None) -> AsyncIterator[tuple[TcpProxy, str]]:
    if postgres_database is None:
        pytest.skip("set PATRON_TEST_DATABASE_URL to cut PostgreSQL off (a proxy in front of it)")
    url = make_url(postgres_database)
    proxy = await TcpProxy(url.host or "127.0.0.1", url.port or 5432).start()
    yield proxy, proxied(postgres_database, proxy)
    await proxy.close()


async def test_database_down_fails_loyalty_fields_clearly_then_recovers(
    pg_proxy: tuple[TcpProxy, str], clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy, url = pg_proxy
    settings = settings_for(url, monkeypatch)
    customer = f"outage-{uuid.uuid4().hex[:8]}"
    service, member = token("svc", "service"), token(customer, "member")
    async with gateway(settings, clock) as (c, fakes):
        fakes.cdp.add_profile(customer, {"first_name": "Olive"})
        fakes.commerce.add_cart(customer, [FakeLine("SKU-1", "Scarf", 1, "120.00")])
        enrolled = await gql(c, ENROLL, service, {"input": {"commerceCustomerId": customer}})
        member_id = enrolled["data"]["enrollMember"]["member"]["id"]
        before = await gql(c, VIEW, member)
        assert before == {
            "data": {
                "me": {
                    "points": {"available": 0, "pending": 0},
                    "tier": {"current": {"key": "member"}},
                    "profile": {"firstName": "Olive"},
                    "cart": {"total": {"amount": "120.00"}},
                }
            }
        }

        proxy.cut()
        ready = await c.get("/readyz")
        assert (ready.status_code, ready.json()["status"]) == (503, "unavailable")

        down = await gql(c, VIEW, member)
        assert down["data"] == {"me": None}
        assert [(e["path"], e["extensions"]) for e in down["errors"]] == [
            (["me"], {"code": "DATABASE_UNAVAILABLE"})
        ]
        assert down["errors"][0]["message"] == "the loyalty database is unavailable"

        purchase = {
            "memberId": member_id,
            "orderId": "order-during-outage",
            "total": {"amount": "500.00", "currencyCode": "CAD"},
            "channel": "POS",
            "idempotencyKey": "order-during-outage",
        }
        refused = await gql(c, RECORD, service, {"input": purchase})
        assert refused["data"] is None  # the payload is non-null: the error nulls the root
        assert [e["extensions"]["code"] for e in refused["errors"]] == ["DATABASE_UNAVAILABLE"]

        message = {
            "notificationType": "Message",
            "projectKey": "patron-demo",
            "id": str(uuid.uuid4()),
            "version": 1,
            "sequenceNumber": 1,
            "resource": {"typeId": "order", "id": "order-webhook-outage"},
            "resourceVersion": 1,
            "type": "OrderCreated",
            "order": {
                "id": "order-webhook-outage",
                "version": 1,
                "customerId": customer,
                "lineItems": [],
                "totalPrice": {
                    "type": "centPrecision",
                    "currencyCode": "CAD",
                    "centAmount": 10000,
                    "fractionDigits": 2,
                },
                "orderState": "Open",
                "createdAt": "2026-11-23T12:00:00.000Z",
                "lastModifiedAt": "2026-11-23T12:00:00.000Z",
            },
            "createdAt": "2026-11-23T12:00:00.000Z",
            "lastModifiedAt": "2026-11-23T12:00:00.000Z",
        }
        body = json.dumps(message).encode()
        webhook = await c.post(
            "/webhooks/commerce",
            content=body,
            headers={
                "content-type": "application/json",
                "x-patron-signature": sign(TEST_WEBHOOK_SECRET, body),
            },
        )
        assert (webhook.status_code, webhook.json()["error"]["code"]) == (
            503,
            "DATABASE_UNAVAILABLE",
        )
        assert webhook.headers["retry-after"] == "30"

        public = await gql(c, "{ program { key currencyCode } }", None)
        assert public == {"data": {"program": {"key": "club-harry", "currencyCode": "CAD"}}}

        proxy.restore()
        ready = await c.get("/readyz")
        assert (ready.status_code, ready.json()["status"]) == (200, "ready")
        # Nothing of the outage was half-written: the purchase and the webhook earned nothing.
        assert await gql(c, VIEW, member) == before
        # And the same purchase goes through now, once.
        recorded = await gql(c, RECORD, service, {"input": purchase})
        assert recorded["data"]["recordPurchase"]["userErrors"] == []
        after = await gql(c, VIEW, member)
        assert after["data"]["me"]["points"] == {"available": 0, "pending": 500}


@pytest.fixture
async def redis_proxy() -> AsyncIterator[tuple[TcpProxy, str]]:
    if not REDIS_URL:
        pytest.skip("set PATRON_TEST_REDIS_URL to cut Redis off (a proxy in front of it)")
    url = make_url(REDIS_URL)
    proxy = await TcpProxy(url.host or "127.0.0.1", url.port or 6379).start()
    yield proxy, proxied(REDIS_URL, proxy)
    await proxy.close()


async def test_redis_down_serves_without_the_cache_then_uses_it_again(
    redis_proxy: tuple[TcpProxy, str], settings: Settings, clock: Clock
) -> None:
    # On each database the suite runs: the cache is the point here, not the store.
    proxy, url = redis_proxy
    customer = f"outage-{uuid.uuid4().hex[:8]}"
    member = token(customer, "member")
    view = "{ me { profile { firstName } points { available } } }"
    expected = {"data": {"me": {"profile": {"firstName": "Rae"}, "points": {"available": 0}}}}
    async with gateway(settings.model_copy(update={"redis_url": url}), clock) as (c, fakes):
        fakes.cdp.add_profile(customer, {"first_name": "Rae"})
        await gql(c, ENROLL, token("svc", "service"), {"input": {"commerceCustomerId": customer}})

        async def cdp_calls_of_a_view() -> int:
            fakes.reset_requests()
            assert await gql(c, view, member) == expected
            return len(fakes.cdp.requests)

        assert [await cdp_calls_of_a_view() for _ in range(2)] == [1, 0]  # cached in Redis

        proxy.cut()
        ready = await c.get("/readyz")
        assert (ready.status_code, ready.json()["status"]) == (200, "degraded")
        # No cache: each view asks the CDP, and answers.
        assert [await cdp_calls_of_a_view() for _ in range(2)] == [1, 1]

        proxy.restore()
        ready = await c.get("/readyz")
        assert (ready.status_code, ready.json()["status"]) == (200, "ready")
        assert [await cdp_calls_of_a_view() for _ in range(2)] == [0, 0]


async def test_a_redis_that_hangs_costs_its_timeout_not_the_request(
    redis_proxy: tuple[TcpProxy, str], settings: Settings, clock: Clock
) -> None:
    """A Redis that accepts but never answers: each cache command gives up after
    `PATRON_REDIS_TIMEOUT` and counts as a miss, so views still answer (from the CDP)."""
    proxy, url = redis_proxy
    customer = f"outage-{uuid.uuid4().hex[:8]}"
    member = token(customer, "member")
    view = "{ me { profile { firstName } } }"
    configured = settings.model_copy(update={"redis_url": url, "redis_timeout": 0.2})
    async with gateway(configured, clock) as (c, fakes):
        fakes.cdp.add_profile(customer, {"first_name": "Hal"})
        await gql(c, ENROLL, token("svc", "service"), {"input": {"commerceCustomerId": customer}})
        assert await gql(c, view, member) == {"data": {"me": {"profile": {"firstName": "Hal"}}}}

        proxy.hang()
        fakes.reset_requests()
        async with asyncio.timeout(10):  # without the timeout, this would wait forever
            answer = await gql(c, view, member)
            ready = await c.get("/readyz")
        assert answer == {"data": {"me": {"profile": {"firstName": "Hal"}}}}
        assert len(fakes.cdp.requests) == 1  # the cache read timed out: a miss
        assert (ready.status_code, ready.json()["status"]) == (200, "degraded")
