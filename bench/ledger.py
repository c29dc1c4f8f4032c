"""Ledger throughput: postings per second on PostgreSQL with concurrent clients.

    python -m bench.ledger [--operations 2000] [--clients 16] [--members 64]

On a fresh PostgreSQL database (created from `PATRON_BENCH_DATABASE_URL`, an admin URL,
default `postgresql+asyncpg://postgres@127.0.0.1:5432/postgres`; migrated; dropped at the
end), the same workload runs twice:

- `service`: `LedgerService` directly (what a resolver calls), one engine and pool;
- `graphql`: the whole gateway in process (`create_app` + `httpx.ASGITransport`): the
  `recordPurchase` and `redeemPoints` mutations with a `service` token signed with the
  app's secret (token check, GraphQL parsing and validation, the payload's loaders).

The workload: `--clients` concurrent clients share `--operations` operations, alternately a
purchase (a new order of 25.00 CAD, earning 25 points: one posting) and a redemption of 10
points (one posting), each for a member drawn at random from `--members` members seeded
with 5,000 points. Points are available at once (Club Harry with `pending_days = 0`), so
every operation locks its member's wallet; members drawn by two clients at once contend,
as at a busy store. Postings are counted in the database before and after each run.

It prints a markdown table and writes it to `bench/results/ledger.md`. Each run is bounded
by its operation count and by `--max-seconds`; it always stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import platform
import random
import re
import statistics
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.db import tables as t
from adapters.db.engine import create_engine
from adapters.db.store import SqlLoyaltyStore
from bench.database import admin_url, fresh_database, server_version
from gateway.app import create_app
from gateway.auth import issue_token
from gateway.demo import Fakes, fake_upstream_env
from gateway.settings import DEFAULT_PROGRAM, Settings
from loyalty.errors import DomainError
from loyalty.ledger import LedgerService, Purchase
from loyalty.members import Enrolment, MemberService
from loyalty.models import Channel
from loyalty.money import Money
from loyalty.program import Program, load_program
from resolvers.node import to_global_id

RESULTS = Path(__file__).resolve().parent / "results" / "ledger.md"
JWT_SECRET = "bench-ledger-secret-0123456789abcdef"
PURCHASE_AMOUNT = "25.00"  # CAD: 25 points at the entry tier
REDEEM_POINTS = 10
SEED_AMOUNT = "5000.00"  # CAD: 5,000 points per member before the runs

RECORD = """
mutation($input: RecordPurchaseInput!) {
  recordPurchase(input: $input) { transaction { id } userErrors { code message } }
}
"""
REDEEM = """
mutation($input: RedeemPointsInput!) {
  redeemPoints(input: $input) { transaction { id } userErrors { code message } }
}
"""


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Operation:
    """One unit of the workload: a purchase (a new order) or a redemption."""

    kind: str  # "purchase" | "redeem"
    member_id: str
    key: str


@dataclass
class Run:
    mode: str
    clients: int
    operations: int
    seconds: float
    postings: int
    latencies_ms: list[float]
    outcomes: Counter[str]
    statements: int  # SQL statements sent during the timed operations

    @property
    def postings_per_second(self) -> float:
        return self.postings / self.seconds if self.seconds else 0.0

    def percentile(self, q: int) -> float:
        if len(self.latencies_ms) < 2:
            return self.latencies_ms[0] if self.latencies_ms else 0.0
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[q - 1]


# --- the database -------------------------------------------------------------------------
async def postings_count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        count = (
            await conn.execute(select(func.count()).select_from(t.ledger_postings))
        ).scalar_one()
    return int(count)


# --- the workload -------------------------------------------------------------------------
def bench_program() -> Program:
    return dataclasses.replace(load_program(DEFAULT_PROGRAM), pending_days=0)


async def seed_members(members: MemberService, ledger: LedgerService, count: int) -> list[str]:
    ids: list[str] = []
    run = uuid.uuid4().hex[:6]
    for i in range(count):
        member_id = await members.enroll(Enrolment(commerce_customer_id=f"bench-{run}-{i}"))
        await ledger.record_purchase(
            Purchase(f"seed-{run}-{i}", Money.of(SEED_AMOUNT, "CAD"), Channel.POS, member_id),
            f"seed-{run}-{i}",
        )
        ids.append(member_id)
    return ids


def workload(mode: str, members: list[str], count: int, seed: int) -> list[Operation]:
    rng = random.Random(seed)
    return [
        Operation(
            "purchase" if i % 2 == 0 else "redeem", rng.choice(members), f"bench-{mode}-{i:06d}"
        )
        for i in range(count)
    ]


async def drive(
    operations: list[Operation],
    clients: int,
    call: Callable[[Operation], Awaitable[str]],
    max_seconds: float,
) -> tuple[float, list[float], Counter[str]]:
    """`clients` coroutines take operations from one queue until it is empty (or time is
    up); returns the wall time, each operation's latency and the outcome counts."""
    queue = iter(operations)
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()
    deadline = time.perf_counter() + max_seconds

    async def client() -> None:
        for operation in queue:
            if time.perf_counter() > deadline:
                outcomes["not run (time limit)"] += 1
                continue
            began = time.perf_counter()
            try:
                outcome = await call(operation)
            except Exception as exc:  # counted, not fatal: the table says how many
                outcome = f"{operation.kind}: {type(exc).__name__}"
            latencies.append((time.perf_counter() - began) * 1000)
            outcomes[outcome] += 1

    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - began, latencies, outcomes


