"""HTTP `Cache-Control` on `/graphql`: an anonymous query of public fields without errors is
`public, max-age=N` with `Vary: Authorization` (GET and POST); anything else is `private,
no-store`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import httpx
import pytest
from graphql import parse

from adapters.cache.cached_ports import CachedContent
from gateway.app import create_app
from gateway.cache_control import root_fields
from gateway.demo import Fakes
from gateway.settings import Settings
from loyalty.errors import UpstreamUnavailable
from loyalty.upstreams import ContentItem
from tests.conftest import Clock, Harness, token
from tests.graphql.conftest import ENROLL

PUBLIC = "public, max-age=60"
PRIVATE = "private, no-store"
PROGRAM = "{ program { key tiers { key } } }"
CSRF = {"X-Patron-CSRF": "1"}  # a GET query carries it (gateway.csrf)


def caching(response: httpx.Response) -> tuple[str | None, str | None]:
    return response.headers.get("cache-control"), response.headers.get("vary")


async def post(
    h: Harness, query: str, bearer: str | None = None, variables: dict[str, Any] | None = None
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    body = {"query": query, "variables": variables or {}}
    return await h.client.post("/graphql", json=body, headers=headers)


async def get(h: Harness, query: str, bearer: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    headers.update(CSRF)
    return await h.client.get("/graphql", params={"query": query}, headers=headers)


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    return body


async def test_anonymous_program_is_public_by_get_and_post(harness: Harness) -> None:
    by_get = await get(harness, PROGRAM)
    by_post = await post(harness, PROGRAM)
    assert ok(by_get) == ok(by_post)
    assert ok(by_get)["data"]["program"]["key"] == "club-harry"
    assert caching(by_get) == caching(by_post) == (PUBLIC, "Authorization")


@pytest.mark.parametrize(
    "query",
    [
        "{ __typename }",
        "{ __typename program { name } }",
        "{ __schema { queryType { name } } }",  # introspection (on in dev)
        "query Public { ...P } fragment P on Query { program { name } }",
        "{ ... on Query { program { currencyCode } } }",
        "query A { me { id } } query B { program { name } }",  # B is the one executed
    ],
)
async def test_other_public_queries(harness: Harness, query: str) -> None:
    response = await harness.client.post(
        "/graphql",
        json={"query": query, "operationName": "B" if "query B" in query else None},
    )
    ok(response)
    assert caching(response) == (PUBLIC, "Authorization")


async def test_program_with_a_token_is_private(harness: Harness) -> None:
    for bearer in (token("cust-1", "member"), token("mkt-1", "marketer")):
        for response in (await get(harness, PROGRAM, bearer), await post(harness, PROGRAM, bearer)):
            ok(response)
            assert caching(response) == (PRIVATE, None)


async def test_personal_fields_are_private(harness: Harness) -> None:
    member = token("cust-1", "member")
    for response in (
        await post(harness, "{ me { id } }", member),
        await get(harness, "{ me { id } }", member),
        await get(harness, "{ me { id } }"),  # UNAUTHENTICATED: an error too
        await post(harness, "{ program { name } me { id } }", member),
        await post(harness, "{ program { name } ...F } fragment F on Query { me { id } }"),
        await post(harness, "{ program { name } me @skip(if: true) { id } }"),
    ):
        assert response.status_code == 200
        assert caching(response) == (PRIVATE, None)


async def test_a_mutation_is_private(harness: Harness) -> None:
    response = await post(
        harness, ENROLL, token("svc", "service"), {"input": {"commerceCustomerId": "cust-9"}}
    )
    assert ok(response)["data"]["enrollMember"]["userErrors"] == []
    assert caching(response) == (PRIVATE, None)
    anonymous = await post(harness, ENROLL, None, {"input": {"commerceCustomerId": "cust-8"}})
    assert anonymous.status_code == 200
    assert caching(anonymous) == (PRIVATE, None)


async def test_a_public_query_with_an_error_is_private(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    cms = harness.gateway.services.cms
    assert isinstance(cms, CachedContent)

    async def down(delivery_keys: Sequence[str]) -> Mapping[str, ContentItem | None]:
        raise UpstreamUnavailable("cms", "HTTP 503")

    monkeypatch.setattr(cms.inner, "content_by_keys", down)
    query = "{ program { tiers { key content { name } } } }"
    for response in (await get(harness, query), await post(harness, query)):
        body = response.json()
        assert body["data"]["program"]["tiers"][0] == {"key": "member", "content": None}
        assert body["errors"][0]["extensions"] == {
            "code": "UPSTREAM_UNAVAILABLE",
            "upstream": "cms",
        }
        assert caching(response) == (PRIVATE, None)


async def test_requests_that_never_execute_are_private(harness: Harness) -> None:
    responses = [
        await post(harness, "{ program { nope } }"),  # invalid
        await post(harness, "{ program "),  # unparsable
        await get(harness, "mutation { __typename }"),  # no mutation by GET
        await harness.client.post(
            "/graphql", content=b"{not json", headers={"content-type": "application/json"}
        ),
        await post(harness, PROGRAM, "not-a-token"),
    ]
    # A mutation by GET is 405 (GraphQL over HTTP).
    assert [r.status_code for r in responses] == [200, 200, 405, 400, 401]
    assert [caching(r) for r in responses] == [(PRIVATE, None)] * 5


@pytest.fixture
async def longer(
    settings: Settings, fakes: Fakes, clock: Clock
) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway with `PATRON_PUBLIC_MAX_AGE=300`."""
    http = fakes.http_client()
    app = create_app(settings.model_copy(update={"public_max_age": 300}), http=http, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://patron.test") as client:
            yield client
    await http.aclose()


async def test_the_max_age_is_a_setting(longer: httpx.AsyncClient) -> None:
    response = await longer.get("/graphql", params={"query": PROGRAM}, headers=CSRF)
    assert response.status_code == 200
    assert caching(response) == ("public, max-age=300", "Authorization")


def test_root_fields_follow_fragments_and_the_operation_name() -> None:
    document = parse(
        """
        query A { program { name } ...F ... on Query { __typename ... on Query { me { id } } } }
        query B { program { name } }
        fragment F on Query { node(id: "x") { id } ...G }
        fragment G on Query { program { key } ...F }
        """
    )
    assert root_fields(document, "A") == {"program", "node", "__typename", "me"}
    assert root_fields(document, "B") == {"program"}
    assert root_fields(document, "C") == frozenset()
