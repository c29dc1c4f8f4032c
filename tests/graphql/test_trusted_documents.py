"""Documents by hash through the app: `documentId` and Apollo's `persistedQuery`, by POST
and GET; automatic persisted queries (unknown hash, registration, lookup; shared by two
replicas through Redis); PATRON_TRUSTED_DOCUMENTS_ONLY for callers who are not staff, on
HTTP and WebSocket; each refusal with its status and code, and nothing run."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from gateway.demo import Fakes
from gateway.settings import Settings
from gateway.trusted_documents.manifest import EXAMPLES_DIR, document_hash, example_documents
from gateway.upstreams import ConfigurationError
from tests.conftest import REDIS_URL, Clock, Harness, running, token
from tests.graphql.conftest import enroll
from tests.graphql.ws import serving, ws_client

PROGRAM = example_documents(EXAMPLES_DIR)["storefront/Program.graphql"]
PROGRAM_ID = f"sha256:{document_hash(PROGRAM)}"
# Not in the manifest; unique to this module, so no other run's registration is found.
OTHER = "query TrustedDocumentsTest { program { key name } }"
OTHER_HASH = document_hash(OTHER)
OTHER_DATA = {"program": {"key": "club-harry", "name": "Club Harry"}}
MEMBER, STAFF, SERVICE = (
    token("cust-1", "member"),
    token("mkt-1", "marketer"),
    token("pos-1", "service"),
)
NOT_FOUND = {
    "errors": [
        {"message": "PersistedQueryNotFound", "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"}}
    ],
}
NOT_TRUSTED = {
    "errors": [
        {
            "message": "this gateway runs only its apps' trusted documents: send one by documentId",
            "extensions": {"code": "TRUSTED_DOCUMENT_REQUIRED"},
        }
    ],
}


def apq(sha256: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": sha256}}


async def post(h: Harness, payload: dict[str, Any], tok: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {tok}"} if tok else {}
    return await h.client.post("/graphql", json=payload, headers=headers)


async def get(h: Harness, params: dict[str, str], **headers: str) -> httpx.Response:
    """A GET, with the header that shows it is no cross-site request (gateway.csrf)."""
    return await h.client.get("/graphql", params=params, headers={"X-Patron-CSRF": "1", **headers})


def answered(response: httpx.Response) -> tuple[int, dict[str, Any]]:
    return response.status_code, response.json()


async def nothing_ran(h: Harness, response: httpx.Response) -> tuple[int, dict[str, Any]]:
    assert h.sql.count == 0
    return answered(response)


@pytest.fixture
async def trusted(settings: Settings, fakes: Fakes, clock: Clock) -> AsyncIterator[Harness]:
    async with running(
        settings.model_copy(update={"trusted_documents_only": True}), fakes, clock
    ) as h:
        h.sql.reset()
        yield h


# --- by hash --------------------------------------------------------------------------------------
async def test_a_document_id_by_post_and_by_get(harness: Harness) -> None:
    by_post = await post(harness, {"documentId": PROGRAM_ID})
    assert by_post.status_code == 200 and by_post.json()["data"]["program"]["key"] == "club-harry"
    # A browser's Accept does not turn a GET by documentId into GraphiQL.
    by_get = await get(harness, {"documentId": PROGRAM_ID}, Accept="text/html,*/*")
    assert answered(by_get) == answered(by_post)
    assert by_get.headers["cache-control"] == "public, max-age=60"  # a CDN may keep it


async def test_apollo_persisted_query_by_post_and_by_get(harness: Harness) -> None:
    extensions = apq(document_hash(PROGRAM))
    by_post = await post(harness, {"extensions": extensions})
    by_get = await get(harness, {"extensions": json.dumps(extensions)})
    assert answered(by_post) == answered(by_get)
    assert by_post.json()["data"]["program"]["key"] == "club-harry"


async def test_apq_unknown_then_registered_then_by_hash_alone(harness: Harness) -> None:
    harness.sql.reset()
    assert await nothing_ran(harness, await post(harness, {"extensions": apq(OTHER_HASH)})) == (
        200,
        NOT_FOUND,
    )
    registered = await post(harness, {"query": OTHER, "extensions": apq(OTHER_HASH)})
    assert answered(registered) == (200, {"data": OTHER_DATA})
    assert answered(await post(harness, {"extensions": apq(OTHER_HASH)})) == (
        200,
        {"data": OTHER_DATA},
    )
    by_get = await get(harness, {"extensions": json.dumps(apq(OTHER_HASH))})
    assert answered(by_get) == (200, {"data": OTHER_DATA})
    assert answered(await post(harness, {"documentId": f"sha256:{OTHER_HASH}"})) == (
        200,
        {"data": OTHER_DATA},
    )


async def test_a_registration_whose_hash_is_wrong_is_400(harness: Harness) -> None:
    harness.sql.reset()
    wrong = await post(harness, {"query": OTHER, "extensions": apq("0" * 64)})
    assert await nothing_ran(harness, wrong) == (
        400,
        {
            "errors": [
                {
                    "message": "the query's SHA-256 is not sha256Hash",
                    "extensions": {"code": "PERSISTED_QUERY_HASH_MISMATCH"},
                }
            ],
        },
    )
    assert answered(await post(harness, {"extensions": apq("0" * 64)})) == (200, NOT_FOUND)


async def test_a_malformed_document_id_is_400(harness: Harness) -> None:
    bad = await post(harness, {"documentId": "sha256:ABC"})
    assert answered(bad) == (
        400,
        {
            "errors": [
                {
                    "message": 'documentId must be "sha256:" and 64 lowercase hexadecimal digits',
                    "extensions": {"code": "INVALID_DOCUMENT_ID"},
                }
            ],
        },
    )
    both = await post(harness, {"documentId": PROGRAM_ID, "query": PROGRAM})
    assert both.status_code == 400
    assert both.json()["errors"][0]["message"] == "send either documentId or query, not both"


async def test_apq_off_registers_nothing(settings: Settings, fakes: Fakes, clock: Clock) -> None:
    async with running(settings.model_copy(update={"apq_ttl": 0}), fakes, clock) as h:
        assert answered(await post(h, {"query": OTHER, "extensions": apq(OTHER_HASH)})) == (
            200,
            {"data": OTHER_DATA},
        )
        assert answered(await post(h, {"extensions": apq(OTHER_HASH)})) == (200, NOT_FOUND)
        assert h.gateway.documents.persisted is None


@pytest.mark.skipif(not REDIS_URL, reason="set PATRON_TEST_REDIS_URL to share APQ (Redis)")
async def test_a_document_registered_on_one_replica_is_known_to_the_other(
    settings: Settings, fakes: Fakes, clock: Clock
) -> None:
    document = f"query Replicas{uuid.uuid4().hex} {{ program {{ key }} }}"  # new to Redis
    sha256 = document_hash(document)
    shared = settings.model_copy(update={"redis_url": REDIS_URL})
    async with running(shared, fakes, clock) as a, running(shared, fakes, clock) as b:
        assert answered(await post(b, {"extensions": apq(sha256)})) == (200, NOT_FOUND)
        registered = await post(a, {"query": document, "extensions": apq(sha256)})
        assert registered.json() == {"data": {"program": {"key": "club-harry"}}}
        assert answered(await post(b, {"extensions": apq(sha256)})) == answered(registered)
        assert a.gateway.redis is not None
        assert 86000 < await a.gateway.redis.ttl(f"patron:apq:{sha256}") <= 86400
        await a.gateway.redis.delete(f"patron:apq:{sha256}")


# --- trusted documents only ------------------------------------------------------------------------
async def test_trusted_only_a_member_runs_the_manifest_documents(trusted: Harness) -> None:
    by_id = await post(trusted, {"documentId": PROGRAM_ID}, MEMBER)
    assert by_id.status_code == 200 and "errors" not in by_id.json()
    by_text = await post(trusted, {"query": PROGRAM}, MEMBER)  # its exact text
    assert answered(by_text) == answered(by_id)


async def test_trusted_only_anything_else_is_403_and_nothing_runs(trusted: Harness) -> None:
    for tok in (None, MEMBER):
        trusted.fakes.reset_requests()
        refused = await post(trusted, {"query": "{ me { id orders { id } } }"}, tok)
        assert await nothing_ran(trusted, refused) == (403, NOT_TRUSTED)
        assert trusted.fakes.commerce.requests == []
    # The same document with other whitespace is another document.
    assert (await post(trusted, {"query": PROGRAM + "\n"}, MEMBER)).status_code == 403


async def test_trusted_only_a_member_registers_nothing(trusted: Harness) -> None:
    refused = await post(trusted, {"query": OTHER, "extensions": apq(OTHER_HASH)}, MEMBER)
    assert await nothing_ran(trusted, refused) == (403, NOT_TRUSTED)
    assert answered(await post(trusted, {"extensions": apq(OTHER_HASH)}, STAFF)) == (200, NOT_FOUND)


async def test_trusted_only_staff_and_services_send_any_document(trusted: Harness) -> None:
    for tok in (STAFF, SERVICE, token("assoc-1", "associate", store="TOR-1"), token("a", "admin")):
        assert answered(await post(trusted, {"query": OTHER}, tok)) == (200, {"data": OTHER_DATA})
    # What staff register is theirs: not a trusted document for a member.
    await post(trusted, {"query": OTHER, "extensions": apq(OTHER_HASH)}, STAFF)
    assert answered(await post(trusted, {"extensions": apq(OTHER_HASH)}, SERVICE)) == (
        200,
        {"data": OTHER_DATA},
    )
    assert answered(await post(trusted, {"extensions": apq(OTHER_HASH)}, MEMBER)) == (
        403,
        NOT_TRUSTED,
    )


async def test_trusted_only_over_websocket_too(trusted: Harness) -> None:
    member_id = await enroll(trusted, "cust-1")
    async with serving(trusted.app) as url, ws_client(url, MEMBER) as client:
        assert await client.init() == {"type": "connection_ack"}
        trusted.sql.reset()
        await client.subscribe("1", 'subscription { pointsChanged(memberId: "x") { available } }')
        refused = await client.receive()
        assert await client.receive() == {"id": "1", "type": "complete"}
        assert trusted.sql.count == 0
        await client.subscribe("2", PROGRAM)
        allowed = await client.receive()
    # A subscription refused at execution is a `next` with the error (then `complete`).
    assert refused == {"id": "1", "type": "next", "payload": {"data": None, **NOT_TRUSTED}}
    assert allowed["id"] == "2" and allowed["payload"]["data"]["program"]["key"] == "club-harry"
    assert member_id


# --- the manifest at start ------------------------------------------------------------------------
def test_trusted_only_needs_a_manifest_that_holds(settings: Settings, tmp_path: Path) -> None:
    missing = settings.model_copy(
        update={"trusted_documents_only": True, "trusted_documents": tmp_path / "none.json"}
    )
    with pytest.raises(ConfigurationError, match=r"PATRON_TRUSTED_DOCUMENTS: .*none\.json"):
        create_app(missing)
    tampered = tmp_path / "manifest.json"
    tampered.write_text(json.dumps({OTHER_HASH: PROGRAM}))
    with pytest.raises(ConfigurationError, match="is not its hash's"):
        create_app(settings.model_copy(update={"trusted_documents": tampered}))
    create_app(settings.model_copy(update={"trusted_documents": tmp_path / "none.json"}))
