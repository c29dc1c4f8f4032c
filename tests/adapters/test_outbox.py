"""The outbox relay: queued CDP events leave in one `track` call per round, oldest first,
are marked sent, survive a CDP outage (counted, kept, sent on the next round), are sent
exactly once by two relays racing on PostgreSQL, and leave right after a mutation when the
gateway runs the relay in the background."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.cdp.client import SegmentClient
from adapters.db import tables as t
from adapters.db.engine import create_engine
from adapters.db.outbox import OutboxRelay
from adapters.db.store import SqlLoyaltyStore
from adapters.http import current_deadline
from gateway.app import create_app
from gateway.demo import IN_PROCESS_BASE, Fakes
from gateway.settings import Settings
from gateway.upstreams import build_upstreams
from loyalty.upstreams import TrackEvent
from resolvers.node import local_id
from tests.conftest import Clock, token
from tests.graphql.conftest import ENROLL, RECORD

WHEN = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
SENT_AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # the test clock's start


class Outage(httpx.AsyncBaseTransport):
    """The fakes in process; `down` makes every call a 503. Records each batch's messageIds
    as sent over the wire (the fake itself keeps one copy per messageId)."""

    def __init__(self, fakes: Fakes) -> None:
        self.inner = httpx.ASGITransport(app=fakes.app())
        self.down = False
        self.wire: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            return httpx.Response(503, json={"message": "Service Unavailable"}, request=request)
        if request.url.path.endswith("/v1/batch"):
            body = json.loads(await request.aread())
            self.wire.extend(m["messageId"] for m in body["batch"])
        return await self.inner.handle_async_request(request)


@dataclass
class Bench:
    engine: AsyncEngine
    fakes: Fakes
    outage: Outage
    cdp: SegmentClient
    clock: Clock

    def relay(self, **options: Any) -> OutboxRelay:
        return OutboxRelay(self.engine, self.cdp, clock=self.clock, **options)

    async def queue(self, *events: TrackEvent) -> None:
        """Queue events as a mutation does: in a ledger session's transaction."""
        async with SqlLoyaltyStore(self.engine).session() as session:
            await session.add_outbox(events)

    async def rows(self) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            result = await conn.execute(
                select(
                    t.outbox.c.message_id, t.outbox.c.sent_at, t.outbox.c.attempts,
                    t.outbox.c.last_error,
                ).order_by(t.outbox.c.id)
            )  # fmt: skip
            return [dict(row._mapping) for row in result]

    def batch_calls(self) -> int:
        return sum(1 for r in self.fakes.cdp.requests if r.path.endswith("/v1/batch"))


@pytest.fixture
async def bench(settings: Settings, fakes: Fakes, clock: Clock) -> AsyncIterator[Bench]:
    outage = Outage(fakes)
    engine = create_engine(settings.database_url)
    async with httpx.AsyncClient(mounts={IN_PROCESS_BASE: outage}) as http:
        cdp = build_upstreams(settings.model_copy(update={"upstream_retries": 0}), http).cdp
        yield Bench(engine, fakes, outage, cdp, clock)
    await engine.dispose()


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if await check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("it never happened")


async def _now(value: bool) -> bool:
    return value


async def _attempted(bench: Bench) -> bool:
    return bool((await bench.rows())[0]["attempts"])


def event(n: int, user: str = "cust-1", **properties: Any) -> TrackEvent:
    return TrackEvent(
        user_id=user,
        event="Loyalty Points Earned",
        properties={"points": 10 * n, "order_id": f"HR-{n}", **properties},
        timestamp=WHEN + timedelta(minutes=n),
        message_id=f"msg-{n}",
    )


def message(n: int, user: str = "cust-1") -> dict[str, Any]:
    """What Segment receives for `event(n)`."""
    return {
        "type": "track",
        "userId": user,
        "event": "Loyalty Points Earned",
        "properties": {"points": 10 * n, "order_id": f"HR-{n}"},
        "timestamp": f"2026-11-20T09:{30 + n}:00+00:00",
        "messageId": f"msg-{n}",
    }


async def test_queued_events_leave_in_one_track_call_and_are_marked_sent(bench: Bench) -> None:
    await bench.queue(event(1), event(2, user="cust-2"))
    await bench.queue(event(3))
    relay = bench.relay()

    assert await relay.drain_once() == 3

    assert bench.fakes.cdp.tracked == [message(1), message(2, user="cust-2"), message(3)]
    assert bench.batch_calls() == 1
    assert await bench.rows() == [
        {"message_id": f"msg-{n}", "sent_at": SENT_AT, "attempts": 0, "last_error": None}
        for n in (1, 2, 3)
    ]
    assert await relay.drain_once() == 0
    assert bench.batch_calls() == 1


async def test_a_round_takes_the_oldest_batch(bench: Bench) -> None:
    await bench.queue(*(event(n) for n in range(1, 6)))
    relay = bench.relay(batch_size=2)

    assert [await relay.drain_once() for _ in range(4)] == [2, 2, 1, 0]

    assert bench.outage.wire == [f"msg-{n}" for n in range(1, 6)]
    assert bench.batch_calls() == 3


