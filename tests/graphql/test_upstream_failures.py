"""A failing upstream costs only its own fields: the rest of the member view comes back,
with an error naming the upstream (`extensions.upstream`) and saying how it failed
(`UPSTREAM_UNAVAILABLE`, `UPSTREAM_TIMEOUT` or `UPSTREAM_RATE_LIMITED`), within the request
deadline.

The fakes are reached through `FaultyTransport`, which serves them in process like the
shared harness does, but can make one upstream answer 503 or 429, refuse connections, reply
with a body that is not JSON, or (through the fake's own `latency`) answer too late. It
enforces the read timeout of each request as a network transport does, which
`httpx.ASGITransport` does not.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.commerce.fake import FakeLine
from gateway.app import create_app
from gateway.demo import FAKE_PREFIXES, IN_PROCESS_BASE, Fakes
from gateway.settings import CmsUpstreamSettings, Settings, UpstreamsSettings
from tests.conftest import Clock, Harness, SqlCounter, assert_ledger_balances, token
from tests.graphql.conftest import enroll, purchase

# Which upstream a path of the in-process fakes belongs to.
UPSTREAM_OF_PREFIX = {
    FAKE_PREFIXES["commerce_auth"]: "commerce",
    FAKE_PREFIXES["commerce_api"]: "commerce",
    FAKE_PREFIXES["cms"]: "cms",
    FAKE_PREFIXES["cdp_profiles"]: "cdp",
    FAKE_PREFIXES["cdp_api"]: "cdp",
}


class Fault(enum.Enum):
    DOWN = "down"  # 503 Service Unavailable
    REFUSED = "refused"  # the connection is refused
    MALFORMED = "malformed"  # 200 with a body that is not JSON
    RATE_LIMITED = "rate_limited"  # 429 asking for two minutes, beyond any Retry-After cap


class FaultyTransport(httpx.AsyncBaseTransport):
    """The fakes in process, with faults injected per upstream."""

    def __init__(self, fakes: Fakes) -> None:
        self.inner = httpx.ASGITransport(app=fakes.app())
        self.faults: dict[str, Fault] = {}
        self.refused: list[str] = []  # "upstream METHOD path" of each request a fault answered

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        upstream = upstream_of(request.url.path)
        fault = self.faults.get(upstream)
        if fault is not None:
            self.refused.append(f"{upstream} {request.method} {request.url.path}")
        if fault is Fault.DOWN:
            return httpx.Response(503, json={"message": "Service Unavailable"}, request=request)
        if fault is Fault.RATE_LIMITED:
            return httpx.Response(
                429,
                headers={"Retry-After": "120"},
                json={"error": {"code": "rate_limit_error", "message": "Too Many Requests"}},
                request=request,
            )
        if fault is Fault.REFUSED:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        if fault is Fault.MALFORMED:
            return httpx.Response(
                200,
                content=b"<html><body>Bad gateway</body></html>",
                headers={"content-type": "application/json"},
                request=request,
            )
        timeout = request.extensions.get("timeout", {}).get("read")
        try:
            return await asyncio.wait_for(self.inner.handle_async_request(request), timeout)
        except TimeoutError:
            raise httpx.ReadTimeout("timed out", request=request) from None


def upstream_of(path: str) -> str:
    for prefix, name in UPSTREAM_OF_PREFIX.items():
        if path == prefix or path.startswith(prefix + "/"):
            return name
    raise AssertionError(f"no fake upstream serves {path}")


@dataclass
class FaultyHarness(Harness):
    transport: FaultyTransport

    def fail(self, upstream: str, fault: Fault = Fault.DOWN) -> None:
        self.transport.faults[upstream] = fault


async def _faulty_harness(
    settings: Settings, fakes: Fakes, clock: Clock, **overrides: Any
) -> AsyncIterator[FaultyHarness]:
    transport = FaultyTransport(fakes)
    http = httpx.AsyncClient(mounts={IN_PROCESS_BASE: transport})
    app = create_app(settings.model_copy(update=overrides), http=http, clock=clock)
    counter = SqlCounter()
    async with app.router.lifespan_context(app):
        engine: AsyncEngine = app.state.gateway.engine

        def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            counter.statements.append(statement)

        event.listen(engine.sync_engine, "before_cursor_execute", count)
        asgi = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=asgi, base_url="http://patron.test") as client:
            yield FaultyHarness(app, client, fakes, clock, counter, transport)
        await assert_ledger_balances(engine)
    await http.aclose()


@pytest.fixture
async def faulty(settings: Settings, fakes: Fakes, clock: Clock) -> AsyncIterator[FaultyHarness]:
    """The gateway with the default upstream policy (retries included)."""
    async for h in _faulty_harness(settings, fakes, clock):
        yield h


@pytest.fixture
async def impatient(settings: Settings, fakes: Fakes, clock: Clock) -> AsyncIterator[FaultyHarness]:
    """The gateway waiting 0.2 s for an upstream's reply, without retries (the CMS has
    timeouts of its own by default, so they are set too)."""
    async for h in _faulty_harness(
        settings,
        fakes,
        clock,
        upstream_read_timeout=0.2,
        upstream_retries=0,
        upstreams=UpstreamsSettings(cms=CmsUpstreamSettings(read_timeout=0.2)),
    ):
        yield h


MEMBER_VIEW = """
{
  me {
    externalIds { commerceCustomerId }
    profile { userId firstName }
    points { available pending lifetimeEarned }
    tier { current { key name content { deliveryKey fields } } qualifyingSpend { amount } }
    cart { total { amount currencyCode } pointsPreview }
    orders(first: 5) { orderNumber total { amount currencyCode } }
  }
}
"""

PROFILE: dict[str, Any] = {"userId": "cust-1", "firstName": "Ava"}
POINTS: dict[str, Any] = {"available": 0, "pending": 1200, "lifetimeEarned": 1200}
TIER: dict[str, Any] = {
    "current": {
        "key": "member",
        "name": "Member",
        "content": {"deliveryKey": "tiers/member", "fields": {"headline": "Welcome"}},
    },
    "qualifyingSpend": {"amount": "1200.00"},
}
TIER_WITHOUT_CONTENT: dict[str, Any] = {**TIER, "current": {**TIER["current"], "content": None}}
CART: dict[str, Any] = {"total": {"amount": "330.00", "currencyCode": "CAD"}, "pointsPreview": 330}
ORDERS: list[dict[str, Any]] = [
    {"orderNumber": "HR-1", "total": {"amount": "120.00", "currencyCode": "CAD"}}
]


async def seed(h: Harness) -> str:
    """A member with a profile, a cart, an order, tier content and 1200 pending points."""
    h.fakes.cdp.add_profile("cust-1", {"first_name": "Ava"})
    h.fakes.commerce.add_cart("cust-1", [FakeLine("TIE-1", "Silk tie", 2, "165.00")], "CAD")
    h.fakes.commerce.add_order(
        "cust-1", "120.00", "CAD", created_at=h.clock() - timedelta(days=2), order_number="HR-1"
    )
    h.fakes.cms.add_content(
        "tiers/member", "https://schema.example/tier.json", "Member", {"headline": "Welcome"}
    )
    member_id = await enroll(h, "cust-1")
    earned = await purchase(h, member_id, "order-1", "1200.00")
    assert earned["transaction"]["points"] == 1200
    return member_id


def without_messages(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The errors' paths and extensions (messages are for people), in path order."""
    shown = [{"path": e["path"], "extensions": e["extensions"]} for e in errors]
    return sorted(shown, key=lambda e: [str(p) for p in e["path"]])


