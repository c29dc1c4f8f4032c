"""HTTP `Cache-Control` of `/graphql`: public answers may be cached by a CDN or a browser,
nothing else may be stored anywhere.

An answer is public when the executed operation is a query whose root fields are all public
(`program`, `__typename`, and introspection where it is allowed), the caller is anonymous (no
`Authorization` header) and the result has no error: then `Cache-Control: public,
max-age=N` (`PATRON_PUBLIC_MAX_AGE`) and `Vary: Authorization`, for GET (what a CDN caches)
and POST alike. Everything else is `Cache-Control: private, no-store`: a personal field,
any authenticated caller, a mutation, an error, a request that never executed (unparsable,
invalid, a 401), so that a personal answer is never kept by a shared cache.

`PublicQueryCacheControl` decides it from the executed operation (its parsed document, not
the query text), and `no_store_by_default` sets `private, no-store` on every response of the
endpoint that did not get a `Cache-Control` of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)
from graphql.utilities import get_operation_ast
from starlette.responses import Response
from starlette.types import Message, Send
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

__all__ = [
    "NO_STORE",
    "PUBLIC_ROOT_FIELDS",
    "PublicQueryCacheControl",
    "no_store_by_default",
    "root_fields",
]

NO_STORE = "private, no-store"
# The same for every anonymous caller. `program` shows anonymous callers public tiers only.
PUBLIC_ROOT_FIELDS = frozenset({"program", "__typename", "__schema", "__type"})


class PublicQueryCacheControl(SchemaExtension):
    """Marks the HTTP answer of an executed operation public or private (see the module)."""

    def __init__(self, max_age: int) -> None:
        self.max_age = max_age

    def on_execute(self) -> Iterator[None]:
        yield
        ctx = self.execution_context
        response = getattr(ctx.context, "response", None)
        if not isinstance(response, Response):  # a WebSocket: no HTTP headers to set
            return
        public = f"public, max-age={self.max_age}"
        if self._is_public(ctx.context) and response.headers.get("cache-control", public) == public:
            response.headers["Cache-Control"] = public
            response.headers["Vary"] = "Authorization"
        else:  # one private operation makes a batch private
            response.headers["Cache-Control"] = NO_STORE

    def _is_public(self, context: Any) -> bool:
        ctx = self.execution_context
        viewer = getattr(context, "viewer", None)
        if viewer is None or viewer.is_authenticated:
            return False
        if ctx.result is None or ctx.result.errors or getattr(context, "soft_errors", None):
            return False
        if ctx.graphql_document is None or ctx.operation_type is not OperationType.QUERY:
            return False
        fields = root_fields(ctx.graphql_document, ctx.operation_name)
        return bool(fields) and fields <= PUBLIC_ROOT_FIELDS


def root_fields(document: DocumentNode, operation_name: str | None) -> frozenset[str]:
    """The names of the root fields an operation selects, through fragments too (a field
    under `@skip` or `@include` counts: the answer is then private, never wrongly public)."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return frozenset()
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    return frozenset(_field_names(operation, fragments, set()))


def _field_names(
    node: OperationDefinitionNode | FragmentDefinitionNode | InlineFragmentNode,
    fragments: dict[str, FragmentDefinitionNode],
    seen: set[str],
) -> Iterator[str]:
    selection_set: SelectionSetNode = node.selection_set
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            yield selection.name.value
        elif isinstance(selection, InlineFragmentNode):
            yield from _field_names(selection, fragments, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name not in seen and name in fragments:
                seen.add(name)
                yield from _field_names(fragments[name], fragments, seen)


def no_store_by_default(send: Send) -> Send:
    """`send`, adding `Cache-Control: private, no-store` to a response that has none."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            if not any(name.lower() == b"cache-control" for name, _ in headers):
                headers.append((b"cache-control", NO_STORE.encode()))
                message = {**message, "headers": headers}
        await send(message)

    return sending
