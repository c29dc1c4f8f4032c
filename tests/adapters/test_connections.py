"""`SharedConnection`: the reads of one request that overlap share one pooled connection,
one read at a time; the connection goes back to the pool when no read waits for it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.db.connections import SharedConnection
from adapters.db.engine import create_engine


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


def pool_counts(engine: AsyncEngine) -> dict[str, int]:
    counts = {"checkout": 0, "checkin": 0}

    def on(name: str) -> Any:
        def listener(*args: Any) -> None:
            counts[name] += 1

        return listener

    for name in counts:
        event.listen(engine.sync_engine.pool, name, on(name))
    return counts


async def read(shared: SharedConnection, value: int, log: list[str] | None = None) -> int:
    async with shared.connect() as conn:
        if log is not None:
            log.append(f"start {value}")
        result = int((await conn.execute(text(f"SELECT {value}"))).scalar_one())
        await asyncio.sleep(0)  # let the others queue while this one holds the connection
        if log is not None:
            log.append(f"end {value}")
        return result


async def test_overlapping_reads_share_one_checkout_one_at_a_time(engine: AsyncEngine) -> None:
    counts = pool_counts(engine)
    shared = SharedConnection(engine)
    log: list[str] = []
    assert await asyncio.gather(*(read(shared, i, log) for i in range(5))) == [0, 1, 2, 3, 4]
    assert shared.checkouts == 1
    assert counts == {"checkout": 1, "checkin": 1}
    # One at a time: each read ends before the next starts.
    assert log == [f"{edge} {i}" for i in range(5) for edge in ("start", "end")]


async def test_reads_one_after_another_each_check_out_and_give_back(engine: AsyncEngine) -> None:
    counts = pool_counts(engine)
    shared = SharedConnection(engine)
    assert [await read(shared, 1), await read(shared, 2)] == [1, 2]
    assert shared.checkouts == 2
    assert counts == {"checkout": 2, "checkin": 2}


async def test_a_nested_read_of_the_holder_reuses_its_connection(engine: AsyncEngine) -> None:
    shared = SharedConnection(engine)
    async with shared.connect() as outer:
        async with asyncio.timeout(5):  # it would wait for itself forever
            async with shared.connect() as inner:
                assert inner is outer
                assert (await inner.execute(text("SELECT 7"))).scalar_one() == 7
    assert shared.checkouts == 1


async def test_a_failed_read_closes_the_connection_and_the_next_gets_a_fresh_one(
    engine: AsyncEngine,
) -> None:
    counts = pool_counts(engine)
    shared = SharedConnection(engine)

    async def broken() -> None:
        async with shared.connect() as conn:
            await conn.execute(text("SELECT * FROM no_such_table"))

    results = await asyncio.gather(broken(), read(shared, 3), return_exceptions=True)
    assert results[1] == 3
    assert "no_such_table" in str(results[0])
    # The failed read's connection was closed although another read was waiting.
    assert shared.checkouts == 2
    assert counts == {"checkout": 2, "checkin": 2}


async def test_a_cancelled_read_gives_the_connection_back(engine: AsyncEngine) -> None:
    counts = pool_counts(engine)
    shared = SharedConnection(engine)
    holding = asyncio.Event()

    async def slow() -> None:
        async with shared.connect():
            holding.set()
            await asyncio.sleep(60)

    task = asyncio.create_task(slow())
    await holding.wait()
    waiting = asyncio.create_task(read(shared, 4))
    await asyncio.sleep(0)
    task.cancel()
    assert await waiting == 4
    with pytest.raises(asyncio.CancelledError):
        await task
    assert counts == {"checkout": shared.checkouts, "checkin": shared.checkouts}
