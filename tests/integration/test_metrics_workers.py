"""`/metrics` with several workers: `patron serve --workers 2` keeps prometheus-client's
multiprocess files in `PROMETHEUS_MULTIPROC_DIR`, and whichever worker answers a scrape
reports the totals of both."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from gateway.metrics_multiprocess import MULTIPROC_DIR_VARIABLE, multiprocess_metrics
from tests.graphql.metrics import samples
from tests.integration.served import PING, ping, pings_by_process, two_workers

REQUESTS = 40


def test_every_worker_reports_the_totals_of_all(tmp_path: Path) -> None:
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_1.db").write_bytes(b"left over from an earlier run")
    with two_workers(tmp_path) as served:
        base = served.base
        assert not (folder / "counter_1.db").exists()  # wiped at start
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(ping, [f"{base}/graphql"] * REQUESTS))
        assert statuses == [200] * REQUESTS
        scrapes = [samples(httpx.get(f"{base}/metrics").text) for _ in range(8)]
        assert [found[PING] for found in scrapes] == [REQUESTS] * 8
        by_process = pings_by_process(folder)
        assert sum(by_process.values()) == REQUESTS
        assert len(by_process) == 2, by_process  # both workers served some
    assert folder.is_dir()  # the operator's folder is kept


def test_the_cli_makes_a_folder_for_the_workers_and_removes_it() -> None:
    assert MULTIPROC_DIR_VARIABLE not in os.environ
    with multiprocess_metrics() as folder:
        assert os.environ[MULTIPROC_DIR_VARIABLE] == str(folder)
        assert folder.is_dir() and folder.name.startswith("patron-metrics-")
        (folder / "counter_2.db").write_bytes(b"")
    assert not folder.exists()
    assert MULTIPROC_DIR_VARIABLE not in os.environ
