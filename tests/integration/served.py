"""`patron serve --workers 2` as a subprocess for the tests of workers and their metrics, and
which worker answered what: prometheus-client's per-process files (`counter_<pid>.db`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.multiprocess import MultiProcessCollector

from gateway.demo import fake_upstream_env
from gateway.metrics_multiprocess import MULTIPROC_DIR_VARIABLE
from tests.graphql.metrics import s
from tests.integration.test_shutdown import environment, free_port, wait_for

PING = s("patron_graphql_requests_total", operation="Ping", type="query", outcome="ok")


def ping(url: str) -> int:
    with httpx.Client() as client:  # a new connection each time: any worker may take it
        return client.post(url, json={"query": "query Ping { __typename }"}).status_code


def pings_by_process(folder: Path) -> dict[str, float]:
    """Each worker's own count of Ping, from its file."""
    counts: dict[str, float] = {}
    for path in folder.glob("counter_*.db"):
        for metric in MultiProcessCollector.merge([str(path)], accumulate=False):  # type: ignore[no-untyped-call]
            for sample in metric.samples:
                if sample.name == PING[0] and sample.labels.get("operation") == "Ping":
                    counts[path.stem] = sample.value
    return counts


@dataclass(frozen=True)
class Served:
    base: str  # http://127.0.0.1:<port>
    folder: Path  # the metrics folder: one counter_<pid>.db per worker that answered
    supervisor: int  # the pid of `patron serve` (uvicorn's supervisor)


@contextmanager
def two_workers(tmp_path: Path) -> Iterator[Served]:
    """A running `patron serve --workers 2` on SQLite. Its metrics folder is
    `tmp_path / "metrics"`, made if missing (the caller may have put files in it)."""
    port, folder = free_port(), tmp_path / "metrics"
    folder.mkdir(exist_ok=True)
    env = environment(
        PATRON_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/patron.db",
        PATRON_JWT_SECRET="workers-test-secret-0123456789abcdef",
        PATRON_OUTBOX_RELAY="false",
        PATRON_RATE_LIMIT_ANONYMOUS="0",  # hundreds of pings from one address
        **{MULTIPROC_DIR_VARIABLE: str(folder)},
        **fake_upstream_env("http://127.0.0.1:9"),  # never called by these queries
    )
    argv = [sys.executable, "-m", "gateway", "serve", "--port", str(port), "--workers", "2"]
    proc = subprocess.Popen(
        argv, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(f"{base}/healthz")
        yield Served(base, folder, proc.pid)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
