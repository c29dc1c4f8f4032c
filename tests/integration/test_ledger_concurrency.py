"""The ledger under concurrency: the acceptance tests of "never negative, exactly once".

Redemptions and crossing gifts race from two OS processes (multiprocessing 'spawn', each
process with its own engine and connection pool, 20+ coroutines each, released together by
a barrier), on PostgreSQL (row locks) and on a SQLite file (BEGIN IMMEDIATE): no wallet is
overdrawn, points are conserved, and no deadlock happens. In one process: one order
delivered by many callers earns once, a replay storm on one idempotency key makes one
transaction that every caller gets back, returns racing redemptions never overdraw, daily
limits (awards, gifts) hold, and the maturation job racing redemptions matures once.
Every test ends with `tests.conftest.assert_ledger_balances`.

The PostgreSQL cases need PATRON_TEST_DATABASE_URL (they are skipped, with the reason,
without it); they run in the session's fresh database, truncated before each test.
"""

from __future__ import annotations

import asyncio
import dataclasses
import faulthandler
import multiprocessing
import queue
import shutil
import time
import traceback
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.db import tables as t
from adapters.db.engine import create_engine
from adapters.db.store import SqlLedgerSession, SqlLoyaltyStore
from loyalty.errors import DomainError
from loyalty.ledger import LedgerService, PointsResult, Purchase
from loyalty.members import Enrolment, MemberService
from loyalty.models import Channel, TransactionKind
from loyalty.money import Money
from loyalty.program import Program, load_program
from loyalty.store import ConcurrentWrite

PROGRAM_FILE = Path(__file__).resolve().parents[2] / "programs" / "club-harry.toml"
PROCESS_TIMEOUT = 60  # seconds a worker process may take, start-up included
POOL_SIZE = 10  # per worker process: pool_size + max_overflow = 20 connections
OK = "ok"
UNEXPECTED = "unexpected"


def utc_now() -> datetime:
    return datetime.now(UTC)


def program(**overrides: Any) -> Program:
    """Club Harry with points available at once (no return window), plus `overrides`."""
    return dataclasses.replace(load_program(PROGRAM_FILE), **{"pending_days": 0, **overrides})


# --- databases ----------------------------------------------------------------------------
@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def backend_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sqlite_template: Path,
    postgres_database: str | None,
) -> str:
    """A migrated, empty database: a SQLite file of this test, or the session's PostgreSQL
    database truncated (skipped, saying why, when PATRON_TEST_DATABASE_URL is unset)."""
    if request.param == "sqlite":
        path = tmp_path / "patron.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite+aiosqlite:///{path}"
    if postgres_database is None:
        pytest.skip(
            "PostgreSQL concurrency: set PATRON_TEST_DATABASE_URL "
            "(e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/postgres) to run it"
        )
    tables = ", ".join(f'"{table.name}"' for table in t.metadata.sorted_tables)

    async def truncate() -> None:
        engine = create_engine(postgres_database)
        async with engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        await engine.dispose()

    asyncio.run(truncate())
    return postgres_database


@asynccontextmanager
async def opened(url: str, pool_size: int = 10) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(url, pool_size=pool_size)
    try:
        yield engine
    finally:
        await engine.dispose()


class CountingStore:
    """The SQL store, counting the units of work that ended in a `ConcurrentWrite` (each
    one is retried by `run_once`) and keeping those caused by a deadlock."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.inner = SqlLoyaltyStore(engine)
        self.reader = self.inner.reader
        self.conflicts = 0
        self.deadlocks: list[str] = []

    @asynccontextmanager
    async def session(self) -> AsyncIterator[SqlLedgerSession]:
        try:
            async with self.inner.session() as session:
                yield session
        except ConcurrentWrite as exc:
            self.conflicts += 1
            cause = exc.__cause__
            code = getattr(getattr(cause, "orig", None), "sqlstate", None) or getattr(
                getattr(cause, "orig", None), "pgcode", None
            )
            if code == "40P01" or "deadlock" in str(exc).lower():
                self.deadlocks.append(str(exc))
            raise


def services(engine: AsyncEngine, **overrides: Any) -> tuple[CountingStore, LedgerService]:
    store = CountingStore(engine)
    return store, LedgerService(store, program(**overrides), utc_now)  # type: ignore[arg-type]


async def member_with_points(engine: AsyncEngine, customer: str, amount: str) -> str:
    """Enrol a member and give it `amount` CAD worth of available points (1 point per CAD
    at the entry tier, no return window)."""
    store, ledger = services(engine)
    member_id = await MemberService(store, utc_now).enroll(  # type: ignore[arg-type]
        Enrolment(commerce_customer_id=customer)
    )
    result = await ledger.record_purchase(
        Purchase(f"seed-{customer}", Money.of(amount, "CAD"), Channel.POS, member_id),
        f"seed-{customer}",
    )
    assert result.transaction_id is not None
    return member_id


async def available(engine: AsyncEngine, member_id: str) -> tuple[int, int]:
    """(available, pending) points of a member's own wallet, as the API reads them."""
    reader = SqlLoyaltyStore(engine).reader
    wallet = (await reader.wallets([member_id], utc_now(), history=False))[member_id]
    return wallet.available, wallet.pending


