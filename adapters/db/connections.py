"""Where the readers get their database connections.

A GraphQL request asks its DataLoaders for many small reads, and the loaders that are
ready dispatch their batches in the same event-loop turn. Each read on a connection of its
own pays a pool checkout, a `BEGIN` (and on PostgreSQL a pre-ping) and a rollback: more
than the query itself. `SharedConnection` lends one pooled connection to every read of one
request that starts while another holds it, one at a time, and gives it back to the pool as
soon as no read is waiting. A request therefore holds a connection only while it reads,
never while it waits for an upstream, and a wave of loaders costs one checkout.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = ["Connector", "SharedConnection"]


class Connector(Protocol):
    """What a reader connects through: an `AsyncEngine` (a connection per read) or a
    `SharedConnection` (one request's reads share one)."""

    def connect(self) -> AbstractAsyncContextManager[AsyncConnection]: ...


class SharedConnection:
    """One pooled connection lent to the reads of one request, one read at a time.

    A read that arrives while the connection is lent waits its turn and then reuses it; the
    last read of a wave closes it (a rollback: reads write nothing), so the next wave checks
    out a fresh one. A read that fails closes it too, so a broken transaction is never
    lent again. A read nested in another read of the same task gets the same connection
    without waiting (it would otherwise wait for itself).
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._lock = asyncio.Lock()
        self._connection: AsyncConnection | None = None
        self._holder: asyncio.Task[object] | None = None
        self._waiting = 0
        self.checkouts = 0  # connections taken from the pool (tests and benchmarks read it)

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        task = asyncio.current_task()
        if self._connection is not None and task is not None and self._holder is task:
            yield self._connection
            return
        self._waiting += 1
        try:
            await self._lock.acquire()
        finally:
            self._waiting -= 1
        try:
            if self._connection is None:
                self._connection = await self._engine.connect()
                self.checkouts += 1
            self._holder = task
            failed = True
            try:
                yield self._connection
                failed = False
            finally:
                self._holder = None
                if failed or self._waiting == 0:
                    connection, self._connection = self._connection, None
                    await connection.close()
        finally:
            self._lock.release()
