"""No string with U+0000 (NUL) reaches a resolver.

GraphQL allows `"\\u0000"` in a string, and JSON in a variable, but PostgreSQL's text types
cannot hold it (`invalid byte sequence for encoding "UTF8": 0x00`), and no member id, order
id, idempotency key, store, reason or message needs it. So it is refused before any field
runs, with a code, on every database and transport alike:

- in a literal of the document: a validation error (`GRAPHQL_VALIDATION_FAILED`), by
  `NoNulInStrings`, a rule that validation runs (and caches) with the others;
- in the variables (any depth, keys too): a request error (`BAD_USER_INPUT`, as for a
  variable of the wrong type), by `NoNulInVariables` at the start of execution.
"""

from __future__ import annotations

from collections.abc import Iterator

from graphql import ASTValidationRule, GraphQLError, StringValueNode
from strawberry.extensions import SchemaExtension

__all__ = ["NUL_MESSAGE", "NoNulInStrings", "NoNulInVariables", "holds_nul"]

NUL = "\x00"
NUL_MESSAGE = "strings may not contain U+0000 (NUL)"
BAD_USER_INPUT = "BAD_USER_INPUT"


class NoNulInStrings(ASTValidationRule):
    def enter_string_value(self, node: StringValueNode, *_args: object) -> None:
        if NUL in node.value:
            self.report_error(GraphQLError(NUL_MESSAGE, node))


class NoNulInVariables(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        if holds_nul(self.execution_context.variables):
            raise GraphQLError(
                f"a variable's value: {NUL_MESSAGE}", extensions={"code": BAD_USER_INPUT}
            )
        yield


def holds_nul(value: object) -> bool:
    """Whether a decoded JSON value holds a NUL in any string (keys included). Iterative:
    the body's depth is bounded by its size limit, not by Python's recursion limit."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if NUL in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False
