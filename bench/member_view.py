"""Member view latency and throughput: the gateway against slow upstreams, and its ceiling.

    python -m bench.member_view [--latency-ms 20] [--sequential 200] [--requests 1000]

Everything runs on 127.0.0.1 as subprocesses of this one:

- `patron fakes --latency-ms L`: the three fake upstreams (commerce, CMS, CDP) seeded with
  the demo customers' carts, orders, profiles and content, each request delayed by L ms;
- the gateway, `python -m gateway serve --workers N` (N = 1, then 2), on a fresh SQLite
  file (`patron migrate`d), its upstreams pointed at the fakes, the outbox relay off. The
  demo customers are enrolled and their orders recorded through the gateway's own
  `enrollMember` and `recordPurchase` mutations with a `service` token;
- the framework's ceiling, `bench/bare_app.py` under uvicorn with the same worker count: a
  bare Strawberry schema of the same shape that returns constants.

The member view (`me` with profile, points, tier with content, offers with content, cart
with pointsPreview, orders) is asked with member tokens of the demo customers in turn:
sequentially, then at 16 and 64 concurrent clients (`httpx.AsyncClient`). Reported: p50,
p95 and p99 latency, requests per second, the server's CPU milliseconds per request (its
whole process tree, from /proc/<pid>/stat) and its peak RSS (VmHWM, summed over the tree).

It prints a markdown table and writes it to `bench/results/member_view.md`; each phase is
bounded by its request count and by `--max-seconds`, so it always stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from gateway.auth import issue_token
from gateway.demo import DEMO_CUSTOMERS, DEMO_SERVICE, fake_upstream_env

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / "member_view.md"
JWT_SECRET = "bench-member-view-secret-0123456789abcdef"
HOST = "127.0.0.1"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

MEMBER_VIEW = """
query MemberView {
  me {
    id
    profile { firstName lastName email birthday audiences }
    points { available pending lifetimeEarned expiringNext { points expiresAt } }
    tier {
      current { key name discountPercent content { deliveryKey fields imageUrl } }
      qualifyingSpend { amount currencyCode }
      nextTier { key name }
      spendToNextTier { amount currencyCode }
    }
    offers { id kind title code content { deliveryKey fields imageUrl } }
    cart {
      id
      total { amount currencyCode }
      lineItems { sku name quantity total { amount currencyCode } }
      pointsPreview
      tierDiscount { amount currencyCode }
    }
    orders(first: 10) { id orderNumber total { amount currencyCode } createdAt state }
  }
}
"""
ENROLL = """
mutation($input: EnrollMemberInput!) {
  enrollMember(input: $input) { member { id } userErrors { code message } }
}
"""
RECORD = """
mutation($input: RecordPurchaseInput!) {
  recordPurchase(input: $input) { transaction { id } userErrors { code message } }
}
"""


@dataclass
class Phase:
    server: str  # "gateway" | "bare"
    workers: int
    clients: int  # 1: sequential
    requests: int
    seconds: float
    latencies_ms: list[float]
    outcomes: Counter[str]
    cpu_ms: float  # the server's process tree, during the phase
    client_cpu_ms: float  # this process, during the phase
    peak_rss_mb: float  # the server's process tree, VmHWM summed, after the phase

    @property
    def rps(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0

    def percentile(self, q: int) -> float:
        if len(self.latencies_ms) < 2:
            return self.latencies_ms[0] if self.latencies_ms else 0.0
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[q - 1]

    @property
    def cpu_per_request(self) -> float:
        return self.cpu_ms / max(1, len(self.latencies_ms))

    @property
    def client_cpu_per_request(self) -> float:
        return self.client_cpu_ms / max(1, len(self.latencies_ms))


# --- processes ----------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            text = Path(f"/proc/{pid}/task/{task}/children").read_text()
            found.extend(int(child) for child in text.split())
    except OSError:
        pass
    return found


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (uvicorn's workers are children of its parent)."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(_children(current))
    return tree


def cpu_ms(pid: int) -> float:
    """utime + stime of `pid`'s tree, in milliseconds."""
    total = 0
    for proc in process_tree(pid):
        try:
            stat = Path(f"/proc/{proc}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)
    return total * 1000 / CLOCK_TICKS


def peak_rss_mb(pid: int) -> float:
    total_kb = 0
    for proc in process_tree(pid):
        try:
            for line in Path(f"/proc/{proc}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total_kb += int(line.split()[1])
        except OSError:
            continue
    return total_kb / 1024


@contextmanager
def spawn(name: str, argv: list[str], env: dict[str, str], logs: Path) -> Iterator[Any]:
    """A subprocess in its own process group, ended (TERM, then KILL) on the way out."""
    log = (logs / f"{name}.log").open("wb")
    proc = subprocess.Popen(
        argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        yield proc
    finally:
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            if proc.poll() is not None:
                break
            try:
                os.killpg(proc.pid, sig)  # the group is this child's own (its pid)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
        log.close()


async def wait_ready(url: str, proc: subprocess.Popen[bytes], name: str, logs: Path) -> None:
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = (logs / f"{name}.log").read_text(errors="replace")[-2000:]
                raise SystemExit(f"{name} exited with {proc.returncode}:\n{tail}")
            try:
                await client.get(url)
                return
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    raise SystemExit(f"{name} did not answer at {url} within 30 s")


# --- load ---------------------------------------------------------------------------------
def classify(response: httpx.Response) -> str:
    if response.status_code != 200:
        return f"HTTP {response.status_code}"
    body = response.json()
    if body.get("errors"):
        codes = sorted({str(e.get("extensions", {}).get("code", "error")) for e in body["errors"]})
        return "GraphQL errors: " + ",".join(codes)
    if not body.get("data", {}).get("me"):
        return "me is null"
    return "ok"


async def drive(
    client: httpx.AsyncClient,
    url: str,
    tokens: list[str],
    requests: int,
    clients: int,
    max_seconds: float,
) -> tuple[float, list[float], Counter[str]]:
    counter = iter(range(requests))
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()
    deadline = time.perf_counter() + max_seconds
    payload = {"query": MEMBER_VIEW}

    async def worker() -> None:
        for i in counter:
            if time.perf_counter() > deadline:
                outcomes["not run (time limit)"] += 1
                continue
            headers = {"Authorization": f"Bearer {tokens[i % len(tokens)]}"}
            began = time.perf_counter()
            try:
                response = await client.post(url, json=payload, headers=headers)
                outcome = classify(response)
            except Exception as exc:  # counted, not fatal: the report says how many
                outcome = type(exc).__name__
            latencies.append((time.perf_counter() - began) * 1000)
            outcomes[outcome] += 1

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return time.perf_counter() - began, latencies, outcomes


async def measure(
    server: str, workers: int, pid: int, url: str, tokens: list[str], args: argparse.Namespace
) -> list[Phase]:
    phases: list[Phase] = []
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        # warm-up: connections, both workers, the gateway's token and upstream clients
        await drive(client, url, tokens, 64, 16, args.max_seconds)
        plan = [(1, args.sequential)] + [(c, args.requests) for c in args.concurrency]
        for clients, requests in plan:
            cpu_before, own_before = cpu_ms(pid), time.process_time()
            seconds, latencies, outcomes = await drive(
                client, url, tokens, requests, clients, args.max_seconds
            )
            own = (time.process_time() - own_before) * 1000
            phases.append(
                Phase(
                    server,
                    workers,
                    clients,
                    requests,
                    seconds,
                    latencies,
                    outcomes,
                    cpu_ms(pid) - cpu_before,
                    own,
                    peak_rss_mb(pid),
                )
            )
            print(f"  {server} x{workers} clients {clients}: {phases[-1].rps:,.0f} req/s")
    return phases


# --- the gateway --------------------------------------------------------------------------
def gateway_env(fakes_port: int, db: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATRON_")}
    env.update(fake_upstream_env(f"http://{HOST}:{fakes_port}"))
    env.update(
        PATRON_DATABASE_URL=f"sqlite+aiosqlite:///{db}",
        PATRON_JWT_SECRET=JWT_SECRET,
        PATRON_CARD_SECRET="bench-card-secret",
        PATRON_OUTBOX_RELAY="false",
        PYTHONUNBUFFERED="1",
    )
    return env


async def seed(url: str) -> None:
    """Enrol the demo customers and record their orders through the gateway's mutations."""
    service = issue_token(JWT_SECRET, DEMO_SERVICE, ["service"], ttl=3600)
    headers = {"Authorization": f"Bearer {service}"}
    async with httpx.AsyncClient(timeout=30, headers=headers) as client:

        async def call(query: str, field: str, variables: dict[str, Any]) -> dict[str, Any]:
            response = await client.post(url, json={"query": query, "variables": variables})
            body = response.json()
            payload = (body.get("data") or {}).get(field)
            if body.get("errors") or not payload or payload["userErrors"]:
                raise SystemExit(f"seeding: {field} failed: {body}")
            return dict(payload)

        for customer in DEMO_CUSTOMERS:
            enrolled = await call(
                ENROLL,
                "enrollMember",
                {
                    "input": {
                        "commerceCustomerId": customer.commerce_id,
                        "email": customer.email,
                        "idempotencyKey": f"bench-enrol-{customer.commerce_id}",
                    }
                },
            )
            member_id = enrolled["member"]["id"]
            for order in customer.orders:
                await call(
                    RECORD,
                    "recordPurchase",
                    {
                        "input": {
                            "memberId": member_id,
                            "orderId": order.order_id,
                            "total": {"amount": order.total, "currencyCode": order.currency},
                            "channel": "WEB",
                            "idempotencyKey": f"bench-order-{order.order_id}",
                        }
                    },
                )


async def run_gateway(
    workers: int, fakes_port: int, db: Path, logs: Path, tokens: list[str], args: argparse.Namespace
) -> list[Phase]:
    port = free_port()
    argv = [sys.executable, "-m", "gateway", "serve", "--host", HOST, "--port", str(port)]
    argv += ["--workers", str(workers)]
    with spawn(f"gateway-{workers}", argv, gateway_env(fakes_port, db), logs) as proc:
        base = f"http://{HOST}:{port}"
        await wait_ready(f"{base}/healthz", proc, f"gateway-{workers}", logs)
        if not args.seeded:
            await seed(f"{base}/graphql")
            args.seeded = True
        async with httpx.AsyncClient(timeout=30) as client:
            first = await client.post(
                f"{base}/graphql",
                json={"query": MEMBER_VIEW},
                headers={"Authorization": f"Bearer {tokens[0]}"},
            )
            if classify(first) != "ok":
                print(f"  warning: first member view: {first.text[:1500]}")
        return await measure("gateway", workers, proc.pid, f"{base}/graphql", tokens, args)


async def run_bare(workers: int, logs: Path, args: argparse.Namespace) -> list[Phase]:
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "bench.bare_app:app", "--host", HOST]
    argv += ["--port", str(port), "--workers", str(workers)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATRON_")}
    with spawn(f"bare-{workers}", argv, env, logs) as proc:
        base = f"http://{HOST}:{port}"
        await wait_ready(f"{base}/graphql", proc, f"bare-{workers}", logs)
        return await measure("bare", workers, proc.pid, f"{base}/graphql", ["bare"], args)


# --- the report ---------------------------------------------------------------------------
def table(phases: list[Phase], bare: dict[tuple[int, int], Phase]) -> str:
    lines = [
        "| server | workers | clients | requests | req/s | p50 ms | p95 ms | p99 ms "
        "| server CPU ms/req | client CPU ms/req | peak RSS MB | vs bare req/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for p in phases:
        ceiling = bare.get((p.workers, p.clients))
        ratio = f"{p.rps / ceiling.rps:.2f}" if p.server == "gateway" and ceiling else ""
        lines.append(
            f"| {p.server} | {p.workers} | {p.clients} | {len(p.latencies_ms)} "
            f"| {p.rps:,.0f} | {p.percentile(50):.1f} | {p.percentile(95):.1f} "
            f"| {p.percentile(99):.1f} | {p.cpu_per_request:.2f} "
            f"| {p.client_cpu_per_request:.2f} | {p.peak_rss_mb:.0f} | {ratio} |"
        )
    return "\n".join(lines)


def verdicts(phases: list[Phase], bare: dict[tuple[int, int], Phase], latency: float) -> str:
    lines = []
    for p in phases:
        if p.server != "gateway":
            continue
        if p.clients == 1:
            ok = p.percentile(50) <= latency + 10
            lines.append(
                f"- {p.workers} worker(s), sequential: p50 {p.percentile(50):.1f} ms, target "
                f"at most {latency + 10:.0f} ms (upstream + 10): {'met' if ok else 'MISSED'}"
            )
        if p.clients == 16:
            ok = p.percentile(99) < 3 * latency
            lines.append(
                f"- {p.workers} worker(s), 16 clients: p99 {p.percentile(99):.1f} ms, target "
                f"under {3 * latency:.0f} ms (3x upstream): {'met' if ok else 'MISSED'}"
            )
        ceiling = bare.get((p.workers, p.clients))
        if p.clients > 1 and ceiling:
            ratio = p.rps / ceiling.rps
            lines.append(
                f"- {p.workers} worker(s), {p.clients} clients: {p.rps:,.0f} req/s is "
                f"{ratio:.2f} of the bare ceiling ({ceiling.rps:,.0f}), target at least 0.50: "
                f"{'met' if ratio >= 0.5 else 'MISSED'}"
            )
    return "\n".join(lines)


def report(phases: list[Phase], args: argparse.Namespace) -> str:
    bare = {(p.workers, p.clients): p for p in phases if p.server == "bare"}
    outcomes = "; ".join(
        f"{p.server} x{p.workers} c{p.clients}: "
        + ", ".join(f"{k} {v}" for k, v in sorted(p.outcomes.items()))
        for p in phases
        if set(p.outcomes) != {"ok"}
    )
    concurrency = " ".join(str(c) for c in args.concurrency)
    return "\n".join(
        [
            "# Member view",
            "",
            f"`python -m bench.member_view --latency-ms {args.latency_ms:g} "
            f"--sequential {args.sequential} --requests {args.requests} "
            f"--concurrency {concurrency} --workers {' '.join(map(str, args.workers))}`, "
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC: Python {platform.python_version()}, "
            f"{os.cpu_count()} CPUs ({platform.machine()}); the fakes, the server and the "
            "client (one Python process) share the host.",
            "",
            f"`me` with profile, points, tier and its content, offers and their content, cart "
            f"with pointsPreview and orders, with the member tokens of the "
            f"{len(DEMO_CUSTOMERS)} demo customers in turn; every upstream request takes "
            f"{args.latency_ms:g} ms (`patron fakes --latency-ms`). The gateway runs on "
            "SQLite with the outbox relay off; `bare` is `bench/bare_app.py` (constants, same "
            "query shape) under uvicorn: the framework's ceiling. Server CPU is the whole "
            "process tree (uvicorn's parent and workers); peak RSS is VmHWM summed over it.",
            "",
            table(phases, bare),
            "",
            "Targets (issue 5):",
            "",
            verdicts(phases, bare, args.latency_ms),
            "",
            f"Outcomes other than ok: {outcomes or 'none'}.",
            "",
        ]
    )


async def main(args: argparse.Namespace) -> list[Phase]:
    args.seeded = False
    tokens = [issue_token(JWT_SECRET, c.commerce_id, ["member"], ttl=3600) for c in DEMO_CUSTOMERS]
    phases: list[Phase] = []
    with tempfile.TemporaryDirectory(prefix="patron-bench-") as tmp:
        logs, db = Path(tmp), Path(tmp) / "bench.db"
        fakes_port = free_port()
        fakes_argv = [sys.executable, "-m", "gateway", "fakes", "--host", HOST]
        fakes_argv += ["--port", str(fakes_port), "--latency-ms", str(args.latency_ms)]
        env = gateway_env(fakes_port, db)
        print("migrating a fresh SQLite database")
        await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "gateway", "migrate"],
            env=env,
            cwd=ROOT,
            check=True,
            timeout=60,
            stdout=subprocess.DEVNULL,
        )
        with spawn("fakes", fakes_argv, env, logs) as fakes:
            await wait_ready(f"http://{HOST}:{fakes_port}/", fakes, "fakes", logs)
            for workers in args.workers:
                print(f"gateway, {workers} worker(s)")
                phases += await run_gateway(workers, fakes_port, db, logs, tokens, args)
                print(f"bare, {workers} worker(s)")
                phases += await run_bare(workers, logs, args)
    text_out = report(phases, args)
    print(text_out)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text_out)
    print(f"\nwritten to {RESULTS}")
    return phases


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.member_view",
        description="Member view latency and throughput against slow fake upstreams.",
    )
    parser.add_argument("--latency-ms", type=float, default=20.0, help="per upstream request")
    parser.add_argument("--sequential", type=int, default=200, help="sequential requests")
    parser.add_argument("--requests", type=int, default=1000, help="requests per concurrency")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--max-seconds", type=float, default=20.0, help="time limit per phase")
    args = parser.parse_args(argv)
    if min([args.sequential, args.requests, *args.concurrency, *args.workers]) < 1:
        parser.error("counts, concurrency and workers must be positive")
    return args


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