async def test_everything_up_no_errors(faulty: FaultyHarness) -> None:
    """The baseline the other tests break one upstream of."""
    await seed(faulty)
    body = await faulty.gql(MEMBER_VIEW, token=token("cust-1", "member"))
    assert body == {
        "data": {
            "me": {
                "externalIds": {"commerceCustomerId": "cust-1"},
                "profile": PROFILE,
                "points": POINTS,
                "tier": TIER,
                "cart": CART,
                "orders": ORDERS,
            }
        }
    }
    assert faulty.transport.refused == []


@pytest.mark.parametrize("fault", [Fault.DOWN, Fault.REFUSED, Fault.MALFORMED])
async def test_cdp_down_costs_only_the_profile(faulty: FaultyHarness, fault: Fault) -> None:
    await seed(faulty)
    faulty.fail("cdp", fault)

    body = await faulty.gql(MEMBER_VIEW, token=token("cust-1", "member"))

    assert body["data"] == {
        "me": {
            "externalIds": {"commerceCustomerId": "cust-1"},
            "profile": None,
            "points": POINTS,
            "tier": TIER,
            "cart": CART,
            "orders": ORDERS,
        }
    }
    assert without_messages(body["errors"]) == [
        {"path": ["me", "profile"], "extensions": {"code": "UPSTREAM_UNAVAILABLE", "upstream": "cdp"}}
    ]  # fmt: skip
    assert body["errors"][0]["message"].startswith("cdp is unavailable")
    assert faulty.transport.refused  # the CDP was asked, and failed