async def transaction_count(engine: AsyncEngine, kind: TransactionKind) -> int:
    tx = t.ledger_transactions
    async with engine.connect() as conn:
        count = (
            await conn.execute(select(func.count()).where(tx.c.kind == kind.value))
        ).scalar_one()
    return int(count)


async def check_books(engine: AsyncEngine) -> None:
    from tests.conftest import assert_ledger_balances

    await assert_ledger_balances(engine)


# --- calls, run by coroutines in one or several processes ---------------------------------
@dataclass(frozen=True)
class Call:
    operation: str  # "redeem" | "gift" | "purchase" | "return" | "award"
    member_id: str
    points: int
    key: str
    to_member_id: str | None = None
    order_id: str | None = None
    amount: str | None = None


@dataclass
class Outcomes:
    """What the calls of one process (or of all) came to."""

    counts: Counter[str] = field(default_factory=Counter)  # "ok" or a user error code
    by_operation: Counter[str] = field(default_factory=Counter)  # "redeem:ok", ...
    transaction_ids: list[int | None] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)  # tracebacks
    conflicts: int = 0  # ConcurrentWrite retries
    deadlocks: list[str] = field(default_factory=list)
    windows: list[tuple[float, float]] = field(default_factory=list)  # (first start, last end)

    def add(self, other: Outcomes) -> None:
        self.counts.update(other.counts)
        self.by_operation.update(other.by_operation)
        self.windows.extend(other.windows)
        self.transaction_ids.extend(other.transaction_ids)
        self.unexpected.extend(other.unexpected)
        self.conflicts += other.conflicts
        self.deadlocks.extend(other.deadlocks)


def invoke(ledger: LedgerService, call: Call) -> Awaitable[PointsResult]:
    if call.operation == "redeem":
        return ledger.redeem(call.member_id, call.points, "concurrency test", call.key)
    if call.operation == "gift":
        assert call.to_member_id is not None
        return ledger.gift(call.member_id, call.to_member_id, call.points, None, call.key)
    if call.operation == "purchase":
        assert call.order_id is not None and call.amount is not None
        purchase = Purchase(
            call.order_id, Money.of(call.amount, "CAD"), Channel.POS, call.member_id
        )
        return ledger.record_purchase(purchase, call.key)
    if call.operation == "return":
        assert call.order_id is not None and call.amount is not None
        return ledger.return_purchase(call.order_id, Money.of(call.amount, "CAD"), call.key)
    if call.operation == "award":
        return ledger.award(
            call.member_id, call.points, "concurrency test", call.key, associate="assoc-1",
            store_id="TOR-1",
        )  # fmt: skip
    raise ValueError(call.operation)


async def run_calls(
    engine: AsyncEngine,
    calls: list[Call],
    overrides: dict[str, Any],
    *,
    start: Callable[[], Awaitable[None]] | None = None,
) -> Outcomes:
    """Run every call at once (one coroutine each, `asyncio.gather`), once `start` returns."""
    store, ledger = services(engine, **overrides)
    outcomes = Outcomes()

    async def one(call: Call) -> None:
        try:
            result = await invoke(ledger, call)
        except DomainError as error:
            label = error.code.value
        except Exception:
            label = UNEXPECTED
            outcomes.unexpected.append(traceback.format_exc())
        else:
            label = OK
            outcomes.transaction_ids.append(result.transaction_id)
        outcomes.counts[label] += 1
        outcomes.by_operation[f"{call.operation}:{label}"] += 1

    if start is not None:
        await start()
    began = time.time()
    await asyncio.gather(*(one(call) for call in calls))
    outcomes.windows.append((began, time.time()))
    outcomes.conflicts = store.conflicts
    outcomes.deadlocks = list(store.deadlocks)
    return outcomes


