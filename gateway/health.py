"""`/healthz` (the process is alive) and `/readyz` (its dependencies answer)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse

if TYPE_CHECKING:
    from gateway.app import Gateway  # app.py imports this module

__all__ = ["READINESS_TIMEOUT", "healthz", "readyz"]

READINESS_TIMEOUT = 2.0  # seconds for each dependency check of /readyz


async def healthz(request: Request) -> JSONResponse:
    """The process is alive."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    """Ready when the database answers (503 otherwise: loyalty data cannot be served).
    Redis down is `degraded` but still ready: the gateway serves without its cache and
    without cross-replica live updates, and recovers when Redis returns."""
    gateway: Gateway = request.app.state.gateway
    checks: dict[str, Any] = {}
    try:
        async with asyncio.timeout(READINESS_TIMEOUT):
            async with gateway.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unavailable: {type(exc).__name__}"
    if gateway.redis is None:
        checks["redis"] = "not configured"
    else:
        try:
            async with asyncio.timeout(READINESS_TIMEOUT):
                await gateway.redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"unavailable: {type(exc).__name__}"
    if checks["database"] != "ok":
        return JSONResponse({"status": "unavailable", **checks}, status_code=503)
    degraded = checks["redis"] not in ("ok", "not configured")
    return JSONResponse({"status": "degraded" if degraded else "ready", **checks})
