"""The exception tree of Patron.

    PatronError
    ├── DomainError            a business rule said no; becomes a `userError` with `code`
    ├── StoreUnavailable       the database cannot be reached; the fields it serves fail
    └── UpstreamError          a system we do not own failed; costs only its own fields
        ├── UpstreamUnavailable     connection refused, 5xx, open circuit, bad payload
        ├── UpstreamTimeout         connect/read timeout or the request deadline passed
        └── UpstreamRateLimited     429 after the retries the policy allows

Expected failures are data (`DomainError` -> `userErrors`); upstream failures and a lost
database become GraphQL errors whose `extensions` carry `code` (and `upstream`); anything
else is a bug and is masked in production.
"""

from __future__ import annotations

from enum import StrEnum


class UserErrorCode(StrEnum):
    """The codes of `UserError.code` in the public schema."""

    INSUFFICIENT_POINTS = "INSUFFICIENT_POINTS"
    NOT_FOUND = "NOT_FOUND"
    NOT_ALLOWED = "NOT_ALLOWED"
    INVALID_AMOUNT = "INVALID_AMOUNT"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    ALREADY_MEMBER = "ALREADY_MEMBER"
    ALREADY_IN_HOUSEHOLD = "ALREADY_IN_HOUSEHOLD"
    IDEMPOTENCY_CONFLICT = "IDEMPOTENCY_CONFLICT"
    INVALID_INPUT = "INVALID_INPUT"


class PatronError(Exception):
    """Base of every error Patron raises on purpose."""


class DomainError(PatronError):
    """A business rule refused the request. Nothing was changed."""

    def __init__(
        self, code: UserErrorCode, message: str, field: tuple[str, ...] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


class StoreUnavailable(PatronError):
    """The database cannot be reached (refused, reset, no connection in time). Nothing was
    written; the same request succeeds once it is back."""

    code = "DATABASE_UNAVAILABLE"

    def __init__(self, message: str = "the loyalty database is unavailable") -> None:
        super().__init__(message)
        self.message = message


class UpstreamError(PatronError):
    """An upstream system failed. `code` is the stable `extensions.code` of the error."""

    code = "UPSTREAM_UNAVAILABLE"

    def __init__(self, upstream: str, message: str) -> None:
        super().__init__(f"{upstream}: {message}")
        self.upstream = upstream
        self.message = message


class UpstreamUnavailable(UpstreamError):
    code = "UPSTREAM_UNAVAILABLE"


class UpstreamTimeout(UpstreamError):
    code = "UPSTREAM_TIMEOUT"


class UpstreamRateLimited(UpstreamError):
    code = "UPSTREAM_RATE_LIMITED"

    def __init__(self, upstream: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(upstream, message)
        self.retry_after = retry_after
