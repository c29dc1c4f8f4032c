"""Where the gateway's CPU goes in a member view: cProfile over views served in process.

The gateway is built with `create_app(settings)` in this process, with the served gateway's
settings (the same database; upstreams = the `patron fakes` subprocess over real HTTP), and
its lifespan started. Member views go to the ASGI app directly (`bench/asgi_driver.py`),
`PROFILE_CLIENTS` at a time, on this process's event loop (uvloop when installed, as under
uvicorn):

1. a warm-up (connections, caches, the commerce token), not measured;
2. `views` views without the profiler: this process's CPU time (all threads) per view;
3. `views` views under cProfile in every thread, on CPU time (`bench/profile_stats.py`),
   the profiler's own cost per call taken out (its split between callee and caller
   calibrated just before, its size fitted to the CPU measured in step 2);
4. own time by package and the top functions (`bench/profile_packages.py`).
"""

from __future__ import annotations

import cProfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from starlette.types import ASGIApp

from bench.asgi_driver import ViewRequest, run_views
from bench.load import OK
from bench.profile_packages import HotFunction, PackageShare, hot_functions, package_shares
from bench.profile_stats import (
    Overhead,
    Stats,
    ThreadProfilers,
    calibrate,
    entries,
    fitted,
    merge,
    thread_delta,
    total_calls,
    total_own,
    without_overhead,
)
from gateway.app import create_app
from gateway.settings import Settings

PROFILE_CLIENTS = 16  # views in flight at once, as in the 16-client phase
WARMUP_VIEWS = 32


@dataclass
class CpuProfile:
    views: int
    clients: int
    cpu_ms_per_view: float  # this process, all threads, without the profiler
    raw_ms_per_view: float  # own time the profilers recorded, their cost included
    ms_per_view: float  # the same, the profiler's cost per call taken out
    calls_per_view: float
    calibrated: Overhead  # the profiler's cost per call in a tight loop
    overhead: Overhead  # the same, scaled to this run: what was taken out
    threads: int  # profiled threads besides the event loop's
    packages: list[PackageShare]
    top: list[HotFunction]
    outcomes: Counter[str]


async def _profiled_views(
    app: ASGIApp, requests: Sequence[ViewRequest], views: int, threads: ThreadProfilers
) -> tuple[Stats, Counter[str], int]:
    before = threads.snapshot()
    main = cProfile.Profile(time.thread_time)
    main.enable()
    try:
        outcomes = await run_views(app, requests, views, PROFILE_CLIENTS)
    finally:
        main.disable()
    after = threads.snapshot()
    stats = entries(main)
    merge(stats, thread_delta(before, after))
    return stats, outcomes, len(after)


async def profile_gateway(
    settings: Settings, requests: Sequence[ViewRequest], views: int
) -> CpuProfile:
    """Build the gateway from `settings`, start its lifespan, warm it up, then measure
    `views` views without the profiler and `views` views under it."""
    calibrated = calibrate()
    threads = ThreadProfilers()
    threads.install()  # before the lifespan: the database's threads start in it
    try:
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            await run_views(app, requests, WARMUP_VIEWS, PROFILE_CLIENTS)
            began = time.process_time()
            outcomes = await run_views(app, requests, views, PROFILE_CLIENTS)
            cpu_ms = (time.process_time() - began) * 1000
            raw, profiled_outcomes, thread_count = await _profiled_views(
                app, requests, views, threads
            )
    finally:
        threads.uninstall()
    overhead = fitted(calibrated, raw, cpu_ms / 1000)
    stats = without_overhead(raw, overhead)
    return CpuProfile(
        views=views,
        clients=PROFILE_CLIENTS,
        cpu_ms_per_view=cpu_ms / views,
        raw_ms_per_view=total_own(raw) * 1000 / views,
        ms_per_view=total_own(stats) * 1000 / views,
        calls_per_view=total_calls(raw) / views,
        calibrated=calibrated,
        overhead=overhead,
        threads=thread_count,
        packages=package_shares(stats, views, raw),
        top=hot_functions(stats, views, raw),
        outcomes=outcomes + profiled_outcomes,
    )


def not_ok(outcomes: Counter[str]) -> Iterator[tuple[str, int]]:
    return ((k, v) for k, v in sorted(outcomes.items()) if k != OK)
