"""The rate-limit algorithm: GCRA (the generic cell rate algorithm), which is a token
bucket stored as one number.

A quota of `limit` requests per `period` is a bucket of `limit` tokens refilled at one
token every `interval = period / limit`. Instead of a count and a refill time, GCRA keeps
the bucket's *theoretical arrival time* (TAT): when the bucket would be full again. A
request at `now` takes a token, pushing the TAT one interval later, and is allowed when
the bucket had a token: when `max(TAT, now) + interval - limit * interval <= now`. A
refused request changes nothing, and `Retry-After` is the time until that holds. So an
idle identity may burst `limit` requests at once, then one per interval.

Times are integer microseconds, so the arithmetic is exact here and in Redis's Lua
(doubles hold integers exactly up to 2^53: about 285 years of microseconds since 1970).
`adapters.rate_limit.redis` runs the same steps in one Lua script.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["Decision", "Quota", "RateLimiter", "gcra"]

MICROS = 1_000_000


@dataclass(frozen=True, slots=True)
class Quota:
    """`limit` requests per `period` seconds, all of them at once from idle."""

    limit: int
    period: float

    def __post_init__(self) -> None:
        if self.limit < 1 or self.period <= 0:
            raise ValueError("a quota needs a limit of at least 1 and a positive period")

    @property
    def interval_us(self) -> int:
        """Microseconds between two requests at the sustained rate."""
        return max(1, round(self.period * MICROS / self.limit))


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    retry_after: float  # seconds until a request would be allowed; 0 when allowed
    remaining: int | None  # requests still allowed at once; None when unknown (fail open)


class RateLimiter(Protocol):
    async def acquire(self, key: str, quota: Quota) -> Decision:
        """Take one request of `key`'s quota, or refuse it."""
        ...


def gcra(tat_us: int | None, now_us: int, quota: Quota) -> tuple[Decision, int | None]:
    """The decision for one request, and the TAT to store (None: refused, keep the old)."""
    interval = quota.interval_us
    new_tat = max(tat_us if tat_us is not None else now_us, now_us) + interval
    allow_at = new_tat - quota.limit * interval
    if allow_at > now_us:
        return Decision(False, (allow_at - now_us) / MICROS, 0), None
    return Decision(True, 0.0, (now_us - allow_at) // interval), new_tat