async def measure(
    mode: str,
    engine: AsyncEngine,
    operations: list[Operation],
    clients: int,
    call: Callable[[Operation], Awaitable[str]],
    max_seconds: float,
) -> Run:
    warm_up = operations[: 2 * clients]
    await drive(warm_up, clients, call, max_seconds)  # connections, caches, prepared plans
    timed = operations[2 * clients :]
    before = await postings_count(engine)
    statements = 0

    def count(*_: Any) -> None:
        nonlocal statements
        statements += 1

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        seconds, latencies, outcomes = await drive(timed, clients, call, max_seconds)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
    postings = await postings_count(engine) - before
    return Run(mode, clients, len(timed), seconds, postings, latencies, outcomes, statements)


async def run_service(url: str, args: argparse.Namespace) -> Run:
    engine = create_engine(url)
    try:
        store = SqlLoyaltyStore(engine)
        ledger = LedgerService(store, bench_program(), utc_now)
        members = await seed_members(MemberService(store, utc_now), ledger, args.members)

        async def call(op: Operation) -> str:
            try:
                if op.kind == "purchase":
                    total = Money.of(PURCHASE_AMOUNT, "CAD")
                    await ledger.record_purchase(
                        Purchase(op.key, total, Channel.POS, op.member_id), op.key
                    )
                else:
                    await ledger.redeem(op.member_id, REDEEM_POINTS, "bench", op.key)
            except DomainError as error:
                return f"{op.kind}: {error.code.value}"
            return f"{op.kind}: ok"

        ops = workload("service", members, args.operations + 2 * args.clients, args.seed)
        return await measure("service", engine, ops, args.clients, call, args.max_seconds)
    finally:
        await engine.dispose()


