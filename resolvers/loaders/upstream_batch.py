from __future__ import annotations

import asyncio
from typing import Any, TypeVar

from aiodataloader import DataLoader, Loader, dispatch_queue

K = TypeVar("K")
V = TypeVar("V")


class UpstreamBatchLoader(DataLoader[K, V]):
    """A loader whose batch waits a few event-loop turns before it is sent.

    aiodataloader dispatches a batch on the next loop turn. For the database that is right;
    for an upstream call (tens of milliseconds) it splits one logical batch in two when
    sibling fields reach the loader a turn or two apart (tier content and offer content,
    say). Waiting `ticks` turns costs microseconds and keeps them in one call.
    """

    ticks = 4

    def do_resolve_reject(self, key: K, future: asyncio.Future[V]) -> None:
        self._queue.append(Loader(key=key, future=future))
        if len(self._queue) == 1:
            self.loop.call_soon(self._after, self.ticks)

    def prefetch(self, key: K) -> None:
        """Send the batch holding `key` now, without waiting for siblings: for a key known
        before the rest of the request is (the member's own cart, keyed by its token), so
        the call overlaps the database work it does not depend on. A later `load(key)` gets
        the same answer; a failure nobody asks for is not reported."""
        future = self.load(key)
        future.add_done_callback(_retrieve)
        if self._queue:
            dispatch_queue(self)

    def _after(self, remaining: int) -> None:
        if remaining > 0:
            self.loop.call_soon(self._after, remaining - 1)
        elif self._queue:  # empty when `prefetch` sent it already
            dispatch_queue(self)


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a prefetch's exception as seen: if the field is asked for, its resolver gets the
    error from the loader; if not, it is no one's to report."""
    if not future.cancelled():
        future.exception()
