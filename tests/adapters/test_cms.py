"""The Amplience adapter: against the fake (mounted under a path prefix) and with respx."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import respx
from starlette.applications import Starlette
from starlette.routing import Mount

from adapters.cms.client import IMAGE_LINK_SCHEMA, AmplienceClient, parse_content
from adapters.cms.fake import FakeAmplience
from adapters.http import Upstream, UpstreamPolicy
from loyalty.errors import UpstreamTimeout, UpstreamUnavailable
from loyalty.upstreams import ContentItem

BANNER = "https://schema.patron.example/offer-banner.json"
TILE = "https://schema.patron.example/tile.json"
HUB = "https://patron.cdn.content.amplience.net"
PARAMS = {"depth": "all", "format": "inlined", "locale": "en-GB"}
FAST = UpstreamPolicy(retries=1, backoff_base=0)


@pytest.fixture
def fake() -> FakeAmplience:
    return FakeAmplience()


@pytest.fixture
async def http(fake: FakeAmplience) -> AsyncIterator[httpx.AsyncClient]:
    outer = Starlette(routes=[Mount("/cdn", app=fake.app)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=outer)) as client:
        yield client


@pytest.fixture
def cms(http: httpx.AsyncClient) -> AmplienceClient:
    return AmplienceClient(Upstream("cms", "http://hub.test/cdn/", http, FAST))


@pytest.fixture
async def real_http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def real_cms(http: httpx.AsyncClient, retries: int = 1) -> AmplienceClient:
    policy = UpstreamPolicy(retries=retries, backoff_base=0)
    return AmplienceClient(Upstream("cms", HUB, http, policy), locale="fr-FR")


# --- against the fake -----------------------------------------------------------------------
async def test_content_by_key_keeps_slash_and_prefix(
    fake: FakeAmplience, cms: AmplienceClient
) -> None:
    delivery_id = fake.add_content(
        "offers/birthday", BANNER, "Birthday", {"headline": "Happy birthday"}, image="bday.jpg"
    )

    item = await cms.content_by_key("offers/birthday")

    assert item == ContentItem(
        delivery_id=delivery_id,
        delivery_key="offers/birthday",
        schema=BANNER,
        name="Birthday",
        fields={
            "headline": "Happy birthday",
            "image": {
                "_meta": {"schema": IMAGE_LINK_SCHEMA},
                "id": fake._items[delivery_id]["image"]["id"],
                "name": "bday.jpg",
                "endpoint": "patron",
                "defaultHost": "cdn.media.amplience.net",
            },
        },
        image_url="https://cdn.media.amplience.net/i/patron/bday.jpg",
    )
    assert fake.requests == [("GET", "/content/key/offers/birthday", PARAMS, None)]


async def test_key_characters_other_than_slash_are_quoted(
    fake: FakeAmplience, cms: AmplienceClient
) -> None:
    fake.add_content("offers/summer sale?", BANNER, "Summer", {"headline": "Sale"})

    item = await cms.content_by_key("offers/summer sale?")

    assert item is not None and item.fields == {"headline": "Sale"}
    assert item.image_url is None
    assert [r.path for r in fake.requests] == ["/content/key/offers/summer%20sale%3F"]


async def test_image_url_is_exact_and_name_quoted(
    fake: FakeAmplience, cms: AmplienceClient
) -> None:
    fake.add_content("hero", TILE, "Hero", {"title": "Hi"}, image="diamond club/hero 1.jpg")

    item = await cms.content_by_key("hero")

    assert item is not None
    assert item.image_url == "https://cdn.media.amplience.net/i/patron/diamond%20club/hero%201.jpg"


async def test_missing_key_and_id_are_none(fake: FakeAmplience, cms: AmplienceClient) -> None:
    assert await cms.content_by_key("offers/nope") is None
    assert await cms.content_by_id("00000000-0000-0000-0000-000000000000") is None
    assert [r.path for r in fake.requests] == [
        "/content/key/offers/nope",
        "/content/id/00000000-0000-0000-0000-000000000000",
    ]


async def test_content_by_id(fake: FakeAmplience, cms: AmplienceClient) -> None:
    delivery_id = fake.add_content(None, TILE, "Keyless", {"title": "No key"}, delivery_id="d-1")

    item = await cms.content_by_id(delivery_id)

    assert item == ContentItem("d-1", None, TILE, "Keyless", {"title": "No key"}, None)
    assert fake.requests == [("GET", "/content/id/d-1", PARAMS, None)]


async def test_republishing_a_key_replaces_the_item(
    fake: FakeAmplience, cms: AmplienceClient
) -> None:
    fake.add_content("offers/vip", BANNER, "Old", {"v": 1}, delivery_id="old")
    fake.add_content("offers/vip", BANNER, "New", {"v": 2}, delivery_id="new")

    item = await cms.content_by_key("offers/vip")

    assert item == ContentItem("new", "offers/vip", BANNER, "New", {"v": 2}, None)
    assert await cms.content_by_id("old") is None


async def test_removed_content_is_gone(fake: FakeAmplience, cms: AmplienceClient) -> None:
    fake.add_content("offers/gone", BANNER, "Gone", {})
    fake.remove_content("offers/gone")

    assert await cms.content_by_key("offers/gone") is None


async def test_batch_of_three_keys_is_one_request(
    fake: FakeAmplience, cms: AmplienceClient
) -> None:
    ids = {key: fake.add_content(key, BANNER, key, {"n": i}) for i, key in enumerate("abc")}

    result = await cms.content_by_keys(["a", "missing", "c", "a"])

    assert set(result) == {"a", "missing", "c"}
    assert result["missing"] is None
    assert result["a"] == ContentItem(ids["a"], "a", BANNER, "a", {"n": 0}, None)
    assert result["c"] == ContentItem(ids["c"], "c", BANNER, "c", {"n": 2}, None)
    assert fake.requests == [
        (
            "POST",
            "/content/fetch",
            {},
            {
                "requests": [{"key": "a"}, {"key": "missing"}, {"key": "c"}],
                "parameters": PARAMS,
            },
        )
    ]


async def test_batch_of_thirty_keys_is_three_concurrent_requests(
    fake: FakeAmplience, cms: AmplienceClient
) -> None:
    keys = [f"tiles/{n:02d}" for n in range(30)]
    for key in keys:
        fake.add_content(key, TILE, key, {"title": key})
    fake.latency = 0.05

    result = await cms.content_by_keys(keys)

    assert list(result) == keys
    assert [item.delivery_key if item else None for item in result.values()] == keys
    sizes = [len(r.json["requests"]) for r in fake.requests]
    assert sizes == [12, 12, 6]
    assert all(r.path == "/content/fetch" for r in fake.requests)
    assert fake.max_in_flight == 3


async def test_empty_batch_makes_no_request(fake: FakeAmplience, cms: AmplienceClient) -> None:
    assert await cms.content_by_keys([]) == {}
    assert fake.requests == []


async def test_fake_fetch_refuses_more_than_twelve(
    fake: FakeAmplience, http: httpx.AsyncClient
) -> None:
    body = {"requests": [{"key": str(n)} for n in range(13)]}

    response = await http.post("http://hub.test/cdn/content/fetch", json=body)

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "INVALID_PARAMETERS"


async def test_fake_fetch_by_id_and_missing_entry(
    fake: FakeAmplience, http: httpx.AsyncClient
) -> None:
    delivery_id = fake.add_content("k", TILE, "K", {"x": 1})
    body = {"requests": [{"id": delivery_id}, {"key": "nope"}]}

    response = await http.post("http://hub.test/cdn/content/fetch", json=body)

    assert response.json() == {
        "responses": [
            {"content": {"_meta": fake._items[delivery_id]["_meta"], "x": 1}},
            {
                "error": {
                    "type": "CONTENT_NOT_FOUND",
                    "message": "Not found",
                    "data": {"deliveryKey": "nope"},
                }
            },
        ]
    }


async def test_fake_filter_by_schema_pages_with_cursor(
    fake: FakeAmplience, http: httpx.AsyncClient
) -> None:
    for n in range(3):
        fake.add_content(f"banner-{n}", BANNER, f"Banner {n}", {})
    fake.add_content("tile", TILE, "Tile", {})
    body: dict[str, Any] = {
        "filterBy": [{"path": "/_meta/schema", "value": BANNER}],
        "page": {"size": 2},
    }

    first = (await http.post("http://hub.test/cdn/content/filter", json=body)).json()
    body["page"]["cursor"] = first["page"]["nextCursor"]
    second = (await http.post("http://hub.test/cdn/content/filter", json=body)).json()

    assert [r["content"]["_meta"]["deliveryKey"] for r in first["responses"]] == [
        "banner-0",
        "banner-1",
    ]
    assert first["page"]["responseCount"] == 2
    assert [r["content"]["_meta"]["deliveryKey"] for r in second["responses"]] == ["banner-2"]
    assert second["page"] == {"responseCount": 1}


async def test_fake_reset_requests(fake: FakeAmplience, cms: AmplienceClient) -> None:
    await cms.content_by_key("x")
    assert len(fake.requests) == 1
    fake.reset_requests()
    assert fake.requests == []


# --- parsing --------------------------------------------------------------------------------
def test_parse_content_accepts_envelope_or_item() -> None:
    item = {"_meta": {"schema": TILE, "deliveryId": "d"}, "a": 1}

    assert parse_content({"content": item}) == parse_content(item)
    assert parse_content(item) == ContentItem("d", None, TILE, None, {"a": 1}, None)


def test_first_image_link_among_top_level_fields_wins() -> None:
    def link(name: str) -> dict[str, Any]:
        return {
            "_meta": {"schema": IMAGE_LINK_SCHEMA},
            "name": name,
            "endpoint": "acct",
            "defaultHost": "i1.adis.ws",
        }

    item = parse_content(
        {
            "_meta": {"schema": TILE, "deliveryId": "d"},
            "nested": {"deep": link("not-top-level")},
            "hero": link("first"),
            "other": link("second"),
        }
    )

    assert item.image_url == "https://i1.adis.ws/i/acct/first"


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"content": "nope"},
        {"content": {"title": "no meta"}},
        {"content": {"_meta": {"schema": TILE}}},
        {"content": {"_meta": {"deliveryId": "d", "schema": 3}}},
        {"content": {"_meta": {"deliveryId": "d", "schema": TILE, "name": 5}}},
    ],
)
def test_malformed_content_is_unavailable(body: Any) -> None:
    with pytest.raises(UpstreamUnavailable) as caught:
        parse_content(body)
    assert caught.value.upstream == "cms"


# --- with respx against the real host -------------------------------------------------------
def _item(key: str) -> dict[str, Any]:
    return {"content": {"_meta": {"schema": TILE, "deliveryId": f"id-{key}", "deliveryKey": key}}}


@respx.mock
async def test_real_host_query_and_locale(real_http: httpx.AsyncClient) -> None:
    route = respx.get(f"{HUB}/content/key/offers/birthday").respond(json=_item("offers/birthday"))

    item = await real_cms(real_http).content_by_key("offers/birthday")

    assert item == ContentItem("id-offers/birthday", "offers/birthday", TILE, None, {}, None)
    assert route.call_count == 1
    assert dict(route.calls.last.request.url.params) == {**PARAMS, "locale": "fr-FR"}


@respx.mock
async def test_timeout_is_upstream_timeout(real_http: httpx.AsyncClient) -> None:
    route = respx.get(f"{HUB}/content/key/a").mock(side_effect=httpx.ReadTimeout("slow"))

    with pytest.raises(UpstreamTimeout) as caught:
        await real_cms(real_http).content_by_key("a")

    assert caught.value.upstream == "cms"
    assert route.call_count == 2


@respx.mock
async def test_rate_limited_then_ok(real_http: httpx.AsyncClient) -> None:
    route = respx.get(f"{HUB}/content/key/a").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "0"}),
            httpx.Response(200, json=_item("a")),
        ]
    )

    item = await real_cms(real_http).content_by_key("a")

    assert item is not None and item.delivery_id == "id-a"
    assert route.call_count == 2


@respx.mock
async def test_server_error_is_unavailable(real_http: httpx.AsyncClient) -> None:
    route = respx.get(f"{HUB}/content/key/a").respond(503)

    with pytest.raises(UpstreamUnavailable) as caught:
        await real_cms(real_http).content_by_key("a")

    assert caught.value.message == "HTTP 503"
    assert route.call_count == 2


@respx.mock
async def test_malformed_json_is_unavailable(real_http: httpx.AsyncClient) -> None:
    respx.get(f"{HUB}/content/key/a").respond(200, content=b"<html>oops")

    with pytest.raises(UpstreamUnavailable) as caught:
        await real_cms(real_http).content_by_key("a")

    assert caught.value.message == "malformed JSON in reply"


@respx.mock
async def test_not_found_is_none(real_http: httpx.AsyncClient) -> None:
    body = {"error": {"type": "CONTENT_NOT_FOUND", "message": "Not found", "data": {}}}
    respx.get(f"{HUB}/content/id/abc").respond(404, json=body)

    assert await real_cms(real_http).content_by_id("abc") is None


@respx.mock
async def test_bare_404_is_unavailable_not_none(real_http: httpx.AsyncClient) -> None:
    """A 404 that is not Amplience's (a wrong base URL or prefix) must not look like "absent"."""
    respx.get(f"{HUB}/content/id/abc").respond(404, json={"detail": "Not Found"})

    with pytest.raises(UpstreamUnavailable) as caught:
        await real_cms(real_http).content_by_id("abc")

    assert caught.value.message == "unexpected HTTP 404"


