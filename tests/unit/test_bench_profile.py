"""The member view benchmark's CPU profile: own time by package, C functions charged to
their callers, the profiler's cost taken out, every thread profiled, and the in-process
ASGI driver."""

from __future__ import annotations

import sysconfig
import threading
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bench.asgi_driver import ViewRequest, asgi_post, run_views
from bench.profile_packages import OTHER, builtin_root, by_module, module_root, package_shares
from bench.profile_stats import (
    Overhead,
    Stats,
    ThreadProfilers,
    fitted,
    thread_delta,
    total_own,
    without_overhead,
)

ROOT = Path(__file__).resolve().parents[2]
STDLIB = sysconfig.get_paths()["stdlib"]
SITE = "/venv/lib/python3.11/site-packages"


def test_module_root_by_path() -> None:
    assert module_root(f"{SITE}/graphql/execution/executor.py") == "graphql"
    assert module_root(f"{SITE}/sqlalchemy/engine/base.py") == "sqlalchemy"
    assert module_root(f"{SITE}/six.py") == "six"
    assert module_root(str(ROOT / "gateway" / "app.py")) == "gateway"
    assert module_root(str(ROOT / ".venv/lib/python3.11/site-packages/httpx/_models.py")) == "httpx"
    assert module_root(f"{STDLIB}/asyncio/events.py") == "asyncio"
    assert module_root(f"{STDLIB}/contextlib.py") == "contextlib"
    assert module_root("<frozen importlib._bootstrap_external>") == "importlib"
    assert module_root("<string>") == "?"


@pytest.mark.parametrize(
    ("name", "root"),
    [
        ("<built-in method select.epoll.poll>", "select"),
        ("<method 'execute' of 'sqlite3.Cursor' objects>", "sqlite3"),
        ("<method 'get' of '_queue.SimpleQueue' objects>", "_queue"),
        ("<built-in method builtins.isinstance>", "builtins"),
        ("<method 'append' of 'list' objects>", "builtins"),
        ("<something else>", "builtins"),
    ],
)
def test_builtin_root_by_name(name: str, root: str) -> None:
    assert builtin_root(name) == root


GQL = (f"{SITE}/graphql/execution/executor.py", 10, "execute_field")
SQLA = (f"{SITE}/sqlalchemy/engine/base.py", 20, "execute")
ISINSTANCE = ("~", 0, "<built-in method builtins.isinstance>")
UNKNOWN_C = ("~", 0, "<method 'frob' of 'mystery.Thing' objects>")


def test_a_c_function_is_charged_to_its_callers_packages() -> None:
    stats: Stats = {
        GQL: (10, 0.010, {}),
        SQLA: (5, 0.020, {}),
        ISINSTANCE: (30, 0.006, {GQL: (20, 0.004), SQLA: (10, 0.002)}),
        UNKNOWN_C: (1, 0.001, {}),  # no Python caller recorded: by its own name
    }
    seconds, calls = by_module(stats)
    assert seconds == pytest.approx({"graphql": 0.014, "sqlalchemy": 0.022, "mystery": 0.001})
    assert calls == {"graphql": 30, "sqlalchemy": 15, "mystery": 1}
    shares = {s.package: s for s in package_shares(stats, views=2, raw=stats)}
    assert shares["graphql-core"].ms_per_view == pytest.approx(7.0)
    assert shares["SQLAlchemy"].share == pytest.approx(22 / 37)
    assert shares[OTHER].note == "mystery 3%"


def test_the_profilers_cost_is_taken_out_per_call_received_and_made() -> None:
    overhead = Overhead(python_callee=0.001, python_caller=0.002, c_callee=0.0005, c_caller=0.001)
    stats: Stats = {
        GQL: (2, 0.050, {}),  # called twice, makes 10 C calls and 1 Python call
        SQLA: (1, 0.010, {GQL: (1, 0.010)}),
        ISINSTANCE: (10, 0.008, {GQL: (10, 0.008)}),
    }
    corrected = without_overhead(stats, overhead)
    # received: 2 x 1 ms; made: 10 C calls x 1 ms + 1 Python call x 2 ms
    assert corrected[GQL][1] == pytest.approx(0.050 - 0.002 - 0.010 - 0.002)
    assert corrected[SQLA][1] == pytest.approx(0.010 - 0.001)
    assert corrected[ISINSTANCE][1] == pytest.approx(0.008 - 0.005)
    assert corrected[ISINSTANCE][2][GQL] == (10, pytest.approx(0.003))


def test_fitted_overhead_leaves_what_was_measured_without_the_profiler() -> None:
    stats: Stats = {
        GQL: (100, 0.050, {}),
        SQLA: (100, 0.050, {GQL: (100, 0.050)}),
    }
    calibrated = Overhead(python_callee=1e-6, python_caller=1e-6, c_callee=1e-6, c_caller=1e-6)
    overhead = fitted(calibrated, stats, measured_seconds=0.060)
    assert total_own(without_overhead(stats, overhead)) == pytest.approx(0.060)
    assert overhead.python_callee == pytest.approx(overhead.python_caller)
    # a run no dearer under the profiler is left as recorded
    assert fitted(calibrated, stats, measured_seconds=0.5) == Overhead()


def spin(n: int) -> int:
    total = 0
    for i in range(n):
        total += i
    return total


def test_threads_started_while_installed_are_profiled_between_snapshots() -> None:
    profilers = ThreadProfilers()
    profilers.install()
    go, done = threading.Event(), threading.Event()

    def worker() -> None:
        spin(1000)  # before the first snapshot: not counted
        go.wait(5)
        spin(200_000)
        done.set()

    thread = threading.Thread(target=worker)
    try:
        thread.start()
    finally:
        profilers.uninstall()
    before = profilers.snapshot()
    go.set()
    done.wait(5)
    thread.join(5)
    after = profilers.snapshot()
    delta = thread_delta(before, after)
    spins = [entry for func, entry in delta.items() if func[2] == "spin"]
    assert len(spins) == 1 and spins[0][0] == 1  # one call in the window
    assert spins[0][1] > 0
    late = threading.Thread(target=spin, args=(10,))  # after uninstall: not profiled
    late.start()
    late.join()
    assert len(profilers.snapshot()) == 1


async def graphql(request: Request) -> Response:
    body = await request.json()
    if request.headers.get("authorization") != "Bearer ok":
        return JSONResponse({"errors": [{"message": "no", "extensions": {"code": "NOPE"}}]})
    return JSONResponse({"data": {"me": {"query": body["query"]}}})


async def test_the_asgi_driver_posts_a_body_and_reads_the_answer() -> None:
    app = Starlette(routes=[Route("/graphql", graphql, methods=["POST"])])
    body = b'{"query": "{ me { id } }"}'
    headers = [(b"content-type", b"application/json"), (b"content-length", b"26")]
    good = ViewRequest(body, [*headers, (b"authorization", b"Bearer ok")])
    bad = ViewRequest(body, headers)
    status, answer = await asgi_post(app, good)
    assert status == 200 and b'"me":{"query":"{ me { id } }"}' in answer
    outcomes = await run_views(app, [good, bad], views=6, clients=3)
    assert outcomes == {"ok": 3, "GraphQL errors: NOPE": 3}
