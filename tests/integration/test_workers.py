"""`patron serve --workers 2` (gateway.workers): each worker listens on its own socket of the
port, so the kernel spreads connections over the workers, long-lived ones included, and a
connection that arrives while a worker restarts waits for it instead of being refused.
Which worker answered: tests.integration.served."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from gateway.demo import fake_upstream_env
from gateway.workers import balances_connections
from tests.integration.served import ping, pings_by_process, two_workers
from tests.integration.test_shutdown import environment

pytestmark = pytest.mark.skipif(not balances_connections(), reason="SO_REUSEPORT balances on Linux")
PING = {"query": "query Ping { __typename }"}


def test_long_lived_connections_are_spread_over_both_workers(tmp_path: Path) -> None:
    with two_workers(tmp_path) as (base, folder):

        def keep_alive_client(_: int) -> list[int]:
            with httpx.Client() as client:  # one connection, five requests on it
                return [client.post(f"{base}/graphql", json=PING).status_code for _ in range(5)]

        with ThreadPoolExecutor(16) as pool:
            statuses = [s for one in pool.map(keep_alive_client, range(16)) for s in one]
        assert statuses == [200] * 80
        by_process = pings_by_process(folder)
        # Each connection's five requests went to one worker; 16 connections on one worker
        # out of two has a chance of 2 in 65,536 when the kernel spreads them.
        assert sum(by_process.values()) == 80
        assert len(by_process) == 2, by_process
        assert all(count % 5 == 0 for count in by_process.values()), by_process


def test_a_killed_worker_is_replaced_and_no_connection_is_refused(tmp_path: Path) -> None:
    with two_workers(tmp_path) as (base, folder):
        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(ping, [f"{base}/graphql"] * 40)) == [200] * 40
        first = sorted(pings_by_process(folder))
        assert len(first) == 2, first
        victim = int(first[0].removeprefix("counter_"))
        os.kill(victim, signal.SIGKILL)
        # Connections hashed to the dead worker's socket wait in its backlog until the
        # supervisor's replacement takes the socket over (it checks every 0.5 s).
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(ping, [f"{base}/graphql"] * 40))
        assert statuses == [200] * 40
        after = pings_by_process(folder)
        replacements = set(after) - set(first)
        assert len(replacements) == 1, after
        assert sum(after.values()) == 80


def test_the_port_taken_by_another_program_stops_the_supervisor(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = environment(
            PATRON_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/patron.db",
            PATRON_JWT_SECRET="workers-test-secret-0123456789abcdef",
            **fake_upstream_env("http://127.0.0.1:9"),
        )
        argv = [sys.executable, "-m", "gateway", "serve", "--port", str(port), "--workers", "2"]
        started = time.monotonic()
        done = subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, timeout=60)
    assert done.returncode == 3  # uvicorn's STARTUP_FAILURE
    assert f"Cannot listen on 127.0.0.1:{port}" in done.stderr.decode()
    assert "Address already in use" in done.stderr.decode()
    assert time.monotonic() - started < 30