# --- the worker processes -----------------------------------------------------------------
def _worker(
    url: str, calls: list[Call], overrides: dict[str, Any], barrier: Any, results: Any
) -> None:
    """A gateway-like process: its own engine and pool; waits at the barrier for the other
    processes, then runs its calls concurrently. Puts its `Outcomes`, or its crash, on
    `results` (a crash also breaks the barrier, so the other processes stop waiting)."""
    faulthandler.dump_traceback_later(PROCESS_TIMEOUT, exit=True)  # never outlive the test
    try:
        asyncio.run(_worker_main(url, calls, overrides, barrier, results))
    except BaseException:
        barrier.abort()
        results.put(("crashed", traceback.format_exc()))


async def _worker_main(
    url: str, calls: list[Call], overrides: dict[str, Any], barrier: Any, results: Any
) -> None:
    # A gateway's pool: at most 2 x POOL_SIZE connections per process (PostgreSQL allows
    # 100 in all), so the calls of a process also queue for connections, as in production.
    async with opened(url, pool_size=POOL_SIZE) as engine:

        async def ready() -> None:
            # Open the pool's connections before the start, so the burst is not staggered
            # by connection set-up, then start together with the other processes.
            async def hold() -> None:
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
                    await asyncio.sleep(0.05)

            if engine.dialect.name == "postgresql":
                await asyncio.gather(*(hold() for _ in range(min(len(calls), 2 * POOL_SIZE))))
            await asyncio.to_thread(barrier.wait, PROCESS_TIMEOUT)

        try:
            outcomes = await run_calls(engine, calls, overrides, start=ready)
        except BaseException:
            barrier.abort()
            results.put(("crashed", traceback.format_exc()))
            return
        results.put(("done", outcomes))


