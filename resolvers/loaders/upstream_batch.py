from __future__ import annotations

import asyncio
from typing import TypeVar

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

    def _after(self, remaining: int) -> None:
        if remaining > 0:
            self.loop.call_soon(self._after, remaining - 1)
        else:
            dispatch_queue(self)
