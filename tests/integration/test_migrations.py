"""The Alembic migrations build exactly `adapters.db.tables.metadata`, on SQLite and (with
PATRON_TEST_DATABASE_URL) PostgreSQL, and SQLite goes down to base and up again."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from adapters.db.engine import create_engine
from adapters.db.migrate import alembic_config, upgrade
from adapters.db.tables import metadata

HEAD = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection,
        opts={"compare_type": True, "compare_server_default": False, "target_metadata": metadata},
    )
    return list(compare_metadata(context, metadata))


async def _diff(url: str) -> tuple[list[Any], str | None]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(_differences)
            version = await conn.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )
    finally:
        await engine.dispose()
    return diff, version


async def _table_names(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            names: list[str] = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
    finally:
        await engine.dispose()
    return set(names)


def test_there_is_one_head() -> None:
    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    assert heads == [HEAD]


def test_migrations_match_the_tables(database_url: str) -> None:
    """Every table, column, type, index and constraint of the metadata, and nothing else."""
    diff, version = asyncio.run(_diff(database_url))
    assert diff == []
    assert version == HEAD


def test_sqlite_downgrades_to_base_and_upgrades_again(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url)
    expected = {t.name for t in metadata.sorted_tables}
    assert asyncio.run(_table_names(url)) == expected | {"alembic_version"}

    command.downgrade(alembic_config(url), "base")
    assert asyncio.run(_table_names(url)) == {"alembic_version"}
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM alembic_version").fetchone() == (0,)

    upgrade(url)
    assert asyncio.run(_table_names(url)) == expected | {"alembic_version"}
    diff, version = asyncio.run(_diff(url))
    assert diff == []
    assert version == HEAD


def test_sqlite_steps_down_and_up_one_revision_at_a_time(tmp_path: Path) -> None:
    """Each revision's downgrade undoes exactly its upgrade."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'steps.db'}"
    script = ScriptDirectory.from_config(alembic_config(url))
    revisions = [r.revision for r in script.walk_revisions("base", "heads")]  # newest first
    upgrade(url)
    for revision in revisions:
        command.downgrade(alembic_config(url), "-1")
        below = script.get_revision(revision).down_revision
        assert asyncio.run(_diff(url))[1] == below
    assert asyncio.run(_table_names(url)) == {"alembic_version"}
    for revision in reversed(revisions):
        command.upgrade(alembic_config(url), "+1")
        assert asyncio.run(_diff(url))[1] == revision
    assert asyncio.run(_diff(url)) == ([], HEAD)
