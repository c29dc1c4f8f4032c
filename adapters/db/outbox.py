"""The outbox relay: sends the CDP events that mutations queued in the `outbox` table.

A mutation writes its events in the same database transaction as its postings, so an event
exists if and only if the points moved. The relay sends them afterwards, at least once:
`messageId` makes a repeat harmless upstream (Segment deduplicates on it).

One round (`drain_once`) runs in one database transaction: it takes the oldest unsent rows
(`FOR UPDATE SKIP LOCKED` on PostgreSQL, so two replicas never take the same rows and never
wait for each other), sends them in one `track` call, and marks them sent. The row locks are
held during the call on purpose: a replica that dies mid-call releases them, and its rows go
out in a later round. SQLite (one process, in development) reads without locks instead. A
failed call records `attempts` and `last_error` and leaves the rows for the next round.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapters.db import tables as t
from adapters.db.engine import WRITE_OPTION
from loyalty.errors import UpstreamError
from loyalty.ports import ProfilePort
from loyalty.upstreams import TrackEvent

log = logging.getLogger("patron.outbox")

MAX_BACKOFF = 60.0
MAX_ERROR_LENGTH = 2000


def _utc_now() -> datetime:
    return datetime.now(UTC)


class OutboxRelay:
    def __init__(
        self,
        engine: AsyncEngine,
        cdp: ProfilePort,
        *,
        batch_size: int = 100,
        interval: float = 2.0,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        if batch_size < 1 or interval <= 0:
            raise ValueError("batch_size must be at least 1 and interval positive")
        self.engine = engine
        self.cdp = cdp
        self.batch_size = batch_size
        self.interval = interval
        self.clock = clock
        self._wake = asyncio.Event()
        self._failures = 0

    def nudge(self) -> None:
        """Send now rather than at the next interval (called after a commit that queued
        events)."""
        self._wake.set()

    async def drain_once(self) -> int:
        """Send one batch of unsent events; how many were sent (0 when the CDP failed)."""
        oldest = (
            select(t.outbox)
            .where(t.outbox.c.sent_at.is_(None))
            .order_by(t.outbox.c.id)
            .limit(self.batch_size)
        )
        if self.engine.dialect.name == "postgresql":
            async with self.engine.begin() as conn:
                rows = (await conn.execute(oldest.with_for_update(skip_locked=True))).all()
                if not rows:
                    return 0
                return await self._record(conn, rows, await self._send(rows))
        # SQLite has no row locks: a plain read, the call outside any transaction (a write
        # lock held during it would stall every mutation), then a short write.
        async with self.engine.connect() as conn:
            rows = (await conn.execute(oldest)).all()
        if not rows:
            return 0
        error = await self._send(rows)
        async with self.engine.connect() as conn:
            conn = await conn.execution_options(**{WRITE_OPTION: True})
            async with conn.begin():
                return await self._record(conn, rows, error)

    async def _send(self, rows: Sequence[Any]) -> Exception | None:
        try:
            await self.cdp.track([_event(row) for row in rows])
        except UpstreamError as exc:
            log.warning("sending %d outbox events failed: %s", len(rows), exc)
            return exc
        except Exception as exc:  # a bug, not an outage: keep the rows all the same
            log.exception("sending %d outbox events failed", len(rows))
            return exc
        return None

    async def _record(
        self, conn: AsyncConnection, rows: Sequence[Any], error: Exception | None
    ) -> int:
        """Mark the rows sent, or count the failed attempt; how many were sent."""
        these = t.outbox.c.id.in_([row.id for row in rows])
        if error is None:
            await conn.execute(
                update(t.outbox)
                .where(these, t.outbox.c.sent_at.is_(None))
                .values(sent_at=self.clock())
            )
            self._failures = 0
            return len(rows)
        await conn.execute(
            update(t.outbox)
            .where(these)
            .values(
                attempts=t.outbox.c.attempts + 1,
                last_error=(str(error) or type(error).__name__)[:MAX_ERROR_LENGTH],
            )
        )
        self._failures += 1
        return 0

    async def run(self) -> None:
        """Drain forever: at once while full batches come back, else after `interval` or a
        nudge; after failures, back off exponentially (nudges do not shorten a back-off)."""
        while True:
            try:
                sent = await self.drain_once()
            except Exception:  # the database may be briefly down: try again later
                log.exception("the outbox relay failed a round")
                self._failures += 1
                sent = 0
            if sent >= self.batch_size:
                continue
            if self._failures:
                await asyncio.sleep(self._backoff())
                self._wake.clear()
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()

    def _backoff(self) -> float:
        return float(min(MAX_BACKOFF, self.interval * 2 ** min(self._failures, 10)))


def _event(row: Any) -> TrackEvent:
    return TrackEvent(
        user_id=row.user_id,
        event=row.event,
        properties=dict(row.properties or {}),
        timestamp=row.occurred_at,
        message_id=row.message_id,
    )
