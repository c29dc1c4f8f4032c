"""A fresh PostgreSQL database for a benchmark run, made beside an admin URL's database.

`PATRON_BENCH_DATABASE_URL` is an admin URL (default
`postgresql+asyncpg://postgres@127.0.0.1:5432/postgres`); a benchmark creates
`patron_bench_<random>` next to it, migrates it and drops it at the end, so runs never see
each other's rows and nothing is left behind.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.engine import make_url

from adapters.db.engine import create_engine
from adapters.db.migrate import upgrade

DEFAULT_ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


def admin_url() -> str:
    return os.environ.get("PATRON_BENCH_DATABASE_URL", DEFAULT_ADMIN_URL)


async def _admin(url: str, statement: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


@asynccontextmanager
async def fresh_database(admin: str) -> AsyncIterator[str]:
    """A new, migrated database next to `admin`'s; dropped on the way out."""
    base = make_url(admin)
    if base.get_backend_name() != "postgresql":
        raise SystemExit("PATRON_BENCH_DATABASE_URL must be a PostgreSQL URL")
    name = f"patron_bench_{uuid.uuid4().hex[:8]}"
    await _admin(admin, f'CREATE DATABASE "{name}"')
    try:
        url = base.set(database=name).render_as_string(hide_password=False)
        await asyncio.to_thread(upgrade, url)
        yield url
    finally:
        await _admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def server_version(url: str) -> str:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            version = str((await conn.execute(text("SHOW server_version"))).scalar_one())
    finally:
        await engine.dispose()
    return version.split()[0]
