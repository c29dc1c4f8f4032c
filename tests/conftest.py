"""Shared fixtures: a migrated database (SQLite always; PostgreSQL too when
`PATRON_TEST_DATABASE_URL` is set), the fake upstreams, the app through ASGI, tokens, and a
check after every test that the ledger still balances."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.cache.cached_orders import CachedOrders
from adapters.cache.cached_ports import CachedContent, CachedProfiles
from adapters.cache.store import MemoryCacheStore
from adapters.db.engine import create_engine
from adapters.db.migrate import upgrade
from adapters.db.tables import metadata
from gateway.app import Gateway, create_app
from gateway.auth import issue_token
from gateway.demo import Fakes, fake_upstream_env
from gateway.settings import Settings

TEST_JWT_SECRET = "test-jwt-secret-0123456789abcdef"
TEST_CARD_SECRET = "test-card-secret"
TEST_WEBHOOK_SECRET = "test-webhook-secret"
START = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
PG_URL = os.environ.get("PATRON_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("PATRON_TEST_REDIS_URL")


class Clock:
    """A clock the tests move by hand."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


# --- databases --------------------------------------------------------------------------
@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once per session; each test gets a copy."""
    path = tmp_path_factory.mktemp("db") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str | None]:
    """A fresh PostgreSQL database for this session, migrated; dropped at the end."""
    if not PG_URL:
        yield None
        return
    base = make_url(PG_URL)
    name = f"patron_test_{uuid.uuid4().hex[:8]}"

    async def admin(statement: str) -> None:
        engine = create_engine(base.set(database="postgres").render_as_string(False))
        async with engine.connect() as conn:
            await (await conn.execution_options(isolation_level="AUTOCOMMIT")).execute(
                text(statement)
            )
        await engine.dispose()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(False)
    upgrade(url)
    yield url
    asyncio.run(admin(f'DROP DATABASE "{name}" WITH (FORCE)'))


def _backends() -> list[Any]:
    params: list[Any] = ["sqlite"]
    if PG_URL:
        params.append(pytest.param("postgresql", marks=pytest.mark.postgres))
    return params


@pytest.fixture(params=_backends())
def database_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sqlite_template: Path,
    postgres_database: str | None,
) -> str:
    if request.param == "sqlite":
        path = tmp_path / "patron.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite+aiosqlite:///{path}"
    assert postgres_database is not None
    tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)

    async def truncate() -> None:
        engine = create_engine(postgres_database)
        async with engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        await engine.dispose()

    asyncio.run(truncate())
    return postgres_database


# --- the app ------------------------------------------------------------------------------
@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


@pytest.fixture
def settings(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    return settings_for(database_url, monkeypatch)


def settings_for(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The tests' settings on a database, with no `PATRON_*` variable of the environment
    (nor an OTLP endpoint: tests that trace give the app their own span processor)."""
    for key in list(os.environ):
        if key.startswith("PATRON_") or key == "OTEL_EXPORTER_OTLP_ENDPOINT":
            monkeypatch.delenv(key)
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        jwt_secret=TEST_JWT_SECRET,
        card_secret=TEST_CARD_SECRET,
        webhook_secret=TEST_WEBHOOK_SECRET,
        cdp_webhook_secret=TEST_WEBHOOK_SECRET,
        cms_webhook_secret=TEST_WEBHOOK_SECRET,
        # No background outbox relay: its calls to the CDP fake and its SQL would land in
        # whatever a test is counting. Tests drain it by hand: `h.gateway.outbox.drain_once()`.
        outbox_relay=False,
        **{k.removeprefix("PATRON_").lower(): v for k, v in fake_upstream_env().items()},
    )


@dataclass
class SqlCounter:
    """Counts the SQL statements an engine runs (the no-N+1 tests)."""

    statements: list[str] = field(default_factory=list)
    checkouts: int = 0  # connections taken from the pool

    def reset(self) -> None:
        self.statements.clear()
        self.checkouts = 0

    @property
    def queries(self) -> list[str]:
        """The statements other than transaction control (BEGIN, COMMIT)."""
        return [s for s in self.statements if s.split(None, 1)[0].upper() not in ("BEGIN",)]

    @property
    def count(self) -> int:
        return len(self.queries)