async def run_in_processes(
    url: str, shares: list[list[Call]], overrides: dict[str, Any] | None = None
) -> Outcomes:
    """Run each share of the calls in its own spawned process, all released together."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(shares))
    results = context.Queue()
    processes = [
        context.Process(
            target=_worker,
            args=(url, share, overrides or {}, barrier, results),
            name=f"ledger-worker-{i}",
            daemon=True,
        )
        for i, share in enumerate(shares)
    ]
    for process in processes:
        process.start()
    total = Outcomes()
    try:
        deadline = time.monotonic() + PROCESS_TIMEOUT
        for _ in processes:
            while True:
                try:
                    status, value = await asyncio.to_thread(results.get, True, 0.5)
                    break
                except queue.Empty:  # is everybody still alive, and in time?
                    dead = [(p.name, p.exitcode) for p in processes if p.exitcode not in (None, 0)]
                    assert not dead, f"worker processes died without an answer: {dead}"
                    assert time.monotonic() < deadline, "worker processes did not finish in time"
            assert status == "done", f"a worker process failed:\n{value}"
            total.add(value)
    finally:
        for process in processes:
            await asyncio.to_thread(process.join, 10)
            if process.is_alive():  # only after a failure: stop what this test started
                process.kill()
                await asyncio.to_thread(process.join, 10)
        results.close()
    # Every process was still running its calls when the last one started its own.
    assert max(w[0] for w in total.windows) < min(w[1] for w in total.windows), total.windows
    return total


# --- 1. and 3. redemptions from two processes ---------------------------------------------
async def test_forty_redemptions_from_two_processes_spend_exactly_the_balance(
    backend_url: str,
) -> None:
    """1,000 points, 40 concurrent redemptions of 100 (each its own idempotency key), half
    in each of two processes: exactly 10 succeed, 30 are refused for insufficient points,
    nothing else happens, and the wallet ends at exactly 0."""
    async with opened(backend_url) as engine:
        member = await member_with_points(engine, "cust-redeemer", "1000.00")
        assert await available(engine, member) == (1000, 0)
        calls = [Call("redeem", member, 100, key=f"redeem-{i:02d}") for i in range(40)]

        outcomes = await run_in_processes(backend_url, [calls[0::2], calls[1::2]])
        print(f"redemptions: {outcomes.counts}, {outcomes.conflicts} retried conflicts")

        assert not outcomes.unexpected, "\n".join(outcomes.unexpected)
        assert outcomes.counts == {OK: 10, "INSUFFICIENT_POINTS": 30}
        assert len(set(outcomes.transaction_ids)) == 10
        assert await available(engine, member) == (0, 0)
        assert await transaction_count(engine, TransactionKind.REDEEM) == 10
        await check_books(engine)


# --- 2. crossing gifts from two processes -------------------------------------------------
async def test_crossing_gifts_from_two_processes_conserve_points_without_deadlock(
    backend_url: str,
) -> None:
    """Two members with 5,000 points each; 50 gifts of 10 from A to B and 50 from B to A at
    once, spread over two processes. The wallets are locked in one order, so every gift
    succeeds, no deadlock is ever detected, retries (if any) never run out, and A and B
    end where they started: 10,000 points between them, 5,000 each."""
    async with opened(backend_url) as engine:
        a = await member_with_points(engine, "cust-a", "5000.00")
        b = await member_with_points(engine, "cust-b", "5000.00")
        calls: list[Call] = []
        for i in range(50):
            calls.append(Call("gift", a, 10, key=f"gift-a-b-{i:02d}", to_member_id=b))
            calls.append(Call("gift", b, 10, key=f"gift-b-a-{i:02d}", to_member_id=a))

        outcomes = await run_in_processes(
            backend_url,
            [calls[:50], calls[50:]],  # each: 25 A->B and 25 B->A, interleaved
            {"gifting_max_points_per_day": 1_000_000},
        )

        print(f"crossing gifts: {outcomes.counts}, {outcomes.conflicts} retried conflicts")
        assert not outcomes.unexpected, "\n".join(outcomes.unexpected)
        assert not outcomes.deadlocks, outcomes.deadlocks
        assert outcomes.counts == {OK: 100}
        assert len(set(outcomes.transaction_ids)) == 100
        balances = (await available(engine, a), await available(engine, b))
        assert balances == ((5000, 0), (5000, 0))
        assert await transaction_count(engine, TransactionKind.GIFT_SENT) == 100
        assert await transaction_count(engine, TransactionKind.GIFT_RECEIVED) == 100
        await check_books(engine)


# --- 4. one order, many deliveries --------------------------------------------------------
async def test_one_order_delivered_ten_times_at_once_earns_once(backend_url: str) -> None:
    """The same order arrives by 10 paths at once (webhook, POS, backfill...), each with its
    own idempotency key: it earns once, and every caller gets that one transaction."""
    async with opened(backend_url) as engine:
        member = await MemberService(SqlLoyaltyStore(engine), utc_now).enroll(
            Enrolment(commerce_customer_id="cust-order")
        )
        calls = [
            Call("purchase", member, 0, key=f"path-{i}", order_id="ORDER-42", amount="250.00")
            for i in range(10)
        ]

        outcomes = await run_calls(engine, calls, {})

        assert not outcomes.unexpected, "\n".join(outcomes.unexpected)
        assert outcomes.counts == {OK: 10}
        assert len(set(outcomes.transaction_ids)) == 1
        assert outcomes.transaction_ids[0] is not None
        assert await transaction_count(engine, TransactionKind.EARN) == 1
        async with engine.connect() as conn:
            purchases = (await conn.execute(select(func.count()).select_from(t.purchases))).scalar()
        assert purchases == 1
        assert await available(engine, member) == (250, 0)
        await check_books(engine)


# --- 5. a replay storm --------------------------------------------------------------------
@pytest.mark.parametrize("operation", ["redeem", "purchase"])
async def test_a_replay_storm_on_one_idempotency_key_makes_one_transaction(
    backend_url: str, operation: str
) -> None:
    """20 concurrent calls with the same idempotency key and input (a client retrying hard):
    one transaction, and every caller gets its id."""
    async with opened(backend_url) as engine:
        member = await member_with_points(engine, "cust-storm", "1000.00")
        call = Call(operation, member, 100, key="storm", order_id="ORDER-STORM", amount="300.00")

        outcomes = await run_calls(engine, [call] * 20, {})

        assert not outcomes.unexpected, "\n".join(outcomes.unexpected)
        assert outcomes.counts == {OK: 20}
        assert len(set(outcomes.transaction_ids)) == 1
        assert outcomes.transaction_ids[0] is not None
        if operation == "redeem":
            assert await transaction_count(engine, TransactionKind.REDEEM) == 1
            assert await available(engine, member) == (900, 0)
        else:
            assert await transaction_count(engine, TransactionKind.EARN) == 2  # seed + storm
            assert await available(engine, member) == (1300, 0)
        await check_books(engine)


# --- beyond the list: the other rules that must hold under concurrency -------------
async def test_returns_racing_redemptions_never_overdraw(backend_url: str) -> None:
    """An order that earned 1,000 points is returned in 10 parts while 10 redemptions of 100
    race them: each part claws back what is still there (never below zero), each redemption
    succeeds or is refused whole, and together they take exactly the 1,000 points."""
    async with opened(backend_url) as engine:
        member = await member_with_points(engine, "cust-returns", "1000.00")
        calls: list[Call] = []
        for i in range(10):
            calls.append(Call("redeem", member, 100, key=f"redeem-{i}"))
            calls.append(
                Call(
                    "return",
                    member,
                    0,
                    key=f"return-{i}",
                    order_id="seed-cust-returns",
                    amount="100.00",
                )
            )

        outcomes = await run_calls(engine, calls, {})

        assert not outcomes.unexpected, "\n".join(outcomes.unexpected)
        redeemed = outcomes.by_operation["redeem:ok"]
        assert redeemed + outcomes.by_operation["redeem:INSUFFICIENT_POINTS"] == 10
        assert outcomes.by_operation["return:ok"] == 10
        tx = t.ledger_transactions
        async with engine.connect() as conn:
            clawed = (
                await conn.execute(
                    select(func.coalesce(func.sum(tx.c.points), 0)).where(
                        tx.c.kind == TransactionKind.RETURN.value
                    )
                )
            ).scalar_one()
            returned = (
                await conn.execute(select(t.purchases.c.returned_amount_minor))
            ).scalar_one()
        assert redeemed * 100 - int(clawed) == 1000  # RETURN points are negative
        assert returned == 100_000  # the whole order, in cents
        assert await available(engine, member) == (0, 0)
        await check_books(engine)


async def test_daily_limits_hold_under_concurrency(backend_url: str) -> None:
    """Limits are checked under a lock: 10 concurrent awards of 500 by one associate (2,000
    a day) and 10 concurrent gifts of 1,000 by one member (5,000 a day) let exactly 4 and 5
    through."""
    async with opened(backend_url) as engine:
        giver = await member_with_points(engine, "cust-giver", "10000.00")
        friend = await member_with_points(engine, "cust-friend", "1.00")
        calls = [Call("award", friend, 500, key=f"award-{i}") for i in range(10)] + [
            Call("gift", giver, 1000, key=f"gift-{i}", to_member_id=friend) for i in range(10)
        ]

        outcomes = await run_calls(engine, calls, {})

        assert not outcomes.unexpected, "\n".join(outcomes.unexpected)
        assert outcomes.by_operation == {
            "award:ok": 4,
            "award:LIMIT_EXCEEDED": 6,
            "gift:ok": 5,
            "gift:LIMIT_EXCEEDED": 5,
        }
        assert await available(engine, giver) == (5000, 0)
        assert await available(engine, friend) == (1 + 2000 + 5000, 0)
        await check_books(engine)


async def test_the_maturation_job_racing_redemptions_matures_each_earn_once(
    backend_url: str,
) -> None:
    """Earns past their return window are matured by whoever comes first: two overlapping
    runs of the maturation job or a redemption (which matures under its wallet lock). Each
    earn moves from pending to available exactly once, and every redemption sees it."""
    async with opened(backend_url) as engine:
        store = SqlLoyaltyStore(engine)
        ledger = LedgerService(store, load_program(PROGRAM_FILE), utc_now)  # 30 pending days
        assert ledger.program.pending_days == 30
        members = []
        for i in range(10):
            member = await MemberService(store, utc_now).enroll(
                Enrolment(commerce_customer_id=f"cust-due-{i}")
            )
            bought = utc_now() - timedelta(days=31)
            purchase = Purchase(
                f"due-{i}", Money.of("1000.00", "CAD"), Channel.POS, member, occurred_at=bought
            )
            assert (await ledger.record_purchase(purchase, f"due-{i}")).transaction_id is not None
            members.append(member)

        async def job() -> int:
            return await ledger.mature_pending()

        redemptions = run_calls(
            engine, [Call("redeem", m, 600, key=f"r-{m}") for m in members], {"pending_days": 30}
        )
        matured_a, matured_b, outcomes = await asyncio.gather(job(), job(), redemptions)

        assert not outcomes.unexpected, "\n".join(outcomes.unexpected)
        assert outcomes.counts == {OK: 10}
        assert matured_a + matured_b <= 10
        for member in members:
            assert await available(engine, member) == (400, 0)
        tx = t.ledger_transactions
        async with engine.connect() as conn:
            maturations = (
                await conn.execute(
                    select(func.count()).where(
                        tx.c.kind == TransactionKind.ADJUSTMENT.value,
                        tx.c.description == "Return window passed",
                    )
                )
            ).scalar_one()
        assert maturations == 10
        await check_books(engine)
