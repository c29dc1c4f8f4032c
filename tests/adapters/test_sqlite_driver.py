"""adapters.db.sqlite_driver: each SQLite statement is one trip to aiosqlite's thread, and
SQLAlchemy sees the same rows, counts, ids and errors as through aiosqlite's own cursor."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.db import sqlite_driver
from adapters.db.engine import WRITE_OPTION, create_engine
from adapters.db.sqlite_driver import PrefetchingConnection


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/driver.db")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT UNIQUE)"))
    yield engine
    await engine.dispose()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of every function sent to a connection's thread."""
    sent: list[str] = []
    original = PrefetchingConnection._execute

    async def counted(self: PrefetchingConnection, fn: Callable[..., Any], *args: Any) -> Any:
        work = getattr(fn, "func", fn)  # a partial's function
        sent.append(work.__name__)
        return await original(self, fn, *args)

    monkeypatch.setattr(PrefetchingConnection, "_execute", counted)
    return sent


async def test_a_read_transaction_is_three_trips(engine: AsyncEngine, trips: list[str]) -> None:
    async with engine.connect() as conn:  # pooled: connecting is not counted below
        await conn.execute(text("SELECT 1"))
        await conn.rollback()
    trips.clear()
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT 1, 'a' UNION ALL SELECT 2, 'b'"))).all()
    assert [tuple(row) for row in rows] == [(1, "a"), (2, "b")]
    # BEGIN, the SELECT (cursor, execute, fetch, close together), and the rollback on return
    # to the pool; aiosqlite's own cursor took 3 + 4 + 1 (BEGIN has no rows to fetch).
    assert trips == ["_run", "_run", "rollback"]


async def test_rows_counts_and_ids_are_sqlite3s(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        first = await conn.execute(text("INSERT INTO notes (body) VALUES ('one')"))
        assert first.lastrowid == 1
        many = await conn.execute(
            text("INSERT INTO notes (body) VALUES (:body)"),
            [{"body": "two"}, {"body": "three"}, {"body": "four"}],
        )
        assert many.rowcount == 3
        updated = await conn.execute(text("UPDATE notes SET body = body || '!' WHERE id > 2"))
        assert updated.rowcount == 2
        returned = await conn.execute(
            text("INSERT INTO notes (body) VALUES ('five') RETURNING id, body")
        )
        assert [tuple(row) for row in returned] == [(5, "five")]
    async with engine.connect() as conn:
        result = await conn.execute(text("SELECT id, body FROM notes ORDER BY id"))
        assert list(result.keys()) == ["id", "body"]
        assert tuple(result.fetchone() or ()) == (1, "one")
        assert [tuple(row) for row in result.fetchmany(2)] == [(2, "two"), (3, "three!")]
        assert [tuple(row) for row in result.fetchall()] == [(4, "four!"), (5, "five")]
        assert result.fetchone() is None
        streamed = await conn.stream(text("SELECT id FROM notes ORDER BY id DESC"))
        assert [row[0] async for row in streamed] == [5, 4, 3, 2, 1]


async def test_errors_are_sqlalchemys_and_change_nothing(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO notes (body) VALUES ('only')"))
    with pytest.raises(IntegrityError, match=r"UNIQUE constraint failed: notes\.body"):
        async with engine.execution_options(**{WRITE_OPTION: True}).connect() as conn:
            await conn.execute(text("INSERT INTO notes (body) VALUES ('second')"))
            await conn.execute(text("INSERT INTO notes (body) VALUES ('only')"))
            await conn.commit()
    with pytest.raises(OperationalError, match="no such table: missing"):
        async with engine.connect() as conn:
            await conn.execute(text("SELECT * FROM missing"))
    async with engine.connect() as conn:  # the pool's connections still work
        bodies = (await conn.execute(text("SELECT body FROM notes"))).scalars().all()
    assert bodies == ["only"]


async def test_the_pragmas_are_set_on_every_connection(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar()
        keys = (await conn.execute(text("PRAGMA foreign_keys"))).scalar()
        busy = (await conn.execute(text("PRAGMA busy_timeout"))).scalar()
    assert (mode, keys, busy) == ("wal", 1, 30000)


async def test_the_cursor_alone_reads_in_order_and_runs_scripts(tmp_path: Path) -> None:
    """What SQLAlchemy does not call: executescript, fetchmany's default size, the context."""
    connection = await sqlite_driver.connect(tmp_path / "alone.db", iter_chunk_size=2)
    try:
        async with connection.cursor() as cursor:
            await cursor.executescript(
                "CREATE TABLE n (x INTEGER); INSERT INTO n VALUES (1), (2), (3), (4), (5);"
            )
            assert cursor.description is None
            assert await cursor.fetchall() == []
            await cursor.execute("SELECT x FROM n WHERE x > ? ORDER BY x", [1])
            assert [d[0] for d in cursor.description or ()] == ["x"]
            assert await cursor.fetchmany() == [(2,), (3,)]  # iter_chunk_size rows
            assert await cursor.fetchone() == (4,)
            assert await cursor.fetchmany(5) == [(5,)]
            assert await cursor.fetchone() is None
            await cursor.executemany("INSERT INTO n VALUES (?)", [[6], [7]])
            assert cursor.rowcount == 2
    finally:
        await connection.close()
