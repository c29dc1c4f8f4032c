"""How GraphQL errors are logged: expected ones as one concise line at their level, only
unexpected ones as an ERROR with the traceback (logger `patron.graphql`).

strawberry logs every error of every operation at ERROR with its traceback, a client's typo
included. `LoggedErrors.process_errors` (mixed into the schema) replaces that:

- the client's request (parse, validation, variables, a value a scalar refuses): INFO,
  `GraphQL request error: <message>`;
- a refusal with a code (`NOT_ALLOWED`, `NOT_FOUND`, `UNAUTHENTICATED`, ...): INFO,
  `GraphQL error <CODE> at <path>: <message>`;
- an upstream failed (`UPSTREAM_*`), the database is unavailable (`DATABASE_UNAVAILABLE`):
  WARNING, the same line;
- anything else (a bug): ERROR, `unexpected error at <path>` with the traceback.

What a client sent never reaches the log: a variable's value is cut from its error
(`Variable '$input' got invalid value ...`), and quoted strings in a request error's
message (a literal the document holds) are replaced by `"…"`. Patron's own messages name
no person (their codes and texts are fixed). The request id is on every line
(`gateway.request_id`), so an unexpected error's traceback is found from the id the client
got in its masked error.
"""

from __future__ import annotations

import logging
import re

from graphql import GraphQLError
from strawberry.types import ExecutionContext

from loyalty.errors import PatronError, StoreUnavailable, UpstreamError

__all__ = ["LoggedErrors", "log_graphql_error"]

log = logging.getLogger("patron.graphql")

_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_INVALID_VARIABLE = re.compile(r"^(Variable '\$\w+' (?:got|has) invalid value)\b.*", re.DOTALL)
MAX_MESSAGE = 300


class LoggedErrors:
    """Mixed into `strawberry.Schema` (before it): Patron's error log (see the module)."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        for error in errors:
            log_graphql_error(error)


def log_graphql_error(error: GraphQLError) -> None:
    original = error.original_error
    where = ".".join(str(p) for p in error.path) if error.path else None
    if isinstance(original, UpstreamError | StoreUnavailable):
        log.warning("GraphQL error %s at %s: %s", original.code, where, original)
    elif error.path is None and (
        original is None or isinstance(original, GraphQLError) or error.nodes
    ):
        # The request itself (parse, validation, variables) or a value in it that a scalar
        # refused: the client's mistake, located in the document, not at a field.
        log.info("GraphQL request error: %s", client_message(error.message))
    elif isinstance(original, GraphQLError | PatronError):
        code = _code(error) or _code(original) or type(original).__name__
        log.info("GraphQL error %s at %s: %s", code, where, _short(error.message))
    else:
        log.error("unexpected error at %s", where, exc_info=original)


def client_message(message: str) -> str:
    """A request error's message without what the client sent in it."""
    invalid = _INVALID_VARIABLE.match(message)
    if invalid:
        return f"{invalid.group(1)} (the value is not logged)"
    return _short(_QUOTED.sub('"…"', message))


def _code(error: BaseException | None) -> str | None:
    extensions = getattr(error, "extensions", None)
    code = extensions.get("code") if isinstance(extensions, dict) else None
    return code if isinstance(code, str) else None


def _short(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE else message[:MAX_MESSAGE] + "…"
