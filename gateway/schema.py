"""The GraphQL schema: the roots from `resolvers/`, and the execution extensions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import strawberry
from graphql.validation import ASTValidationRule, NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    ParserCache,
    SchemaExtension,
)

from gateway.cache_control import PublicQueryCacheControl
from gateway.federation import SCHEMA_BUILD_LOCK, FederatedSchema, NoSubgraphSchemaRule
from gateway.masking import MaskUnexpectedErrors
from gateway.suggestions import HideSuggestions
from gateway.validation_cache import ValidationCacheByText, ValidationResults
from loyalty.errors import StoreUnavailable, UpstreamError
from resolvers.mutations import Mutation
from resolvers.query import Query
from resolvers.subscription import Subscription


class SoftErrors(SchemaExtension):
    """Adds the errors of fields that answered with a fallback value (an empty non-null
    list whose upstream failed) to the response's `errors`."""

    def on_execute(self) -> Iterator[None]:
        yield
        context = self.execution_context.context
        result = self.execution_context.result
        soft = getattr(context, "soft_errors", None)
        if soft and result is not None:
            result.errors = [*(result.errors or []), *soft]


class ErrorCodes(SchemaExtension):
    """Gives every error Patron raises on purpose its stable `extensions.code` (and the
    `upstream` of an upstream failure), wherever a resolver let it through: a lost database
    is `DATABASE_UNAVAILABLE` on each field that needed it."""

    def on_execute(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is None or not result.errors:
            return
        for error in result.errors:
            original = error.original_error
            if not isinstance(original, StoreUnavailable | UpstreamError):
                continue
            extensions = dict(error.extensions or {})
            extensions.setdefault("code", original.code)
            if isinstance(original, UpstreamError):
                extensions.setdefault("upstream", original.upstream)
            error.extensions = extensions


def build_schema(
    *, production: bool = False, public_max_age: int = 60, federation: bool = False
) -> strawberry.Schema:
    """`public_max_age`: the `max-age` of public answers (`gateway.cache_control`).
    `federation`: also an Apollo Federation 2 subgraph (`gateway.federation`)."""
    validated = ValidationResults(maxsize=256)
    extensions: list[Any] = [
        SoftErrors,
        ErrorCodes,
        lambda: PublicQueryCacheControl(public_max_age),
        lambda: ParserCache(maxsize=256),
        lambda: ValidationCacheByText(validated),
    ]
    if production:
        rules: list[type[ASTValidationRule]] = [NoSchemaIntrospectionCustomRule]
        if federation:
            rules.append(NoSubgraphSchemaRule)
        extensions.append(lambda: AddValidationRules(rules))
        extensions.append(HideSuggestions)
        extensions.append(MaskUnexpectedErrors)
    with SCHEMA_BUILD_LOCK:
        if federation:
            return FederatedSchema(
                mutation=Mutation, subscription=Subscription, extensions=extensions
            )
        return strawberry.Schema(
            query=Query, mutation=Mutation, subscription=Subscription, extensions=extensions
        )


def schema_sdl(*, federation: bool = False) -> str:
    """The SDL of `schema.graphql` or, federated, of `schema.federation.graphql`."""
    with SCHEMA_BUILD_LOCK:
        return build_schema(federation=federation).as_str() + "\n"
