"""Unexpected errors in production: their message never reaches the client.

An error Patron raises on purpose (a `PatronError`, with its `extensions.code`) or one
GraphQL itself reports about the request (parse, validation, variables: a `GraphQLError`,
or an error located in the document but not at a field, such as a Decimal literal the
scalar cannot read) is shown as it is. Anything else (a bug, a library's exception) becomes
`{"message": "Internal error", "extensions": {"code": "INTERNAL_ERROR", "requestId": ...}}`;
the request id (`gateway.request_id`) is the one in the `X-Request-Id` header and on the
log record of the exception (strawberry logs every error with its traceback), so an
operator finds the cause from what the client reports.
"""

from __future__ import annotations

from collections.abc import Sequence

from graphql import GraphQLError
from strawberry.extensions import MaskErrors

from gateway.request_id import current_request_id
from loyalty.errors import PatronError

__all__ = [
    "INTERNAL_ERROR",
    "MASKED_MESSAGE",
    "MaskUnexpectedErrors",
    "masked",
    "masked_errors",
    "should_mask",
]

INTERNAL_ERROR = "INTERNAL_ERROR"
MASKED_MESSAGE = "Internal error"


def should_mask(error: GraphQLError) -> bool:
    """Mask unexpected errors only (see the module)."""
    original = error.original_error
    if original is None or isinstance(original, PatronError | GraphQLError):
        return False
    # A value in the document (or a variable) a scalar refused: the client's input.
    refused_input = error.path is None and bool(error.nodes)
    return not refused_input


def masked(error: GraphQLError) -> GraphQLError:
    """The error as the client sees it: where it happened, not what it was."""
    extensions: dict[str, object] = {"code": INTERNAL_ERROR}
    request_id = current_request_id.get()
    if request_id is not None:
        extensions["requestId"] = request_id
    return GraphQLError(
        MASKED_MESSAGE,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions=extensions,
    )


def masked_errors(errors: Sequence[GraphQLError]) -> list[GraphQLError]:
    return [masked(error) if should_mask(error) else error for error in errors]


class MaskUnexpectedErrors(MaskErrors):
    """strawberry's MaskErrors with Patron's rule and the request id."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=should_mask, error_message=MASKED_MESSAGE)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        return masked(error)