async def test_commerce_down_costs_only_cart_and_orders(faulty: FaultyHarness) -> None:
    await seed(faulty)
    faulty.fail("commerce")

    body = await faulty.gql(MEMBER_VIEW, token=token("cust-1", "member"))

    assert body["data"] == {
        "me": {
            "externalIds": {"commerceCustomerId": "cust-1"},
            "profile": PROFILE,
            "points": POINTS,
            "tier": TIER,
            "cart": None,
            "orders": [],
        }
    }
    unavailable = {"code": "UPSTREAM_UNAVAILABLE", "upstream": "commerce"}
    assert without_messages(body["errors"]) == [
        {"path": ["me", "cart"], "extensions": unavailable},
        {"path": ["me", "orders"], "extensions": unavailable},
    ]


async def test_commerce_down_after_a_token_was_issued(faulty: FaultyHarness) -> None:
    """With an access token already cached, the API call itself fails, not the token's."""
    await seed(faulty)
    first = await faulty.gql("{ me { cart { pointsPreview } } }", token=token("cust-1", "member"))
    assert first == {"data": {"me": {"cart": {"pointsPreview": 330}}}}
    faulty.fail("commerce")

    body = await faulty.gql(
        "{ me { points { pending } cart { pointsPreview } orders { orderNumber } } }",
        token=token("cust-1", "member"),
    )

    assert body["data"] == {"me": {"points": {"pending": 1200}, "cart": None, "orders": []}}
    unavailable = {"code": "UPSTREAM_UNAVAILABLE", "upstream": "commerce"}
    assert without_messages(body["errors"]) == [
        {"path": ["me", "cart"], "extensions": unavailable},
        {"path": ["me", "orders"], "extensions": unavailable},
    ]
    assert all("/ct-api/" in r for r in faulty.transport.refused), faulty.transport.refused


async def test_cms_down_costs_only_the_content(faulty: FaultyHarness) -> None:
    await seed(faulty)
    faulty.fail("cms")

    body = await faulty.gql(MEMBER_VIEW, token=token("cust-1", "member"))

    assert body["data"] == {
        "me": {
            "externalIds": {"commerceCustomerId": "cust-1"},
            "profile": PROFILE,
            "points": POINTS,
            "tier": TIER_WITHOUT_CONTENT,
            "cart": CART,
            "orders": ORDERS,
        }
    }
    assert without_messages(body["errors"]) == [
        {
            "path": ["me", "tier", "current", "content"],
            "extensions": {"code": "UPSTREAM_UNAVAILABLE", "upstream": "cms"},
        }
    ]


