"""aiosqlite connections whose statements take one trip to the connection's thread.

aiosqlite runs every sqlite3 call on the connection's own thread: each call queues a function,
wakes the thread, and wakes the event loop again with the result. SQLAlchemy's aiosqlite
adapter makes four such calls per statement (open a cursor, execute, fetch every row, close the
cursor), so a member view's 13 statements cost 52 round trips between the threads, and those
hand-offs were a fifth of the view's CPU in the benchmark's profile.

`PrefetchingCursor` does the four in one trip: it opens the sqlite3 cursor, executes, fetches
every row and closes it on the connection's thread, and keeps the rows, the description, the
row count and the last row id for SQLAlchemy to read afterwards. SQLAlchemy reads every row of
a non-streaming result at once anyway; the gateway streams none.

`connect` is aiosqlite's `connect` with this cursor; `adapters.db.engine` hands it to
SQLAlchemy as the creator of its connections (`async_creator_fn`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any

import aiosqlite

__all__ = ["PrefetchingConnection", "PrefetchingCursor", "connect"]

Description = tuple[tuple[Any, ...], ...] | None
Outcome = tuple[list[Any], Description, int, int | None]


def _run(connection: aiosqlite.Connection, method: str, *args: Any) -> Outcome:
    """On the connection's thread: a cursor, the statement, its rows, and the cursor closed."""
    cursor = connection._conn.cursor()
    try:
        getattr(cursor, method)(*args)
        rows = cursor.fetchall() if cursor.description else []
        return rows, cursor.description, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class PrefetchingCursor(aiosqlite.Cursor):
    """An aiosqlite cursor that executes, fetches and closes in one trip to the thread."""

    def __init__(self, conn: aiosqlite.Connection) -> None:  # no sqlite3 cursor until execute
        self.iter_chunk_size = conn._iter_chunk_size
        self._conn = conn
        self._rows: list[Any] = []
        self._description: Description = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    async def __aenter__(self) -> PrefetchingCursor:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _run(self, method: str, *args: Any) -> PrefetchingCursor:
        work = partial(_run, self._conn, method, *args)
        outcome: Outcome = await self._conn._execute(work)  # type: ignore[no-untyped-call]
        self._rows, self._description, self._rowcount, self._lastrowid = outcome
        self._rows.reverse()  # popped from the end, in order
        return self

    async def execute(self, sql: str, parameters: Iterable[Any] | None = None) -> PrefetchingCursor:
        return await self._run("execute", sql, [] if parameters is None else parameters)

    async def executemany(self, sql: str, parameters: Iterable[Iterable[Any]]) -> PrefetchingCursor:
        return await self._run("executemany", sql, parameters)

    async def executescript(self, sql_script: str) -> PrefetchingCursor:
        return await self._run("executescript", sql_script)

    async def fetchone(self) -> Any:
        return self._rows.pop() if self._rows else None

    async def fetchmany(self, size: int | None = None) -> Sequence[Any]:
        count = min(len(self._rows), self.iter_chunk_size if size is None else size)
        return [self._rows.pop() for _ in range(count)]

    async def fetchall(self) -> Sequence[Any]:
        rows, self._rows = self._rows[::-1], []
        return rows

    async def close(self) -> None:  # the sqlite3 cursor was closed on the thread already
        self._rows = []

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._lastrowid

    @property
    def arraysize(self) -> int:
        return self.iter_chunk_size

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self.iter_chunk_size = value

    @property
    def description(self) -> Description:  # type: ignore[override]  # None without rows, as sqlite3
        return self._description

    @property
    def connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection = self._conn._conn
        return connection


class PrefetchingConnection(aiosqlite.Connection):
    def cursor(self) -> PrefetchingCursor:  # type: ignore[override]
        return PrefetchingCursor(self)


def connect(
    database: str | Path, *, iter_chunk_size: int = 64, **kwargs: Any
) -> PrefetchingConnection:
    """aiosqlite's `connect`, with `PrefetchingCursor`s; the thread is a daemon, as SQLAlchemy
    makes aiosqlite's (a connection never closed does not keep the process alive)."""
    location = str(database)

    def connector() -> sqlite3.Connection:
        connection: sqlite3.Connection = sqlite3.connect(location, **kwargs)
        return connection

    connection = PrefetchingConnection(connector, iter_chunk_size)
    connection._thread.daemon = True
    return connection
