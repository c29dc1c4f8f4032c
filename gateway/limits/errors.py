"""The refusal of an operation over a limit: a GraphQL error with a stable code, the
measured value and the limit in its `extensions`."""

from __future__ import annotations

from collections.abc import Sequence

from graphql import GraphQLError, Node

TOKEN_LIMIT_EXCEEDED = "TOKEN_LIMIT_EXCEEDED"
DEPTH_LIMIT_EXCEEDED = "DEPTH_LIMIT_EXCEEDED"
ALIAS_LIMIT_EXCEEDED = "ALIAS_LIMIT_EXCEEDED"
COST_LIMIT_EXCEEDED = "COST_LIMIT_EXCEEDED"


def limit_error(
    code: str, message: str, nodes: Sequence[Node] | None = None, **extensions: int
) -> GraphQLError:
    return GraphQLError(message, nodes, extensions={"code": code, **extensions})
