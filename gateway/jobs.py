"""`patron jobs run NAME`: the scheduled jobs, each idempotent and safe to run from cron
on any replica.

- `pending`: move earns whose return window has passed from pending to available (reads
  already show them as available; the job makes the ledger say so too);
- `expiry`: expire posted points older than the program's `expiry_months`, oldest first.

The services are the app's own: the command runs `create_app(settings)`'s lifespan.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx

from gateway.app import Clock, Gateway, create_app, utc_now
from gateway.settings import Settings


async def _pending(gateway: Gateway) -> str:
    matured = await gateway.services.ledger.mature_pending()
    return f"{matured} earns moved from pending to available"


async def _expiry(gateway: Gateway) -> str:
    expired = await gateway.services.ledger.expire()
    return f"{expired} {gateway.services.program.points_name} expired"


JOBS: dict[str, Callable[[Gateway], Awaitable[str]]] = {
    "pending": _pending,
    "expiry": _expiry,
}


async def run_job(
    settings: Settings, name: str, *, http: httpx.AsyncClient | None = None, clock: Clock = utc_now
) -> str:
    job = JOBS[name]
    app = create_app(settings, http=http, clock=clock)
    async with app.router.lifespan_context(app):
        return await job(app.state.gateway)