@respx.mock
async def test_batch_fetch_is_retried_as_a_read(real_http: httpx.AsyncClient) -> None:
    reply = {"responses": [_item("a"), {"error": {"type": "CONTENT_NOT_FOUND"}}]}
    route = respx.post(f"{HUB}/content/fetch").mock(
        side_effect=[httpx.Response(502), httpx.Response(200, json=reply)]
    )

    result = await real_cms(real_http).content_by_keys(["a", "b"])

    assert result == {"a": ContentItem("id-a", "a", TILE, None, {}, None), "b": None}
    assert route.call_count == 2
    assert json.loads(route.calls.last.request.content) == {
        "requests": [{"key": "a"}, {"key": "b"}],
        "parameters": {**PARAMS, "locale": "fr-FR"},
    }


@pytest.mark.parametrize(
    "reply",
    [
        {"responses": [_item("a")]},  # one entry for two requests
        {"responses": "nope"},
        {"responses": [_item("a"), {"neither": 1}]},
        {"responses": [_item("a"), "text"]},
    ],
)
@respx.mock
async def test_malformed_batch_is_unavailable(
    real_http: httpx.AsyncClient, reply: dict[str, Any]
) -> None:
    respx.post(f"{HUB}/content/fetch").respond(200, json=reply)

    with pytest.raises(UpstreamUnavailable):
        await real_cms(real_http).content_by_keys(["a", "b"])


@respx.mock
async def test_batch_error_status_is_unavailable(real_http: httpx.AsyncClient) -> None:
    respx.post(f"{HUB}/content/fetch").respond(400, json={"error": {"type": "BAD"}})

    with pytest.raises(UpstreamUnavailable) as caught:
        await real_cms(real_http).content_by_keys(["a"])

    assert caught.value.message == "unexpected HTTP 400"
