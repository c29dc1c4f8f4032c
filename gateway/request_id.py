"""Request ids: every HTTP request and WebSocket connection gets one, so that an answer and
the log lines it caused can be matched.

- The id is the incoming `X-Request-Id` when it is a plausible id (1 to 128 characters of
  letters, digits and `-_.:`: a UUID, a load balancer's or a client's trace id), else a new
  UUID4. Anything else (too long, spaces, quotes, control characters) is never echoed into
  a header or a log line: a fresh id replaces it.
- `RequestIds` (ASGI middleware) puts it in `current_request_id` (a contextvar: every log
  record made while the request runs, in its task and the tasks it starts, can read it),
  in `scope["state"]["request_id"]`, and in the `X-Request-Id` header of the answer.
- `RequestIdLogFilter` gives every log record a `request_id` attribute (`-` outside a
  request), for formats (`%(request_id)s`) and structured logs alike.
- Masked errors carry it as `extensions.requestId` (`gateway.masking`).

The contextvar is set and deliberately not reset when the request ends: under uvicorn each
request runs in its own task (its own copy of the context), and the server's own line about
an exception that escaped the app is logged after the app returned, still with the id.
"""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "REQUEST_ID_HEADER",
    "RequestIdLogFilter",
    "RequestIds",
    "current_request_id",
    "request_id_from",
]

REQUEST_ID_HEADER = "X-Request-Id"
_VALID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

current_request_id: ContextVar[str | None] = ContextVar("patron_request_id", default=None)


def request_id_from(incoming: str | None) -> str:
    """The incoming id when it is a plausible one, else a new UUID4."""
    if incoming is not None and _VALID.fullmatch(incoming):
        return incoming
    return str(uuid.uuid4())


class RequestIds:
    """ASGI middleware: gives each HTTP request and WebSocket connection its request id (see
    the module) and echoes it in the `X-Request-Id` header of the HTTP answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = request_id_from(incoming)
        current_request_id.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        await self.app(scope, receive, sending)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


class RequestIdLogFilter(logging.Filter):
    """Sets `record.request_id`: the id of the request being served, `-` outside one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id.get() or "-"
        return True
