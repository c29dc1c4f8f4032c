"""`/metrics` with several workers: `patron serve --workers 2` keeps prometheus-client's
multiprocess files in `PROMETHEUS_MULTIPROC_DIR`, and whichever worker answers a scrape
reports the totals of both."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from prometheus_client.multiprocess import MultiProcessCollector

from gateway.demo import fake_upstream_env
from gateway.metrics_multiprocess import MULTIPROC_DIR_VARIABLE, multiprocess_metrics
from tests.graphql.metrics import s, samples
from tests.integration.test_shutdown import environment, free_port, wait_for

PING = s("patron_graphql_requests_total", operation="Ping", type="query", outcome="ok")
REQUESTS = 40


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


def test_every_worker_reports_the_totals_of_all(tmp_path: Path) -> None:
    port, folder = free_port(), tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_1.db").write_bytes(b"left over from an earlier run")
    env = environment(
        PATRON_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/patron.db",
        PATRON_JWT_SECRET="workers-test-secret-0123456789abcdef",
        PATRON_OUTBOX_RELAY="false",
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
        assert not (folder / "counter_1.db").exists()  # wiped at start
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(ping, [f"{base}/graphql"] * REQUESTS))
        assert statuses == [200] * REQUESTS
        scrapes = [samples(httpx.get(f"{base}/metrics").text) for _ in range(8)]
        assert [found[PING] for found in scrapes] == [REQUESTS] * 8
        by_process = pings_by_process(folder)
        assert sum(by_process.values()) == REQUESTS
        assert len(by_process) == 2, by_process  # both workers served some
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    assert folder.is_dir()  # the operator's folder is kept


def test_the_cli_makes_a_folder_for_the_workers_and_removes_it() -> None:
    assert MULTIPROC_DIR_VARIABLE not in os.environ
    with multiprocess_metrics() as folder:
        assert os.environ[MULTIPROC_DIR_VARIABLE] == str(folder)
        assert folder.is_dir() and folder.name.startswith("patron-metrics-")
        (folder / "counter_2.db").write_bytes(b"")
    assert not folder.exists()
    assert MULTIPROC_DIR_VARIABLE not in os.environ
