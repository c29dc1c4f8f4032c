"""How the member view benchmark's servers are set up: their environment (every setting
explicit, none inherited), the settings the in-process profile shares with the served
gateway, a fresh database, and the demo members seeded through the gateway itself."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import make_url

from bench.database import admin_url, fresh_database, server_version
from gateway.auth import issue_token
from gateway.demo import DEMO_CUSTOMERS, DEMO_SERVICE, fake_upstream_env
from gateway.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
JWT_SECRET = "bench-member-view-secret-0123456789abcdef"

ENROLL = """
mutation($input: EnrollMemberInput!) {
  enrollMember(input: $input) { member { id } userErrors { code message } }
}
"""
RECORD = """
mutation($input: RecordPurchaseInput!) {
  recordPurchase(input: $input) { transaction { id } userErrors { code message } }
}
"""


# --- settings and the database ------------------------------------------------------------
def base_env() -> dict[str, str]:
    """This environment less every `PATRON_*` (the run's settings are all explicit), with
    this checkout importable from the subprocesses' working directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATRON_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def gateway_env(fakes_base: str, database_url: str) -> dict[str, str]:
    env = base_env()
    env.update(fake_upstream_env(fakes_base))
    env.update(
        PATRON_DATABASE_URL=database_url,
        PATRON_JWT_SECRET=JWT_SECRET,
        PATRON_CARD_SECRET="bench-card-secret",
        PATRON_OUTBOX_RELAY="false",
    )
    return env


@contextmanager
def patron_variables_hidden() -> Iterator[None]:
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("PATRON_")}
    try:
        yield
    finally:
        os.environ.update(saved)


def settings_from_env(env: dict[str, str]) -> Settings:
    """The settings the served gateway reads from `env`: the same variables, no `.env`
    file, and none of this process's own `PATRON_*`."""
    fields: dict[str, Any] = {
        k.removeprefix("PATRON_").lower(): v for k, v in env.items() if k.startswith("PATRON_")
    }
    with patron_variables_hidden():
        return Settings(_env_file=None, **fields)  # type: ignore[call-arg]


@asynccontextmanager
async def database(kind: str, tmp: Path) -> AsyncIterator[tuple[str, str]]:
    """A fresh, migrated database for the run: its URL and how the report names it."""
    if kind == "postgresql":
        admin = admin_url()
        print("creating a fresh PostgreSQL database", flush=True)
        async with fresh_database(admin) as url:
            version = await server_version(url)
            yield url, f"PostgreSQL {version} (asyncpg), a fresh database beside {_host(admin)}"
        return
    path = tmp / "bench.db"
    url = f"sqlite+aiosqlite:///{path}"
    print("migrating a fresh SQLite database", flush=True)
    env = base_env() | {"PATRON_DATABASE_URL": url}
    await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "gateway", "migrate"],
        env=env,
        cwd=tmp,
        check=True,
        timeout=120,
        stdout=subprocess.DEVNULL,
    )
    yield url, "SQLite (a file, aiosqlite, WAL), migrated fresh"


def _host(url: str) -> str:
    parsed = make_url(url)
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}"


async def seed(url: str) -> None:
    """Enrol the demo customers and record their orders through the gateway's mutations."""
    service = issue_token(JWT_SECRET, DEMO_SERVICE, ["service"], ttl=3600)
    headers = {"Authorization": f"Bearer {service}"}
    async with httpx.AsyncClient(timeout=30, headers=headers) as client:

        async def call(query: str, field: str, variables: dict[str, Any]) -> dict[str, Any]:
            response = await client.post(url, json={"query": query, "variables": variables})
            body = response.json()
            payload = (body.get("data") or {}).get(field)
            if body.get("errors") or not payload or payload["userErrors"]:
                raise SystemExit(f"seeding: {field} failed: {body}")
            return dict(payload)

        for customer in DEMO_CUSTOMERS:
            enrolled = await call(
                ENROLL,
                "enrollMember",
                {
                    "input": {
                        "commerceCustomerId": customer.commerce_id,
                        "email": customer.email,
                        "idempotencyKey": f"bench-enrol-{customer.commerce_id}",
                    }
                },
            )
            member_id = enrolled["member"]["id"]
            for order in customer.orders:
                await call(
                    RECORD,
                    "recordPurchase",
                    {
                        "input": {
                            "memberId": member_id,
                            "orderId": order.order_id,
                            "total": {"amount": order.total, "currencyCode": order.currency},
                            "channel": "WEB",
                            "idempotencyKey": f"bench-order-{order.order_id}",
                        }
                    },
                )
