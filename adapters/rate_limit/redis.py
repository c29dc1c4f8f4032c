"""Shared by every replica: the TAT of each key in Redis, taken and moved in one Lua script
(atomic, one round trip per request; redis-py sends it by its SHA1 and loads it once on
NOSCRIPT). A key lives as long as its bucket is not full (`PX`), so Redis holds only the
identities seen within their last period.

A limiter must never take the gateway down with Redis: a failure or a timeout (the client's
`socket_timeout`, `PATRON_REDIS_TIMEOUT`, bounds the wait) lets the request through (fail
open), logged and counted in `failures`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from redis.asyncio import Redis

from adapters.rate_limit.gcra import MICROS, Decision, Quota

__all__ = ["GCRA_SCRIPT", "RedisRateLimiter"]

log = logging.getLogger("patron.rate_limit")

DEFAULT_PREFIX = "patron:rate:"

# KEYS[1]: the key's TAT (integer microseconds). ARGV: now, interval (both microseconds),
# limit. Returns {allowed (0/1), microseconds to wait, requests remaining}: `gcra` in Lua.
GCRA_SCRIPT = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - limit * interval
if allow_at > now then
  return {0, allow_at - now, 0}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
return {1, 0, math.floor((now - allow_at) / interval)}
"""


class RedisRateLimiter:
    def __init__(
        self,
        redis: Redis,
        clock: Callable[[], float] = time.time,
        prefix: str = DEFAULT_PREFIX,
    ) -> None:
        """`clock`: epoch seconds. Every replica's clock should agree (NTP): the TAT is
        compared with the caller's now. The Redis client belongs to the caller."""
        self.redis = redis
        self.clock = clock
        self.prefix = prefix
        self.script = redis.register_script(GCRA_SCRIPT)
        self.failures = 0

    async def acquire(self, key: str, quota: Quota) -> Decision:
        now = int(self.clock() * MICROS)
        try:
            allowed, wait_us, remaining = await self.script(
                keys=[self.prefix + key], args=[now, quota.interval_us, quota.limit]
            )
        except Exception as exc:
            self.failures += 1
            log.warning("rate limit not checked, Redis failed (request allowed): %r", exc)
            return Decision(True, 0.0, None)
        if allowed:
            return Decision(True, 0.0, int(remaining))
        return Decision(False, int(wait_us) / MICROS, 0)
