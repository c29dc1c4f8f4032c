"""The Segment adapter: against the fake (mounted under path prefixes) and with respx."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
import respx
from starlette.applications import Starlette
from starlette.routing import Mount

from adapters.cdp.client import SegmentClient, split_batches, track_message
from adapters.cdp.fake import FakeSegment
from adapters.http import Upstream, UpstreamPolicy
from loyalty.errors import UpstreamTimeout, UpstreamUnavailable
from loyalty.upstreams import ExternalId, Profile, TrackEvent

SPACE = "patron-demo"
TOKEN = "patron-demo-token"
WRITE_KEY = "patron-demo-write-key"
PROFILES = f"/v1/spaces/{SPACE}/collections/users/profiles"
FAST = UpstreamPolicy(retries=1, backoff_base=0)
WHEN = datetime(2025, 3, 1, 12, 30, tzinfo=UTC)

REAL_PROFILES = "https://profiles.segment.com"
REAL_TRACKING = "https://api.segment.io"
REAL_REGULATIONS = "https://api.segmentapis.com/regulations"
REAL_TRAITS = f"{REAL_PROFILES}{PROFILES}/user_id:u1/traits"


@pytest.fixture
def fake() -> FakeSegment:
    return FakeSegment()


@pytest.fixture
async def http(fake: FakeSegment) -> AsyncIterator[httpx.AsyncClient]:
    outer = Starlette(
        routes=[
            Mount("/profiles", app=fake.app),
            Mount("/tracking", app=fake.app),
            Mount("/gdpr", app=fake.app),
        ]
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=outer)) as client:
        yield client


def segment(
    http: httpx.AsyncClient,
    *,
    concurrency: int = 10,
    page_size: int = 200,
    token: str = TOKEN,
    write_key: str = WRITE_KEY,
    regulations: bool = True,
) -> SegmentClient:
    return SegmentClient(
        Upstream("cdp", "http://seg.test/profiles", http, FAST),
        Upstream("cdp", "http://seg.test/tracking/", http, FAST),
        Upstream("cdp", "http://seg.test/gdpr/regulations", http, FAST) if regulations else None,
        space_id=SPACE,
        access_token=token,
        write_key=write_key,
        concurrency=concurrency,
        page_size=page_size,
    )


@pytest.fixture
def cdp(http: httpx.AsyncClient) -> SegmentClient:
    return segment(http)


def event(n: int, user: str = "u1", **properties: Any) -> TrackEvent:
    return TrackEvent(
        user_id=user,
        event="Loyalty Points Earned",
        properties={"points": n, **properties},
        timestamp=WHEN + timedelta(minutes=n),
        message_id=f"msg-{n}",
    )


TRAITS = {
    "first_name": "Bob",
    "email": "bob@example.com",
    "big_spender": True,
    "churn_risk": False,
    "nursery": True,
    "vip": "true",
    "total_revenue_180_days": 450,
}


# --- profiles against the fake --------------------------------------------------------------
async def test_profile_follows_the_traits_cursor(
    fake: FakeSegment, http: httpx.AsyncClient
) -> None:
    fake.add_profile("u1", TRAITS)

    profile = await segment(http, page_size=3).profile("u1")

    assert profile == Profile("u1", TRAITS, ("big_spender", "nursery"))
    assert profile.first_name == "Bob"
    path = f"{PROFILES}/user_id:u1/traits"
    assert fake.requests == [
        ("GET", path, {"limit": "3"}),
        ("GET", path, {"limit": "3", "next": "3"}),
        ("GET", path, {"limit": "3", "next": "6"}),
    ]


async def test_profile_in_one_page_by_default(fake: FakeSegment, cdp: SegmentClient) -> None:
    fake.add_profile("u1", TRAITS)

    profile = await cdp.profile("u1")

    assert profile is not None and profile.traits == TRAITS
    assert fake.requests == [("GET", f"{PROFILES}/user_id:u1/traits", {"limit": "200"})]


async def test_plus_in_id_is_escaped(fake: FakeSegment, cdp: SegmentClient) -> None:
    fake.add_profile("bob+vip@example.com", {"email": "bob+vip@example.com"})

    profile = await cdp.profile("bob+vip@example.com")

    assert profile == Profile("bob+vip@example.com", {"email": "bob+vip@example.com"}, ())
    assert [r.path for r in fake.requests] == [f"{PROFILES}/user_id:bob%2Bvip%40example.com/traits"]


async def test_slash_in_id_is_escaped(fake: FakeSegment, cdp: SegmentClient) -> None:
    fake.add_profile("a/b c", {"x": 1})

    assert await cdp.profile("a/b c") == Profile("a/b c", {"x": 1}, ())
    assert [r.path for r in fake.requests] == [f"{PROFILES}/user_id:a%2Fb%20c/traits"]


async def test_unknown_profile_is_none(fake: FakeSegment, cdp: SegmentClient) -> None:
    fake.add_profile("u1", TRAITS)
    fake.remove_profile("u1")

    assert await cdp.profile("u1") is None
    assert await cdp.external_ids("u1") == []


async def test_lookup_by_another_id_type(fake: FakeSegment, http: httpx.AsyncClient) -> None:
    fake.add_profile("u1", {"email": "bob@example.com"}, external_ids=[("email", "b@x.io")])
    client = SegmentClient(
        Upstream("cdp", "http://seg.test/profiles", http, FAST),
        Upstream("cdp", "http://seg.test/tracking", http, FAST),
        None,
        space_id=SPACE,
        access_token=TOKEN,
        write_key=WRITE_KEY,
        id_type="email",
    )

    profile = await client.profile("b@x.io")

    assert profile == Profile("b@x.io", {"email": "bob@example.com"}, ())
    assert [r.path for r in fake.requests] == [f"{PROFILES}/email:b%40x.io/traits"]


async def test_external_ids(fake: FakeSegment, http: httpx.AsyncClient) -> None:
    fake.add_profile("u1", {}, external_ids=[("email", "bob@example.com"), ("anonymous_id", "a1")])

    ids = await segment(http, page_size=2).external_ids("u1")

    created = "2024-01-01T00:00:00Z"
    assert ids == [
        ExternalId("u1", "user_id", "patron", created),
        ExternalId("bob@example.com", "email", "patron", created),
        ExternalId("a1", "anonymous_id", "patron", created),
    ]
    assert [r.query for r in fake.requests] == [{"limit": "2"}, {"limit": "2", "next": "2"}]
    assert {r.path for r in fake.requests} == {f"{PROFILES}/user_id:u1/external_ids"}


async def test_wrong_access_token_is_unavailable(
    fake: FakeSegment, http: httpx.AsyncClient
) -> None:
    fake.add_profile("u1", TRAITS)

    with pytest.raises(UpstreamUnavailable) as caught:
        await segment(http, token="wrong").profile("u1")

    assert caught.value.message == "HTTP 401 authentication_error"


async def test_profiles_fan_out_with_bounded_concurrency(
    fake: FakeSegment, http: httpx.AsyncClient
) -> None:
    users = [f"u{n}" for n in range(25)]
    for user in users[:20]:
        fake.add_profile(user, {"name": user, "gold": user == "u3"})
    fake.latency = 0.02

    result = await segment(http, concurrency=4).profiles([*users, "u3", "u24"])

    assert list(result) == users
    assert result["u3"] == Profile("u3", {"name": "u3", "gold": True}, ("gold",))
    assert [result[f"u{n}"] for n in range(20, 25)] == [None] * 5
    assert len(fake.requests) == 25
    assert sorted(r.path for r in fake.requests) == sorted(
        f"{PROFILES}/user_id:{user}/traits" for user in users
    )
    assert fake.max_in_flight == 4


async def test_profiles_of_nobody_makes_no_call(fake: FakeSegment, cdp: SegmentClient) -> None:
    assert await cdp.profiles([]) == {}
    assert fake.requests == []


# --- tracking against the fake --------------------------------------------------------------
async def test_track_is_one_batch_and_deduplicated(fake: FakeSegment, cdp: SegmentClient) -> None:
    events = [event(1), event(2, tier="gold"), event(3)]

    await cdp.track(events)
    await cdp.track(events[1:])

    assert fake.tracked == [
        {
            "type": "track",
            "userId": "u1",
            "event": "Loyalty Points Earned",
            "properties": {"points": 1},
            "timestamp": "2025-03-01T12:31:00+00:00",
            "messageId": "msg-1",
        },
        {
            "type": "track",
            "userId": "u1",
            "event": "Loyalty Points Earned",
            "properties": {"points": 2, "tier": "gold"},
            "timestamp": "2025-03-01T12:32:00+00:00",
            "messageId": "msg-2",
        },
        {
            "type": "track",
            "userId": "u1",
            "event": "Loyalty Points Earned",
            "properties": {"points": 3},
            "timestamp": "2025-03-01T12:33:00+00:00",
            "messageId": "msg-3",
        },
    ]
    assert fake.requests == [("POST", "/v1/batch", {}), ("POST", "/v1/batch", {})]


async def test_track_nothing_makes_no_call(fake: FakeSegment, cdp: SegmentClient) -> None:
    await cdp.track([])
    assert fake.requests == []


async def test_track_splits_over_2500_events(fake: FakeSegment, cdp: SegmentClient) -> None:
    await cdp.track([event(n) for n in range(2600)])

    assert len(fake.tracked) == 2600
    assert fake.requests == [("POST", "/v1/batch", {})] * 2


async def test_track_splits_over_500_kb(fake: FakeSegment, cdp: SegmentClient) -> None:
    await cdp.track([event(n, note="x" * 4000) for n in range(300)])  # ~1.2 MB in all

    assert len(fake.tracked) == 300
    assert len(fake.requests) == 3


async def test_tracked_events_show_in_the_profile(fake: FakeSegment, cdp: SegmentClient) -> None:
    fake.add_profile("u1", {})
    await cdp.track([event(1), event(2)])

    reply = await cdp.profiles_upstream.request(
        "GET", f"{PROFILES}/user_id:u1/events", auth=(TOKEN, "")
    )

    assert [e["message_id"] for e in reply.json()["data"]] == ["msg-2", "msg-1"]


async def test_wrong_write_key_is_unavailable(fake: FakeSegment, http: httpx.AsyncClient) -> None:
    with pytest.raises(UpstreamUnavailable) as caught:
        await segment(http, write_key="wrong").track([event(1)])

    assert caught.value.message == "HTTP 401 authentication_error"
    assert fake.tracked == []


async def test_fake_identify_merges_traits(fake: FakeSegment, http: httpx.AsyncClient) -> None:
    fake.add_profile("u1", {"first_name": "Bob"})
    body = {"userId": "u1", "traits": {"birthday": "1990-04-02"}, "messageId": "id-1"}

    reply = await http.post("http://seg.test/tracking/v1/identify", json=body, auth=(WRITE_KEY, ""))

    assert reply.json() == {"success": True}
    profile = await segment(http).profile("u1")
    assert profile is not None
    assert profile.traits == {"first_name": "Bob", "birthday": "1990-04-02"}
    assert fake.tracked == [{**body, "type": "identify"}]


async def test_fake_rejects_a_batch_over_2500(fake: FakeSegment, http: httpx.AsyncClient) -> None:
    batch = [track_message(event(n)) for n in range(2501)]

    reply = await http.post(
        "http://seg.test/tracking/v1/batch", json={"batch": batch}, auth=(WRITE_KEY, "")
    )

    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == "invalid_request_error"


# --- deletion -------------------------------------------------------------------------------
async def test_request_deletion_is_recorded(fake: FakeSegment, cdp: SegmentClient) -> None:
    await cdp.request_deletion("bob+1")

    assert fake.deletion_requests == [
        {
            "regulationType": "SUPPRESS_WITH_DELETE",
            "subject": {"type": "USER_ID", "ids": ["bob+1"]},
        }
    ]
    assert fake.requests == [("POST", "/regulations", {})]


async def test_request_deletion_needs_a_url(http: httpx.AsyncClient) -> None:
    with pytest.raises(UpstreamUnavailable) as caught:
        await segment(http, regulations=False).request_deletion("u1")

    assert (caught.value.upstream, caught.value.message) == (
        "cdp",
        "no regulations URL configured",
    )


async def test_request_deletion_with_wrong_token(
    fake: FakeSegment, http: httpx.AsyncClient
) -> None:
    with pytest.raises(UpstreamUnavailable):
        await segment(http, token="wrong").request_deletion("u1")
    assert fake.deletion_requests == []


# --- helpers --------------------------------------------------------------------------------
def test_naive_timestamp_is_utc() -> None:
    naive = TrackEvent("u", "E", {}, datetime(2025, 1, 2, 3, 4, 5), "m")
    toronto = TrackEvent("u", "E", {}, WHEN.astimezone(timezone(timedelta(hours=-5))), "m")

    assert track_message(naive)["timestamp"] == "2025-01-02T03:04:05+00:00"
    assert track_message(toronto)["timestamp"] == "2025-03-01T07:30:00-05:00"


def test_split_batches_keeps_order() -> None:
    messages = [{"n": n} for n in range(5001)]

    batches = split_batches(messages)

    assert [len(b) for b in batches] == [2500, 2500, 1]
    assert [m for b in batches for m in b] == messages


# --- with respx against the real hosts ------------------------------------------------------
@pytest.fixture
async def real_http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def real(real_http: httpx.AsyncClient) -> SegmentClient:
    return SegmentClient(
        Upstream("cdp", REAL_PROFILES, real_http, FAST),
        Upstream("cdp", REAL_TRACKING, real_http, FAST),
        Upstream("cdp", REAL_REGULATIONS, real_http, FAST),
        space_id=SPACE,
        access_token=TOKEN,
        write_key=WRITE_KEY,
    )


def basic(user: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:".encode()).decode()


def traits_reply(traits: dict[str, Any]) -> dict[str, Any]:
    return {"traits": traits, "cursor": {"url": "", "has_more": False, "next": ""}}


@respx.mock
async def test_real_profile_request(real: SegmentClient) -> None:
    route = respx.get(REAL_TRAITS).respond(json=traits_reply({"vip": True}))

    assert await real.profile("u1") == Profile("u1", {"vip": True}, ("vip",))
    request = route.calls.last.request
    assert str(request.url) == f"{REAL_TRAITS}?limit=200"
    assert request.headers["authorization"] == basic(TOKEN)


@respx.mock
async def test_real_timeout_is_upstream_timeout(real: SegmentClient) -> None:
    route = respx.get(REAL_TRAITS).mock(side_effect=httpx.ConnectTimeout("slow"))

    with pytest.raises(UpstreamTimeout) as caught:
        await real.profile("u1")

    assert caught.value.upstream == "cdp"
    assert route.call_count == 2


@respx.mock
async def test_real_rate_limited_then_ok(real: SegmentClient) -> None:
    limited = {"error": {"code": "rate_limit_error", "message": "slow down"}}
    route = respx.get(REAL_TRAITS).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "0"}, json=limited),
            httpx.Response(200, json=traits_reply({"a": 1})),
        ]
    )

    assert await real.profile("u1") == Profile("u1", {"a": 1}, ())
    assert route.call_count == 2


@respx.mock
async def test_real_server_error_is_unavailable(real: SegmentClient) -> None:
    route = respx.get(REAL_TRAITS).respond(500)

    with pytest.raises(UpstreamUnavailable) as caught:
        await real.profile("u1")

    assert caught.value.message == "HTTP 500"
    assert route.call_count == 2


@pytest.mark.parametrize(
    "reply",
    [
        httpx.Response(200, content=b"not json"),
        httpx.Response(200, json=["a list"]),
        httpx.Response(200, json={"traits": "text"}),
    ],
)
@respx.mock
async def test_real_malformed_reply_is_unavailable(
    real: SegmentClient, reply: httpx.Response
) -> None:
    respx.get(REAL_TRAITS).mock(return_value=reply)

    with pytest.raises(UpstreamUnavailable):
        await real.profile("u1")


@respx.mock
async def test_real_not_found_is_none(real: SegmentClient) -> None:
    body = {"error": {"code": "not_found", "message": "Profile not found"}}
    respx.get(REAL_TRAITS).respond(404, json=body)

    assert await real.profile("u1") is None


@respx.mock
async def test_real_bare_404_is_unavailable(real: SegmentClient) -> None:
    respx.get(REAL_TRAITS).respond(404, text="no such route")

    with pytest.raises(UpstreamUnavailable) as caught:
        await real.profile("u1")

    assert caught.value.message == "unexpected HTTP 404"


@respx.mock
async def test_real_cursor_that_never_ends_is_unavailable(real: SegmentClient) -> None:
    looping = {"traits": {"a": 1}, "cursor": {"url": "", "has_more": True, "next": "same"}}
    route = respx.get(REAL_TRAITS).respond(json=looping)

    with pytest.raises(UpstreamUnavailable) as caught:
        await real.profile("u1")

    assert caught.value.message == "malformed reply: traits cursor does not end"
    assert route.call_count == 2


@respx.mock
async def test_real_unauthorized_is_unavailable(real: SegmentClient) -> None:
    body = {"error": {"code": "authentication_error", "message": "bad token"}}
    respx.get(REAL_TRAITS).respond(401, json=body)

    with pytest.raises(UpstreamUnavailable) as caught:
        await real.profile("u1")

    assert caught.value.message == "HTTP 401 authentication_error"


@respx.mock
async def test_real_profiles_raise_when_one_fails(real: SegmentClient) -> None:
    def reply(request: httpx.Request) -> httpx.Response:
        if "user_id:u7/" in request.url.path:
            return httpx.Response(503)
        return httpx.Response(200, json=traits_reply({}))

    respx.get(url__startswith=f"{REAL_PROFILES}{PROFILES}/").mock(side_effect=reply)

    with pytest.raises(UpstreamUnavailable) as caught:
        await real.profiles([f"u{n}" for n in range(25)])

    assert caught.value.message == "HTTP 503"


@respx.mock
async def test_real_track_is_retried_and_authenticated(real: SegmentClient) -> None:
    route = respx.post(f"{REAL_TRACKING}/v1/batch").mock(
        side_effect=[httpx.Response(503), httpx.Response(200, json={"success": True})]
    )

    await real.track([event(1)])

    assert route.call_count == 2
    request = route.calls.last.request
    assert request.headers["authorization"] == basic(WRITE_KEY)
    assert json.loads(request.content) == {"batch": [track_message(event(1))]}


@respx.mock
async def test_real_deletion_posts_to_the_exact_url(real: SegmentClient) -> None:
    route = respx.post(REAL_REGULATIONS).respond(200, json={"data": {"regulateId": "r1"}})

    await real.request_deletion("u1")

    request = route.calls.last.request
    assert str(request.url) == REAL_REGULATIONS
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert json.loads(request.content) == {
        "regulationType": "SUPPRESS_WITH_DELETE",
        "subject": {"type": "USER_ID", "ids": ["u1"]},
    }
