"""Telling a lost database from a wrong statement.

When PostgreSQL stops, restarts or the network drops, the drivers raise many things: an
`OSError` from a new connection (refused, reset), a `DBAPIError` whose connection was
invalidated mid-statement, an `InterfaceError` on a closed connection, the pool's
`TimeoutError` when no connection comes back in time; SQLite, an `OperationalError` when its
file cannot be opened. All of them become `loyalty.errors.StoreUnavailable`, which the API
reports as `DATABASE_UNAVAILABLE`. A statement that is wrong, a constraint, a serialization
failure are not outages and pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc as sa

from loyalty.errors import StoreUnavailable

__all__ = ["is_outage", "outages_as_unavailable"]

_SQLITE_OUTAGES = ("unable to open database file", "disk i/o error")


def is_outage(error: BaseException) -> bool:
    if isinstance(error, sa.DBAPIError):
        if error.connection_invalidated or isinstance(error, sa.InterfaceError):
            return True
        if isinstance(error.orig, OSError):
            return True
        message = str(error.orig).lower()
        return isinstance(error, sa.OperationalError) and any(m in message for m in _SQLITE_OUTAGES)
    return isinstance(error, OSError | sa.TimeoutError)


@contextmanager
def outages_as_unavailable() -> Iterator[None]:
    """Re-raise an outage of the database as `StoreUnavailable` (the cause kept)."""
    try:
        yield
    except Exception as error:
        if is_outage(error):
            raise StoreUnavailable() from error
        raise
