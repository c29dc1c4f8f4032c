"""The per-identity rate limit on /graphql: 429 with Retry-After and RATE_LIMITED once a
caller's quota is spent, per class (anonymous by address, members, staff and services by
`sub`), refused tokens counted against their address, the address from the proxies uvicorn
trusts, shared by two replicas through Redis (and not without it), and requests let through
when Redis fails. The clock is moved by hand."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from adapters.rate_limit.redis import RedisRateLimiter
from gateway.demo import Fakes
from gateway.rate_limit import RateClass, RateLimitPolicy, rate_class
from gateway.settings import Settings
from loyalty.access import Role, Viewer
from tests.conftest import REDIS_URL, Clock, Harness, running, token

PROGRAM = "{ program { key } }"
ANSWER = {"data": {"program": {"key": "club-harry"}}}
QUOTAS = {
    "rate_limit_anonymous": 2,
    "rate_limit_member": 3,
    "rate_limit_staff": 4,
    "rate_limit_service": 0,  # not limited
}


def limited_body(seconds: int) -> dict[str, Any]:
    return {
        "errors": [
            {
                "message": f"too many requests: retry after {seconds} s",
                "extensions": {"code": "RATE_LIMITED", "retryAfter": seconds},
            }
        ]
    }


async def ask(client: httpx.AsyncClient, tok: str | None = None, **headers: str) -> httpx.Response:
    if tok:
        headers["Authorization"] = f"Bearer {tok}"
    return await client.post("/graphql", json={"query": PROGRAM}, headers=headers)


async def statuses(client: httpx.AsyncClient, n: int, tok: str | None = None) -> list[int]:
    return [(await ask(client, tok)).status_code for _ in range(n)]


@contextlib.asynccontextmanager
async def gateway(
    settings: Settings, fakes: Fakes, clock: Clock, **update: Any
) -> AsyncIterator[Harness]:
    """The app with the test quotas, called from an address of its own."""
    configured = settings.model_copy(update={**QUOTAS, **update})
    address = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    async with running(configured, fakes, clock, client_address=address) as h:
        yield h


@pytest.fixture
async def h(settings: Settings, fakes: Fakes, clock: Clock) -> AsyncIterator[Harness]:
    async with gateway(settings, fakes, clock) as found:
        yield found


# --- the classes --------------------------------------------------------------------------------
def test_a_token_counts_in_its_highest_class() -> None:
    assert rate_class(None) is RateClass.ANONYMOUS
    assert rate_class(Viewer.anonymous()) is RateClass.ANONYMOUS
    assert rate_class(Viewer("cust-1", frozenset({Role.MEMBER}))) is RateClass.MEMBER
    assert rate_class(Viewer("x", frozenset())) is RateClass.MEMBER  # no known role
    assert rate_class(Viewer("a", frozenset({Role.MEMBER, Role.ASSOCIATE}))) is RateClass.STAFF
    assert rate_class(Viewer("a", frozenset({Role.ADMIN}))) is RateClass.STAFF
    assert rate_class(Viewer("p", frozenset({Role.SERVICE, Role.ADMIN}))) is RateClass.SERVICE


def test_the_default_quotas(settings: Settings) -> None:
    assert settings.rate_limit_policy == RateLimitPolicy(60.0, 60, 300, 600, 6000)


# --- over the quota --------------------------------------------------------------------------------
async def test_an_anonymous_caller_over_its_quota_is_429_with_retry_after(
    h: Harness, clock: Clock
) -> None:
    assert await statuses(h.client, 2) == [200, 200]
    h.sql.reset()
    refused = await ask(h.client)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "30"  # 2 a minute: one every 30 s
    assert refused.headers["cache-control"] == "private, no-store"
    assert refused.json() == limited_body(30)
    assert h.sql.count == 0
    clock.advance(seconds=10)
    assert (await ask(h.client)).headers["retry-after"] == "20"
    clock.advance(seconds=20)
    assert await statuses(h.client, 2) == [200, 429]


async def test_each_class_has_its_quota_and_each_identity_its_own(h: Harness) -> None:
    ava, ben = token("cust-ava", "member"), token("cust-ben", "member")
    assert await statuses(h.client, 4, ava) == [200, 200, 200, 429]
    assert await statuses(h.client, 1, ben) == [200]
    staff = token("assoc-1", "associate", store="TOR-1")
    assert await statuses(h.client, 5, staff) == [200, 200, 200, 200, 429]
    assert await statuses(h.client, 2) == [200, 200]  # anonymous: the address's own
    assert await statuses(h.client, 50, token("pos-1", "service")) == [200] * 50  # 0: no limit


async def test_the_same_sub_in_another_class_is_another_identity(h: Harness) -> None:
    assert await statuses(h.client, 4, token("x-1", "member")) == [200, 200, 200, 429]
    assert await statuses(h.client, 1, token("x-1", "associate", store="TOR-1")) == [200]


async def test_refused_tokens_count_against_the_address(h: Harness) -> None:
    forged = token("cust-1", "member") + "x"
    assert [r.status_code for r in [await ask(h.client, forged) for _ in range(2)]] == [401, 401]
    refused = await ask(h.client, forged)
    assert (refused.status_code, refused.json()) == (429, limited_body(30))
    assert (await ask(h.client)).status_code == 429  # the same address, without a token


async def test_a_query_string_or_body_over_the_quota_is_not_read(h: Harness) -> None:
    await statuses(h.client, 2)
    response = await h.client.post("/graphql", content=b"x" * 100_000)
    assert response.status_code == 429  # not 413: refused before the body


async def test_the_address_is_the_one_uvicorn_trusts(h: Harness) -> None:
    """Behind the proxy uvicorn trusts (`--forwarded-allow-ips`), each X-Forwarded-For
    address has its quota; from any other peer the header is ignored."""
    behind = ProxyHeadersMiddleware(h.app, trusted_hosts="127.0.0.1")

    def client_from(peer: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=behind, client=(peer, 5000))
        return httpx.AsyncClient(transport=transport, base_url="http://patron.test")

    async with client_from("127.0.0.1") as proxy, client_from("192.0.2.7") as stranger:
        one = [
            (await ask(proxy, **{"X-Forwarded-For": "203.0.113.1"})).status_code for _ in range(3)
        ]
        two = [
            (await ask(proxy, **{"X-Forwarded-For": "203.0.113.2"})).status_code for _ in range(1)
        ]
        spoofed = [
            (await ask(stranger, **{"X-Forwarded-For": f"198.51.100.{i}"})).status_code
            for i in range(3)
        ]
    assert (one, two, spoofed) == ([200, 200, 429], [200], [200, 200, 429])


# --- replicas and Redis -------------------------------------------------------------------------
async def test_without_redis_each_process_counts_alone(
    settings: Settings, fakes: Fakes, clock: Clock
) -> None:
    member = token(f"cust-{uuid.uuid4().hex[:6]}", "member")
    async with gateway(settings, fakes, clock) as a, gateway(settings, fakes, clock) as b:
        assert await statuses(a.client, 3, member) == [200, 200, 200]
        assert await statuses(b.client, 3, member) == [200, 200, 200]


@pytest.mark.skipif(not REDIS_URL, reason="set PATRON_TEST_REDIS_URL to share the limit (Redis)")
async def test_two_replicas_share_the_quota_through_redis(
    settings: Settings, fakes: Fakes, clock: Clock
) -> None:
    member = token(f"cust-{uuid.uuid4().hex[:8]}", "member")  # a key no other run has used
    shared = {"redis_url": REDIS_URL}
    async with (
        gateway(settings, fakes, clock, **shared) as a,
        gateway(settings, fakes, clock, **shared) as b,
    ):
        assert await statuses(a.client, 2, member) == [200, 200]
        assert await statuses(b.client, 2, member) == [200, 429]
        assert (await ask(a.client, member)).headers["retry-after"] == "20"
        clock.advance(seconds=20)
        assert await statuses(b.client, 1, member) == [200]
        assert await statuses(a.client, 1, member) == [429]


async def test_redis_down_lets_requests_through_logged_and_counted(
    settings: Settings, fakes: Fakes, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    async with gateway(settings, fakes, clock, redis_url="redis://127.0.0.1:1/0") as down:
        responses = [await ask(down.client) for _ in range(4)]  # a quota of 2
        limiter = down.gateway.rate_limit.limiter
    assert [(r.status_code, r.json()) for r in responses] == [(200, ANSWER)] * 4
    assert isinstance(limiter, RedisRateLimiter) and limiter.failures == 4
    assert "rate limit not checked, Redis failed (request allowed)" in caplog.text
