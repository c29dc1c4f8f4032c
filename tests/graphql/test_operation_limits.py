"""Operation limits through the app: each refusal has its exact code and extensions, and
nothing executes (no SQL statement, no upstream call), over HTTP and over WebSocket."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from graphql import get_introspection_query

from gateway.demo import Fakes
from gateway.settings import Settings
from tests.conftest import Clock, Harness, running, token
from tests.graphql.conftest import enroll
from tests.graphql.test_member_view import MEMBER_VIEW, seed_upstreams
from tests.graphql.ws import serving, ws_client

ISSUE_EXAMPLE = "{ members(first: 1000) { edges { node { orders(first: 100) { id } } } } }"


def upstream_calls(h: Harness) -> int:
    fakes = h.fakes
    return len(fakes.commerce.requests) + len(fakes.cms.requests) + len(fakes.cdp.requests)


async def refused(h: Harness, query: str, tok: str | None, **kwargs: Any) -> list[dict[str, Any]]:
    """The errors of a refused operation, having checked that nothing ran: a request error
    (no `data` entry; 200 under application/json)."""
    h.sql.reset()
    h.fakes.reset_requests()
    body = await h.gql(query, token=tok, **kwargs)
    assert "data" not in body, body
    assert (h.sql.count, upstream_calls(h)) == (0, 0)
    errors: list[dict[str, Any]] = body["errors"]
    return errors


@pytest.fixture
def member() -> str:
    return token("cust-1", "member")


@pytest.fixture
async def tight(settings: Settings, fakes: Fakes, clock: Clock) -> AsyncIterator[Harness]:
    """The app with small limits (on the same database and fakes as `harness`)."""
    limits = {"max_depth": 4, "max_aliases": 2, "max_tokens": 100}
    async with running(settings.model_copy(update=limits), fakes, clock) as h:
        yield h


@pytest.fixture
async def cheap(settings: Settings, fakes: Fakes, clock: Clock) -> AsyncIterator[Harness]:
    """The app with a cost limit of 100 (on the same database and fakes as `harness`)."""
    async with running(settings.model_copy(update={"max_cost": 100}), fakes, clock) as h:
        yield h


# --- cost ---------------------------------------------------------------------------------------
async def test_the_issue_example_is_refused_with_its_cost_before_it_runs(
    harness: Harness, associate_token: str
) -> None:
    await enroll(harness, "cust-1")
    errors = await refused(harness, ISSUE_EXAMPLE, associate_token)
    assert errors == [
        {
            "message": "the operation costs 102002; the limit is 5000 (each field 1, lists "
            "times their page size: ask for smaller pages)",
            "extensions": {"code": "COST_LIMIT_EXCEEDED", "cost": 102002, "maxCost": 5000},
        }
    ]


async def test_under_graphql_response_json_a_refusal_is_a_400(
    harness: Harness, associate_token: str
) -> None:
    response = await harness.client.post(
        "/graphql",
        json={"query": ISSUE_EXAMPLE},
        headers={
            "Authorization": f"Bearer {associate_token}",
            "Accept": "application/graphql-response+json",
        },
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "COST_LIMIT_EXCEEDED"


async def test_a_page_size_given_in_a_variable_is_costed(
    harness: Harness, associate_token: str
) -> None:
    query = """
    query Members($n: Int!, $orders: Int = 100) {
      members(first: $n) { edges { node { ...Orders } } }
    }
    fragment Orders on Member { orders(first: $orders) { id } }
    """
    errors = await refused(harness, query, associate_token, variables={"n": 1000})
    assert errors[0]["extensions"] == {
        "code": "COST_LIMIT_EXCEEDED",
        "cost": 102002,
        "maxCost": 5000,
    }
    small = await harness.gql(query, {"n": 5, "orders": 3}, associate_token)
    assert small == {"data": {"members": {"edges": []}}}


async def test_the_member_view_runs_and_is_refused_under_a_lower_limit(
    harness: Harness, member: str, cheap: Harness
) -> None:
    await enroll(harness, "cust-1")
    seed_upstreams(harness)
    harness.sql.reset()
    body = await harness.gql(MEMBER_VIEW, token=member)
    assert "errors" not in body and body["data"]["me"]["id"]
    assert harness.sql.count > 0 and upstream_calls(harness) > 0  # it would have shown

    errors = await refused(cheap, MEMBER_VIEW, member)
    assert errors[0]["extensions"] == {"code": "COST_LIMIT_EXCEEDED", "cost": 323, "maxCost": 100}


async def test_a_mutation_over_the_cost_is_refused_and_changes_nothing(
    cheap: Harness, service_token: str
) -> None:
    query = """
    mutation($input: RecordPurchaseInput!) {
      recordPurchase(input: $input) {
        member { orders(first: 100) { id } }
        userErrors { code }
      }
    }
    """
    purchase = {
        "orderId": "HR-1",
        "cardCode": "nope",
        "total": {"amount": "100.00", "currencyCode": "CAD"},
        "channel": "POS",
        "idempotencyKey": "k-1",
    }
    errors = await refused(cheap, query, service_token, variables={"input": purchase})
    assert errors[0]["extensions"] == {"code": "COST_LIMIT_EXCEEDED", "cost": 109, "maxCost": 100}


async def test_a_refusal_over_websocket_says_why(harness: Harness, associate_token: str) -> None:
    async with serving(harness.app) as url, ws_client(url, associate_token) as client:
        assert await client.init() == {"type": "connection_ack"}
        harness.sql.reset()
        await client.subscribe("1", ISSUE_EXAMPLE)
        message = await client.receive()
    assert message["type"] == "error" and message["id"] == "1"
    assert message["payload"][0]["extensions"] == {
        "code": "COST_LIMIT_EXCEEDED",
        "cost": 102002,
        "maxCost": 5000,
    }
    assert harness.sql.count == 0


# --- depth, aliases, tokens -------------------------------------------------------------------
async def test_depth_over_the_limit(tight: Harness, member: str) -> None:
    query = "{ me { household { members { household { id } } } } }"
    assert await refused(tight, query, member) == [
        {
            "message": "the operation is 5 fields deep; the limit is 4",
            "locations": [{"line": 1, "column": 1}],
            "extensions": {"code": "DEPTH_LIMIT_EXCEEDED", "depth": 5, "maxDepth": 4},
        }
    ]


async def test_depth_counts_through_fragments(tight: Harness, member: str) -> None:
    query = """
    { me { ...H } }
    fragment H on Member { household { members { ... on Member { household { id } } } } }
    """
    errors = await refused(tight, query, member)
    assert errors[0]["extensions"] == {"code": "DEPTH_LIMIT_EXCEEDED", "depth": 5, "maxDepth": 4}


async def test_aliases_over_the_limit(tight: Harness, member: str) -> None:
    query = "{ a: me { id } b: me { id } c: me { id } }"
    errors = await refused(tight, query, member)
    assert errors == [
        {
            "message": "the operation has 3 aliases; the limit is 2",
            "locations": [{"line": 1, "column": 1}],
            "extensions": {"code": "ALIAS_LIMIT_EXCEEDED", "aliases": 3, "maxAliases": 2},
        }
    ]


async def test_tokens_over_the_limit(tight: Harness, member: str) -> None:
    query = "{ " + "me { id } " * 30 + "}"  # 2 + 30 x 5 tokens
    errors = await refused(tight, query, member)
    assert errors[0]["message"] == "the document has more than 100 tokens"
    assert errors[0]["extensions"] == {"code": "TOKEN_LIMIT_EXCEEDED", "maxTokens": 100}
    # A plain syntax error keeps graphql-core's message and the protocol's code.
    errors = await refused(tight, "{ me { id ", member)
    assert errors[0]["message"] == "Syntax Error: Expected Name, found <EOF>."
    assert errors[0]["extensions"] == {"code": "GRAPHQL_PARSE_FAILED"}


async def test_introspection_runs_under_the_limits_and_its_nesting_is_bounded(
    harness: Harness,
) -> None:
    body = await harness.gql(get_introspection_query(descriptions=True))  # what GraphiQL sends
    assert "errors" not in body and body["data"]["__schema"]["queryType"]["name"] == "Query"

    nested = "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }"
    errors = await refused(harness, nested, None)
    assert errors[0]["message"] == "Maximum introspection depth exceeded"
    assert errors[0]["extensions"] == {"code": "DEPTH_LIMIT_EXCEEDED"}
