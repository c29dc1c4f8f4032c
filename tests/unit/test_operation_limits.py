"""The operation limits measured alone: the cost model (list sizes, connections, variables,
fragments, introspection), depth and aliases through fragments, and the token count."""

from __future__ import annotations

import time
from typing import Any

import pytest
from graphql import (
    GraphQLList,
    GraphQLObjectType,
    OperationDefinitionNode,
    get_named_type,
    get_nullable_type,
    parse,
)

from gateway.limits.aliases import operation_aliases
from gateway.limits.cost import DEFAULT_LIST_SIZE, LIST_SIZES, PAGE_ARGUMENT, operation_cost
from gateway.limits.depth import operation_depth
from gateway.limits.tokens import exceeds_tokens
from gateway.schema import build_schema

SCHEMA = build_schema()._schema


def cost(query: str, variables: dict[str, Any] | None = None) -> int:
    return operation_cost(SCHEMA, parse(query), None, variables)


def depth(query: str) -> int:
    document = parse(query)
    fragments = {d.name.value: d for d in document.definitions if hasattr(d, "type_condition")}
    operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
    return operation_depth(operation, fragments.get)  # type: ignore[arg-type]


def aliases(query: str) -> int:
    document = parse(query)
    fragments = {d.name.value: d for d in document.definitions if hasattr(d, "type_condition")}
    operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
    return operation_aliases(operation, fragments.get)  # type: ignore[arg-type]


# --- cost -------------------------------------------------------------------------------------
ISSUE_EXAMPLE = "{ members(first: 1000) { edges { node { orders(first: 100) { id } } } } }"


def test_the_issue_example_costs_its_list_sizes_multiplied() -> None:
    # members 1 + edges (1 + 1000 x node (1 + orders (1 + 100 x id 1)))
    assert cost(ISSUE_EXAMPLE) == 1 + 1 + 1000 * (1 + 1 + 100 * 1) == 102_002


def test_each_field_costs_one_and_typename_nothing() -> None:
    assert cost("{ program { key name __typename tiers { key } } }") == 1 + 2 + 1 + 10 * 1
    assert cost("{ __typename }") == 0


def test_a_list_without_first_costs_its_size_from_the_table() -> None:
    assert cost("{ me { offers { kind } } }") == 1 + 1 + LIST_SIZES["Member.offers"] * 1
    assert cost("{ me { household { members { id } } } }") == 1 + 1 + 1 + 10 * 1


def test_a_list_of_scalars_is_one_field() -> None:
    assert cost("{ program { tiers { benefits } } }") == 1 + 1 + 10 * 1


def test_first_multiplies_a_list_and_its_default_applies_when_absent() -> None:
    assert cost("{ me { orders(first: 3) { id total { amount } } } }") == 1 + 1 + 3 * (1 + 2)
    assert cost("{ me { orders { id } } }") == 1 + 1 + 10 * 1  # orders' first defaults to 10


def test_a_connection_multiplies_its_edges_only() -> None:
    query = "{ members(first: 20) { totalCount pageInfo { hasNextPage } edges { cursor node { id } } } }"
    # members 1 + totalCount 1 + pageInfo (1 + 1) + edges (1 + 20 x (cursor 1 + node (1 + id 1)))
    assert cost(query) == 1 + 1 + 2 + 1 + 20 * 3 == 65
    assert cost("{ members { edges { node { id } } } }") == 1 + 1 + 20 * 2  # first: 20 default


def test_first_from_a_variable_its_default_or_the_argument_default() -> None:
    query = "query($n: Int = 7) { members(first: $n) { edges { node { id } } } }"
    assert cost(query, {"n": 1000}) == 1 + 1 + 1000 * 2
    assert cost(query, {}) == 1 + 1 + 7 * 2
    assert (
        cost("query($n: Int!) { members(first: $n) { edges { node { id } } } }", None)
        == 1 + 1 + 20 * 2
    )
    # A value execution would refuse costs the default page, and a negative one nothing.
    assert cost(query, {"n": "many"}) == 1 + 1 + DEFAULT_LIST_SIZE * 2
    assert cost(query, {"n": -5}) == 1 + 1


