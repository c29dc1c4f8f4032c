"""GraphQL over HTTP through the app: the media type of each answer, its status, and the
GraphQL error body of every refusal (the rules are `gateway.graphql_http`; the whole
graphql-http audit runs against a real server in tests/integration/test_graphql_over_http.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import token
from tests.graphql.apps import app_client, sqlite_settings

GR = "application/graphql-response+json; charset=utf-8"
JSON = "application/json"
CSRF = {"X-Patron-CSRF": "1"}


@pytest.fixture
async def client(
    tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(sqlite_settings(tmp_path, sqlite_template, monkeypatch)) as client:
        yield client


async def post(
    client: httpx.AsyncClient, body: Any, accept: str | None = None, **headers: str
) -> httpx.Response:
    sent = {"Accept": accept} if accept is not None else {}
    return await client.post("/graphql", json=body, headers={**sent, **headers})


def answer(response: httpx.Response) -> tuple[int, str | None, Any]:
    return response.status_code, response.headers.get("content-type"), response.json()


def refused(status: int, code: str, message: str, content_type: str = JSON) -> tuple[int, str, Any]:
    return status, content_type, {"errors": [{"message": message, "extensions": {"code": code}}]}


TYPENAME = {"query": "{ __typename }"}
OK = {"data": {"__typename": "Query"}}


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        (None, JSON),
        ("*/*", JSON),
        ("application/json", JSON),
        ("application/graphql-response+json", GR),
        ("application/graphql-response+json, application/json;q=0.9", GR),
        ("application/json, multipart/mixed", JSON),
    ],
)
async def test_the_answer_is_in_the_negotiated_media_type(
    client: httpx.AsyncClient, accept: str | None, content_type: str
) -> None:
    # httpx sends `Accept: */*` unless told otherwise: None removes the header.
    headers = {"Accept": accept} if accept is not None else {}
    request = client.build_request("POST", "/graphql", json=TYPENAME, headers=headers)
    if accept is None:
        del request.headers["Accept"]
    response = await client.send(request)
    assert answer(response) == (200, content_type, OK)


async def test_nothing_acceptable_is_406(client: httpx.AsyncClient) -> None:
    response = await post(client, TYPENAME, "text/html")
    assert answer(response) == refused(
        406,
        "NOT_ACCEPTABLE",
        "the Accept header allows neither application/graphql-response+json nor application/json",
    )


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({"query": "{"}, "GRAPHQL_PARSE_FAILED", "Syntax Error: Expected Name, found <EOF>."),
        (
            {"query": "{ nope }"},
            "GRAPHQL_VALIDATION_FAILED",
            "Cannot query field 'nope' on type 'Query'. Did you mean 'node'?",
        ),
        (
            {
                "query": "query($n: Int!) { members(first: $n) { totalCount } }",
                "variables": {"n": "x"},
            },
            "BAD_USER_INPUT",
            "Variable '$n' has invalid value: Int cannot represent non-integer value: 'x'",
        ),
        (
            {
                "query": "query($n: Int!) { members(first: $n) { totalCount } }",
                "variables": {"n": 2**40},
            },
            "BAD_USER_INPUT",
            "Variable '$n' has invalid value: Int cannot represent non 32-bit signed integer value: 1099511627776",
        ),
        (
            {"query": "query A { __typename }", "operationName": "B"},
            "OPERATION_RESOLUTION_FAILURE",
            "Unknown operation named 'B'.",
        ),
    ],
)
async def test_a_request_error_has_no_data_and_is_400_only_under_graphql_response_json(
    client: httpx.AsyncClient, body: dict[str, Any], code: str, message: str
) -> None:
    for accept, status, content_type in (
        ("application/graphql-response+json", 400, GR),
        ("application/json", 200, JSON),
    ):
        response = await post(client, body, accept)
        assert (response.status_code, response.headers["content-type"]) == (status, content_type)
        result = response.json()
        assert "data" not in result
        assert [(e["message"], e["extensions"]["code"]) for e in result["errors"]] == [
            (message, code)
        ]


async def test_an_executed_operation_with_errors_is_200_under_both(
    client: httpx.AsyncClient,
) -> None:
    """`data` is present (execution began): 200, whatever the media type."""
    for accept, content_type in (
        ("application/graphql-response+json", GR),
        ("application/json", JSON),
    ):
        response = await post(
            client, {"query": '{ program { name } member(id: "TWVtYmVyOng=") { id } }'}, accept
        )
        status, media, body = answer(response)
        assert (status, media) == (200, content_type)
        assert body["data"] == {"program": {"name": "Club Harry"}, "member": None}
        assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]


@pytest.mark.parametrize("accept", ["application/graphql-response+json", "application/json"])
async def test_malformed_requests_are_400_under_both(
    client: httpx.AsyncClient, accept: str
) -> None:
    content_type = GR if "graphql" in accept else JSON
    cases: list[tuple[bytes, str]] = [
        (b'{ "not a JSON', "the request body is not valid JSON (UTF-8)"),
        (b"", "the request body is empty: send a JSON object with a query"),
        (
            b'{"notquery": "{ __typename }"}',
            "no GraphQL query in the request (the 'query' parameter)",
        ),
        (b'{"query": null}', "no GraphQL query in the request (the 'query' parameter)"),
        (b'{"query": ""}', "no GraphQL query in the request (the 'query' parameter)"),
        (b'{"query": 0}', "the parameter 'query' must be a string"),
        (
            b'{"query": "{ __typename }", "variables": []}',
            "the parameter 'variables' must be an object or null",
        ),
        (
            b'{"query": "{ __typename }", "operationName": false}',
            "the parameter 'operationName' must be a string or null",
        ),
        (
            b'{"query": "{ __typename }", "extensions": "x"}',
            "the parameter 'extensions' must be an object or null",
        ),
        (
            b'[{"query": "{ __typename }"}]',
            "batched operations (a JSON array) are not supported: send one operation per request",
        ),
    ]
    for body, message in cases:
        response = await client.post(
            "/graphql", content=body, headers={"Content-Type": "application/json", "Accept": accept}
        )
        assert answer(response) == refused(400, "BAD_REQUEST", message, content_type), body


@pytest.mark.parametrize(
    ("content_type", "message"),
    [
        ("text/plain", "unsupported Content-Type 'text/plain': send application/json"),
        (
            "application/graphql",
            "unsupported Content-Type 'application/graphql': send application/json",
        ),
        (
            "multipart/form-data; boundary=x",
            "unsupported Content-Type 'multipart/form-data': send application/json",
        ),
        ("application/json; charset=iso-8859-1", "the request body must be UTF-8 (charset=utf-8)"),
    ],
)
async def test_a_post_that_is_not_json_is_415(
    client: httpx.AsyncClient, content_type: str, message: str
) -> None:
    response = await client.post(
        "/graphql",
        content=b'{"query": "{ __typename }"}',
        headers={"Content-Type": content_type, **CSRF},  # past the CSRF rule, to the 415
    )
    assert answer(response) == refused(415, "UNSUPPORTED_MEDIA_TYPE", message)


async def test_a_json_body_with_an_explicit_utf8_charset_is_read(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql",
        content='{"query": "{ __type(name: \\"Run🏃Swim🏊\\") { name } }"}'.encode(),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert answer(response) == (200, JSON, {"data": {"__type": None}})


async def test_get_runs_queries_with_json_variables(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/graphql",
        params={
            "query": "query T($n: String!) { __type(name: $n) { name } }",
            "variables": '{"n": "Member"}',
        },
        headers={**CSRF, "Accept": "application/graphql-response+json"},
    )
    assert answer(response) == (200, GR, {"data": {"__type": {"name": "Member"}}})


async def test_a_mutation_by_get_is_405_allow_post(client: httpx.AsyncClient) -> None:
    mutation = 'mutation { enrollMember(input: {commerceCustomerId: "c"}) { userErrors { code } } }'
    response = await client.get(
        "/graphql",
        params={"query": mutation},
        headers={**CSRF, "Authorization": f"Bearer {token('svc', 'service')}"},
    )
    assert answer(response) == refused(
        405, "METHOD_NOT_ALLOWED", "mutations are not allowed by GET: use POST"
    )
    assert response.headers["allow"] == "POST"


async def test_a_mutation_by_post_runs(client: httpx.AsyncClient) -> None:
    mutation = 'mutation { enrollMember(input: {commerceCustomerId: "cust-http"}) { userErrors { code } } }'
    response = await post(
        client, {"query": mutation}, Authorization=f"Bearer {token('svc', 'service')}"
    )
    assert answer(response) == (200, JSON, {"data": {"enrollMember": {"userErrors": []}}})


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_subscription_over_http_is_refused(client: httpx.AsyncClient, method: str) -> None:
    query = 'subscription { pointsChanged(memberId: "TWVtYmVyOng=") { available } }'
    if method == "GET":
        response = await client.get("/graphql", params={"query": query}, headers=CSRF)
    else:
        response = await post(client, {"query": query})
    assert answer(response) == refused(
        400,
        "OPERATION_NOT_SUPPORTED",
        "subscriptions are served over WebSocket (graphql-transport-ws) at /graphql, not over HTTP",
    )


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS"])
async def test_other_methods_are_405_allow_get_post(client: httpx.AsyncClient, method: str) -> None:
    response = await client.request(method, "/graphql", json=TYPENAME)
    assert answer(response) == refused(
        405, "METHOD_NOT_ALLOWED", f"{method} is not allowed on /graphql: use GET (queries) or POST"
    )
    assert response.headers["allow"] == "GET, POST"


async def test_a_repeated_get_parameter_is_400(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/graphql?query=%7B__typename%7D&query=%7Bprogram%7Bname%7D%7D", headers=CSRF
    )
    assert answer(response) == refused(
        400, "BAD_REQUEST", "the parameter 'query' is given more than once"
    )


async def test_graphiql_is_served_in_dev_to_a_browser(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "<title>Patron · GraphiQL</title>" in response.text
