"""The upstream policy (`adapters/http.py`) on its own, with respx: every failure mode, the
request deadline, single-flight reads, the breaker's lifecycle and the per-upstream settings.

Time is injected (`FakeTime`: a monotonic clock, a wall clock and a sleep that only moves
them), so back-offs and deadlines are exact and nothing sleeps for real, except the two
tests that need the event loop's own clock (a slow drip, and an attempt cut by the deadline
while it hangs), which wait a fraction of a second.
"""

from __future__ import annotations

import asyncio
import email.utils
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import respx
from pydantic import ValidationError

from adapters.cache.cached_ports import CachedContent
from adapters.cache.store import MemoryCacheStore
from adapters.http import (
    MIN_ATTEMPT_TIME,
    BreakerState,
    Upstream,
    UpstreamPolicy,
    current_deadline,
    deadline,
    spawn_detached,
)
from gateway.settings import Settings
from gateway.upstreams import build_upstreams
from loyalty.errors import UpstreamRateLimited, UpstreamTimeout, UpstreamUnavailable
from loyalty.upstreams import ContentItem

URL = "https://api.test/v1/things"
OK = {"things": [1, 2, 3]}


class FakeTime:
    """A monotonic clock and a wall clock that move only when told, and a sleep that moves
    them (and records how long it was asked to wait)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.wall = 1_767_225_600.0  # 2026-01-01T00:00:00Z
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def wall_clock(self) -> float:
        return self.wall

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.wall += seconds

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)


def highest(low: float, high: float) -> float:
    """The jitter that always picks the ceiling, so a back-off is exact."""
    return high


@pytest.fixture
def time_() -> FakeTime:
    return FakeTime()


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mock:
        yield mock


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def upstream(http: httpx.AsyncClient, time_: FakeTime, **policy: Any) -> Upstream:
    defaults: dict[str, Any] = {"retries": 2, "backoff_base": 0.1, "backoff_max": 1.0}
    return Upstream(
        "things",
        "https://api.test/v1",
        http,
        UpstreamPolicy(**{**defaults, **policy}),
        sleep=time_.sleep,
        clock=time_.clock,
        wall_clock=time_.wall_clock,
        jitter=highest,
    )


def timeouts(route: respx.Route) -> list[dict[str, float]]:
    """The httpx timeouts each attempt was sent with."""
    return [call.request.extensions["timeout"] for call in route.calls]


# --- failure modes --------------------------------------------------------------------------
async def test_read_timeout_is_retried_with_backoff_then_a_timeout(
    router: respx.MockRouter, http: httpx.AsyncClient, time_: FakeTime
) -> None:
    route = router.get(URL).mock(side_effect=httpx.ReadTimeout("slow"))

    with pytest.raises(UpstreamTimeout) as info:
        await upstream(http, time_).request("GET", "things")

    assert (info.value.upstream, info.value.code) == ("things", "UPSTREAM_TIMEOUT")
    assert info.value.message == "timed out (ReadTimeout)"
    assert route.call_count == 3
    assert time_.sleeps == [0.1, 0.2]  # base x 2^attempt, full jitter at its ceiling
    assert timeouts(route)[0] == {"connect": 2.0, "read": 5.0, "write": 5.0, "pool": 2.0}


async def test_backoff_is_capped_by_backoff_max(
    router: respx.MockRouter, http: httpx.AsyncClient, time_: FakeTime
) -> None:
    router.get(URL).mock(side_effect=httpx.ReadTimeout("slow"))

    with pytest.raises(UpstreamTimeout):
        await upstream(http, time_, retries=4, backoff_max=0.3).request("GET", "things")

    assert time_.sleeps == [0.1, 0.2, 0.3, 0.3]


async def test_connect_timeout_is_a_timeout(
    router: respx.MockRouter, http: httpx.AsyncClient, time_: FakeTime
) -> None:
    route = router.get(URL).mock(side_effect=httpx.ConnectTimeout("no SYN-ACK"))

    with pytest.raises(UpstreamTimeout) as info:
        await upstream(http, time_).request("GET", "things")

    assert info.value.message == "timed out (ConnectTimeout)"
    assert route.call_count == 3


async def test_connection_refused_is_unavailable(
    router: respx.MockRouter, http: httpx.AsyncClient, time_: FakeTime
) -> None:
    route = router.get(URL).mock(side_effect=httpx.ConnectError("[Errno 111] refused"))

    with pytest.raises(UpstreamUnavailable) as info:
        await upstream(http, time_).request("GET", "things")

    assert (info.value.code, info.value.message) == (
        "UPSTREAM_UNAVAILABLE",
        "unreachable (ConnectError)",
    )
    assert route.call_count == 3


async def test_429_with_retry_after_seconds_is_waited_then_succeeds(
    router: respx.MockRouter, http: httpx.AsyncClient, time_: FakeTime
) -> None:
    route = router.get(URL).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "1"}),
            httpx.Response(200, json=OK),
        ]
    )
    things = upstream(http, time_)

    response = await things.request("GET", "things")

    assert things.json(response) == OK
    assert route.call_count == 2
    assert time_.sleeps == [1.0]  # the server's wait, not the back-off's
    assert things.breaker_state is BreakerState.CLOSED


async def test_429_with_retry_after_http_date_is_waited_then_succeeds(
    router: respx.MockRouter, http: httpx.AsyncClient, time_: FakeTime
) -> None:
    in_two_seconds = email.utils.formatdate(time_.wall + 2, usegmt=True)
    route = router.get(URL).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": in_two_seconds}),
            httpx.Response(200, json=OK),
        ]
    )

    response = await upstream(http, time_).request("GET", "things")

    assert response.json() == OK
    assert route.call_count == 2
    assert time_.sleeps == [2.0]


async def test_429_beyond_the_retry_after_cap_fails_at_once(
    router: respx.MockRouter, http: httpx.AsyncClient, time_: FakeTime
) -> None:
    route = router.get(URL).respond(429, headers={"Retry-After": "30"})

    with pytest.raises(UpstreamRateLimited) as info:
        await upstream(http, time_, max_retry_after=2.0).request("GET", "things")

    assert (info.value.code, info.value.retry_after) == ("UPSTREAM_RATE_LIMITED", 30.0)
    assert route.call_count == 1
    assert time_.sleeps == []


async def test_503_is_retried_then_unavailable(
    router: respx.MockRouter, http: httpx.AsyncClient, time_: FakeTime
) -> None:
    route = router.get(URL).respond(503, json={"message": "OverCapacity"})

    with pytest.raises(UpstreamUnavailable) as info:
        await upstream(http, time_).request("GET", "things")

    assert info.value.message == "HTTP 503"
    assert route.call_count == 3
    assert time_.sleeps == [0.1, 0.2]


async def test_503_with_retry_after_waits_as_asked(
    router: respx.MockRouter, http: httpx.AsyncClient, time_: FakeTime
) -> None:
    route = router.get(URL).mock(
        side_effect=[httpx.Response(503, headers={"Retry-After": "1"}), httpx.Response(200)]
    )

    response = await upstream(http, time_).request("GET", "things")

    assert response.status_code == 200
    assert route.call_count == 2
    assert time_.sleeps == [1.0]


async def test_4xx_is_returned_to_the_adapter_without_retry(
    router: respx.MockRouter, http: httpx.AsyncClient, time_: FakeTime
) -> None:
    route = router.get(URL).respond(404, json={"error": "not_found"})

    response = await upstream(http, time_).request("GET", "things")

    assert response.status_code == 404
    assert route.call_count == 1


async def test_malformed_json_is_unavailable(
    router: respx.MockRouter, http: httpx.AsyncClient, time_: FakeTime
) -> None:
    route = router.get(URL).respond(200, content=b"<html>maintenance</html>")
    things = upstream(http, time_)

    response = await things.request("GET", "things")
    with pytest.raises(UpstreamUnavailable) as info:
        things.json(response)

    assert (info.value.upstream, info.value.message) == ("things", "malformed JSON in reply")
    assert route.call_count == 1


class Drip(httpx.AsyncByteStream):
    """A JSON body that arrives one byte every `gap` seconds: each read is quick, so httpx's
    read timeout (per socket read) never trips. It ends after `length` bytes (a second), so
    a policy that does not bound the whole attempt fails this test instead of hanging it."""

    def __init__(self, gap: float, length: int) -> None:
        self.gap = gap
        self.length = length
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.length - 2):
            yield b" "
            self.sent += 1
            await asyncio.sleep(self.gap)
        yield b"{}"


async def test_a_slow_drip_is_a_timeout(router: respx.MockRouter, http: httpx.AsyncClient) -> None:
    drip = Drip(gap=0.01, length=100)
    route = router.get(URL).mock(return_value=httpx.Response(200, stream=drip))
    policy = UpstreamPolicy(connect_timeout=0.05, read_timeout=0.1, retries=0)
    things = Upstream("things", "https://api.test/v1", http, policy)

    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(UpstreamTimeout) as info:
        await things.request("GET", "things")
    elapsed = loop.time() - started

    assert info.value.message == "no complete reply within 0.15 s"
    assert route.call_count == 1
    assert drip.sent >= 3, "the body really was dripping"
    assert drip.gap < policy.read_timeout  # so only the bound on the whole attempt can trip
    assert elapsed < 1.0


async def test_writes_are_never_retried(
    router: respx.MockRouter, http: httpx.AsyncClient, time_: FakeTime
) -> None:
    refused = router.post(f"{URL}/refused").respond(503)
    slow = router.post(f"{URL}/slow").mock(side_effect=httpx.ReadTimeout("slow"))
    things = upstream(http, time_)

    with pytest.raises(UpstreamUnavailable):
        await things.request("POST", "things/refused", json={"a": 1})
    with pytest.raises(UpstreamTimeout):
        await things.request("POST", "things/slow", json={"a": 1})

    assert (refused.call_count, slow.call_count) == (1, 1)
    assert time_.sleeps == []


async def test_an_idempotent_write_is_retried(
    router: respx.MockRouter, http: httpx.AsyncClient, time_: FakeTime
) -> None:
    route = router.post(URL).mock(side_effect=[httpx.Response(503), httpx.Response(200)])

    response = await upstream(http, time_).request("POST", "things", json={}, idempotent=True)

    assert response.status_code == 200
    assert route.call_count == 2


# --- the request deadline -------------------------------------------------------------------
async def test_attempt_timeouts_shrink_to_the_time_left(
    router: respx.MockRouter, http: httpx.AsyncClient, time_: FakeTime
) -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        time_.advance(1.0)  # each attempt spends a second, then times out
        raise httpx.ReadTimeout("slow", request=request)

    route = router.get(URL).mock(side_effect=slow)
    things = upstream(http, time_, connect_timeout=0.5, read_timeout=1.0, backoff_base=0.125)

    with deadline(2.5, clock=time_.clock), pytest.raises(UpstreamTimeout):
        await things.request("GET", "things")

    # 2.5 s: attempt (1 s), back-off 0.125, attempt (1 s), back-off 0.25, attempt: 0.125 left.
    assert time_.sleeps == [0.125, 0.25]
    assert timeouts(route) == [
        {"connect": 0.5, "read": 1.0, "write": 1.0, "pool": 0.5},
        {"connect": 0.5, "read": 1.0, "write": 1.0, "pool": 0.5},
        {"connect": 0.125, "read": 0.125, "write": 0.125, "pool": 0.125},
    ]


async def test_no_retry_starts_that_cannot_finish_before_the_deadline(
    router: respx.MockRouter, http: httpx.AsyncClient, time_: FakeTime
) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        time_.advance(0.875)
        return httpx.Response(503)

    route = router.get(URL).mock(side_effect=down)
    things = upstream(http, time_, backoff_base=0.1)

    # 1 s: the attempt leaves 0.125 s, less than a 0.1 s back-off plus the shortest attempt.
    assert 0.1 + MIN_ATTEMPT_TIME > 0.125
    with deadline(1.0, clock=time_.clock), pytest.raises(UpstreamUnavailable) as info:
        await things.request("GET", "things")

    assert info.value.message == "HTTP 503"
    assert route.call_count == 1
    assert time_.sleeps == []


async def test_a_retry_after_longer_than_the_time_left_is_not_waited(
    router: respx.MockRouter, http: httpx.AsyncClient, time_: FakeTime
) -> None:
    route = router.get(URL).respond(429, headers={"Retry-After": "1"})

    with deadline(0.5, clock=time_.clock), pytest.raises(UpstreamRateLimited) as info:
        await upstream(http, time_, max_retry_after=2.0).request("GET", "things")

    assert info.value.retry_after == 1.0
    assert route.call_count == 1
    assert time_.sleeps == []


async def test_after_the_deadline_a_call_fails_at_once(
    router: respx.MockRouter, http: httpx.AsyncClient, time_: FakeTime
) -> None:
    route = router.get(URL).respond(200, json=OK)
    things = upstream(http, time_)

    with deadline(1.0, clock=time_.clock):
        time_.advance(1.0)
        with pytest.raises(UpstreamTimeout) as info:
            await things.request("GET", "things")

    assert info.value.message == "request deadline passed"
    assert route.call_count == 0
    assert things.breaker_state is BreakerState.CLOSED


@pytest.mark.parametrize("method", ["GET", "POST"])  # a shared read, and a write
async def test_a_hung_attempt_is_cut_at_the_deadline(
    router: respx.MockRouter, http: httpx.AsyncClient, method: str
) -> None:
    """The real event-loop clock: a policy that would wait 5 s waits only the 0.1 s left."""

    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(3)  # the test fails, rather than hangs, if nothing cuts it
        return httpx.Response(200, json=OK)

    router.route(method=method, url=URL).mock(side_effect=hang)
    things = Upstream("things", "https://api.test/v1", http, UpstreamPolicy(retries=2))

    loop = asyncio.get_running_loop()
    started = loop.time()
    with deadline(0.1), pytest.raises(UpstreamTimeout) as info:
        await things.request(method, "things")
    elapsed = loop.time() - started

    assert info.value.message == "request deadline reached"
    assert 0.1 <= elapsed < 0.6


async def test_nested_deadlines_never_extend_the_outer_one(time_: FakeTime) -> None:
    assert current_deadline() is None
    with deadline(1.0, clock=time_.clock) as outer:
        with deadline(5.0, clock=time_.clock) as inner:
            assert inner == outer == 1001.0
        with deadline(0.5, clock=time_.clock) as shorter:
            assert shorter == current_deadline() == 1000.5
        assert current_deadline() == 1001.0
    assert current_deadline() is None


async def test_tasks_started_detached_do_not_inherit_the_deadline() -> None:
    async def seen() -> float | None:
        return current_deadline()

    with deadline(1.0) as at:
        inherited = await asyncio.create_task(seen())
        detached = await spawn_detached(seen(), name="detached")

    assert (inherited, detached) == (at, None)


class RecordingContent:
    """A content port that records the deadline each call ran under."""

    name = "cms"

    def __init__(self) -> None:
        self.deadlines: list[float | None] = []

    async def content_by_keys(self, keys: Any) -> dict[str, ContentItem | None]:
        self.deadlines.append(current_deadline())
        return {key: ContentItem("id-" + key, key, "schema", key, {}, None) for key in keys}

    async def content_by_key(self, key: str) -> ContentItem | None:
        raise NotImplementedError

    async def content_by_id(self, delivery_id: str) -> ContentItem | None:
        raise NotImplementedError


async def test_a_background_cache_refresh_is_not_bound_by_the_request_deadline() -> None:
    inner = RecordingContent()
    now = [0.0]
    cached = CachedContent(inner, MemoryCacheStore(), 10.0, 100.0, clock=lambda: now[0])
    await cached.content_by_keys(["a"])  # cached, outside any request
    now[0] = 20.0  # stale: served, and refreshed in the background

    with deadline(1.0) as at:
        await cached.content_by_keys(["a"])
        await cached.cache.drain()

    assert inner.deadlines == [None, None]
    assert at is not None


# --- single-flight --------------------------------------------------------------------------
class Gate:
    """A respx side effect that holds every request until opened, counting them."""

    def __init__(self, response: httpx.Response | None = None) -> None:
        self.opened = asyncio.Event()
        self.arrived = 0
        self.response = response or httpx.Response(200, json=OK)

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.arrived += 1
        # Bounded, so that a broken policy fails the test rather than hanging it.
        await asyncio.wait_for(self.opened.wait(), 3)
        return self.response


async def settle() -> None:
    """Let every started task run up to its first wait."""
    for _ in range(5):
        await asyncio.sleep(0)


async def test_identical_concurrent_reads_share_one_call(
    router: respx.MockRouter, http: httpx.AsyncClient, time_: FakeTime
) -> None:
    gate = Gate()
    route = router.get(URL).mock(side_effect=gate)
    things = upstream(http, time_)

    calls = [
        asyncio.create_task(things.request("GET", "things", params={"page": 2})) for _ in range(10)
    ]
    await settle()
    gate.opened.set()
    responses = await asyncio.gather(*calls)

    assert route.call_count == 1
    assert [r.json() for r in responses] == [OK] * 10
    assert str(route.calls.last.request.url) == f"{URL}?page=2"


async def test_reads_with_different_credentials_params_or_body_never_share(
    router: respx.MockRouter, http: httpx.AsyncClient, time_: FakeTime
) -> None:
    gate = Gate()
    route = router.route(url__startswith=URL).mock(side_effect=gate)
    things = upstream(http, time_)

    variants: list[dict[str, Any]] = [
        {"headers": {"Authorization": "Bearer member-a"}},
        {"headers": {"Authorization": "Bearer member-b"}},
        {"auth": ("key-a", "")},
        {"auth": ("key-b", "")},
        {"params": {"page": 1}},
        {"params": {"page": 2}},
    ]
    calls = [asyncio.create_task(things.request("GET", "things", **v)) for v in variants * 2]
    await settle()
    gate.opened.set()
    await asyncio.gather(*calls)

    assert route.call_count == 6  # each variant once, shared by its two callers
    sent = sorted(
        (c.request.headers.get("authorization", ""), str(c.request.url)) for c in route.calls
    )
    assert sent == sorted(
        [
            ("Bearer member-a", URL),
            ("Bearer member-b", URL),
            ("Basic a2V5LWE6", URL),
            ("Basic a2V5LWI6", URL),
            ("", f"{URL}?page=1"),
            ("", f"{URL}?page=2"),
        ]
    )


async def test_a_read_posted_with_different_bodies_never_shares(
    router: respx.MockRouter, http: httpx.AsyncClient, time_: FakeTime
) -> None:
    gate = Gate()
    route = router.post(URL).mock(side_effect=gate)
    things = upstream(http, time_)

    bodies = [{"keys": ["a"]}, {"keys": ["b"]}, {"keys": ["a"]}]
    calls = [
        asyncio.create_task(things.request("POST", "things", json=body, read=True))
        for body in bodies
    ]
    await settle()
    gate.opened.set()
    await asyncio.gather(*calls)

    assert sorted(c.request.content for c in route.calls) == [b'{"keys":["a"]}', b'{"keys":["b"]}']


async def test_a_failure_is_shared_and_counts_once(
    router: respx.MockRouter, http: httpx.AsyncClient, time_: FakeTime
) -> None:
    gate = Gate(httpx.Response(503))
    route = router.get(URL).mock(side_effect=gate)
    things = upstream(http, time_, retries=0, breaker_failures=2)

    calls = [asyncio.create_task(things.request("GET", "things")) for _ in range(5)]
    await settle()
    gate.opened.set()
    outcomes = await asyncio.gather(*calls, return_exceptions=True)

    assert route.call_count == 1
    assert [type(o) for o in outcomes] == [UpstreamUnavailable] * 5
    assert all(o is outcomes[0] for o in outcomes)
    assert things.breaker_state is BreakerState.CLOSED  # one flight, one failure of two


async def test_a_read_after_the_flight_landed_makes_a_new_call(
    router: respx.MockRouter, http: httpx.AsyncClient, time_: FakeTime
) -> None:
    route = router.get(URL).mock(
        side_effect=[httpx.Response(200, json={"n": 1}), httpx.Response(200, json={"n": 2})]
    )
    things = upstream(http, time_)

    first = await things.request("GET", "things")
    second = await things.request("GET", "things")

    assert (first.json(), second.json()) == ({"n": 1}, {"n": 2})
    assert route.call_count == 2


async def test_writes_are_never_shared(
    router: respx.MockRouter, http: httpx.AsyncClient, time_: FakeTime
) -> None:
    gate = Gate()
    route = router.post(URL).mock(side_effect=gate)
    things = upstream(http, time_)

    calls = [
        asyncio.create_task(things.request("POST", "things", json={"a": 1}, idempotent=flag))
        for flag in (False, False, True, True)
    ]
    await settle()
    gate.opened.set()
    await asyncio.gather(*calls)

    assert route.call_count == 4


async def test_a_caller_that_leaves_does_not_cancel_the_flight_for_the_others(
    router: respx.MockRouter, http: httpx.AsyncClient, time_: FakeTime
) -> None:
    gate = Gate()
    route = router.get(URL).mock(side_effect=gate)
    things = upstream(http, time_)

    first = asyncio.create_task(things.request("GET", "things"))
    second = asyncio.create_task(things.request("GET", "things"))
    await settle()
    first.cancel()
    await settle()
    gate.opened.set()

    assert (await second).json() == OK
    assert first.cancelled()
    assert route.call_count == 1


async def test_a_caller_waits_for_a_shared_flight_only_until_its_own_deadline(
    router: respx.MockRouter, http: httpx.AsyncClient
) -> None:
    """The flight started without a deadline (a background refresh, say); a request that
    joins it gives up at its own deadline, and the flight goes on."""
    gate = Gate()
    route = router.get(URL).mock(side_effect=gate)
    things = Upstream("things", "https://api.test/v1", http, UpstreamPolicy(retries=0))

    unbounded = asyncio.create_task(things.request("GET", "things"))
    await settle()
    with deadline(0.05), pytest.raises(UpstreamTimeout) as info:
        await things.request("GET", "things")
    gate.opened.set()

    assert info.value.message == "request deadline reached"
    assert (await unbounded).json() == OK
    assert route.call_count == 1


# --- the breaker ----------------------------------------------------------------------------
async def test_breaker_opens_probes_half_open_reopens_and_closes(
    router: respx.MockRouter, http: httpx.AsyncClient, time_: FakeTime
) -> None:
    route = router.get(URL).respond(503)
    things = upstream(http, time_, retries=0, breaker_failures=2, breaker_reset_after=10.0)

    async def call() -> str:
        try:
            await things.request("GET", "things")
        except UpstreamUnavailable as exc:
            return exc.message
        return "ok"

    # closed: failures are counted, and reach the upstream
    assert [await call(), things.breaker_state] == ["HTTP 503", BreakerState.CLOSED]
    assert [await call(), things.breaker_state] == ["HTTP 503", BreakerState.OPEN]
    # open: fail fast, nothing sent
    assert await call() == "circuit open"
    time_.advance(9.9)
    assert (await call(), route.call_count) == ("circuit open", 2)
    # half-open: one probe; it fails, the breaker opens again for another 10 s
    time_.advance(0.1)
    assert things.breaker_state is BreakerState.HALF_OPEN
    assert (await call(), route.call_count) == ("HTTP 503", 3)
    assert things.breaker_state is BreakerState.OPEN
    time_.advance(9.9)
    assert (await call(), route.call_count) == ("circuit open", 3)
    # half-open again: the probe succeeds, the breaker closes
    time_.advance(0.1)
    route.respond(200, json=OK)
    assert (await call(), things.breaker_state) == ("ok", BreakerState.CLOSED)
    assert [await call(), await call(), route.call_count] == ["ok", "ok", 6]


async def test_half_open_lets_exactly_one_probe_through(
    router: respx.MockRouter, http: httpx.AsyncClient, time_: FakeTime
) -> None:
    route = router.get(URL).respond(503)
    things = upstream(http, time_, retries=0, breaker_failures=1, breaker_reset_after=10.0)
    with pytest.raises(UpstreamUnavailable):
        await things.request("GET", "things")
    time_.advance(10.0)
    gate = Gate()
    route.mock(side_effect=gate)

    probe = asyncio.create_task(things.request("GET", "things", params={"n": 1}))
    await settle()
    with pytest.raises(UpstreamUnavailable, match="circuit open"):
        await things.request("GET", "things", params={"n": 2})  # another read: refused
    gate.opened.set()
    await probe

    assert (gate.arrived, things.breaker_state) == (1, BreakerState.CLOSED)


async def test_a_cancelled_probe_frees_its_place(
    router: respx.MockRouter, http: httpx.AsyncClient, time_: FakeTime
) -> None:
    route = router.get(URL).respond(503)
    things = upstream(http, time_, retries=0, breaker_failures=1, breaker_reset_after=10.0)
    with pytest.raises(UpstreamUnavailable):
        await things.request("GET", "things")
    time_.advance(10.0)
    gate = Gate()
    route.mock(side_effect=gate)

    probe = asyncio.create_task(things.request("GET", "things"))
    await settle()
    for flight in list(things._in_flight.values()):
        flight.cancel()  # the probe's exchange is cancelled (shutdown, say): no verdict
    with pytest.raises(asyncio.CancelledError):
        await probe
    route.respond(200, json=OK)

    assert (await things.request("GET", "things")).json() == OK
    assert things.breaker_state is BreakerState.CLOSED


async def test_a_429_is_not_a_breaker_failure(
    router: respx.MockRouter, http: httpx.AsyncClient, time_: FakeTime
) -> None:
    router.get(URL).respond(429, headers={"Retry-After": "60"})
    things = upstream(http, time_, retries=0, breaker_failures=1)

    for _ in range(3):
        with pytest.raises(UpstreamRateLimited):
            await things.request("GET", "things")

    assert things.breaker_state is BreakerState.CLOSED


# --- per-upstream settings ------------------------------------------------------------------
@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for key in list(os.environ):
        if key.startswith("PATRON_"):
            monkeypatch.delenv(key)
    return monkeypatch


def test_default_policies_global_and_the_cms_short(env: pytest.MonkeyPatch) -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]

    assert settings.request_deadline == 2.5
    assert settings.upstream_policy("commerce") == UpstreamPolicy(
        connect_timeout=2.0,
        read_timeout=5.0,
        retries=2,
        backoff_base=0.05,
        backoff_max=1.0,
        max_retry_after=2.0,
        breaker_failures=5,
        breaker_reset_after=10.0,
    )
    assert settings.upstream_policy("cdp") == settings.upstream_policy("commerce")
    assert settings.upstream_policy("cms") == UpstreamPolicy(connect_timeout=0.5, read_timeout=1.0)


def test_per_upstream_settings_from_the_environment(env: pytest.MonkeyPatch) -> None:
    env.setenv("PATRON_UPSTREAM_RETRIES", "3")  # every upstream
    env.setenv("PATRON_UPSTREAM_READ_TIMEOUT", "4")
    env.setenv("PATRON_UPSTREAMS__CMS__READ_TIMEOUT", "1.5")  # the CMS only
    env.setenv("PATRON_UPSTREAMS__CDP__RETRIES", "0")
    env.setenv("PATRON_UPSTREAMS__CDP__BREAKER_FAILURES", "3")
    env.setenv("PATRON_UPSTREAMS__COMMERCE__MAX_RETRY_AFTER", "0.5")
    env.setenv("PATRON_UPSTREAMS__COMMERCE__BREAKER_RESET_AFTER", "30")
    env.setenv("PATRON_REQUEST_DEADLINE", "1.25")

    settings = Settings(_env_file=None)  # type: ignore[call-arg]

    assert settings.request_deadline == 1.25
    assert settings.upstream_policy("cms") == UpstreamPolicy(
        connect_timeout=0.5, read_timeout=1.5, retries=3
    )
    assert settings.upstream_policy("cdp") == UpstreamPolicy(
        read_timeout=4.0, retries=0, breaker_failures=3
    )
    assert settings.upstream_policy("commerce") == UpstreamPolicy(
        read_timeout=4.0, retries=3, max_retry_after=0.5, breaker_reset_after=30.0
    )


async def test_each_host_gets_its_upstreams_policy(
    env: pytest.MonkeyPatch, http: httpx.AsyncClient
) -> None:
    env.setenv("PATRON_UPSTREAMS__CDP__READ_TIMEOUT", "0.75")
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        commerce_api_url="http://ct.test/api",
        commerce_auth_url="http://ct.test/auth",
        cms_url="http://cms.test",
        cdp_profile_url="http://seg.test/profiles",
        cdp_tracking_url="http://seg.test/tracking",
        cdp_regulations_url="http://seg.test/regulations",
    )

    clients = build_upstreams(settings, http)

    assert clients.commerce.api.policy == clients.commerce.auth.policy == UpstreamPolicy()
    assert clients.cms.upstream.policy == UpstreamPolicy(connect_timeout=0.5, read_timeout=1.0)
    cdp_hosts = [clients.cdp.profiles_upstream, clients.cdp.tracking_upstream]
    assert clients.cdp.regulations_upstream is not None
    cdp_hosts.append(clients.cdp.regulations_upstream)
    assert [host.policy for host in cdp_hosts] == [UpstreamPolicy(read_timeout=0.75)] * 3
    assert clients.breaker_states() == {
        "commerce": BreakerState.CLOSED,
        "commerce.auth": BreakerState.CLOSED,
        "cms": BreakerState.CLOSED,
        "cdp": BreakerState.CLOSED,
        "cdp.tracking": BreakerState.CLOSED,
        "cdp.regulations": BreakerState.CLOSED,
    }


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PATRON_UPSTREAMS__CMS__READ_TIMEOUT", "0"),
        ("PATRON_UPSTREAMS__CMS__READ_TIMEOUTS", "1"),  # misspelt: refused, not ignored
        ("PATRON_UPSTREAMS__SEARCH__RETRIES", "1"),  # no such upstream
        ("PATRON_UPSTREAMS__CDP__RETRIES", "9"),
        ("PATRON_UPSTREAMS__COMMERCE__BREAKER_FAILURES", "0"),
        ("PATRON_REQUEST_DEADLINE", "0"),
    ],
)
def test_invalid_upstream_settings_are_refused(
    env: pytest.MonkeyPatch, name: str, value: str
) -> None:
    env.setenv(name, value)

    with pytest.raises(ValidationError):
        Settings(_env_file=None)  # type: ignore[call-arg]