async def test_cdp_down_keeps_the_rows_for_the_next_round(bench: Bench) -> None:
    await bench.queue(event(1), event(2))
    relay = bench.relay()
    bench.outage.down = True

    assert await relay.drain_once() == 0

    assert bench.fakes.cdp.tracked == []
    assert await bench.rows() == [
        {
            "message_id": f"msg-{n}",
            "sent_at": None,
            "attempts": 1,
            "last_error": "cdp: HTTP 503",
        }
        for n in (1, 2)
    ]

    bench.outage.down = False
    assert await relay.drain_once() == 2

    assert bench.fakes.cdp.tracked == [message(1), message(2)]
    rows = await bench.rows()
    assert [(r["sent_at"], r["attempts"]) for r in rows] == [(SENT_AT, 1), (SENT_AT, 1)]


async def test_a_bug_in_sending_keeps_the_rows_too(
    bench: Bench, monkeypatch: pytest.MonkeyPatch
) -> None:
    await bench.queue(event(1))

    async def broken(events: Any) -> None:
        raise TypeError("not JSON serializable")

    monkeypatch.setattr(bench.cdp, "track", broken)
    assert await bench.relay().drain_once() == 0
    [row] = await bench.rows()
    assert (row["sent_at"], row["attempts"], row["last_error"]) == (
        None,
        1,
        "not JSON serializable",
    )


async def test_the_relay_runs_on_until_the_cdp_is_back(bench: Bench) -> None:
    await bench.queue(event(1))
    bench.outage.down = True
    relay = bench.relay(interval=0.02)
    task = asyncio.create_task(relay.run())
    try:
        await eventually(lambda: _attempted(bench))
        bench.outage.down = False
        await eventually(lambda: _now(bool(bench.fakes.cdp.tracked)))
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert bench.fakes.cdp.tracked == [message(1)]


async def test_two_relays_send_every_row_exactly_once(bench: Bench, database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only (FOR UPDATE SKIP LOCKED); set PATRON_TEST_DATABASE_URL")
    ids = range(1, 201)
    await bench.queue(*(event(n) for n in ids))
    bench.fakes.cdp.latency = 0.02  # each call holds its rows' locks a while
    one, two = bench.relay(batch_size=15), bench.relay(batch_size=15)

    async def drain(relay: OutboxRelay) -> int:
        total = 0
        while sent := await relay.drain_once():
            total += sent
        return total

    by_one, by_two = await asyncio.gather(drain(one), drain(two))

    assert by_one + by_two == 200
    assert by_one > 0 and by_two > 0, "the relays did not overlap"
    assert sorted(bench.outage.wire) == sorted(f"msg-{n}" for n in ids)  # none twice
    rows = await bench.rows()
    assert all(r["sent_at"] == SENT_AT and r["attempts"] == 0 for r in rows)


# --- in the gateway ---------------------------------------------------------------------
async def test_the_gateway_sends_a_mutations_events_right_after_it(
    settings: Settings, fakes: Fakes, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The background relay, nudged by the commit: out long before its interval, and not
    under the deadline of the request that nudged it (the relay outlives the request)."""
    http = fakes.http_client()
    app = create_app(
        settings.model_copy(update={"outbox_relay": True, "outbox_interval": 60.0}),
        http=http,
        clock=clock,
    )
    async with app.router.lifespan_context(app):
        cdp = app.state.gateway.outbox.cdp
        deadlines: list[float | None] = []
        send = cdp.track

        async def track(events: Sequence[TrackEvent]) -> None:
            deadlines.append(current_deadline())
            await send(events)

        monkeypatch.setattr(cdp, "track", track)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://patron.test") as client:

            async def gql(query: str, variables: dict[str, Any]) -> dict[str, Any]:
                response = await client.post(
                    "/graphql",
                    json={"query": query, "variables": variables},
                    headers={"Authorization": f"Bearer {token('pos-1', 'service')}"},
                )
                data: dict[str, Any] = response.json()["data"]
                return data

            enrolled = await gql(ENROLL, {"input": {"commerceCustomerId": "cust-1"}})
            member_id = enrolled["enrollMember"]["member"]["id"]
            recorded = await gql(
                RECORD,
                {
                    "input": {
                        "memberId": member_id,
                        "orderId": "HR-1",
                        "total": {"amount": "120.00", "currencyCode": "CAD"},
                        "channel": "POS",
                        "idempotencyKey": "purchase-HR-1",
                    }
                },
            )
            txn = recorded["recordPurchase"]["transaction"]
            await eventually(lambda: _now(bool(fakes.cdp.tracked)))
    await http.aclose()
    assert deadlines == [None]
    [sent] = fakes.cdp.tracked
    transaction_id = int(local_id(txn["id"], "PointsTransaction") or 0)
    assert sent == {
        "type": "track",
        "userId": "cust-1",
        "event": "Loyalty Points Earned",
        "properties": {
            "points": 120,
            "kind": "EARN",
            "status": "PENDING",
            "transaction_id": transaction_id,
            "order_id": "HR-1",
            "program": "club-harry",
        },
        "timestamp": "2026-11-23T12:00:00+00:00",
        "messageId": f"patron-club-harry-txn-{transaction_id}",
    }
