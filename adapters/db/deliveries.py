"""Small SQLAlchemy Core reads and writes for the commerce webhook and the backfill:

- `SqlDeliveryLog`: the messages (and return items) already handled (`webhook_deliveries`);
- `SqlRecordedOrders`: which orders already have a purchase (`purchases`), by any path;
- `SqlJobState`: checkpoints of resumable jobs (`job_state`).

The ledger's own writes stay in `adapters/db/store.py`; nothing here moves points.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapters.db import tables as t
from adapters.db.engine import WRITE_OPTION

IN_CHUNK = 500  # ids per IN (...) list


class _Writes:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    def _insert(self, conn: AsyncConnection) -> Any:
        return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncConnection]:
        """One write transaction (`BEGIN IMMEDIATE` on SQLite)."""
        async with self.engine.connect() as conn:
            conn = await conn.execution_options(**{WRITE_OPTION: True})
            async with conn.begin():
                yield conn


class SqlDeliveryLog(_Writes):
    """`loyalty.commerce_events.DeliveryLog` on `webhook_deliveries`."""

    async def seen(self, source: str, ids: Sequence[str]) -> set[str]:
        wd = t.webhook_deliveries
        found: set[str] = set()
        async with self.engine.connect() as conn:
            for start in range(0, len(ids), IN_CHUNK):
                chunk = list(ids[start : start + IN_CHUNK])
                rows = await conn.execute(
                    select(wd.c.message_id).where(wd.c.source == source, wd.c.message_id.in_(chunk))
                )
                found.update(rows.scalars())
        return found

    async def record(
        self, entries: Sequence[tuple[str, str]], at: datetime
    ) -> set[tuple[str, str]]:
        """Insert the entries that are not there yet, in one transaction; returns those."""
        inserted: set[tuple[str, str]] = set()
        async with self._writing() as conn:
            insert = self._insert(conn)
            for source, message_id in dict.fromkeys(entries):
                result = await conn.execute(
                    insert(t.webhook_deliveries)
                    .values(source=source, message_id=message_id, received_at=at)
                    .on_conflict_do_nothing(index_elements=["source", "message_id"])
                )
                if result.rowcount == 1:
                    inserted.add((source, message_id))
        return inserted

    async def count(self, source: str | None = None) -> int:
        """How many deliveries are recorded (of one source); for operations and tests."""
        wd = t.webhook_deliveries
        statement = select(func.count()).select_from(wd)
        if source is not None:
            statement = statement.where(wd.c.source == source)
        async with self.engine.connect() as conn:
            return int((await conn.execute(statement)).scalar_one())


class SqlRecordedOrders:
    """`loyalty.commerce_orders.RecordedOrders` on `purchases`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def recorded_orders(self, order_ids: Sequence[str]) -> set[str]:
        pu = t.purchases
        found: set[str] = set()
        async with self.engine.connect() as conn:
            for start in range(0, len(order_ids), IN_CHUNK):
                chunk = list(order_ids[start : start + IN_CHUNK])
                rows = await conn.execute(select(pu.c.order_id).where(pu.c.order_id.in_(chunk)))
                found.update(rows.scalars())
        return found


class SqlJobState(_Writes):
    """`loyalty.backfill.Checkpoints` on `job_state` (one JSON value per job name)."""

    async def load(self, name: str) -> dict[str, Any] | None:
        js = t.job_state
        async with self.engine.connect() as conn:
            value = (await conn.execute(select(js.c.value).where(js.c.name == name))).scalar()
        return dict(value) if isinstance(value, dict) else None

    async def save(self, name: str, value: dict[str, Any], at: datetime) -> None:
        async with self._writing() as conn:
            statement = self._insert(conn)(t.job_state).values(
                name=name, value=value, updated_at=at
            )
            await conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["name"],
                    set_={"value": statement.excluded.value, "updated_at": at},
                )
            )

    async def clear(self, name: str) -> None:
        async with self._writing() as conn:
            await conn.execute(t.job_state.delete().where(t.job_state.c.name == name))