def test_fragments_and_inline_fragments_add_their_fields_where_they_are_spread() -> None:
    query = """
    query { members(first: 10) { ...Page } node(id: "x") { ... on Member { orders(first: 2) { id } } ... on Household { pooledPoints } } }
    fragment Page on MemberConnection { totalCount edges { node { ...Card } } }
    fragment Card on Member { id points { available } }
    """
    members = 1 + 1 + (1 + 10 * (1 + 1 + 2))  # totalCount, edges x (node + id + points)
    node = 1 + (1 + 2 * 1) + 1  # both type conditions add up: an upper bound
    assert cost(query) == members + node == 43 + 5


def test_federation_entities_cost_one_item_per_representation() -> None:
    federated = build_schema(federation=True)._schema
    query = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Member { id points { available } } } }"
    three = [{"__typename": "Member", "id": str(i)} for i in range(3)]
    assert operation_cost(federated, parse(query), None, {"r": three}) == 1 + 3 * (1 + 2)
    literal = '{ _entities(representations: [{__typename: "Member", id: "1"}]) { __typename } }'
    assert operation_cost(federated, parse(literal)) == 1


def test_fields_under_skip_count_too() -> None:
    assert cost("{ me { orders(first: 50) @skip(if: true) { id } } }") == 1 + 1 + 50


def test_introspection_is_exempt() -> None:
    assert cost("{ __schema { types { name fields { name } } } }") == 0
    assert cost('{ __type(name: "Member") { fields { name } } program { key } }') == 2


def test_the_operation_named_is_the_one_costed() -> None:
    document = parse(
        "query A { me { id } } query B { members(first: 5) { edges { node { id } } } }"
    )
    assert operation_cost(SCHEMA, document, "A") == 2
    assert operation_cost(SCHEMA, document, "B") == 1 + 1 + 5 * 2


def test_a_fragment_bomb_costs_its_size_to_walk_not_its_expansion() -> None:
    # 30 fragments, each spreading the next twice: 2^30 `points` fields once expanded.
    fragments = "\n".join(
        f"fragment F{i} on Member {{ ...F{i + 1} household {{ owner {{ ...F{i + 1} }} }} }}"
        for i in range(30)
    )
    query = f"{{ me {{ ...F0 }} }}\n{fragments}\nfragment F30 on Member {{ id }}"
    started = time.perf_counter()
    value = cost(query)
    assert time.perf_counter() - started < 0.5
    assert value > 2**30


def test_every_list_of_objects_is_paged_or_sized() -> None:
    """A new list field must say how long it gets: a `first` argument, a connection's
    edges, or an entry in LIST_SIZES (and every entry names a real list)."""
    unsized, sized = [], set()
    for type_ in SCHEMA.type_map.values():
        if not isinstance(type_, GraphQLObjectType) or type_.name.startswith("__"):
            continue
        for name, field in type_.fields.items():
            nullable = get_nullable_type(field.type)  # type: ignore[arg-type]
            if not isinstance(nullable, GraphQLList):
                continue
            if not isinstance(get_named_type(field.type), GraphQLObjectType):
                continue
            key = f"{type_.name}.{name}"
            if PAGE_ARGUMENT in field.args or name == "edges":
                continue
            if key in LIST_SIZES:
                sized.add(key)
            else:
                unsized.append(key)
    assert unsized == []
    assert sized == set(LIST_SIZES)


# --- depth, aliases, tokens ------------------------------------------------------------------
def test_depth_counts_nested_fields_through_fragments() -> None:
    assert depth("{ me { id } }") == 2
    assert depth("{ me { points { available } } }") == 3
    query = "{ me { ...H } } fragment H on Member { household { members { ... on Member { tier { current { key } } } } } }"
    assert depth(query) == 6


def test_depth_leaves_out_introspection_and_typename() -> None:
    assert depth("{ __schema { types { fields { type { name } } } } me { __typename } }") == 1


def test_aliases_are_counted_where_fragments_are_spread() -> None:
    query = "{ a: me { ...F } b: me { ...F } } fragment F on Member { x: id y: id }"
    assert aliases(query) == 2 + 2 * 2
    assert aliases("{ me { id } }") == 0


@pytest.mark.parametrize(("limit", "over"), [(6, False), (5, True)])
def test_tokens_are_counted_up_to_the_limit(limit: int, over: bool) -> None:
    # { me { id } } is 6 tokens: `{` `me` `{` `id` `}` `}`; a comment is not one.
    assert exceeds_tokens("{ me { id } } # a comment", limit) is over
