"""Validation results cached by the query's text.

strawberry's `ValidationCache` keys its LRU by the parsed document, and graphql-core hashes a
document by walking every node of it (its nodes are frozen dataclasses): for the member view
that is over 300 hash calls, about as much CPU as the rest of strawberry's own work for the
request. The result of validation depends only on the schema, the rules and the document,
and the document only on the text, so this cache is keyed by the text (a `str`, whose hash
Python keeps) and the rules, one cache per schema. A request without a text (a document
given some other way) is validated as usual.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator

from graphql import ASTValidationRule, GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

__all__ = ["ValidationCacheByText", "ValidationResults"]

Key = tuple[str, tuple[type[ASTValidationRule], ...]]


class ValidationResults:
    """An LRU of validation errors by (query text, rules), for one schema."""

    def __init__(self, maxsize: int = 256) -> None:
        self.maxsize = maxsize
        self._results: OrderedDict[Key, list[GraphQLError]] = OrderedDict()

    def get(self, key: Key) -> list[GraphQLError] | None:
        found = self._results.get(key)
        if found is not None:
            self._results.move_to_end(key)
        return found

    def put(self, key: Key, errors: list[GraphQLError]) -> None:
        self._results[key] = errors
        self._results.move_to_end(key)
        while len(self._results) > self.maxsize:
            self._results.popitem(last=False)

    def __len__(self) -> int:
        return len(self._results)


class ValidationCacheByText(SchemaExtension):
    def __init__(self, results: ValidationResults) -> None:
        self.results = results

    def on_validate(self) -> Iterator[None]:
        ctx = self.execution_context
        if ctx.query is not None and ctx.graphql_document is not None:
            key = (ctx.query, tuple(ctx.validation_rules))
            errors = self.results.get(key)
            if errors is None:
                errors = validate_document(
                    ctx.schema._schema, ctx.graphql_document, ctx.validation_rules
                )
                self.results.put(key, errors)
            ctx.pre_execution_errors = errors
        yield
