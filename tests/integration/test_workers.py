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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import httpx
import pytest

from gateway.demo import fake_upstream_env
from gateway.workers import balances_connections
from tests.integration.served import Served, ping, pings_by_process, two_workers
from tests.integration.test_shutdown import environment

pytestmark = pytest.mark.skipif(not balances_connections(), reason="SO_REUSEPORT balances on Linux")
PING = {"query": "query Ping { __typename }"}


def test_long_lived_connections_are_spread_over_both_workers(tmp_path: Path) -> None:
    with two_workers(tmp_path) as served:
        base, folder = served.base, served.folder

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
    with two_workers(tmp_path) as served:
        base, folder = served.base, served.folder
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


def pings_until(
    served: Served,
    done: Callable[[set[str]], bool],
    seconds: float = 60,
    *,
    restarting: bool = False,
) -> None:
    """Batches of 24 new connections until `done(the workers that answered)`, every answer
    a 200 meanwhile. `restarting`: a worker being replaced may also close a connection it
    accepted but had not read a request from yet (uvicorn's graceful shutdown closes idle
    connections), but no connection is refused."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with ThreadPoolExecutor(8) as pool:
            outcomes = list(pool.map(partial(ping_outcome, f"{served.base}/graphql"), range(24)))
        allowed = {"200", "disconnected"} if restarting else {"200"}
        assert set(outcomes) <= allowed, outcomes
        if done(set(pings_by_process(served.folder))):
            return
        time.sleep(0.2)
    raise AssertionError(f"not done in {seconds} s: {pings_by_process(served.folder)}")


def ping_outcome(url: str, _: int) -> str:
    try:
        return str(ping(url))
    except httpx.RemoteProtocolError:  # "Server disconnected without sending a response"
        return "disconnected"


def gone(worker: str) -> bool:
    try:
        os.kill(int(worker.removeprefix("counter_")), 0)
    except ProcessLookupError:
        return True
    return False


def test_sighup_replaces_both_workers_and_refuses_no_connection(tmp_path: Path) -> None:
    with two_workers(tmp_path) as served:
        pings_until(served, lambda workers: len(workers) == 2)
        first = set(pings_by_process(served.folder))
        os.kill(served.supervisor, signal.SIGHUP)
        # Each slot's replacement serves before its old worker stops.
        replaced = lambda workers: len(workers - first) == 2 and all(map(gone, first))  # noqa: E731
        pings_until(served, replaced, restarting=True)
        pings_until(served, lambda _: True)  # and then every request is answered


def test_sigttin_adds_a_worker_on_a_socket_of_its_own_and_sigttou_removes_it(
    tmp_path: Path,
) -> None:
    with two_workers(tmp_path) as served:
        pings_until(served, lambda workers: len(workers) == 2)
        first = set(pings_by_process(served.folder))
        os.kill(served.supervisor, signal.SIGTTIN)
        pings_until(served, lambda workers: len(workers) == 3)
        (third,) = set(pings_by_process(served.folder)) - first
        os.kill(served.supervisor, signal.SIGTTOU)
        # Not pinged meanwhile: a connection queued on the socket as it closes is reset
        # (README: Several workers).
        deadline = time.monotonic() + 30
        while not gone(third):
            assert time.monotonic() < deadline, f"{third} still runs"
            time.sleep(0.1)
        before = pings_by_process(served.folder)
        pings_until(served, lambda _: True)  # 24 more, all answered by the first two
        after = pings_by_process(served.folder)
        assert after[third] == before[third]
        assert sum(after[w] - before[w] for w in first) == 24


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
