"""The whole graphql-http audit (GraphQL over HTTP) against the real gateway, and requests
only a real server sees (enormous headers, a body that never ends), with Node.

`patron serve --demo` (SQLite, the fakes in process) runs as a subprocess on a free port;
`tests/graphql_http/audit.js` runs graphql-http's `serverAudits` against it and prints the
results as JSON. The audit sends `X-Patron-CSRF: 1` with every request, as a client making
GET queries does (README, "Production mode": CSRF). Skipped when Node or the npm packages
are missing (`npm ci` in tests/graphql_http; CI runs it).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
AUDIT_DIR = REPO_ROOT / "tests" / "graphql_http"
NODE = shutil.which("node")
CSRF_HEADER = "X-Patron-CSRF: 1"

pytestmark = pytest.mark.skipif(
    NODE is None or not (AUDIT_DIR / "node_modules" / "graphql-http").is_dir(),
    reason="needs Node and the audit's packages: run `npm ci` in tests/graphql_http",
)


@dataclass
class Server:
    url: str
    port: int
    log: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(folder: Path, env: str) -> Iterator[Server]:
    port = free_port()
    log = folder / "server.log"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PATRON_")}
    environment.update(PYTHONPATH=str(REPO_ROOT), PATRON_ENV=env, PATRON_OUTBOX_RELAY="false")
    with log.open("wb") as stderr:  # both streams
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--demo", "--port", str(port)],
            env=environment,
            cwd=folder,
            stdout=stderr,  # uvicorn's access lines go to stdout
            stderr=stderr,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"the gateway did not start:\n{log.read_text()}"
            time.sleep(0.2)
        yield Server(f"http://127.0.0.1:{port}/graphql", port, log)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serve(tmp_path_factory.mktemp("dev"), "dev")


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serve(tmp_path_factory.mktemp("prod"), "prod")


def audit(url: str) -> list[dict[str, Any]]:
    assert NODE is not None
    done = subprocess.run(
        [NODE, "audit.js", url, CSRF_HEADER],
        cwd=AUDIT_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    results: list[dict[str, Any]] = json.loads(done.stdout)
    return results


def failures(results: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{r['id']} [{r['status']}] {r['name']}: {r['reason']}\n    {r['response']}"
        for r in results
        if r["status"] != "ok"
    )


def test_the_whole_graphql_http_audit_passes(dev: Server) -> None:
    results = audit(dev.url)
    assert len(results) >= 60  # graphql-http 1.23.1 has 61 server audits
    not_ok = [r for r in results if r["status"] != "ok"]
    assert not not_ok, f"{len(not_ok)} of {len(results)} audits are not ok:\n{failures(results)}"


def test_prod_fails_only_the_audits_that_need_introspection(prod: Server) -> None:
    """In production introspection is off: the four audits whose query is `__type(...)`
    and that look at the result are refused, and nothing else."""
    not_ok = {r["id"]: r for r in audit(prod.url) if r["status"] != "ok"}
    assert sorted(not_ok) == ["28B9", "2EA1", "6A70", "D6D5"], failures(list(not_ok.values()))
    for result in not_ok.values():
        assert "GraphQL introspection has been disabled" in result["response"]["body"]


def raw_request(port: int, data: bytes, timeout: float = 10) -> bytes:
    """Send bytes as they are; the answer until the server closes (or b'' on a reset)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
    return b"".join(chunks)


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


@pytest.mark.parametrize(
    "request_bytes",
    [
        pytest.param(b"GET /graphql?query=%7B__typename%7D HTTP/1.1\r\nHost: x\r\nX-Patron-CSRF: 1\r\nX-Big: "
                     + b"a" * 200_000 + b"\r\nConnection: close\r\n\r\n", id="a 200 KB header"),
        pytest.param(b"GET /graphql HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(5000))
                     + b"Connection: close\r\n\r\n", id="5000 headers"),
        pytest.param(b"GET /graphql?query=" + b"a" * 300_000 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                     id="a 300 KB URL"),
        pytest.param(b"\x00\xff\xfe not http\r\n\r\n", id="not HTTP"),
        pytest.param(b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n", id="a broken chunk"),
        pytest.param(b"GET /graphql HTTP/1.1\r\nHost: x\r\nX-Request-Id: \x01\x02\r\nConnection: close\r\n\r\n",
                     id="control characters in a header"),
    ],
)  # fmt: skip
def test_what_only_a_server_sees_is_never_a_500(prod: Server, request_bytes: bytes) -> None:
    answer = raw_request(prod.port, request_bytes)
    assert answer.startswith(b"HTTP/1.1 "), answer[:200]
    assert status_of(answer) < 500, answer[:300]
    assert b"Traceback" not in answer


def wait_for_line(log: Path, text: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while text not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert text in log.read_text(), log.read_text()[-2000:]


def test_a_client_that_leaves_mid_body_leaves_no_500_behind(prod: Server) -> None:
    """Its answer (a 400) cannot be delivered; what matters is that the server logs no
    exception for it (it did: starlette's ClientDisconnect escaped as a 500)."""
    with socket.create_connection(("127.0.0.1", prod.port), timeout=10) as sock:
        sock.sendall(
            b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\nX-Request-Id: left-early\r\n\r\n{"query"'
        )
        time.sleep(0.3)
    time.sleep(0.5)
    httpx.post(prod.url, json={"query": "{ __typename }"}, headers={"X-Request-Id": "after-left"})
    wait_for_line(prod.log, "[after-left]")
    assert [line for line in prod.log.read_text().splitlines() if "left-early" in line] == []
    assert "Exception in ASGI application" not in prod.log.read_text()


def test_the_logs_carry_the_request_id(prod: Server) -> None:
    response = httpx.post(
        prod.url, json={"query": "{ __typename }"}, headers={"X-Request-Id": "trace-me-1"}
    )
    assert response.headers["x-request-id"] == "trace-me-1"
    wait_for_line(prod.log, "[trace-me-1]")
    lines = [line for line in prod.log.read_text().splitlines() if "[trace-me-1]" in line]
    assert len(lines) == 1 and lines[0].endswith('"POST /graphql HTTP/1.1" 200 OK'), lines
