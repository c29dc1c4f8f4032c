"""The rate limiters: the GCRA token bucket in process and in Redis (with
`PATRON_TEST_REDIS_URL`), the same decisions from both, on a clock moved by hand; Redis
failing or hanging lets requests through, within the client's timeout."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from adapters.rate_limit.gcra import Decision, Quota, RateLimiter, gcra
from adapters.rate_limit.memory import MemoryRateLimiter
from adapters.rate_limit.redis import RedisRateLimiter
from tests.adapters.conftest import Now
from tests.conftest import REDIS_URL

THREE_A_MINUTE = Quota(3, 60.0)  # a burst of 3, then one every 20 s


def _kinds() -> list[object]:
    return ["memory", "redis"] if REDIS_URL else ["memory"]


@pytest.fixture
def now() -> Now:
    return Now()


@pytest.fixture(params=_kinds())
async def limiter(request: pytest.FixtureRequest, now: Now) -> AsyncIterator[RateLimiter]:
    if request.param == "memory":
        yield MemoryRateLimiter(now)
        return
    assert REDIS_URL
    redis = Redis.from_url(REDIS_URL)
    prefix = f"patron:test:rate:{uuid.uuid4().hex[:8]}:"
    yield RedisRateLimiter(redis, now, prefix=prefix)
    keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


async def test_a_burst_of_the_limit_then_one_per_interval(limiter: RateLimiter, now: Now) -> None:
    decisions = [await limiter.acquire("k", THREE_A_MINUTE) for _ in range(4)]
    assert decisions == [
        Decision(True, 0.0, 2),
        Decision(True, 0.0, 1),
        Decision(True, 0.0, 0),
        Decision(False, 20.0, 0),
    ]
    now.t += 5
    assert await limiter.acquire("k", THREE_A_MINUTE) == Decision(False, 15.0, 0)
    now.t += 15  # one interval after the burst: one request again, and only one
    assert await limiter.acquire("k", THREE_A_MINUTE) == Decision(True, 0.0, 0)
    assert await limiter.acquire("k", THREE_A_MINUTE) == Decision(False, 20.0, 0)


async def test_an_idle_key_refills_to_the_limit_and_no_further(
    limiter: RateLimiter, now: Now
) -> None:
    for _ in range(3):
        await limiter.acquire("k", THREE_A_MINUTE)
    now.t += 3600
    assert [(await limiter.acquire("k", THREE_A_MINUTE)).allowed for _ in range(4)] == [
        True,
        True,
        True,
        False,
    ]


async def test_keys_do_not_share_a_bucket(limiter: RateLimiter) -> None:
    for _ in range(3):
        await limiter.acquire("member:a", THREE_A_MINUTE)
    assert not (await limiter.acquire("member:a", THREE_A_MINUTE)).allowed
    assert await limiter.acquire("member:b", THREE_A_MINUTE) == Decision(True, 0.0, 2)


async def test_a_refused_request_takes_nothing(limiter: RateLimiter, now: Now) -> None:
    for _ in range(3):
        await limiter.acquire("k", THREE_A_MINUTE)
    for _ in range(10):  # hammering while refused does not push the wait further
        assert await limiter.acquire("k", THREE_A_MINUTE) == Decision(False, 20.0, 0)
    now.t += 20
    assert (await limiter.acquire("k", THREE_A_MINUTE)).allowed


async def test_a_fractional_interval_is_exact(limiter: RateLimiter, now: Now) -> None:
    quota = Quota(7, 1.0)  # 142857 microseconds apart
    assert [(await limiter.acquire("k", quota)).allowed for _ in range(8)] == [True] * 7 + [False]
    now.t += 7 * 0.142857
    assert [(await limiter.acquire("k", quota)).allowed for _ in range(8)] == [True] * 7 + [False]


async def test_both_limiters_decide_as_the_algorithm(limiter: RateLimiter, now: Now) -> None:
    """A random walk of requests and pauses: the limiter's decisions are `gcra`'s."""
    rng = random.Random(8)
    quota = Quota(5, 10.0)
    tat: int | None = None
    for _ in range(300):
        now.t += rng.choice([0.0, 0.0, 0.5, 1.3, 2.0, 7.0])
        expected, new_tat = gcra(tat, int(now.t * 1_000_000), quota)
        tat = new_tat if new_tat is not None else tat
        assert await limiter.acquire("walk", quota) == expected


async def test_memory_forgets_full_buckets_and_is_bounded(now: Now) -> None:
    limiter = MemoryRateLimiter(now, max_keys=3)
    for key in "abcd":
        await limiter.acquire(key, THREE_A_MINUTE)
    assert len(limiter) == 3  # "a" went first
    assert await limiter.acquire("a", THREE_A_MINUTE) == Decision(True, 0.0, 2)
    now.t += 20  # every bucket holds one request of 3: full again
    await limiter.acquire("e", THREE_A_MINUTE)
    assert len(limiter) == 1


@pytest.mark.skipif(not REDIS_URL, reason="set PATRON_TEST_REDIS_URL to test the Redis limiter")
async def test_a_redis_key_lives_until_its_bucket_is_full(now: Now) -> None:
    assert REDIS_URL
    redis = Redis.from_url(REDIS_URL)
    prefix = f"patron:test:rate:{uuid.uuid4().hex[:8]}:"
    limiter = RedisRateLimiter(redis, now, prefix=prefix)
    try:
        for _ in range(2):
            await limiter.acquire("k", THREE_A_MINUTE)
        assert 39_000 < await redis.pttl(prefix + "k") <= 40_000  # two intervals of 20 s
        assert int(await redis.get(prefix + "k")) == int((now.t + 40) * 1_000_000)
    finally:
        await redis.delete(prefix + "k")
        await redis.aclose()


# --- Redis failing -----------------------------------------------------------------------------
async def test_redis_refusing_connections_lets_requests_through(
    now: Now, caplog: pytest.LogCaptureFixture
) -> None:
    redis = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    limiter = RedisRateLimiter(redis, now)
    decisions = [await limiter.acquire("k", Quota(1, 60.0)) for _ in range(3)]
    await redis.aclose()
    assert decisions == [Decision(True, 0.0, None)] * 3
    assert limiter.failures == 3
    assert "rate limit not checked, Redis failed (request allowed)" in caplog.text


async def test_a_hanging_redis_costs_no_more_than_its_timeout(now: Now) -> None:
    """A Redis that accepts connections and never answers: each request waits the client's
    `socket_timeout` (`PATRON_REDIS_TIMEOUT`) and goes through."""
    accepted: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    redis = Redis.from_url(
        f"redis://127.0.0.1:{port}/0", socket_timeout=0.2, socket_connect_timeout=0.2
    )
    limiter = RedisRateLimiter(redis, now)
    try:
        started = time.perf_counter()
        decision = await limiter.acquire("k", Quota(1, 60.0))
        elapsed = time.perf_counter() - started
    finally:
        await redis.aclose()
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()
    assert decision == Decision(True, 0.0, None)
    assert limiter.failures == 1
    assert accepted  # it did connect: the wait was the read's
    assert 0.2 <= elapsed < 1.0
