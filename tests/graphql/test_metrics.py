"""`/metrics`: exact values after known requests, who may read it, and bounded labels."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.db.store import SqlReader
from gateway.demo import Fakes
from gateway.metrics import Metrics
from gateway.observed_requests import ObservedOutcome, OperationNames, RequestObservation
from gateway.settings import Settings
from gateway.webhooks import sign
from loyalty.errors import StoreUnavailable
from tests.conftest import TEST_WEBHOOK_SECRET, Clock, Harness, token
from tests.graphql.apps import app_client, sqlite_settings
from tests.graphql.conftest import enroll, purchase
from tests.graphql.metrics import nonzero, only, s, samples, scrape
from tests.graphql.test_commerce_webhook import order_at, order_created
from tests.graphql.test_member_view import seed_upstreams
from tests.graphql.test_upstream_failures import (
    MEMBER_VIEW as FAILING_VIEW,
)
from tests.graphql.test_upstream_failures import (
    Fault,
    FaultyHarness,
    _faulty_harness,
)
from tests.graphql.test_upstream_failures import (
    seed as seed_failing,
)

MEMBER_VIEW = """
query MemberView {
  me {
    profile { firstName }
    points { available pending }
    tier { current { name content { fields } } }
    cart { total { amount } }
    orders(first: 5) { orderNumber }
  }
}
"""

REQUESTS = "patron_graphql_requests_total"
DURATIONS = "patron_graphql_request_duration_seconds_count"
UPSTREAM = "patron_upstream_requests_total"
RETRIES = "patron_upstream_retries_total"
CACHE = "patron_cache_lookups_total"
BREAKER = "patron_upstream_breaker_state"
WEBHOOKS = "patron_webhook_deliveries_total"
DB_DOWN = "patron_database_unavailable_total"


async def test_a_member_view_is_counted_exactly(harness: Harness) -> None:
    h = harness
    seed_upstreams(h)
    member_id = await enroll(h, "cust-1", email="Ava@Example.com")
    await purchase(h, member_id, "order-1", "3000.00")
    member = token("cust-1", "member")
    for _ in range(2):  # cold, then warm caches
        body = await h.gql(MEMBER_VIEW, token=member)
        assert "errors" not in body, body

    found = await scrape(h.client)

    assert only(found, "patron_graphql") == {
        s(REQUESTS, operation="anonymous", type="mutation", outcome="ok"): 2,  # enrol, purchase
        s(REQUESTS, operation="MemberView", type="query", outcome="ok"): 2,
        s(DURATIONS, operation="anonymous", type="mutation"): 2,
        s(DURATIONS, operation="MemberView", type="query"): 2,
    }
    assert only(found, "patron_upstream_request") == {
        # The OAuth token, then the cart and the orders; the warm view: the cart only.
        s(UPSTREAM, upstream="commerce", outcome="ok"): 4,
        s(UPSTREAM, upstream="cdp", outcome="ok"): 1,  # the profile, cached after
        s(UPSTREAM, upstream="cms", outcome="ok"): 1,  # the tier's content, cached after
        s("patron_upstream_request_duration_seconds_count", upstream="commerce"): 4,
        s("patron_upstream_request_duration_seconds_count", upstream="cdp"): 1,
        s("patron_upstream_request_duration_seconds_count", upstream="cms"): 1,
    }
    assert only(found, "patron_upstream_retries") == {}
    assert nonzero(only(found, CACHE)) == {
        s(CACHE, cache="cdp", result="miss"): 1,
        s(CACHE, cache="cdp", result="hit"): 1,
        s(CACHE, cache="cms", result="miss"): 1,
        s(CACHE, cache="cms", result="hit"): 1,
        s(CACHE, cache="orders", result="miss"): 1,
        s(CACHE, cache="orders", result="hit"): 1,
    }
    assert only(found, "patron_ledger") == {
        s("patron_ledger_transactions_total", kind="EARN"): 1,
        s("patron_ledger_points_total", kind="EARN"): 3000,
    }
    assert only(found, BREAKER) == {
        s(BREAKER, host=host): 0
        for host in ("commerce", "commerce.auth", "cms", "cdp", "cdp.tracking", "cdp.regulations")
    }
    assert only(found, "patron_webhook") == only(found, "patron_database") == {}


async def test_points_moved_count_each_kind_once_per_commit(harness: Harness) -> None:
    """A gift is two transactions (sent, received); a redemption refused for want of
    points commits nothing and counts nothing; a replayed idempotency key moves nothing."""
    h = harness
    ava = await enroll(h, "cust-1")
    ben = await enroll(h, "cust-2")
    await purchase(h, ava, "order-1", "500.00", channel="WEB")
    await purchase(h, ava, "order-1", "500.00", channel="WEB")  # the same key: a replay
    admin = token("admin-1", "admin")
    award = """mutation($m: ID!, $k: String!) { awardPoints(input: {memberId: $m, points: 300,
      reason: "welcome", idempotencyKey: $k}) { userErrors { code } } }"""
    staff = token("assoc-1", "associate", store="TOR-1")
    body = await h.gql(award, {"m": ava, "k": "award-1"}, staff)
    assert body["data"]["awardPoints"]["userErrors"] == []
    gift = """mutation($from: ID!, $to: ID!, $k: String!) { giftPoints(input: {fromMemberId: $from,
      toMemberId: $to, points: 100, idempotencyKey: $k}) { userErrors { code } } }"""
    body = await h.gql(gift, {"from": ava, "to": ben, "k": "gift-1"}, admin)
    assert body["data"]["giftPoints"]["userErrors"] == []
    redeem = """mutation($m: ID!, $k: String!) { redeemPoints(input: {memberId: $m, points: 5000,
      idempotencyKey: $k}) { userErrors { code } } }"""
    body = await h.gql(redeem, {"m": ben, "k": "redeem-1"}, admin)
    assert body["data"]["redeemPoints"]["userErrors"] == [{"code": "INSUFFICIENT_POINTS"}]

    assert only(await scrape(h.client), "patron_ledger") == {
        s("patron_ledger_transactions_total", kind="EARN"): 1,
        s("patron_ledger_points_total", kind="EARN"): 500,
        s("patron_ledger_transactions_total", kind="AWARD"): 1,
        s("patron_ledger_points_total", kind="AWARD"): 300,
        s("patron_ledger_transactions_total", kind="GIFT_SENT"): 1,
        s("patron_ledger_points_total", kind="GIFT_SENT"): 100,
        s("patron_ledger_transactions_total", kind="GIFT_RECEIVED"): 1,
        s("patron_ledger_points_total", kind="GIFT_RECEIVED"): 100,
    }


async def test_webhook_deliveries_by_endpoint_status_and_outcome(harness: Harness) -> None:
    h = harness
    await enroll(h, "cust-1")
    message = json.dumps(order_created(order_at(h, "cust-1", "330.00"))).encode()

    async def deliver(signature: str) -> int:
        response = await h.client.post(
            "/webhooks/commerce",
            content=message,
            headers={"Content-Type": "application/json", "X-Patron-Signature": signature},
        )
        return response.status_code

    assert await deliver(sign(TEST_WEBHOOK_SECRET, message)) == 200
    assert await deliver(sign(TEST_WEBHOOK_SECRET, message)) == 200  # the relay retried
    assert await deliver(sign("not-the-secret", message)) == 401
    cms = await h.client.post("/webhooks/cms", content=b"{}")  # unsigned
    assert cms.status_code == 401

    found = await scrape(h.client)
    assert only(found, WEBHOOKS) == {
        s(WEBHOOKS, endpoint="commerce", status="200", outcome="recorded"): 1,
        s(WEBHOOKS, endpoint="commerce", status="200", outcome="duplicate"): 1,
        s(WEBHOOKS, endpoint="commerce", status="401", outcome="INVALID_SIGNATURE"): 1,
        s(WEBHOOKS, endpoint="cms", status="401", outcome="INVALID_SIGNATURE"): 1,
    }
    assert only(found, "patron_ledger_points") == {
        s("patron_ledger_points_total", kind="EARN"): 330
    }


async def test_a_lost_database_is_counted_per_request(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness

    async def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise StoreUnavailable()

    monkeypatch.setattr(SqlReader, "members_by_commerce_ids", unavailable)
    monkeypatch.setattr(SqlReader, "member_by_commerce_id", unavailable, raising=False)
    body = await h.gql("query Me { me { id } }", token=token("cust-1", "member"))
    assert body["errors"][0]["extensions"]["code"] == "DATABASE_UNAVAILABLE"

    async def handle(*args: Any) -> Any:
        raise StoreUnavailable()

    monkeypatch.setattr("loyalty.commerce_events.CommerceEvents.handle", handle)
    message = json.dumps(order_created(order_at(h, "cust-1", "330.00"))).encode()
    response = await h.client.post(
        "/webhooks/commerce",
        content=message,
        headers={"X-Patron-Signature": sign(TEST_WEBHOOK_SECRET, message)},
    )
    assert response.status_code == 503

    found = await scrape(h.client)
    assert only(found, DB_DOWN) == {
        s(DB_DOWN, source="graphql"): 1,
        s(DB_DOWN, source="webhook"): 1,
    }
    assert only(found, WEBHOOKS) == {
        s(WEBHOOKS, endpoint="commerce", status="503", outcome="DATABASE_UNAVAILABLE"): 1
    }
    assert found[s(REQUESTS, operation="Me", type="query", outcome="field_errors")] == 1


# --- upstream failures and the breaker ----------------------------------------------------
@pytest.fixture
async def fragile(settings: Settings, fakes: Fakes, clock: Clock) -> AsyncIterator[FaultyHarness]:
    """No retries, and a breaker that opens after two consecutive failures."""
    async for h in _faulty_harness(
        settings, fakes, clock, upstream_retries=0, upstream_breaker_failures=2
    ):
        yield h


async def test_upstream_errors_and_the_breaker_state(fragile: FaultyHarness) -> None:
    h = fragile
    await seed_failing(h)
    member = token("cust-1", "member")
    h.fail("cdp", Fault.DOWN)
    for _ in range(3):  # 503, 503 (the breaker opens), then the open breaker refuses
        body = await h.gql(FAILING_VIEW, token=member)
        assert [e["extensions"]["code"] for e in body["errors"]] == ["UPSTREAM_UNAVAILABLE"]

    found = await scrape(h.client)
    assert {k: v for k, v in only(found, UPSTREAM).items() if ("upstream", "cdp") in k[1]} == {
        s(UPSTREAM, upstream="cdp", outcome="UPSTREAM_UNAVAILABLE"): 3
    }
    assert found[s(BREAKER, host="cdp")] == 2  # open
    assert found[s(BREAKER, host="commerce")] == 0
    assert found[s(REQUESTS, operation="anonymous", type="query", outcome="field_errors")] == 3


async def test_retries_are_counted(faulty_retrying: FaultyHarness) -> None:
    h = faulty_retrying
    await seed_failing(h)
    h.fail("cdp", Fault.DOWN)
    body = await h.gql(FAILING_VIEW, token=token("cust-1", "member"))
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UPSTREAM_UNAVAILABLE"]
    found = await scrape(h.client)
    assert found[s(UPSTREAM, upstream="cdp", outcome="UPSTREAM_UNAVAILABLE")] == 1
    assert found[s(RETRIES, upstream="cdp")] == 2  # three attempts
    assert s(RETRIES, upstream="commerce") not in found


@pytest.fixture
async def faulty_retrying(
    settings: Settings, fakes: Fakes, clock: Clock
) -> AsyncIterator[FaultyHarness]:
    async for h in _faulty_harness(settings, fakes, clock, upstream_backoff_base=0.001):
        yield h


# --- outcomes and operation names ---------------------------------------------------------
@pytest.fixture
async def dev(
    tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(sqlite_settings(tmp_path, sqlite_template, monkeypatch)) as client:
        yield client


async def test_each_outcome_of_a_graphql_request(dev: httpx.AsyncClient) -> None:
    async def post(body: dict[str, Any], **headers: str) -> int:
        response = await dev.post("/graphql", json=body, headers=headers)
        return response.status_code

    assert await post({"query": "query Program { program { name } }"}) == 200
    assert await post({"query": "{ __typename }"}) == 200
    assert await post({"query": 'query Member { member(id: "x") { id } }'}) == 200
    assert await post({"query": "query Typo { progrm { name } }"}) == 200  # validation
    assert await post({"query": "{"}) == 200  # parse
    assert await post({"query": "{ __typename }", "operationName": "Nope"}) == 200
    assert await post({"query": "{ __typename }"}, Authorization="Bearer not-a-token") == 401
    assert (await dev.put("/graphql", json={"query": "{ __typename }"})).status_code == 405
    assert (await dev.get("/graphql?query=mutation%7B__typename%7D",
                          headers={"X-Patron-CSRF": "1"})).status_code == 405  # fmt: skip

    assert only(await scrape(dev), REQUESTS) == {
        s(REQUESTS, operation="Program", type="query", outcome="ok"): 1,
        s(REQUESTS, operation="anonymous", type="query", outcome="ok"): 1,
        s(REQUESTS, operation="Member", type="query", outcome="field_errors"): 1,
        # A name seen only in a request error is not a label of its own.
        s(REQUESTS, operation="other", type="query", outcome="request_error"): 1,
        s(REQUESTS, operation="unknown", type="unknown", outcome="request_error"): 3,
        s(REQUESTS, operation="unknown", type="unknown", outcome="unauthenticated"): 1,
        s(REQUESTS, operation="unknown", type="unknown", outcome="refused"): 1,
    }


def test_operation_names_are_bounded() -> None:
    names = OperationNames(limit=2)

    def label(name: str | None, outcome: ObservedOutcome, kind: str | None = "query") -> str:
        return names.label(RequestObservation(None, name, kind, outcome))

    assert label("A", ObservedOutcome.OK) == "A"
    assert label("B", ObservedOutcome.REQUEST_ERROR) == "other"  # never executed
    assert label("B", ObservedOutcome.FIELD_ERRORS) == "B"
    assert label("C", ObservedOutcome.OK) == "other"  # the limit is reached
    assert label("A", ObservedOutcome.REQUEST_ERROR) == "A"  # known
    assert label(None, ObservedOutcome.OK) == "anonymous"
    assert label("A", ObservedOutcome.REQUEST_ERROR, kind=None) == "unknown"
    assert names.known == {"A", "B"}


# --- who may read /metrics ------------------------------------------------------------------
async def test_metrics_are_open_in_dev_in_the_text_format(dev: httpx.AsyncClient) -> None:
    response = await dev.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "# TYPE patron_graphql_requests_total counter" in response.text


async def test_prod_serves_no_metrics_without_a_token(
    tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = sqlite_settings(
        tmp_path, sqlite_template, monkeypatch, env="prod", card_secret="c" * 32
    )
    async with app_client(settings) as client:
        response = await client.get("/metrics")
    assert response.status_code == 404
    assert "patron_" not in response.text


@pytest.mark.parametrize("env", ["dev", "prod"])
async def test_a_metrics_token_is_required_when_set(
    env: str, tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = sqlite_settings(
        tmp_path, sqlite_template, monkeypatch,
        env=env, card_secret="c" * 32, metrics_token="scrape-secret-1",
    )  # fmt: skip
    async with app_client(settings) as client:
        missing = await client.get("/metrics")
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer scrape-secret-2"})
        basic = await client.get("/metrics", headers={"Authorization": "Basic scrape-secret-1"})
        right = await client.get("/metrics", headers={"Authorization": "Bearer scrape-secret-1"})
    for refused in (missing, wrong, basic):
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == 'Bearer realm="metrics"'
        assert refused.json() == {
            "error": {"code": "UNAUTHENTICATED", "message": "a metrics token is required"}
        }
    assert right.status_code == 200
    assert "patron_graphql_requests_total" in right.text


def test_the_rate_limiter_has_its_counter() -> None:
    """Where the rate limiter (issue 6, item 3) counts its refusals."""
    metrics = Metrics()
    metrics.rate_limit_refused("identity")
    metrics.rate_limit_refused("identity")
    assert only(samples(metrics.exposition().decode()), "patron_rate_limit") == {
        s("patron_rate_limit_refusals_total", limit="identity"): 2
    }
