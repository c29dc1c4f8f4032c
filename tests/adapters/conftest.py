"""The cache stores every cache test runs on: in process, and Redis too when
`PATRON_TEST_REDIS_URL` is set (keys under a prefix of their own, deleted afterwards)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from adapters.cache.store import CacheStore, MemoryCacheStore, RedisCacheStore
from tests.conftest import REDIS_URL


class Now:
    """A clock (epoch seconds) the tests move by hand."""

    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def _stores() -> list[object]:
    params: list[object] = ["memory"]
    if REDIS_URL:
        params.append("redis")
    return params


@pytest.fixture(params=_stores())
async def store(request: pytest.FixtureRequest) -> AsyncIterator[CacheStore]:
    if request.param == "memory":
        yield MemoryCacheStore()
        return
    assert REDIS_URL
    redis = Redis.from_url(REDIS_URL)
    prefix = f"patron:test:{uuid.uuid4().hex[:8]}:"
    yield RedisCacheStore(redis, prefix=prefix)
    keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()
