"""In one process: the TAT of each key in a bounded map. A key is forgotten once its
bucket is full again (it means no more than an absent key); past `max_keys` live keys the
least recently used goes first (that identity starts again with a full bucket)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from adapters.rate_limit.gcra import MICROS, Decision, Quota, gcra

__all__ = ["MemoryRateLimiter"]

DEFAULT_MAX_KEYS = 100_000


class MemoryRateLimiter:
    def __init__(
        self, clock: Callable[[], float] = time.time, max_keys: int = DEFAULT_MAX_KEYS
    ) -> None:
        """`clock`: seconds (the epoch's, or any other that only moves forward)."""
        self.clock = clock
        self.max_keys = max_keys
        self._tats: OrderedDict[str, int] = OrderedDict()

    async def acquire(self, key: str, quota: Quota) -> Decision:
        now = int(self.clock() * MICROS)
        decision, tat = gcra(self._tats.get(key), now, quota)
        if tat is not None:
            self._tats[key] = tat
            self._tats.move_to_end(key)
            self._forget_full(now)
        return decision

    def _forget_full(self, now: int) -> None:
        """Drop the keys whose bucket is full again, oldest first, and any beyond max_keys."""
        while self._tats:
            key, tat = next(iter(self._tats.items()))
            if tat > now and len(self._tats) <= self.max_keys:
                return
            del self._tats[key]

    def __len__(self) -> int:
        return len(self._tats)
