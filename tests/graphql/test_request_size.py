"""The size of a request to /graphql: a body over PATRON_MAX_BODY_BYTES is 413 without
being read past the limit, a query string over PATRON_MAX_QUERY_STRING_BYTES is 414, and a
request within both runs as usual; nothing runs for a refused one."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import orjson

from gateway.request_size import RequestSize
from gateway.settings import Settings
from tests.conftest import Harness

PROGRAM = "{ program { key } }"
TOO_LARGE = {
    "errors": [
        {
            "message": "the body exceeds 65536 bytes",
            "extensions": {"code": "PAYLOAD_TOO_LARGE", "maxBytes": 65536},
        }
    ]
}


def padded(size: int) -> bytes:
    """A JSON request for `program` of exactly `size` bytes (padded with spaces)."""
    body = orjson.dumps({"query": PROGRAM})
    return body[:-1] + b" " * (size - len(body)) + b"}"


async def post(h: Harness, content: bytes | AsyncIterator[bytes]) -> httpx.Response:
    return await h.client.post(
        "/graphql", content=content, headers={"Content-Type": "application/json"}
    )


def test_the_defaults_are_the_documented_ones(settings: Settings) -> None:
    assert (settings.max_body_bytes, settings.max_query_string_bytes) == (65536, 8192)


async def test_a_body_at_the_limit_runs(harness: Harness) -> None:
    response = await post(harness, padded(65536))
    assert response.status_code == 200
    assert response.json() == {"data": {"program": {"key": "club-harry"}}}


async def test_a_body_over_the_limit_is_413_and_runs_nothing(harness: Harness) -> None:
    harness.sql.reset()
    response = await post(harness, padded(65537))
    assert response.status_code == 413
    assert response.json() == TOO_LARGE
    assert response.headers["cache-control"] == "private, no-store"
    assert harness.sql.count == 0


async def test_a_chunked_body_is_read_no_further_than_the_limit(harness: Harness) -> None:
    """Without a Content-Length the body is read as it comes, and refused as soon as it
    passes the limit: of a 1 MiB body sent in 16 KiB chunks, 5 are read."""
    sent: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(64):
            sent.append(i)
            yield b" " * 16384

    response = await post(harness, chunks())
    assert response.status_code == 413
    assert response.json() == TOO_LARGE
    assert len(sent) == 5  # 4 x 16 KiB is the limit; the fifth passes it


async def test_a_long_query_string_is_414(harness: Harness) -> None:
    query = "{ program { key " + " " * 8192 + "} }"
    response = await harness.client.get("/graphql", params={"query": query})
    assert response.status_code == 414
    assert response.json() == {
        "errors": [
            {
                "message": "the query string exceeds 8192 bytes: send the operation by POST",
                "extensions": {"code": "URI_TOO_LONG", "maxBytes": 8192},
            }
        ]
    }
    ok = await harness.client.get(
        "/graphql", params={"query": PROGRAM}, headers={"X-Patron-CSRF": "1"}
    )
    assert ok.json() == {"data": {"program": {"key": "club-harry"}}}


async def test_a_client_that_leaves_mid_body_gets_a_400_not_an_exception() -> None:
    """What the ASGI server sends when the client goes before its body is complete."""
    messages = [
        {"type": "http.request", "body": b'{"query"', "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> dict[str, object]:
        return messages.pop(0)

    scope = {"type": "http", "method": "POST", "query_string": b"", "headers": []}
    refusal, _ = await RequestSize(65536, 8192).bound(scope, receive)
    assert refusal is not None and refusal.status_code == 400
    assert orjson.loads(refusal.body) == {
        "errors": [
            {
                "message": "the client left before the body was complete",
                "extensions": {"code": "BAD_REQUEST"},
            }
        ]
    }
