"""CSRF prevention through the app: a GET query, and a POST of a "simple" content type, run
only with a preflight header (`gateway.csrf`); refused ones change nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import token
from tests.graphql.apps import app_client, sqlite_settings

PROGRAM = {"query": "{ program { key } }"}
REFUSED = {
    "errors": [
        {
            "message": "this request could have been sent by another site (CSRF): send a POST "
            "with Content-Type: application/json, or the header X-Patron-CSRF: 1",
            "extensions": {"code": "CSRF_PREFLIGHT_REQUIRED"},
        }
    ]
}
ENROL = 'mutation { enrollMember(input: {commerceCustomerId: "cust-csrf"}) { member { id } } }'


@pytest.fixture
async def client(
    tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(sqlite_settings(tmp_path, sqlite_template, monkeypatch)) as client:
        yield client


async def test_a_get_query_without_a_preflight_header_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", params=PROGRAM)
    assert (response.status_code, response.json()) == (400, REFUSED)


@pytest.mark.parametrize(
    "header", ["X-Patron-CSRF", "Apollo-Require-Preflight", "X-Apollo-Operation-Name"]
)
async def test_a_get_query_with_a_preflight_header_runs(
    client: httpx.AsyncClient, header: str
) -> None:
    response = await client.get("/graphql", params=PROGRAM, headers={header: "1"})
    assert (response.status_code, response.json()) == (
        200,
        {"data": {"program": {"key": "club-harry"}}},
    )


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", b'{"query": "' + ENROL.replace('"', '\\"').encode() + b'"}'),
        ("application/x-www-form-urlencoded", b"query=" + ENROL.encode()),
        (
            "multipart/form-data; boundary=b",
            b'--b\r\nContent-Disposition: form-data; name="operations"\r\n\r\n{}\r\n--b--\r\n',
        ),
    ],
)
async def test_a_simple_post_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, tmp_path: Path, content_type: str, body: bytes
) -> None:
    service = {"Authorization": f"Bearer {token('svc', 'service')}"}
    response = await client.post(
        "/graphql", content=body, headers={"Content-Type": content_type, **service}
    )
    assert (response.status_code, response.json()) == (400, REFUSED)
    # With the header it is past CSRF, and still not a JSON body: 415, multipart included.
    response = await client.post(
        "/graphql",
        content=body,
        headers={"Content-Type": content_type, "X-Patron-CSRF": "1", **service},
    )
    assert response.status_code == 415
    assert response.json()["errors"][0]["extensions"] == {"code": "UNSUPPORTED_MEDIA_TYPE"}
    assert await members(tmp_path) == 0
    # The same mutation as JSON does enrol: the refusals above are what kept it out.
    enrolled = await client.post("/graphql", json={"query": ENROL}, headers=service)
    assert enrolled.status_code == 200 and "errors" not in enrolled.json(), enrolled.text
    assert await members(tmp_path) == 1


async def members(folder: Path) -> int:
    engine = create_async_engine(f"sqlite+aiosqlite:///{folder / 'patron.db'}")
    try:
        async with engine.connect() as conn:
            count: int = (await conn.execute(text("SELECT COUNT(*) FROM members"))).scalar_one()
    finally:
        await engine.dispose()
    return count


async def test_a_json_post_needs_no_header(client: httpx.AsyncClient) -> None:
    response = await client.post("/graphql", json=PROGRAM)
    assert (response.status_code, response.json()) == (
        200,
        {"data": {"program": {"key": "club-harry"}}},
    )


async def test_the_graphiql_page_is_not_a_query(client: httpx.AsyncClient) -> None:
    """A browser opening /graphql (dev) gets GraphiQL: it executes nothing."""
    response = await client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
