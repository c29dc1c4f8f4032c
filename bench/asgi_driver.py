"""Member views sent to an ASGI app in this process, as an ASGI server would send them.

The CPU profile drives the gateway this way rather than through `httpx.ASGITransport`:
httpx's frames would land in the same httpx/httpcore row as the gateway's own upstream
calls, while these few lines show apart, as the benchmark's own.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message

from bench.load import classify


@dataclass(frozen=True, slots=True)
class ViewRequest:
    body: bytes
    headers: list[tuple[bytes, bytes]]


async def asgi_post(app: ASGIApp, request: ViewRequest) -> tuple[int, bytes]:
    """POST /graphql: the body in one message, a disconnect only once the response is
    complete; returns the status and the body."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "root_path": "",
        "query_string": b"",
        "headers": request.headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    body_sent = False
    complete = asyncio.Event()
    status = 0
    chunks: list[bytes] = []

    async def receive() -> Message:
        nonlocal body_sent
        if not body_sent:
            body_sent = True
            return {"type": "http.request", "body": request.body, "more_body": False}
        await complete.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                complete.set()

    try:
        await app(scope, receive, send)
    finally:
        complete.set()
    return status, b"".join(chunks)


async def run_views(
    app: ASGIApp, requests: Sequence[ViewRequest], views: int, clients: int
) -> Counter[str]:
    """`views` member views, `clients` at a time; their outcomes (as `bench.load` names
    them). A failure is counted, never raised."""
    tickets = iter(range(views))
    outcomes: Counter[str] = Counter()

    async def client() -> None:
        for i in tickets:
            try:
                status, body = await asgi_post(app, requests[i % len(requests)])
                outcomes[classify(status, body)] += 1
            except Exception as exc:  # counted, not fatal: the report says how many
                outcomes[type(exc).__name__] += 1

    await asyncio.gather(*(client() for _ in range(clients)))
    return outcomes
