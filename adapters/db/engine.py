"""The database engine: SQLite (embedded default) or PostgreSQL, with the settings each needs
for the ledger's guarantees.

SQLite: WAL (readers never block the writer), foreign keys on, a busy timeout, and write
transactions opened with `BEGIN IMMEDIATE` so two writers serialize instead of deadlocking
on a lock upgrade. PostgreSQL: READ COMMITTED with `SELECT ... FOR UPDATE` row locks taken
by the ledger in a fixed order.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from adapters.db import sqlite_driver

WRITE_OPTION = "patron_write"


def create_engine(url: str, *, echo: bool = False, pool_size: int = 10) -> AsyncEngine:
    """`pool_size` connections are kept open, as many again are opened under load and closed
    when given back. On SQLite each connection is a thread of aiosqlite's, so a pool too
    small for the load would start a thread (and set the PRAGMAs) for most reads."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_async_engine(
            url,
            echo=echo,
            hide_parameters=True,  # an error's text never quotes a member's data (logs)
            # One trip to aiosqlite's thread per statement instead of four (sqlite_driver).
            connect_args={"timeout": 30, "async_creator_fn": sqlite_driver.connect},
            pool_size=pool_size,
            max_overflow=pool_size,
        )
        _configure_sqlite(engine)
        return engine
    return create_async_engine(
        url,
        echo=echo,
        hide_parameters=True,  # an error's text never quotes a member's data (logs)
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
    )


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (see below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
