"""`POST /webhooks/cms` end to end through ASGI: an Amplience publish event, in the body the
fake produces (`FakeAmplience.publish_event`), drops the cached content of its delivery key,
so the next view fetches the new version; refusals change nothing; the handler never calls
the CMS; with Redis, an invalidation on one replica reaches the other."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from adapters.cache.cached_ports import CachedContent
from adapters.cache.store import RedisCacheStore
from adapters.cms.events import SIGNATURE_HEADER, SNAPSHOT_PUBLISHED, sign
from gateway.app import create_app
from gateway.demo import Fakes
from gateway.settings import Settings
from gateway.signed_requests import MAX_BODY_BYTES
from tests.conftest import REDIS_URL, TEST_WEBHOOK_SECRET, Clock, Harness

TIER_SCHEMA = "https://schema.example/tier.json"
PROGRAM_CONTENT = "{ program { tiers { key content { name fields } } } }"


def seed(fakes: Fakes) -> None:
    for tier in ("member", "silver", "gold", "black"):
        fakes.cms.add_content(f"tiers/{tier}", TIER_SCHEMA, tier.title(), {"headline": tier})


def republish_member_tier(fakes: Fakes) -> None:
    fakes.cms.add_content(
        "tiers/member", TIER_SCHEMA, "Member 2027", {"headline": "Welcome", "badge": "new"}
    )


async def tier_content(client: httpx.AsyncClient, key: str = "member") -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": PROGRAM_CONTENT})
    body = response.json()
    assert "errors" not in body, body
    content: dict[str, Any] = next(
        t["content"] for t in body["data"]["program"]["tiers"] if t["key"] == key
    )
    return content


async def post_cms(
    client: httpx.AsyncClient, body: bytes, signature: str | None = None
) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    signed = sign(TEST_WEBHOOK_SECRET, body) if signature is None else signature
    if signed:
        headers[SIGNATURE_HEADER] = signed
    return await client.post("/webhooks/cms", content=body, headers=headers)


def cms_keys_fetched(fakes: Fakes) -> list[list[str]]:
    """The delivery keys of each `/content/fetch` call the fake served."""
    assert all(r.path == "/content/fetch" for r in fakes.cms.requests), fakes.cms.requests
    return [[entry["key"] for entry in r.json["requests"]] for r in fakes.cms.requests]


OLD = {"name": "Member", "fields": {"headline": "member"}}
NEW = {"name": "Member 2027", "fields": {"headline": "Welcome", "badge": "new"}}


async def test_a_publish_event_makes_the_next_view_fetch_the_new_version(
    harness: Harness,
) -> None:
    h = harness
    seed(h.fakes)
    assert await tier_content(h.client) == OLD
    republish_member_tier(h.fakes)
    h.fakes.reset_requests()
    assert await tier_content(h.client) == OLD  # cached: the new version is not fetched
    assert h.fakes.cms.requests == []

    response = await post_cms(h.client, h.fakes.cms.publish_event("tiers/member"))

    assert (response.status_code, response.json()) == (
        200,
        {"status": "invalidated", "deliveryKey": "tiers/member"},
    )
    assert h.fakes.cms.requests == []  # the webhook itself never calls the CMS
    assert await tier_content(h.client) == NEW
    assert cms_keys_fetched(h.fakes) == [["tiers/member"]]  # only the invalidated key
    assert await tier_content(h.client, "gold") == {"name": "Gold", "fields": {"headline": "gold"}}
    assert cms_keys_fetched(h.fakes) == [["tiers/member"]]


async def test_the_same_event_twice_is_harmless(harness: Harness) -> None:
    h = harness
    seed(h.fakes)
    await tier_content(h.client)
    republish_member_tier(h.fakes)
    event = h.fakes.cms.publish_event("tiers/member")
    first = await post_cms(h.client, event)
    second = await post_cms(h.client, event)
    assert first.json() == second.json() == {"status": "invalidated", "deliveryKey": "tiers/member"}
    h.fakes.reset_requests()
    assert await tier_content(h.client) == NEW
    assert await tier_content(h.client) == NEW
    assert cms_keys_fetched(h.fakes) == [["tiers/member"]]


async def test_the_delivery_key_may_be_at_the_top_of_the_payload(harness: Harness) -> None:
    h = harness
    seed(h.fakes)
    await tier_content(h.client)
    republish_member_tier(h.fakes)
    body = json.dumps(
        {"name": SNAPSHOT_PUBLISHED, "payload": {"id": "snap-1", "deliveryKey": "tiers/member"}}
    ).encode()
    response = await post_cms(h.client, body)
    assert response.json() == {"status": "invalidated", "deliveryKey": "tiers/member"}
    assert await tier_content(h.client) == NEW


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({"name": "dynamic-content.content-item.created", "payload": {}}, "unhandled_event"),
        ({"name": "dynamic-content.content-type.updated"}, "unhandled_event"),
        (
            {"name": "dynamic-content.edition.published", "payload": {"id": "ed-1", "body": {}}},
            "no_delivery_key",
        ),
        (
            {
                "name": "dynamic-content.content-item.published",
                "payload": {"id": "x", "body": {"_meta": {"deliveryKey": None}}},
            },
            "no_delivery_key",
        ),
    ],
)
async def test_events_without_a_delivery_key_to_drop_are_ignored(
    harness: Harness, event: dict[str, Any], reason: str
) -> None:
    h = harness
    seed(h.fakes)
    await tier_content(h.client)
    republish_member_tier(h.fakes)
    response = await post_cms(h.client, json.dumps(event).encode())
    assert (response.status_code, response.json()) == (
        200,
        {"status": "ignored", "reason": reason},
    )
    h.fakes.reset_requests()
    assert await tier_content(h.client) == OLD  # still cached
    assert h.fakes.cms.requests == []


async def refused_and_nothing_changed(
    h: Harness, response: httpx.Response, status: int, code: str
) -> None:
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    h.fakes.reset_requests()
    assert await tier_content(h.client) == OLD
    assert h.fakes.cms.requests == []


async def test_a_missing_or_wrong_signature_is_refused(harness: Harness) -> None:
    h = harness
    seed(h.fakes)
    await tier_content(h.client)
    republish_member_tier(h.fakes)
    event = h.fakes.cms.publish_event("tiers/member")
    for signature in (
        "",  # no header
        sign("another-secret", event),
        sign(TEST_WEBHOOK_SECRET, event + b" "),  # another body
        sign(TEST_WEBHOOK_SECRET, event).rstrip("=") + "A=",
        sign(TEST_WEBHOOK_SECRET, event).encode().hex(),  # hex, not base64
    ):
        response = await post_cms(h.client, event, signature)
        await refused_and_nothing_changed(h, response, 401, "INVALID_SIGNATURE")


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        b"{}",
        json.dumps({"name": 7}).encode(),
        json.dumps({"name": "dynamic-content.content-item.published"}).encode(),
        json.dumps({"name": "dynamic-content.content-item.published", "payload": []}).encode(),
        json.dumps(
            {"name": "dynamic-content.content-item.published", "payload": {"body": "x"}}
        ).encode(),
        json.dumps(
            {
                "name": "dynamic-content.content-item.published",
                "payload": {"body": {"_meta": {"deliveryKey": 12}}},
            }
        ).encode(),
        json.dumps(
            {
                "name": "dynamic-content.content-item.published",
                "payload": {"body": {"_meta": {"deliveryKey": "  "}}},
            }
        ).encode(),
        json.dumps(
            {"name": "dynamic-content.content-item.published", "payload": {"deliveryKey": []}}
        ).encode(),
    ],
)
async def test_a_malformed_message_is_refused(harness: Harness, body: bytes) -> None:
    h = harness
    seed(h.fakes)
    await tier_content(h.client)
    republish_member_tier(h.fakes)
    response = await post_cms(h.client, body)
    await refused_and_nothing_changed(h, response, 400, "MALFORMED_MESSAGE")


async def test_a_body_over_the_limit_is_refused(harness: Harness) -> None:
    h = harness
    seed(h.fakes)
    await tier_content(h.client)
    republish_member_tier(h.fakes)
    event = json.loads(h.fakes.cms.publish_event("tiers/member"))
    event["payload"]["body"]["padding"] = "x" * MAX_BODY_BYTES
    response = await post_cms(h.client, json.dumps(event).encode())
    await refused_and_nothing_changed(h, response, 413, "PAYLOAD_TOO_LARGE")


async def test_without_a_secret_the_webhook_is_not_configured(
    settings: Settings, fakes: Fakes, clock: Clock
) -> None:
    seed(fakes)
    unset = settings.model_copy(update={"cms_webhook_secret": None})
    http = fakes.http_client()
    app = create_app(unset, http=http, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://patron.test") as client:
            assert await tier_content(client) == OLD
            republish_member_tier(fakes)
            response = await post_cms(client, fakes.cms.publish_event("tiers/member"))
            assert (response.status_code, response.json()["error"]["code"]) == (
                503,
                "WEBHOOK_NOT_CONFIGURED",
            )
            assert await tier_content(client) == OLD
    await http.aclose()


# --- two replicas through Redis -------------------------------------------------------------
@pytest.fixture
async def replicas(
    settings: Settings, fakes: Fakes, clock: Clock
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """Two gateways sharing one Redis cache (under a prefix of this test's own)."""
    if not REDIS_URL:
        pytest.skip("set PATRON_TEST_REDIS_URL to run the two-replica test (needs Redis)")
    shared = settings.model_copy(update={"redis_url": REDIS_URL})
    http = fakes.http_client()
    a = create_app(shared, http=http, clock=clock)
    b = create_app(shared, http=http, clock=clock)
    prefix = f"patron:test:{uuid.uuid4().hex[:8]}:"
    async with a.router.lifespan_context(a), b.router.lifespan_context(b):
        stores = []
        for app in (a, b):
            cms = app.state.gateway.services.cms
            assert isinstance(cms, CachedContent) and isinstance(cms.cache.store, RedisCacheStore)
            cms.cache.store.prefix = prefix
            stores.append(cms.cache.store)
        async with (
            httpx.AsyncClient(transport=httpx.ASGITransport(app=a), base_url="http://a") as ca,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=b), base_url="http://b") as cb,
        ):
            yield ca, cb
        redis = stores[0].redis
        keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
        if keys:
            await redis.delete(*keys)
    await http.aclose()


async def test_an_invalidation_on_one_replica_reaches_the_other(
    replicas: tuple[httpx.AsyncClient, httpx.AsyncClient], fakes: Fakes
) -> None:
    a, b = replicas
    seed(fakes)
    assert await tier_content(a) == OLD
    fakes.reset_requests()
    assert await tier_content(b) == OLD  # B reads what A cached
    assert fakes.cms.requests == []
    republish_member_tier(fakes)
    response = await post_cms(a, fakes.cms.publish_event("tiers/member"))
    assert response.json() == {"status": "invalidated", "deliveryKey": "tiers/member"}
    assert await tier_content(b) == NEW
    assert cms_keys_fetched(fakes) == [["tiers/member"]]
