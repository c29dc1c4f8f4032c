"""Key/value stores for the upstream caches (`adapters.cache.cached_ports`).

`CacheStore` is what a cached port needs: read many keys at once, write many with a TTL,
delete. `MemoryCacheStore` serves one process (a bounded LRU with expiry);
`RedisCacheStore` is shared by every replica. A cache is an optimisation, never a
dependency: when Redis fails, the store logs it, counts it and answers as a miss (or
drops the write), so a request only loses the cache, never its answer.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from redis.asyncio import Redis

__all__ = ["CacheStore", "MemoryCacheStore", "RedisCacheStore"]

log = logging.getLogger("patron.cache")

DEFAULT_MAX_ENTRIES = 10_000
DEFAULT_PREFIX = "patron:cache:"


class CacheStore(Protocol):
    async def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        """The values of the keys present (absent or expired keys are left out)."""
        ...

    async def set_many(self, items: Mapping[str, bytes], ttl_seconds: float) -> None: ...

    async def delete(self, keys: Sequence[str]) -> None: ...


class MemoryCacheStore:
    """In process: at most `max_entries`, least recently used dropped first; an entry
    expires `ttl_seconds` after it was written (by `clock`, in seconds)."""

    def __init__(
        self,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    async def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        now = self.clock()
        found: dict[str, bytes] = {}
        for key in keys:
            entry = self._entries.get(key)
            if entry is None:
                continue
            expires, value = entry
            if expires <= now:
                del self._entries[key]
                continue
            self._entries.move_to_end(key)
            found[key] = value
        return found

    async def set_many(self, items: Mapping[str, bytes], ttl_seconds: float) -> None:
        if ttl_seconds <= 0:
            return
        expires = self.clock() + ttl_seconds
        for key, value in items.items():
            self._entries[key] = (expires, value)
            self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    async def delete(self, keys: Sequence[str]) -> None:
        for key in keys:
            self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class RedisCacheStore:
    """Redis: one MGET per read, one pipelined `SET ... EX` per write, one DEL. Every key is
    under `prefix`. The Redis client belongs to the caller (not closed here). `failures`
    counts the Redis errors answered as a miss (or a dropped write)."""

    def __init__(self, redis: Redis, prefix: str = DEFAULT_PREFIX) -> None:
        self.redis = redis
        self.prefix = prefix
        self.failures = 0

    async def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        if not keys:
            return {}
        try:
            values = await self.redis.mget([self.prefix + key for key in keys])
        except Exception as exc:
            self._failed("read", exc)
            return {}
        return {key: _bytes(v) for key, v in zip(keys, values, strict=True) if v is not None}

    async def set_many(self, items: Mapping[str, bytes], ttl_seconds: float) -> None:
        seconds = int(ttl_seconds)
        if not items or seconds <= 0:
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for key, value in items.items():
                    pipe.set(self.prefix + key, value, ex=seconds)
                await pipe.execute()
        except Exception as exc:
            self._failed("write", exc)

    async def delete(self, keys: Sequence[str]) -> None:
        if not keys:
            return
        try:
            await self.redis.delete(*(self.prefix + key for key in keys))
        except Exception as exc:
            self._failed("delete", exc)

    def _failed(self, operation: str, exc: Exception) -> None:
        self.failures += 1
        log.warning("redis cache %s failed, treated as a miss: %r", operation, exc)


def _bytes(value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()
