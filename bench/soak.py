"""The soak: the gateway under steady load for minutes, its memory sampled as it goes.

A leak shows as resident memory that keeps growing under a load that does not change, so
the soak sends the member view from `clients` clients for `seconds` and samples the
server tree's current RSS (VmRSS summed over uvicorn's parent and workers) every 10 s.
Growth is measured from the first sample after a minute (warm-up growth, such as caches
and connection pools filling, is not a leak) to the last one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

from bench.load import Endpoint, LoadResult, drive
from bench.measurements import SAMPLE_SECONDS, RssSample, Soak
from bench.procs import cpu_ms, rss_mb
from bench.upstream_calls import UpstreamCalls, difference


async def run_soak(
    endpoint: Endpoint,
    requests: Sequence[bytes],
    pid: int,
    *,
    workers: int,
    clients: int,
    seconds: float,
    request_timeout: float,
    read_calls: Callable[[], Awaitable[UpstreamCalls | None]],
) -> Soak:
    calls_before = await read_calls()
    cpu_before, own_before = cpu_ms(pid), time.process_time()
    progress = LoadResult(seconds=0.0)
    began = time.perf_counter()
    samples = [RssSample(0.0, rss_mb(pid))]
    load = asyncio.create_task(
        drive(
            endpoint,
            requests,
            count=None,
            clients=clients,
            max_seconds=seconds,
            request_timeout=request_timeout,
            result=progress,
        )
    )
    while not load.done():
        await asyncio.wait({load}, timeout=SAMPLE_SECONDS)
        sample = RssSample(time.perf_counter() - began, rss_mb(pid))
        samples.append(sample)
        print(
            f"  soak {sample.seconds:4.0f}/{seconds:.0f} s: {progress.sent:,} requests, "
            f"{progress.errors} errors, RSS {sample.rss_mb:.0f} MB",
            flush=True,
        )
    result = load.result()
    cpu = cpu_ms(pid) - cpu_before
    own = (time.process_time() - own_before) * 1000
    calls = difference(await read_calls(), calls_before)
    return Soak(workers, clients, seconds, result, cpu, own, samples, calls)
