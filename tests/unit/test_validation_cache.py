"""Validation results are cached by the query's text: a repeated query is validated once,
another text (or another set of rules) is validated again, and errors are cached as well."""

from __future__ import annotations

from typing import Any

import pytest

import gateway.validation_cache as validation_cache
from gateway.schema import build_schema

# Queries that need no context to execute: only validation is at stake here.
VALID = "{ __typename }"
OTHER = "query Named { __typename }"
INVALID = "{ nope }"


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real = validation_cache.validate_document

    def counting(schema: Any, document: Any, rules: Any) -> Any:
        seen.append(document.loc.source.body)
        return real(schema, document, rules)

    monkeypatch.setattr(validation_cache, "validate_document", counting)
    return seen


async def test_a_repeated_query_is_validated_once(validations: list[str]) -> None:
    schema = build_schema()
    for query in (VALID, VALID, OTHER, VALID, OTHER):
        result = await schema.execute(query)
        assert result.errors is None, result.errors
    assert validations == [VALID, OTHER]


async def test_errors_are_cached_too(validations: list[str]) -> None:
    schema = build_schema()
    messages = [[e.message for e in (await schema.execute(INVALID)).errors or []] for _ in range(2)]
    assert messages[0] == messages[1]
    assert messages[0] == ["Cannot query field 'nope' on type 'Query'. Did you mean 'node'?"]
    assert validations == [INVALID]


async def test_each_schema_and_its_rules_have_their_own_results(validations: list[str]) -> None:
    """Production adds the no-introspection rule: its results are not the development ones."""
    introspection = "{ __schema { queryType { name } } }"
    dev, prod = build_schema(), build_schema(production=True)
    assert (await dev.execute(introspection)).errors is None
    refused = (await prod.execute(introspection)).errors or []
    assert [e.message for e in refused] == [
        "GraphQL introspection has been disabled, but the requested query contained the field "
        f"'{field}'."
        for field in ("__schema", "queryType")
    ]
    assert validations == [introspection, introspection]