async def run_graphql(url: str, args: argparse.Namespace) -> Run:
    with tempfile.TemporaryDirectory() as tmp:
        program_file = Path(tmp) / "club-harry-now.toml"
        source = DEFAULT_PROGRAM.read_text()
        program_file.write_text(
            re.sub(r"(?m)^pending_days\s*=.*$", "pending_days = 0", source, count=1)
        )
        fields: dict[str, Any] = {
            k.removeprefix("PATRON_").lower(): v for k, v in fake_upstream_env().items()
        }
        fields.update(
            database_url=url,
            program=program_file,
            jwt_secret=JWT_SECRET,
            card_secret="bench-card-secret",
            outbox_relay=False,  # the CDP relay is not the ledger's path; rows stay queued
        )
        settings = Settings(_env_file=None, **fields)
        fakes = Fakes()
        http = fakes.http_client()
        app = create_app(settings, http=http)
        try:
            async with app.router.lifespan_context(app):
                services = app.state.gateway.services
                assert services.program.pending_days == 0
                members = await seed_members(services.members, services.ledger, args.members)
                bearer = issue_token(JWT_SECRET, "bench-pos", ["service"], ttl=3600)
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(
                    transport=transport,
                    base_url="http://patron.bench",
                    headers={"Authorization": f"Bearer {bearer}"},
                    timeout=60,
                ) as client:

                    async def call(op: Operation) -> str:
                        member = to_global_id("Member", op.member_id)
                        if op.kind == "purchase":
                            query, field = RECORD, "recordPurchase"
                            variables: dict[str, Any] = {
                                "memberId": member,
                                "orderId": op.key,
                                "total": {"amount": PURCHASE_AMOUNT, "currencyCode": "CAD"},
                                "channel": "POS",
                                "idempotencyKey": op.key,
                            }
                        else:
                            query, field = REDEEM, "redeemPoints"
                            variables = {
                                "memberId": member,
                                "points": REDEEM_POINTS,
                                "reason": "bench",
                                "idempotencyKey": op.key,
                            }
                        response = await client.post(
                            "/graphql", json={"query": query, "variables": {"input": variables}}
                        )
                        if response.status_code != 200:
                            return f"{op.kind}: HTTP {response.status_code}"
                        body = response.json()
                        if body.get("errors"):
                            return f"{op.kind}: GraphQL error"
                        errors = body["data"][field]["userErrors"]
                        return f"{op.kind}: {errors[0]['code'] if errors else 'ok'}"

                    total = args.operations + 2 * args.clients
                    ops = workload("graphql", members, total, args.seed)
                    engine: AsyncEngine = app.state.gateway.engine
                    return await measure(
                        "graphql", engine, ops, args.clients, call, args.max_seconds
                    )
        finally:
            await http.aclose()


# --- the report ---------------------------------------------------------------------------
def table(runs: list[Run]) -> str:
    lines = [
        "| mode | clients | operations | seconds | postings/s | p50 ms | p95 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in runs:
        lines.append(
            f"| {run.mode} | {run.clients} | {run.operations} | {run.seconds:.2f} "
            f"| {run.postings_per_second:,.0f} | {run.percentile(50):.1f} "
            f"| {run.percentile(95):.1f} |"
        )
    return "\n".join(lines)


def report(runs: list[Run], args: argparse.Namespace, pg_version: str) -> str:
    outcomes = "; ".join(
        f"{run.mode}: " + ", ".join(f"{k} {v}" for k, v in sorted(run.outcomes.items()))
        for run in runs
    )
    statements = ", ".join(
        f"{run.mode} {run.statements / max(1, run.operations):.1f}" for run in runs
    )
    return "\n".join(
        [
            "# Ledger throughput",
            "",
            f"`python -m bench.ledger --operations {args.operations} --clients {args.clients} "
            f"--members {args.members}`, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: "
            f"PostgreSQL {pg_version}, Python {platform.python_version()}, "
            f"{os.cpu_count()} CPUs ({platform.machine()}), client and server on one host.",
            "",
            "Half purchases (a new order, one posting), half redemptions of 10 points (one "
            "posting), on random members; `service` calls `LedgerService`, `graphql` the "
            "mutations through the whole app in process. Latency is per operation.",
            "",
            table(runs),
            "",
            f"Outcomes: {outcomes}.",
            "",
            f"SQL statements per operation (BEGIN and COMMIT not counted): {statements}.",
            "",
        ]
    )


async def main(args: argparse.Namespace) -> list[Run]:
    runs: list[Run] = []
    async with fresh_database(admin_url()) as url:
        pg_version = await server_version(url)
        runs.append(await run_service(url, args))
        runs.append(await run_graphql(url, args))
    text_out = report(runs, args, pg_version)
    print(text_out)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text_out)
    print(f"\nwritten to {RESULTS}")
    return runs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ledger", description="Ledger postings per second on PostgreSQL."
    )
    parser.add_argument("--operations", type=int, default=2000, help="timed operations per mode")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients")
    parser.add_argument("--members", type=int, default=64, help="members the operations hit")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="time limit per run")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the workload")
    args = parser.parse_args(argv)
    if args.operations < 1 or args.clients < 1 or args.members < 1:
        parser.error("--operations, --clients and --members must be positive")
    return args


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