async def test_all_three_down_the_loyalty_data_still_answers(faulty: FaultyHarness) -> None:
    await seed(faulty)
    for upstream in ("cdp", "commerce", "cms"):
        faulty.fail(upstream)

    body = await faulty.gql(MEMBER_VIEW, token=token("cust-1", "member"))

    assert body["data"] == {
        "me": {
            "externalIds": {"commerceCustomerId": "cust-1"},
            "profile": None,
            "points": POINTS,
            "tier": TIER_WITHOUT_CONTENT,
            "cart": None,
            "orders": [],
        }
    }
    assert without_messages(body["errors"]) == [
        {"path": ["me", "cart"], "extensions": {"code": "UPSTREAM_UNAVAILABLE", "upstream": "commerce"}},
        {"path": ["me", "orders"], "extensions": {"code": "UPSTREAM_UNAVAILABLE", "upstream": "commerce"}},
        {"path": ["me", "profile"], "extensions": {"code": "UPSTREAM_UNAVAILABLE", "upstream": "cdp"}},
        {"path": ["me", "tier", "current", "content"], "extensions": {"code": "UPSTREAM_UNAVAILABLE", "upstream": "cms"}},
    ]  # fmt: skip


async def test_cdp_down_in_a_list_costs_each_profile_only(
    faulty: FaultyHarness, associate_token: str
) -> None:
    h = faulty
    await enroll(h, "cust-a")
    await enroll(h, "cust-b")
    h.fakes.cdp.add_profile("cust-a", {"first_name": "Ava"})
    h.fakes.cdp.add_profile("cust-b", {"first_name": "Ben"})
    h.fail("cdp")

    body = await h.gql(
        "{ members(first: 10) { totalCount edges { node { externalIds { commerceCustomerId } "
        "points { available } profile { firstName } } } } }",
        token=associate_token,
    )

    edges = body["data"]["members"]["edges"]
    assert body["data"]["members"]["totalCount"] == 2
    assert sorted(
        (e["node"]["externalIds"]["commerceCustomerId"], e["node"]["points"]["available"])
        for e in edges
    ) == [("cust-a", 0), ("cust-b", 0)]
    assert [e["node"]["profile"] for e in edges] == [None, None]
    assert without_messages(body["errors"]) == [
        {
            "path": ["members", "edges", i, "node", "profile"],
            "extensions": {"code": "UPSTREAM_UNAVAILABLE", "upstream": "cdp"},
        }
        for i in (0, 1)
    ]


async def test_a_slow_cdp_is_a_timeout(impatient: FaultyHarness) -> None:
    h = impatient
    await seed(h)
    h.fakes.cdp.latency = 2.0  # ten times the read timeout

    loop = asyncio.get_running_loop()
    started = loop.time()
    body = await h.gql(MEMBER_VIEW, token=token("cust-1", "member"))
    elapsed = loop.time() - started

    assert body["data"] == {
        "me": {
            "externalIds": {"commerceCustomerId": "cust-1"},
            "profile": None,
            "points": POINTS,
            "tier": TIER,
            "cart": CART,
            "orders": ORDERS,
        }
    }
    assert without_messages(body["errors"]) == [
        {"path": ["me", "profile"], "extensions": {"code": "UPSTREAM_TIMEOUT", "upstream": "cdp"}}
    ]  # fmt: skip
    assert elapsed < 1.5, f"the gateway waited {elapsed:.2f} s for a 0.2 s read timeout"


async def test_a_slow_commerce_is_a_timeout_on_cart_and_orders(impatient: FaultyHarness) -> None:
    h = impatient
    await seed(h)
    h.fakes.commerce.latency = 2.0

    body = await h.gql(MEMBER_VIEW, token=token("cust-1", "member"))

    assert body["data"] == {
        "me": {
            "externalIds": {"commerceCustomerId": "cust-1"},
            "profile": PROFILE,
            "points": POINTS,
            "tier": TIER,
            "cart": None,
            "orders": [],
        }
    }
    timeout = {"code": "UPSTREAM_TIMEOUT", "upstream": "commerce"}
    assert without_messages(body["errors"]) == [
        {"path": ["me", "cart"], "extensions": timeout},
        {"path": ["me", "orders"], "extensions": timeout},
    ]


