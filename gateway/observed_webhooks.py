"""Webhook deliveries counted (`patron_webhook_deliveries_total{endpoint, status, outcome}`):
each webhook route is wrapped by `counted(endpoint, handler, metrics)`.

The outcome is what the answer says: its `status` (`recorded`, `duplicate`, `ignored`,
`invalidated`, ...) or its error's `code` (`INVALID_SIGNATURE`, `MALFORMED_MESSAGE`,
`UPSTREAM_UNAVAILABLE`, ...); a lost database (the handler raised, `DatabaseOutages`
answers) is `DATABASE_UNAVAILABLE` with 503, and counted in `patron_database_unavailable`
too; any other exception `INTERNAL_ERROR` with 500. Every answer of the three handlers is
one of these fixed words, so the label stays bounded.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson
from starlette.requests import Request
from starlette.responses import Response

from adapters.db.outages import is_outage
from gateway.metrics import Metrics
from loyalty.errors import StoreUnavailable

__all__ = ["counted", "outcome_of"]

Handler = Callable[[Request], Awaitable[Response]]


def counted(endpoint: str, handler: Handler, metrics: Metrics) -> Handler:
    async def observed(request: Request) -> Response:
        try:
            response = await handler(request)
        except Exception as exc:
            if isinstance(exc, StoreUnavailable) or is_outage(exc):
                metrics.webhook_delivery(endpoint, 503, StoreUnavailable.code)
                metrics.database_unavailable_in("webhook")
            else:
                metrics.webhook_delivery(endpoint, 500, "INTERNAL_ERROR")
            raise
        metrics.webhook_delivery(endpoint, response.status_code, outcome_of(response))
        return response

    return observed


def outcome_of(response: Response) -> str:
    """The answer's `status`, or its `error.code`; `unknown` for anything else."""
    try:
        body = orjson.loads(response.body)
    except orjson.JSONDecodeError:
        return "unknown"
    if isinstance(body, dict):
        status = body.get("status")
        if isinstance(status, str):
            return status
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("code"), str):
            return str(error["code"])
    return "unknown"
