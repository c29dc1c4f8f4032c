"""Helpers for driving GraphiQL in a real, headless Chromium (Debian's, at /usr/bin/chromium).

Playwright's own browser download does not work offline, so the tests launch the system
Chromium through playwright's ``executable_path``. Install it with
``apt-get install -y chromium``; the tests skip when it is missing.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import (
        Browser,
        ConsoleMessage,
        Page,
        Playwright,
        Request,
        Response,
        WebSocket,
    )
    from starlette.types import ASGIApp

CHROMIUM_PATH = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOOPBACK = "127.0.0.1"
UI_TIMEOUT_MS = 30_000

# Runs before any page script: records every CSP violation the page reports.
_CSP_RECORDER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(
    `${event.effectiveDirective} blocked ${event.blockedURI || "inline"}` +
    ` (${event.sourceFile || "?"}:${event.lineNumber})`
  );
});
"""


def require_chromium() -> str:
    """The Chromium executable, or skip the test with the reason."""
    if not Path(CHROMIUM_PATH).exists():
        pytest.skip(f"{CHROMIUM_PATH} is missing: apt-get install -y chromium")
    pytest.importorskip("playwright.sync_api", reason="playwright (python) is not installed")
    return CHROMIUM_PATH


def launch_chromium(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(
        executable_path=require_chromium(), args=CHROMIUM_ARGS, headless=True
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_http(
    url: str, timeout: float, *, should_stop: Callable[[], bool] | None = None
) -> None:
    """Poll ``url`` until it answers 200, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if should_stop is not None and should_stop():
            pytest.fail(f"gave up waiting for {url}: the server stopped")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
                last = response.status
        except (urllib.error.URLError, OSError) as exc:
            last = exc
        time.sleep(0.1)
    pytest.fail(f"{url} did not answer 200 within {timeout:.0f}s (last: {last!r})")


@contextlib.contextmanager
def serve_in_thread(app: ASGIApp, port: int | None = None) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 in a background thread; yields the base URL."""
    import uvicorn

    port = port or free_port()
    config = uvicorn.Config(
        app, host=LOOPBACK, port=port, log_level="warning", lifespan="off", ws="auto"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn:{port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                pytest.fail(f"uvicorn did not start on {LOOPBACK}:{port}")
            time.sleep(0.02)
        yield f"http://{LOOPBACK}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@dataclass
class PageLog:
    """Everything a page asked the network for and said on its console."""

    requests: list[str] = field(default_factory=list)
    websockets: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        page.add_init_script(_CSP_RECORDER)

        def on_request(request: Request) -> None:
            self.requests.append(request.url)

        def on_websocket(websocket: WebSocket) -> None:
            self.websockets.append(websocket.url)

        def on_console(message: ConsoleMessage) -> None:
            self.console.append(f"{message.type}: {message.text}")

        def on_page_error(error: Exception) -> None:
            self.page_errors.append(str(error))

        page.on("request", on_request)
        page.on("websocket", on_websocket)
        page.on("console", on_console)
        page.on("pageerror", on_page_error)

    def off_host(self, host: str = LOOPBACK) -> list[str]:
        """Requested URLs (HTTP and WebSocket) that went anywhere but ``host``."""
        local_schemes = {"data", "blob", "about"}
        return [
            url
            for url in [*self.requests, *self.websockets]
            if urlsplit(url).scheme not in local_schemes and urlsplit(url).hostname != host
        ]

    def csp_violations(self, page: Page) -> list[str]:
        recorded: list[str] = page.evaluate("window.__cspViolations || []")
        logged = [line for line in self.console if "Content Security Policy" in line]
        return [*recorded, *logged]


def open_graphiql(page: Page, url: str) -> Response:
    """Load GraphiQL and wait until its editors are up and the schema has loaded."""
    response = page.goto(url, wait_until="load")
    assert response is not None, f"no response for {url}"
    assert response.ok, f"GET {url} answered {response.status}"
    page.locator(".graphiql-container").wait_for(timeout=UI_TIMEOUT_MS)
    page.locator(".graphiql-query-editor .CodeMirror").wait_for(timeout=UI_TIMEOUT_MS)
    # The explorer lists the root fields once introspection has answered.
    page.locator(".graphiql-explorer-root").wait_for(timeout=UI_TIMEOUT_MS)
    return response


def _editor_value(page: Page, selector: str) -> str:
    value: str = page.evaluate(
        "(selector) => document.querySelector(selector).CodeMirror.getValue()", selector
    )
    return value


def _type_into_editor(page: Page, selector: str, text: str) -> None:
    """Type ``text`` into the CodeMirror editor at ``selector``, as a person would."""
    page.locator(f"{selector} .CodeMirror").click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.type(text)
    page.keyboard.press("Escape")  # closes an autocomplete popup, if one opened
    # CodeMirror closes brackets and quotes and overtypes the closing ones; compare
    # ignoring whitespace, so an auto-indent does not matter.
    typed = _editor_value(page, f"{selector} .CodeMirror")
    assert "".join(typed.split()) == "".join(text.split()), f"editor holds {typed!r}"


def open_dialogs(page: Page) -> None:
    """Open and close GraphiQL's settings and shortcuts dialogs (they inject a <style>)."""
    for label in ("Open settings dialog", "Open short keys dialog"):
        page.get_by_label(label, exact=True).click()
        page.get_by_role("dialog").wait_for(timeout=UI_TIMEOUT_MS)
        page.keyboard.press("Escape")
        page.get_by_role("dialog").wait_for(state="detached", timeout=UI_TIMEOUT_MS)


def set_headers(page: Page, headers: dict[str, str]) -> None:
    """Open the Headers tab of the editor tools and type ``headers`` as JSON."""
    page.get_by_role("button", name="Headers", exact=True).click()
    editor = ".graphiql-editor-tool .graphiql-editor:not(.hidden)"
    page.locator(f"{editor} .CodeMirror").wait_for(timeout=UI_TIMEOUT_MS)
    _type_into_editor(page, editor, json.dumps(headers))


def run_query(page: Page, query: str, *, expect: str) -> str:
    """Type ``query``, run it with the run button, wait for ``expect`` in the result pane.

    Returns the text of the result pane.
    """
    _type_into_editor(page, ".graphiql-query-editor", query)
    # GraphiQL re-parses the query 100 ms after the last keystroke, and picks HTTP or the
    # WebSocket by the parsed operation: run only once the parse has caught up.
    page.wait_for_function(
        "() => { const cm = document.querySelector('.graphiql-query-editor .CodeMirror')"
        ".CodeMirror; const ast = cm.documentAST;"
        " return !!ast && !!ast.loc && ast.loc.source.body === cm.getValue(); }",
        timeout=UI_TIMEOUT_MS,
    )
    page.locator("button.graphiql-execute-button").click()
    result = page.locator(".result-window")
    try:
        page.wait_for_function(
            "([selector, expected]) =>"
            " (document.querySelector(selector)?.innerText || '').includes(expected)",
            arg=[".result-window", expect],
            timeout=UI_TIMEOUT_MS,
        )
    except Exception as exc:
        shown = result.inner_text() if result.count() else "<no result pane>"
        raise AssertionError(f"result pane never showed {expect!r}; it shows:\n{shown}") from exc
    text: str = result.inner_text()
    return text
