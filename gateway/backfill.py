"""`patron backfill`: the glue between the settings and `loyalty.backfill`.

The services are the app's own: the command runs `create_app(settings)`'s lifespan (the same
engine, HTTP client, upstream adapters and ledger as `patron serve`, built by the same code)
without serving anything.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import date

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.db.deliveries import SqlJobState, SqlRecordedOrders
from gateway.app import Clock, Gateway, create_app, utc_now
from gateway.settings import Settings
from loyalty.backfill import Backfill, BackfillPorts, BackfillReport
from resolvers.context import Services


def backfill_ports(services: Services, engine: AsyncEngine) -> BackfillPorts:
    return BackfillPorts(
        orders=services.commerce,
        members=services.store.reader,
        recorded=SqlRecordedOrders(engine),
        transactions=services.store.reader,
        ledger=services.ledger,
        checkpoints=SqlJobState(engine),
    )


def backfill_of(gateway: Gateway) -> Backfill:
    services = gateway.services
    return Backfill(backfill_ports(services, gateway.engine), services.clock, services.program.zone)


async def run_backfill(
    settings: Settings,
    since: date,
    *,
    page_size: int = 100,
    restart: bool = False,
    http: httpx.AsyncClient | None = None,
    clock: Clock = utc_now,
    progress: Callable[[BackfillReport], None] | None = None,
) -> BackfillReport:
    """Run the backfill with the services `create_app(settings)` builds."""
    app = create_app(settings, http=http, clock=clock)
    async with app.router.lifespan_context(app):
        gateway: Gateway = app.state.gateway
        return await backfill_of(gateway).run(
            since, page_size=page_size, restart=restart, progress=progress
        )


def print_progress(report: BackfillReport) -> None:
    print(
        f"  page {report.pages}: {report.orders_seen} orders seen, {report.earned} earned, "
        f"{report.points_earned} points",
        file=sys.stderr,
        flush=True,
    )