@dataclass
class Harness:
    app: Any
    client: httpx.AsyncClient
    fakes: Fakes
    clock: Clock
    sql: SqlCounter

    @property
    def gateway(self) -> Gateway:
        gateway: Gateway = self.app.state.gateway
        return gateway

    @property
    def engine(self) -> AsyncEngine:
        return self.gateway.engine

    def clear_caches(self) -> None:
        """Forget the cached CMS content, CDP profiles and order history (the in-process
        store)."""
        services = self.gateway.services
        for port in (services.cms, services.cdp, services.commerce):
            cached = isinstance(port, CachedContent | CachedProfiles | CachedOrders)
            if cached and isinstance(port.cache.store, MemoryCacheStore):
                port.cache.store.clear()

    async def gql(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        token: str | None = None,
        expect_status: int = 200,
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await self.client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == expect_status, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
async def harness(settings: Settings, fakes: Fakes, clock: Clock) -> AsyncIterator[Harness]:
    async with running(settings, fakes, clock) as h:
        yield h


@contextlib.asynccontextmanager
async def running(
    settings: Settings, fakes: Fakes, clock: Clock, client_address: str = "127.0.0.1"
) -> AsyncIterator[Harness]:
    """The app on `settings` with its lifespan running, a client through ASGI (calling from
    `client_address`), and its SQL counted; the ledger checked at the end."""
    http = fakes.http_client()
    app = create_app(settings, http=http, clock=clock)
    counter = SqlCounter()
    async with app.router.lifespan_context(app):
        engine: AsyncEngine = app.state.gateway.engine

        def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            counter.statements.append(statement)

        def checkout(*args: Any) -> None:
            counter.checkouts += 1

        event.listen(engine.sync_engine, "before_cursor_execute", count)
        event.listen(engine.sync_engine.pool, "checkout", checkout)
        transport = httpx.ASGITransport(app=app, client=(client_address, 123))
        async with httpx.AsyncClient(transport=transport, base_url="http://patron.test") as client:
            yield Harness(app, client, fakes, clock, counter)
        await assert_ledger_balances(engine)
    await http.aclose()


async def assert_ledger_balances(engine: AsyncEngine) -> None:
    """Every test leaves the books balanced: the postings sum to zero over all accounts, no
    wallet is below zero, and each wallet's cached balance equals the sum of its postings."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    """
                    SELECT a.code, a.kind, a.balance,
                      COALESCE((SELECT SUM(p.amount) FROM ledger_postings p
                                WHERE p.destination_id = a.id), 0)
                      - COALESCE((SELECT SUM(p.amount) FROM ledger_postings p
                                  WHERE p.source_id = a.id), 0) AS derived
                    FROM ledger_accounts a
                    """
                )
            )
        ).all()
    assert sum(r.derived for r in rows) == 0, "the ledger does not balance"
    wallets = [r for r in rows if r.kind.startswith("wallet_")]
    negative = [(r.code, r.derived) for r in wallets if r.derived < 0]
    assert not negative, f"wallets below zero: {negative}"
    wrong = [(r.code, r.balance, r.derived) for r in wallets if r.balance != r.derived]
    assert not wrong, f"cached balances differ from postings: {wrong}"


# --- identities ---------------------------------------------------------------------------
def token(sub: str, *roles: str, store: str | None = None, ttl: int = 3600) -> str:
    return issue_token(TEST_JWT_SECRET, sub, list(roles), ttl=ttl, store=store)


@pytest.fixture
def service_token() -> str:
    return token("pos-1", "service")


@pytest.fixture
def associate_token() -> str:
    return token("assoc-1", "associate", store="TOR-1")


@pytest.fixture
def marketer_token() -> str:
    return token("mkt-1", "marketer")


@pytest.fixture
def admin_token() -> str:
    return token("admin-1", "admin")
