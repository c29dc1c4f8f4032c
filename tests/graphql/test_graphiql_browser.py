"""GraphiQL in a real browser: served by the gateway, offline, under a strict CSP.

Needs Debian's Chromium (``apt-get install -y chromium``); skipped when it is missing.
Set ``GRAPHIQL_SCREENSHOT=/some/dir`` to keep screenshots of the pages.
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path

import pytest
import strawberry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from strawberry.asgi import GraphQL

from gateway.graphiql import (
    CONTENT_SECURITY_POLICY,
    GRAPHIQL_HEADERS,
    STATIC_PREFIX,
    graphiql_html,
    static_app,
)
from tests.graphql.browser import (
    LOOPBACK,
    PageLog,
    free_port,
    launch_chromium,
    open_dialogs,
    open_graphiql,
    require_chromium,
    run_query,
    serve_in_thread,
    set_headers,
    wait_for_http,
)

pytestmark = pytest.mark.browser

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_START_TIMEOUT = 60.0
MEMBER_TOKEN_LINE = re.compile(r"^\s*member\b.*Bearer (\S+)\s*$")


def _screenshot_path(tmp_path: Path, name: str) -> Path:
    directory = os.environ.get("GRAPHIQL_SCREENSHOT")
    return (Path(directory) if directory else tmp_path) / name


# --- (a) a tiny app with the same wiring as the gateway -------------------------------------


@strawberry.type
class Query:
    @strawberry.field
    def hello(self) -> str | None:
        return "world"


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def greetings(self) -> AsyncGenerator[str, None]:
        yield "hello over websocket"


class GraphiQLView(GraphQL):
    """strawberry's ASGI view with Patron's offline GraphiQL page (what gateway/app.py does)."""

    async def render_graphql_ide(self, request: Request) -> Response:
        return HTMLResponse(graphiql_html(), headers=GRAPHIQL_HEADERS)


def tiny_app() -> Starlette:
    schema = strawberry.Schema(query=Query, subscription=Subscription)
    view = GraphiQLView(schema, graphql_ide="graphiql")
    return Starlette(
        routes=[
            Route("/graphql", view),
            WebSocketRoute("/graphql", view),
            Mount(STATIC_PREFIX, app=static_app()),
        ]
    )


def test_graphiql_runs_a_query_offline_under_csp(tmp_path: Path) -> None:
    require_chromium()
    from playwright.sync_api import sync_playwright

    with serve_in_thread(tiny_app()) as base_url, sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 800})
            log = PageLog()
            log.attach(page)

            response = open_graphiql(page, f"{base_url}/graphql")
            assert response.headers.get("content-security-policy") == CONTENT_SECURITY_POLICY

            shown = run_query(page, "{ hello }", expect='"hello": "world"')
            assert '"hello": "world"' in shown

            # Subscriptions go over graphql-transport-ws to the same path; connect-src 'self'
            # must allow that WebSocket.
            run_query(
                page,
                "subscription { greetings }",
                expect='"greetings": "hello over websocket"',
            )
            page.screenshot(path=str(_screenshot_path(tmp_path, "graphiql.png")))
            # The dialogs inject GraphiQL's one <style> element, allowed by its hash.
            open_dialogs(page)

            assert log.page_errors == []
            assert log.csp_violations(page) == []
            assert log.off_host() == [], "GraphiQL reached beyond the gateway"
            assert any(url.startswith(f"ws://{LOOPBACK}:") for url in log.websockets)
            assert any(url.endswith(f"{STATIC_PREFIX}/graphiql.min.js") for url in log.requests)
        finally:
            browser.close()


# --- (b) the real demo gateway ----------------------------------------------------------------


class DemoGateway:
    """``python -m gateway serve --demo`` in a subprocess, its stdout read by a thread."""

    def __init__(self, cwd: Path, port: int) -> None:
        env = {key: value for key, value in os.environ.items() if not key.startswith("PATRON_")}
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONPATH"] = os.pathsep.join(
            part for part in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if part
        )
        self.port = port
        self.output: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--demo", "--port", str(port)],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        self._reader = threading.Thread(target=self._read, name="demo-stdout", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def transcript(self) -> str:
        return "\n".join(self.output[-60:])

    def wait_for_member_token(self, deadline: float) -> str:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"no member token printed in time; output:\n{self.transcript()}")
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                pytest.fail(
                    f"the demo gateway exited ({self.process.wait()}) before printing a member"
                    f" token; output:\n{self.transcript()}"
                )
            self.output.append(line)
            match = MEMBER_TOKEN_LINE.match(line)
            if match:
                return match.group(1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self._reader.join(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()


@pytest.fixture
def demo_gateway(tmp_path: Path) -> Iterator[DemoGateway]:
    gateway = DemoGateway(tmp_path, free_port())
    try:
        yield gateway
    finally:
        gateway.stop()


def test_demo_graphiql_me_query(demo_gateway: DemoGateway, tmp_path: Path) -> None:
    require_chromium()
    from playwright.sync_api import sync_playwright

    deadline = time.monotonic() + DEMO_START_TIMEOUT
    token = demo_gateway.wait_for_member_token(deadline)
    base_url = f"http://{LOOPBACK}:{demo_gateway.port}"
    wait_for_http(
        f"{base_url}/healthz",
        max(deadline - time.monotonic(), 1.0),
        should_stop=lambda: demo_gateway.process.poll() is not None,
    )

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 800})
            log = PageLog()
            log.attach(page)

            response = open_graphiql(page, f"{base_url}/graphql")
            assert "content-security-policy" in response.headers

            set_headers(page, {"Authorization": f"Bearer {token}"})
            shown = run_query(
                page,
                "{ me { externalIds { commerceCustomerId } points { available } } }",
                expect='"commerceCustomerId": "demo-ava"',
            )
            page.screenshot(path=str(_screenshot_path(tmp_path, "graphiql-demo.png")))

            assert '"available":' in shown
            assert log.page_errors == []
            assert log.csp_violations(page) == []
            assert log.off_host() == [], "GraphiQL reached beyond the gateway"
        finally:
            browser.close()
