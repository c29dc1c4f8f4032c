"""The GraphQL schema: the roots from `resolvers/`, and the execution extensions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import strawberry
from graphql.validation import ASTValidationRule, NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    SchemaExtension,
)

from gateway.cache_control import PublicQueryCacheControl
from gateway.error_logging import LoggedErrors
from gateway.federation import SCHEMA_BUILD_LOCK, FederatedSchema, NoSubgraphSchemaRule
from gateway.limits import OperationLimits, limit_extensions
from gateway.masking import MaskUnexpectedErrors
from gateway.nul_strings import NoNulInStrings, NoNulInVariables
from gateway.observed_operations import ObservedOperation
from gateway.suggestions import HideSuggestions
from gateway.trusted_documents.enforcement import TrustedDocumentsOnly
from gateway.trusted_documents.policy import TrustPolicy
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


class PatronSchema(LoggedErrors, strawberry.Schema):
    """strawberry's schema with Patron's error log (`gateway.error_logging`)."""


class PatronFederatedSchema(LoggedErrors, FederatedSchema):
    """The federated subgraph schema (`gateway.federation`) with the same error log."""


def build_schema(
    *,
    production: bool = False,
    public_max_age: int = 60,
    federation: bool = False,
    limits: OperationLimits | None = None,
    trust: TrustPolicy | None = None,
) -> strawberry.Schema:
    """`public_max_age`: the `max-age` of public answers (`gateway.cache_control`).
    `federation`: also an Apollo Federation 2 subgraph (`gateway.federation`).
    `limits`: the operation limits (`gateway.limits`; they also parse, with a cache);
    `trust`: who may run which document (`gateway.trusted_documents`)."""
    # The guards first: a refusal ends the operation before any other extension has begun.
    guards: list[Any] = []
    if trust is not None and trust.trusted_only:
        guards.append(lambda: TrustedDocumentsOnly(trust))
    validated = ValidationResults(maxsize=256)
    extensions: list[Any] = [
        ObservedOperation,  # operation name, type and outcome for the metrics and the span
        *guards,
        *limit_extensions(limits or OperationLimits()),
        NoNulInVariables,
        SoftErrors,
        ErrorCodes,
        lambda: PublicQueryCacheControl(public_max_age),
        lambda: ValidationCacheByText(validated),
    ]
    rules: list[type[ASTValidationRule]] = [NoNulInStrings]
    if production:
        rules.append(NoSchemaIntrospectionCustomRule)
        if federation:
            rules.append(NoSubgraphSchemaRule)
    extensions.append(lambda: AddValidationRules(rules))
    if production:
        extensions.append(HideSuggestions)
        extensions.append(MaskUnexpectedErrors)
    with SCHEMA_BUILD_LOCK:
        if federation:
            return PatronFederatedSchema(
                mutation=Mutation, subscription=Subscription, extensions=extensions
            )
        return PatronSchema(
            query=Query, mutation=Mutation, subscription=Subscription, extensions=extensions
        )


def schema_sdl(*, federation: bool = False) -> str:
    """The SDL of `schema.graphql` or, federated, of `schema.federation.graphql`."""
    with SCHEMA_BUILD_LOCK:
        return build_schema(federation=federation).as_str() + "\n"
