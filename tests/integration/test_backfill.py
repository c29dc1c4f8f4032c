"""`patron backfill`: retroactive points from the commerce order history, exactly once,
resumable from its checkpoint; through the service function with the fakes' HTTP client,
and once as a real command against `patron fakes` served on a port."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.db.deliveries import SqlJobState
from adapters.db.engine import create_engine
from adapters.db.migrate import upgrade
from adapters.db.store import SqlLoyaltyStore
from gateway.backfill import backfill_of, run_backfill
from gateway.demo import Fakes, fake_upstream_env
from gateway.settings import Settings
from loyalty.backfill import Backfill, BackfillReport, Cursor
from loyalty.errors import UpstreamUnavailable
from loyalty.members import Enrolment, MemberService
from loyalty.upstreams import OrderPage
from tests.conftest import Clock, Harness, token
from tests.graphql.conftest import enroll

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICE = token("svc", "service")
SINCE = date(2026, 9, 1)  # midnight in Toronto: 2026-09-01T04:00Z


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def seed(fakes: Fakes) -> None:
    """Orders before and after SINCE, of members (cust-a, cust-b) and not."""
    add = fakes.commerce.add_order
    add("cust-a", "500.00", created_at=utc(2026, 8, 15, 12))  # before SINCE
    add("cust-a", "900.00", created_at=utc(2026, 9, 1, 3))  # Aug 31, 23:00 in Toronto
    add("cust-a", "20.00", created_at=utc(2026, 9, 1, 5))  # 20
    add("cust-a", "100.00", created_at=utc(2026, 9, 10, 12))  # 100
    add("cust-b", "250.50", created_at=utc(2026, 9, 12, 12))  # 250 (rounded down)
    add("stranger", "999.00", created_at=utc(2026, 9, 15, 12))  # not a member
    add("cust-a", "400.00", created_at=utc(2026, 9, 20, 12), state="Cancelled")
    add(None, "50.00", created_at=utc(2026, 9, 22, 12))  # a guest: not a member
    add("cust-b", "100.00", "USD", created_at=utc(2026, 10, 1, 12))  # 137
    add("cust-a", "80.00", created_at=utc(2026, 11, 20, 12))  # 80


EXPECTED = {"cust-a": 200, "cust-b": 387}


async def total_points(h: Harness, member_id: str) -> int:
    body = await h.gql(
        "query($id: ID!) { member(id: $id) { points { available pending } } }",
        {"id": member_id},
        SERVICE,
    )
    assert "errors" not in body, body
    p = body["data"]["member"]["points"]
    return int(p["available"]) + int(p["pending"])


def counted(report: BackfillReport) -> dict[str, int]:
    return {
        "seen": report.orders_seen,
        "earned": report.earned,
        "not_a_member": report.not_a_member,
        "cancelled": report.cancelled,
        "already_recorded": report.already_recorded,
        "rejected": len(report.rejected),
        "points": report.points_earned,
    }


def nothing_new() -> dict[str, int]:
    return dict.fromkeys(
        ("seen", "earned", "not_a_member", "cancelled", "already_recorded", "rejected", "points"),
        0,
    )


async def backfill(settings: Settings, fakes: Fakes, clock: Clock, **kwargs: Any) -> BackfillReport:
    """The service function, on the app's services, with the fakes' HTTP client."""
    async with fakes.http_client() as client:
        return await run_backfill(settings, SINCE, http=client, clock=clock, **kwargs)


# --- the service ----------------------------------------------------------------------------
async def test_backfill_earns_exact_points_once(
    harness: Harness, settings: Settings, fakes: Fakes, clock: Clock
) -> None:
    a = await enroll(harness, "cust-a")
    b = await enroll(harness, "cust-b")
    seed(fakes)

    report = await backfill(settings, fakes, clock)

    assert counted(report) == {
        "seen": 8, "earned": 5, "not_a_member": 2, "cancelled": 1,
        "already_recorded": 0, "rejected": 0, "points": 587,
    }  # fmt: skip
    assert not report.resumed
    assert await total_points(harness, a) == EXPECTED["cust-a"]
    assert await total_points(harness, b) == EXPECTED["cust-b"]
    assert "points earned   587" in report.summary()

    # The same --since again: it resumes after the last order seen, and finds nothing new.
    again = await backfill(settings, fakes, clock)
    assert again.resumed
    assert counted(again) == nothing_new()

    # From the date again: every order seen, none earns twice.
    restarted = await backfill(settings, fakes, clock, restart=True)
    assert counted(restarted) == {**nothing_new(), "seen": 8, "not_a_member": 2, "cancelled": 1, "already_recorded": 5}  # fmt: skip
    assert await total_points(harness, a) == EXPECTED["cust-a"]
    assert await total_points(harness, b) == EXPECTED["cust-b"]

    # An order created since the finished run: the next run picks up only that one.
    fakes.commerce.add_order("cust-b", "10.00", created_at=utc(2026, 11, 21, 9))
    later = await backfill(settings, fakes, clock)
    assert (later.orders_seen, later.earned, later.points_earned) == (1, 1, 10)
    assert await total_points(harness, b) == EXPECTED["cust-b"] + 10


async def test_purchases_record_the_backfill_as_source(
    harness: Harness, settings: Settings, fakes: Fakes, clock: Clock
) -> None:
    await enroll(harness, "cust-a")
    order = fakes.commerce.add_order("cust-a", "42.00", created_at=utc(2026, 10, 5, 15, 30))

    await backfill(settings, fakes, clock)

    from sqlalchemy import select

    from adapters.db import tables as t

    async with harness.engine.connect() as conn:
        row = (
            await conn.execute(select(t.purchases).where(t.purchases.c.order_id == order["id"]))
        ).one()
    assert (row.source, row.channel, row.amount_minor) == ("backfill", "WEB", 4200)
    assert row.occurred_at == utc(2026, 10, 5, 15, 30)


class FailingOnCall:
    """The commerce port, failing on its `fail_on`-th orders query."""

    def __init__(self, inner: Any, fail_on: int) -> None:
        self.inner = inner
        self.fail_on = fail_on
        self.calls = 0

    async def orders_created_since(
        self, since: datetime, *, limit: int = 100, offset: int = 0
    ) -> OrderPage:
        self.calls += 1
        if self.calls == self.fail_on:
            raise UpstreamUnavailable("commerce", "injected failure")
        page: OrderPage = await self.inner.orders_created_since(since, limit=limit, offset=offset)
        return page


async def test_an_interrupted_run_resumes_from_its_checkpoint(
    harness: Harness, settings: Settings, fakes: Fakes, clock: Clock
) -> None:
    a = await enroll(harness, "cust-a")
    b = await enroll(harness, "cust-b")
    seed(fakes)
    service = backfill_of(harness.gateway)
    failing = FailingOnCall(service.ports.orders, fail_on=2)
    interrupted = Backfill(dataclasses.replace(service.ports, orders=failing), clock, service.zone)

    pages: list[int] = []
    with pytest.raises(UpstreamUnavailable):
        await interrupted.run(SINCE, page_size=2, progress=lambda r: pages.append(r.earned))

    assert pages == [2]  # the first page (the 20.00 and the 100.00) earned, then it failed
    assert await total_points(harness, a) == 120
    checkpoint = await SqlJobState(harness.engine).load("backfill")
    assert checkpoint == {
        "since": "2026-09-01",
        "after": utc(2026, 9, 10, 12).isoformat(),
        "skip": 1,
        "complete": False,
    }

    resumed = await backfill(settings, fakes, clock, page_size=2)

    assert resumed.resumed
    assert counted(resumed) == {
        "seen": 6, "earned": 3, "not_a_member": 2, "cancelled": 1,
        "already_recorded": 0, "rejected": 0, "points": 467,
    }  # fmt: skip
    assert await total_points(harness, a) == EXPECTED["cust-a"]
    assert await total_points(harness, b) == EXPECTED["cust-b"]
    done = await SqlJobState(harness.engine).load("backfill")
    assert done is not None and done["complete"] is True


async def test_another_since_starts_fresh(
    harness: Harness, settings: Settings, fakes: Fakes, clock: Clock
) -> None:
    a = await enroll(harness, "cust-a")
    seed(fakes)
    await backfill(settings, fakes, clock)
    assert await total_points(harness, a) == 200

    async with fakes.http_client() as client:
        earlier = await run_backfill(settings, date(2026, 8, 1), http=client, clock=clock)

    assert not earlier.resumed
    assert (earlier.orders_seen, earlier.earned, earlier.already_recorded) == (10, 2, 3)
    assert earlier.points_earned == 1400  # the 500.00 and the 900.00, before the first since
    assert await total_points(harness, a) == 1600


async def test_orders_sharing_one_instant_across_pages_earn_once_each(
    harness: Harness, settings: Settings, fakes: Fakes, clock: Clock
) -> None:
    a = await enroll(harness, "cust-a")
    instant = utc(2026, 10, 1, 12)
    for amount in ("1.00", "2.00", "3.00", "4.00", "5.00"):
        fakes.commerce.add_order("cust-a", amount, created_at=instant)
    fakes.commerce.add_order("cust-a", "6.00", created_at=instant + timedelta(milliseconds=1))

    report = await backfill(settings, fakes, clock, page_size=2)

    assert (report.pages, report.orders_seen, report.earned, report.points_earned) == (
        4,
        6,
        6,
        21,
    )  # 3 full pages, then an empty one
    assert await total_points(harness, a) == 21


def test_the_cursor_moves_past_a_page() -> None:
    start = utc(2026, 9, 1)
    t1, t2 = utc(2026, 9, 2), utc(2026, 9, 3)

    def page(*stamps: datetime) -> list[Any]:
        return [type("O", (), {"created_at": s})() for s in stamps]

    assert Cursor(start).past(page(t1, t2, t2)) == Cursor(t2, 2)
    assert Cursor(t2, 2).past(page(t2, t2)) == Cursor(t2, 4)  # still the same instant
    assert Cursor(t2, 4).past(page()) == Cursor(t2, 4)
    sub_ms = t1.replace(microsecond=123456)
    assert Cursor(start).past(page(sub_ms)) == Cursor(t1.replace(microsecond=123000), 1)


async def test_a_page_size_outside_the_api_limits_is_refused(harness: Harness) -> None:
    service = backfill_of(harness.gateway)
    for size in (0, 501):
        with pytest.raises(ValueError):
            await service.run(SINCE, page_size=size)


# --- the command, against `patron fakes` on a port --------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATRON_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    env.update(extra)
    return env


@pytest.fixture
def fakes_server(tmp_path: Path) -> Iterator[str]:
    """`patron fakes` (seeded with the demo customers and their orders) on a free port."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "fakes", "--port", str(port)],
        cwd=tmp_path,
        env=clean_env({}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/ct-api/", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("patron fakes did not start") from None
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_backfill_command_against_patron_fakes(tmp_path: Path, fakes_server: str) -> None:
    database = tmp_path / "patron.db"
    url = f"sqlite+aiosqlite:///{database}"
    upgrade(url)

    async def enrol() -> None:
        engine = create_engine(url)
        members = MemberService(SqlLoyaltyStore(engine), lambda: datetime.now(UTC))
        for customer in ("demo-ava", "demo-ben"):  # demo-chloe stays a customer only
            await members.enroll(Enrolment(commerce_customer_id=customer))
        await engine.dispose()

    asyncio.run(enrol())
    env = clean_env({"PATRON_DATABASE_URL": url, **fake_upstream_env(fakes_server)})
    since = (datetime.now(UTC) - timedelta(days=365)).date().isoformat()

    def patron(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gateway", "backfill", "--since", since, *args],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    first = patron("--page-size", "3")
    assert first.returncode == 0, first.stderr
    assert summary(first.stdout) == {
        "orders seen": 7, "earned": 5, "skipped": 2, "not a member": 2, "cancelled": 0,
        "already recorded": 0, "rejected": 0, "points earned": 8838,
    }  # fmt: skip
    # Ava: 1850 + 4200 (Member), then Silver x1.25: 980 USD = 1342.60 CAD -> 1678, 640 -> 800.
    # Ben: 310.
    assert wallet_points(database) == 8838

    second = patron()
    assert second.returncode == 0, second.stderr
    assert "(resumed from its checkpoint)" in second.stdout
    assert summary(second.stdout)["earned"] == 0

    restarted = patron("--restart")
    assert restarted.returncode == 0, restarted.stderr
    assert summary(restarted.stdout)["already recorded"] == 5
    assert summary(restarted.stdout)["points earned"] == 0
    assert wallet_points(database) == 8838

    bad = patron("--page-size", "0")
    assert bad.returncode == 2
    assert "--page-size" in bad.stderr


def summary(stdout: str) -> dict[str, int]:
    """The `name  number` lines of the printed summary."""
    result: dict[str, int] = {}
    for line in stdout.splitlines():
        name, _, number = line.strip().rpartition(" ")
        if number.isdigit() and name.strip():
            result[name.strip()] = int(number)
    return result


def wallet_points(database: Path) -> int:
    with sqlite3.connect(database) as conn:
        (total,) = conn.execute(
            "SELECT COALESCE(SUM(balance), 0) FROM ledger_accounts WHERE code LIKE 'member:%'"
        ).fetchone()
    return int(total)
