"""How failures outside GraphQL reach HTTP clients: a lost database is a 503 the sender
retries, anything else a 500 with a JSON body and the request id, never a traceback."""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.db.outages import is_outage
from gateway.request_id import REQUEST_ID_HEADER
from loyalty.errors import StoreUnavailable

__all__ = ["DatabaseOutages", "is_outage_or_unavailable", "server_error"]

log = logging.getLogger("patron")


class DatabaseOutages:
    """ASGI middleware: a route outside GraphQL (a webhook) that met a lost database answers
    503 `DATABASE_UNAVAILABLE` with `Retry-After`: nothing was recorded, the sender should
    retry. (GraphQL reports the same code per field, in its own errors.)"""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            if scope["type"] != "http" or started or not is_outage_or_unavailable(exc):
                raise
            # The exception's class only: a driver's message may quote a statement's values.
            log.warning(
                "%s %s: database unavailable (%s)",
                scope["method"], scope["path"], type(exc).__name__,
            )  # fmt: skip
            response = JSONResponse(
                {"error": {"code": StoreUnavailable.code, "message": str(StoreUnavailable())}},
                status_code=503,
                headers={"Retry-After": "30"},
            )
            await response(scope, receive, send)


def is_outage_or_unavailable(exc: BaseException) -> bool:
    return isinstance(exc, StoreUnavailable) or is_outage(exc)


async def server_error(request: Request, exc: Exception) -> JSONResponse:
    """Any other failure: a 500 with a JSON body, the request id and no traceback (the
    traceback goes to the log, with the same request id). On `/graphql` the body is a
    GraphQL response."""
    request_id = request.scope.get("state", {}).get("request_id")
    headers = {REQUEST_ID_HEADER: request_id} if request_id else None
    error: dict[str, Any] = {"code": "INTERNAL_ERROR", "message": "internal error"}
    if request_id:
        error["requestId"] = request_id
    if request.url.path == "/graphql":
        code, message = error.pop("code"), error.pop("message")
        body: dict[str, Any] = {
            "errors": [{"message": message, "extensions": {"code": code, **error}}]
        }
    else:
        body = {"error": error}
    return JSONResponse(body, status_code=500, headers=headers)
