"""/healthz and /readyz: the database is required, Redis is not (degraded, still serving)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from gateway.app import create_app
from gateway.demo import Fakes
from gateway.settings import Settings
from tests.conftest import Clock, token
from tests.graphql.conftest import ENROLL


@asynccontextmanager
async def client(settings: Settings, clock: Clock) -> AsyncIterator[httpx.AsyncClient]:
    fakes = Fakes()
    http = fakes.http_client()
    app = create_app(settings, http=http, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            yield c
    await http.aclose()


async def test_ready_with_a_database_and_no_redis(settings: Settings, clock: Clock) -> None:
    async with client(settings, clock) as c:
        assert (await c.get("/healthz")).json() == {"status": "ok"}
        ready = await c.get("/readyz")
        assert (ready.status_code, ready.json()) == (
            200,
            {"status": "ready", "database": "ok", "redis": "not configured"},
        )


async def test_redis_down_is_degraded_and_the_gateway_still_serves(
    settings: Settings, clock: Clock
) -> None:
    down = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    async with client(down, clock) as c:
        ready = await c.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["status"] == "degraded"
        assert ready.json()["database"] == "ok"
        assert ready.json()["redis"].startswith("unavailable: ")
        enrolled = await c.post(
            "/graphql",
            json={"query": ENROLL, "variables": {"input": {"commerceCustomerId": "c-1"}}},
            headers={"Authorization": f"Bearer {token('svc', 'service')}"},
        )
        assert enrolled.json()["data"]["enrollMember"]["userErrors"] == []
        view = await c.post(
            "/graphql",
            json={"query": "{ me { externalIds { commerceCustomerId } profile { userId } } }"},
            headers={"Authorization": f"Bearer {token('c-1', 'member')}"},
        )
        assert view.json() == {
            "data": {"me": {"externalIds": {"commerceCustomerId": "c-1"}, "profile": None}}
        }


async def test_database_down_is_not_ready(settings: Settings, clock: Clock, tmp_path: Path) -> None:
    gone = settings.model_copy(
        update={"database_url": f"sqlite+aiosqlite:///{tmp_path}/missing/dir/x.db"}
    )
    async with client(gone, clock) as c:
        ready = await c.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["status"] == "unavailable"
        assert ready.json()["database"].startswith("unavailable: ")
