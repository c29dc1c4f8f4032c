"""CORS from the `PATRON_CORS_ORIGINS` allowlist through the app (`gateway.cors`): none by
default; for a listed origin the preflight allows GET and POST with Patron's headers, no
credentials, cached; an unlisted origin gets no allowance."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from gateway.settings import Settings
from tests.graphql.apps import app_client, sqlite_settings

STORE = "https://www.store.example"
PREFLIGHT = {
    "Origin": STORE,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type, x-patron-csrf, x-request-id",
}
QUERY = {"query": "{ __typename }"}


@pytest.fixture
async def allowlisted(
    tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    settings = sqlite_settings(
        tmp_path, sqlite_template, monkeypatch,
        cors_origins=f"{STORE}/, http://localhost:3000", cors_max_age=900,
    )  # fmt: skip
    async with app_client(settings) as client:
        yield client


@pytest.fixture
async def default(
    tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(sqlite_settings(tmp_path, sqlite_template, monkeypatch)) as client:
        yield client


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("access-control-")}


async def test_no_cors_headers_by_default(default: httpx.AsyncClient) -> None:
    answer = await default.post("/graphql", json=QUERY, headers={"Origin": STORE})
    assert answer.status_code == 200 and cors_headers(answer) == {}
    preflight = await default.options("/graphql", headers=PREFLIGHT)
    assert preflight.status_code == 405  # OPTIONS is just another method here
    assert cors_headers(preflight) == {}


async def test_a_listed_origin_is_allowed_get_and_post_without_credentials(
    allowlisted: httpx.AsyncClient,
) -> None:
    preflight = await allowlisted.options("/graphql", headers=PREFLIGHT)
    assert preflight.status_code == 200
    assert cors_headers(preflight) == {
        "access-control-allow-origin": STORE,
        "access-control-allow-methods": "GET, POST",
        "access-control-allow-headers": "Accept, Accept-Language, Apollo-Require-Preflight, "
        "Authorization, Content-Language, Content-Type, X-Apollo-Operation-Name, X-Patron-CSRF, "
        "X-Patron-Document-Id, X-Request-Id",
        "access-control-max-age": "900",
    }
    answer = await allowlisted.post("/graphql", json=QUERY, headers={"Origin": STORE})
    assert answer.json() == {"data": {"__typename": "Query"}}
    assert cors_headers(answer) == {
        "access-control-allow-origin": STORE,
        "access-control-expose-headers": "X-Request-Id, Retry-After",
    }
    assert "origin" in answer.headers["vary"].lower()


async def test_an_unlisted_origin_gets_no_allowance(allowlisted: httpx.AsyncClient) -> None:
    evil = "https://evil.example"
    preflight = await allowlisted.options("/graphql", headers={**PREFLIGHT, "Origin": evil})
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers
    answer = await allowlisted.post("/graphql", json=QUERY, headers={"Origin": evil})
    assert "access-control-allow-origin" not in answer.headers


async def test_other_methods_and_headers_are_not_allowed(allowlisted: httpx.AsyncClient) -> None:
    put = await allowlisted.options(
        "/graphql", headers={**PREFLIGHT, "Access-Control-Request-Method": "PUT"}
    )
    unknown_header = await allowlisted.options(
        "/graphql", headers={**PREFLIGHT, "Access-Control-Request-Headers": "x-custom-thing"}
    )
    assert (put.status_code, unknown_header.status_code) == (400, 400)


@pytest.mark.parametrize("value", ["*", "https://a.example/path", "a.example"])
def test_the_allowlist_holds_origins_only(value: str) -> None:
    with pytest.raises(ValidationError, match="PATRON_CORS_ORIGINS"):
        Settings(_env_file=None, cors_origins=value)  # type: ignore[call-arg]
