"""Member view latency and throughput: the gateway against slow upstreams, and its ceiling.

    python -m bench.member_view [--latency-ms 20] [--database sqlite|postgresql]
        [--soak-seconds 300] [--profile 300] [--output bench/results] ...

Everything runs on 127.0.0.1 as subprocesses of this one, each in its own process group
(always ended on the way out):

- `patron fakes`: the three fake upstreams (commerce, CMS, CDP) seeded with the demo
  customers' carts, orders, profiles and content, each upstream's requests delayed by its
  latency (`--latency-ms`, or `--commerce-latency-ms` etc.); they also count the requests
  they serve (`GET /__patron/requests`), which gives the upstream calls per member view;
- the gateway, `python -m gateway serve --workers N` for each `--workers`, on a fresh
  database (`--database sqlite`: a migrated SQLite file; `postgresql`: a fresh database
  beside `PATRON_BENCH_DATABASE_URL`, dropped at the end), its upstreams the fakes, the
  outbox relay off. The demo customers are enrolled and their orders recorded through the
  gateway's own `enrollMember` and `recordPurchase` mutations with a `service` token;
- the framework's ceiling, `bench/bare_app.py` with the same worker count, served as the
  gateway is (`bench/bare_server.py`: uvicorn, one socket per worker): a bare Strawberry
  schema of the same shape that returns constants.

The member view (`me` with profile, points, tier with content, offers with content, cart
with pointsPreview, orders) is asked with the demo customers' member tokens in turn, by
`bench/load.py` (a lean HTTP/1.1 client, one keep-alive connection per client): after a
warm-up, sequentially, then at each `--concurrency`. With the most workers, a soak follows
(`bench/soak.py`). Last, a CPU profile of the member view in this process
(`bench/cpu_profile.py`). The report goes to `<output>/member_view.md` and the chart to
`<output>/member_view.png` (`bench/member_view_report.py`, `bench/chart.py`).

Every phase is bounded by its request count and by `--max-seconds` (the soak by
`--soak-seconds`), every request by `--request-timeout`; a failed request is counted,
never fatal, so the benchmark always stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
import tempfile
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.asgi_driver import ViewRequest
from bench.chart import write_chart
from bench.cpu_profile import CpuProfile, profile_gateway
from bench.load import Endpoint, LoadResult, classify, drive, prepare_post
from bench.measurements import BARE, BARE_CACHED, Phase, Results, Setup, Soak
from bench.member_view_env import (
    JWT_SECRET,
    base_env,
    database,
    gateway_env,
    seed,
    settings_from_env,
)
from bench.member_view_report import phase_progress, report
from bench.procs import HOST, cpu_ms, free_port, peak_rss_mb, spawn, wait_ready
from bench.run_info import describe_machine, git_commit
from bench.soak import run_soak
from bench.upstream_calls import UpstreamCalls, difference, read_calls
from gateway.auth import issue_token
from gateway.demo import DEMO_CUSTOMERS

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
UPSTREAMS = ("commerce", "cms", "cdp")
WARMUP_CLIENTS = 16

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


@dataclass
class Context:
    """What every phase of one run shares."""

    args: argparse.Namespace
    logs: Path
    env: dict[str, str]  # the gateway's whole environment (and `patron migrate`'s)
    fakes_base: str
    tokens: list[str]
    body: bytes = field(default_factory=lambda: orjson.dumps({"query": MEMBER_VIEW}))
    seeded: bool = False


# --- the phases ---------------------------------------------------------------------------
def prepared(endpoint: Endpoint, body: bytes, tokens: list[str]) -> list[bytes]:
    return [prepare_post(endpoint, body, {"Authorization": f"Bearer {t}"}) for t in tokens]


async def load_phase(
    endpoint: Endpoint, requests: list[bytes], count: int, clients: int, args: argparse.Namespace
) -> LoadResult:
    return await drive(
        endpoint,
        requests,
        count=count,
        clients=clients,
        max_seconds=args.max_seconds,
        request_timeout=args.request_timeout,
    )


async def measure(
    server: str,
    workers: int,
    pid: int,
    endpoint: Endpoint,
    requests: list[bytes],
    ctx: Context,
    counts: httpx.AsyncClient | None,
) -> list[Phase]:
    """The warm-up (connections, both workers, caches, the commerce token), then each
    phase. `counts` reads the fakes' request counts (the gateway's phases only), outside
    the CPU measurements."""
    args = ctx.args
    await load_phase(endpoint, requests, args.warmup, WARMUP_CLIENTS, args)
    phases: list[Phase] = []
    for clients, count in [(1, args.sequential)] + [(c, args.requests) for c in args.concurrency]:
        before = await read_calls(counts, ctx.fakes_base) if counts else None
        cpu_before, own_before = cpu_ms(pid), time.process_time()
        load = await load_phase(endpoint, requests, count, clients, args)
        own = (time.process_time() - own_before) * 1000
        cpu = cpu_ms(pid) - cpu_before
        after = await read_calls(counts, ctx.fakes_base) if counts else None
        calls = difference(after, before)
        phase = Phase(server, workers, clients, count, load, cpu, own, peak_rss_mb(pid), calls)
        phases.append(phase)
        print(phase_progress(phase), flush=True)
    return phases


async def first_view(url: str, token: str) -> None:
    """One member view before any timing: a broken setup shows here, with its answer."""
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(
            url, content=orjson.dumps({"query": MEMBER_VIEW}),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )  # fmt: skip
    if classify(response.status_code, response.content) != "ok":
        print(f"  warning: the first member view failed: {response.text[:1500]}", flush=True)


async def run_gateway(workers: int, ctx: Context) -> tuple[list[Phase], Soak | None]:
    args = ctx.args
    port = free_port()
    argv = [sys.executable, "-m", "gateway", "serve", "--host", HOST, "--port", str(port)]
    argv += ["--workers", str(workers)]
    name = f"gateway-{workers}"
    with spawn(name, argv, ctx.env, ctx.logs) as proc:
        base = f"http://{HOST}:{port}"
        await wait_ready(f"{base}/healthz", proc, name, ctx.logs)
        if not ctx.seeded:
            print("  seeding the demo members through the gateway", flush=True)
            await seed(f"{base}/graphql")
            ctx.seeded = True
        await first_view(f"{base}/graphql", ctx.tokens[0])
        endpoint = Endpoint(HOST, port, "/graphql")
        requests = prepared(endpoint, ctx.body, ctx.tokens)
        async with httpx.AsyncClient(timeout=10) as counts:
            phases = await measure("gateway", workers, proc.pid, endpoint, requests, ctx, counts)
            soak = None
            if args.soak_seconds > 0 and workers == max(args.workers):
                print(f"  soak: {args.soak_clients} clients for {args.soak_seconds:g} s",
                      flush=True)  # fmt: skip

                async def calls() -> UpstreamCalls | None:
                    return await read_calls(counts, ctx.fakes_base)

                soak = await run_soak(
                    endpoint,
                    requests,
                    proc.pid,
                    workers=workers,
                    clients=args.soak_clients,
                    seconds=args.soak_seconds,
                    request_timeout=args.request_timeout,
                    read_calls=calls,
                )
    return phases, soak


# The two ceilings (bench/bare_app.py): strawberry as it ships, and with its own caches.
BARE_APPS = {BARE: "bench.bare_app:app", BARE_CACHED: "bench.bare_app:app_cached"}


async def run_bare(server: str, workers: int, ctx: Context) -> list[Phase]:
    port = free_port()
    argv = [sys.executable, "-m", "bench.bare_server", BARE_APPS[server], "--host", HOST]
    argv += ["--port", str(port), "--workers", str(workers)]
    name = f"{server}-{workers}"
    with spawn(name, argv, base_env(), ctx.logs) as proc:
        await wait_ready(f"http://{HOST}:{port}/graphql", proc, name, ctx.logs)
        endpoint = Endpoint(HOST, port, "/graphql")
        requests = prepared(endpoint, ctx.body, ["bare"])
        return await measure(server, workers, proc.pid, endpoint, requests, ctx, None)


async def run_profile(ctx: Context) -> CpuProfile:
    headers = [(b"host", b"patron.bench"), (b"content-type", b"application/json"),
               (b"content-length", str(len(ctx.body)).encode())]  # fmt: skip
    requests = [
        ViewRequest(ctx.body, [*headers, (b"authorization", f"Bearer {t}".encode())])
        for t in ctx.tokens
    ]
    return await profile_gateway(settings_from_env(ctx.env), requests, ctx.args.profile)


# --- the header ---------------------------------------------------------------------------
def effective_command(args: argparse.Namespace) -> str:
    latency = " ".join(f"--{u}-latency-ms {args.latencies[u]:g}" for u in UPSTREAMS)
    return (
        f"python -m bench.member_view --latency-ms {args.latency_ms:g} {latency} "
        f"--database {args.database} --workers {' '.join(map(str, args.workers))} "
        f"--warmup {args.warmup} --sequential {args.sequential} --requests {args.requests} "
        f"--concurrency {' '.join(map(str, args.concurrency))} "
        f"--max-seconds {args.max_seconds:g} --request-timeout {args.request_timeout:g} "
        f"--soak-seconds {args.soak_seconds:g} --soak-clients {args.soak_clients} "
        f"--profile {args.profile} --output {args.output}"
    )


def setup(args: argparse.Namespace, database_name: str) -> Setup:
    return Setup(
        command=shlex.join(["python", "-m", "bench.member_view", *args.argv]),
        effective=effective_command(args),
        started=datetime.now(UTC),
        commit=git_commit(),
        machine=describe_machine(),
        database=database_name,
        latencies_ms=dict(args.latencies),
        soak_seconds=args.soak_seconds,
        soak_clients=args.soak_clients,
    )


# --- the run ------------------------------------------------------------------------------
async def main(args: argparse.Namespace) -> Results:
    tokens = [issue_token(JWT_SECRET, c.commerce_id, ["member"], ttl=24 * 3600)
              for c in DEMO_CUSTOMERS]  # fmt: skip
    phases: list[Phase] = []
    soak: Soak | None = None
    profile: CpuProfile | None = None
    with tempfile.TemporaryDirectory(prefix="patron-bench-") as tmp:
        logs = Path(tmp)
        async with database(args.database, logs) as (url, database_name):
            run_setup = setup(args, database_name)
            fakes_port = free_port()
            fakes_base = f"http://{HOST}:{fakes_port}"
            ctx = Context(args, logs, gateway_env(fakes_base, url), fakes_base, tokens)
            fakes_argv = [sys.executable, "-m", "gateway", "fakes", "--host", HOST]
            fakes_argv += ["--port", str(fakes_port), "--latency-ms", f"{args.latency_ms:g}"]
            for upstream in UPSTREAMS:
                fakes_argv += [f"--{upstream}-latency-ms", f"{args.latencies[upstream]:g}"]
            with spawn("fakes", fakes_argv, base_env(), logs) as fakes:
                await wait_ready(f"{fakes_base}/__patron/requests", fakes, "fakes", logs)
                for workers in args.workers:
                    print(f"gateway, {workers} worker(s)", flush=True)
                    gateway_phases, gateway_soak = await run_gateway(workers, ctx)
                    phases += gateway_phases
                    soak = gateway_soak or soak
                    for server in BARE_APPS:
                        print(f"{server}, {workers} worker(s)", flush=True)
                        phases += await run_bare(server, workers, ctx)
                if args.profile > 0:
                    print(f"CPU profile: {args.profile} member views in process", flush=True)
                    profile = await run_profile(ctx)
                    print(f"  {profile.cpu_ms_per_view:.2f} ms CPU per view in process, "
                          f"{profile.ms_per_view:.2f} ms profiled", flush=True)  # fmt: skip
    results = Results(run_setup, phases, soak, profile)
    write(results, args.output)
    return results


def write(results: Results, output: Path) -> None:
    output.mkdir(parents=True, exist_ok=True)
    chart = output / "member_view.png"
    charted = write_chart(results, chart)
    text = report(results, chart.name if charted else None)
    (output / "member_view.md").write_text(text)
    print(text)
    print(f"\nwritten to {output / 'member_view.md'}")
    if charted:
        print(f"chart: {chart}")
    else:
        print("chart skipped: matplotlib is not installed (pip install -e '.[bench]')")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.member_view",
        description="Member view latency, throughput, upstream calls, memory and CPU profile "
        "against slow fake upstreams, with the bare Strawberry ceiling.",
    )
    parser.add_argument("--latency-ms", type=float, default=20.0,
                        help="each upstream request's latency (default 20)")  # fmt: skip
    for upstream in UPSTREAMS:
        parser.add_argument(f"--{upstream}-latency-ms", type=float, default=None,
                            help=f"{upstream}'s own latency (default --latency-ms)")  # fmt: skip
    parser.add_argument(
        "--database",
        choices=["sqlite", "postgresql"],
        default="sqlite",
        help="postgresql: a fresh database beside PATRON_BENCH_DATABASE_URL",
    )
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--warmup", type=int, default=64, help="requests before each server")
    parser.add_argument("--sequential", type=int, default=200, help="sequential requests")
    parser.add_argument("--requests", type=int, default=1000, help="requests per concurrency")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--max-seconds", type=float, default=20.0, help="time limit per phase")
    parser.add_argument("--request-timeout", type=float, default=10.0, help="seconds")
    parser.add_argument("--soak-seconds", type=float, default=300.0, help="0 skips the soak")
    parser.add_argument("--soak-clients", type=int, default=64)
    parser.add_argument("--profile", type=int, default=300,
                        help="member views profiled in process (0 skips the profile)")  # fmt: skip
    parser.add_argument("--output", type=Path, default=RESULTS_DIR,
                        help="where member_view.md and member_view.png go")  # fmt: skip
    args = parser.parse_args(argv)
    counts = [args.warmup, args.sequential, args.requests, *args.concurrency, *args.workers]
    if min(counts) < 1 or args.soak_clients < 1:
        parser.error("counts, concurrency, clients and workers must be positive")
    if min(args.max_seconds, args.request_timeout) <= 0 or min(args.soak_seconds, args.profile) < 0:
        parser.error("time limits must be positive; --soak-seconds and --profile at least 0")
    args.latencies = {
        u: args.latency_ms if getattr(args, f"{u}_latency_ms") is None
        else getattr(args, f"{u}_latency_ms")
        for u in UPSTREAMS
    }  # fmt: skip
    if min([args.latency_ms, *args.latencies.values()]) < 0:
        parser.error("latencies must be at least 0")
    args.argv = list(sys.argv[1:] if argv is None else argv)
    return args


def run(coroutine: Coroutine[Any, Any, Results]) -> Results:
    """On uvloop when it is installed (as uvicorn serves the gateway): the client's own CPU
    per request is lower, and the in-process profile runs on the served gateway's loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


if __name__ == "__main__":
    run(main(parse_args()))