async def test_a_slow_cms_is_a_timeout_on_the_content(impatient: FaultyHarness) -> None:
    h = impatient
    await seed(h)
    h.fakes.cms.latency = 2.0

    body = await h.gql(
        "{ me { points { pending } tier { current { key content { deliveryKey } } } } }",
        token=token("cust-1", "member"),
    )

    assert body["data"] == {
        "me": {"points": {"pending": 1200}, "tier": {"current": {"key": "member", "content": None}}}
    }
    assert without_messages(body["errors"]) == [
        {
            "path": ["me", "tier", "current", "content"],
            "extensions": {"code": "UPSTREAM_TIMEOUT", "upstream": "cms"},
        }
    ]


async def test_a_member_view_within_the_deadline_with_a_5_second_cms_and_a_failing_cdp(
    faulty: FaultyHarness,
) -> None:
    """The acceptance test of issue 5, with the shipped settings: the CMS (1 s read timeout,
    2 retries) would take over 3 s to fail; the request deadline (2.5 s) cuts it, and
    everything else in the member view is exact."""
    h = faulty
    await seed(h)
    h.clear_caches()  # cold: no content or profile to serve stale
    h.fakes.cms.latency = 5.0
    h.fail("cdp")
    deadline = h.gateway.settings.request_deadline
    assert deadline == 2.5

    loop = asyncio.get_running_loop()
    started = loop.time()
    body = await h.gql(MEMBER_VIEW, token=token("cust-1", "member"))
    elapsed = loop.time() - started

    assert body["data"] == {
        "me": {
            "externalIds": {"commerceCustomerId": "cust-1"},
            "profile": None,
            "points": POINTS,
            "tier": TIER_WITHOUT_CONTENT,
            "cart": CART,
            "orders": ORDERS,
        }
    }
    assert without_messages(body["errors"]) == [
        {"path": ["me", "profile"], "extensions": {"code": "UPSTREAM_UNAVAILABLE", "upstream": "cdp"}},
        {"path": ["me", "tier", "current", "content"], "extensions": {"code": "UPSTREAM_TIMEOUT", "upstream": "cms"}},
    ]  # fmt: skip
    assert elapsed < deadline + 0.5, f"answered in {elapsed:.2f} s, deadline {deadline} s"


async def test_a_rate_limited_cdp_costs_only_the_profile_at_once(faulty: FaultyHarness) -> None:
    """A 429 asking for longer than `max_retry_after` is not waited for, nor retried."""
    await seed(faulty)
    faulty.fail("cdp", Fault.RATE_LIMITED)

    body = await faulty.gql(MEMBER_VIEW, token=token("cust-1", "member"))

    assert body["data"] == {
        "me": {
            "externalIds": {"commerceCustomerId": "cust-1"},
            "profile": None,
            "points": POINTS,
            "tier": TIER,
            "cart": CART,
            "orders": ORDERS,
        }
    }
    assert without_messages(body["errors"]) == [
        {"path": ["me", "profile"], "extensions": {"code": "UPSTREAM_RATE_LIMITED", "upstream": "cdp"}}
    ]  # fmt: skip
    assert [r.split(" ")[:2] for r in faulty.transport.refused] == [["cdp", "GET"]]


async def test_an_upstream_that_recovers_answers_again(faulty: FaultyHarness) -> None:
    await seed(faulty)
    faulty.fail("cdp")
    down = await faulty.gql("{ me { profile { firstName } } }", token=token("cust-1", "member"))
    assert down["data"] == {"me": {"profile": None}}
    faulty.transport.faults.clear()

    up = await faulty.gql("{ me { profile { firstName } } }", token=token("cust-1", "member"))

    assert up == {"data": {"me": {"profile": {"firstName": "Ava"}}}}


async def test_mutations_do_not_depend_on_upstreams(faulty: FaultyHarness) -> None:
    """Enrolment and purchases touch only the loyalty database: all upstreams down, they
    still work and the points are exact."""
    for upstream in ("cdp", "commerce", "cms"):
        faulty.fail(upstream)
    member_id = await enroll(faulty, "cust-9")
    earned = await purchase(faulty, member_id, "order-9", "250.00")
    assert earned["userErrors"] == []
    assert earned["member"]["points"] == {"available": 0, "pending": 250, "lifetimeEarned": 250}
    assert faulty.transport.refused == []
