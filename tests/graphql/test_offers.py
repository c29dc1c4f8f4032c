"""Offers end to end (issue 4): birthday rewards from the CDP birthday trait (the
`birthdays` job), the newsletter promo code from signed Segment webhooks, referral points on a
referee's first purchase, and bonus-point offers that change `Cart.pointsPreview` and the
points a purchase earns identically. Exact values throughout."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from adapters.cache.cached_ports import CachedProfiles
from adapters.commerce.fake import FakeLine
from gateway.app import create_app
from gateway.cdp_webhook import offer_service, sign
from gateway.demo import fake_upstream_env
from gateway.jobs import JOBS, JobFailed
from gateway.settings import Settings
from loyalty.errors import UpstreamUnavailable
from loyalty.models import OfferKind
from loyalty.store import NewOffer
from resolvers.node import from_global_id
from tests.conftest import START, TEST_WEBHOOK_SECRET, Harness, token
from tests.graphql.conftest import enroll, purchase

ROOT = Path(__file__).resolve().parents[2]
BANNER = "https://schema.patron.example/offer-banner.json"
BDAY_CODE = re.compile(r"BDAY-[A-HJ-NP-Z2-9]{6}")
NEWS_CODE = re.compile(r"NEWS-[A-HJ-NP-Z2-9]{6}")

ME = """
{
  me {
    points { available pending lifetimeEarned }
    offers { kind title code discountPercent bonusPoints validUntil content { name } }
    transactions(first: 10) { edges { node { kind points status description orderId } } }
  }
}
"""


async def me(h: Harness, commerce_id: str) -> dict[str, Any]:
    body = await h.gql(ME, token=token(commerce_id, "member"))
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["me"]
    return result


def local_id(global_id: str) -> str:
    decoded = from_global_id(global_id)
    assert decoded is not None and decoded[0] == "Member"
    return decoded[1]


def kinds(view: dict[str, Any]) -> list[tuple[str, int, str]]:
    return [
        (e["node"]["kind"], e["node"]["points"], e["node"]["status"])
        for e in view["transactions"]["edges"]
    ]


async def count(h: Harness, table: str) -> int:
    async with h.engine.connect() as conn:
        return int((await conn.execute(text(f"SELECT COUNT(*) FROM {table}"))).scalar_one())


def banners(h: Harness) -> None:
    h.fakes.cms.add_content(
        "offers/birthday", BANNER, "Birthday banner", {"headline": "Happy birthday"}
    )
    h.fakes.cms.add_content(
        "offers/newsletter", BANNER, "Newsletter banner", {"headline": "Welcome"}
    )


# --- birthdays ------------------------------------------------------------------------------
# START is 2026-11-23 12:00 UTC: 07:00 on 23 November in Toronto (Club Harry's time zone).


async def test_birthday_job_grants_an_offer_and_bonus_points_once_a_year(harness: Harness) -> None:
    h = harness
    banners(h)
    h.fakes.cdp.add_profile("ava", {"first_name": "Ava", "birthday": "1990-11-23"})
    h.fakes.cdp.add_profile("ben", {"first_name": "Ben", "birthday": "1985-11-24"})  # tomorrow
    h.fakes.cdp.add_profile("cleo", {"first_name": "Cleo"})  # no birthday trait
    h.fakes.cdp.add_profile("dan", {"birthday": "not a date"})
    for customer in ("ava", "ben", "cleo", "dan", "eve"):  # eve has no CDP profile at all
        await enroll(h, customer)
    job = JOBS["birthdays"]

    assert (
        await job(h.gateway) == "1 birthday rewards granted (0 already granted, 5 members checked)"
    )
    ava = await me(h, "ava")
    assert ava["points"] == {"available": 500, "pending": 0, "lifetimeEarned": 500}
    assert len(ava["offers"]) == 1
    offer = ava["offers"][0]
    assert BDAY_CODE.fullmatch(offer["code"]), offer
    assert offer == {
        "kind": "BIRTHDAY",
        "title": "Happy birthday: 15% off and 500 bonus points",
        "code": offer["code"],
        "discountPercent": "15",
        "bonusPoints": None,
        "validUntil": (START + timedelta(days=30)).isoformat(),
        "content": {"name": "Birthday banner"},
    }
    assert ava["transactions"]["edges"] == [
        {
            "node": {
                "kind": "BONUS",
                "points": 500,
                "status": "POSTED",
                "description": "Birthday 2026",
                "orderId": None,
            }
        }
    ]
    for nobody in ("ben", "cleo", "dan", "eve"):
        view = await me(h, nobody)
        assert (view["points"]["available"], view["offers"], kinds(view)) == (0, [], [])

    # A second run the same year (a later hour, the cron running twice) grants nothing.
    h.clock.advance(hours=10)
    assert (
        await job(h.gateway) == "0 birthday rewards granted (1 already granted, 5 members checked)"
    )
    again = await me(h, "ava")
    assert again["points"]["available"] == 500
    assert [o["code"] for o in again["offers"]] == [offer["code"]]
    assert await count(h, "offers") == 1

    # The next day it is Ben's turn, and only his.
    h.clock.now = START + timedelta(days=1)
    assert (
        await job(h.gateway) == "1 birthday rewards granted (0 already granted, 5 members checked)"
    )
    assert (await me(h, "ben"))["points"]["available"] == 500
    assert (await me(h, "ava"))["points"]["available"] == 500

    # A year later Ava is rewarded again, with a new code; last year's offer has expired.
    h.clock.now = START.replace(year=2027)
    assert (
        await job(h.gateway) == "1 birthday rewards granted (0 already granted, 5 members checked)"
    )
    next_year = await me(h, "ava")
    assert next_year["points"] == {"available": 1000, "pending": 0, "lifetimeEarned": 1000}
    assert [(o["kind"], o["content"]) for o in next_year["offers"]] == [
        ("BIRTHDAY", {"name": "Birthday banner"})
    ]
    assert next_year["offers"][0]["code"] != offer["code"]
    assert BDAY_CODE.fullmatch(next_year["offers"][0]["code"])
    assert (
        next_year["offers"][0]["validUntil"]
        == (START.replace(year=2027) + timedelta(days=30)).isoformat()
    )
    assert kinds(next_year) == [("BONUS", 500, "POSTED"), ("BONUS", 500, "POSTED")]


async def test_birthdays_follow_the_program_time_zone_and_the_window(harness: Harness) -> None:
    h = harness
    h.fakes.cdp.add_profile("ava", {"birthday": "1990-11-23"})
    h.fakes.cdp.add_profile("leap", {"birthday": "1992-02-29"})
    await enroll(h, "ava")
    await enroll(h, "leap")
    service = offer_service(h.gateway.services)
    # 02:00 UTC on 23 November is still 22 November in Toronto: not yet.
    h.clock.now = datetime.fromisoformat("2026-11-23T02:00:00+00:00")
    assert (await service.grant_birthdays()).summary() == (
        "0 birthday rewards granted (0 already granted, 2 members checked)"
    )
    # Two days late: only a window of 2 days back still finds it.
    h.clock.now = datetime.fromisoformat("2026-11-25T12:00:00+00:00")
    assert (await service.grant_birthdays(window_days=1)).granted == 0
    assert (await service.grant_birthdays(window_days=2)).granted == 1
    # 29 February is celebrated on 28 February in a year without one, once.
    h.clock.now = datetime.fromisoformat("2027-02-28T17:00:00+00:00")
    assert (await service.grant_birthdays(window_days=3)).summary() == (
        "1 birthday rewards granted (0 already granted, 2 members checked)"
    )
    h.clock.now = datetime.fromisoformat("2027-03-01T17:00:00+00:00")
    assert (await service.grant_birthdays(window_days=3)).summary() == (
        "0 birthday rewards granted (1 already granted, 2 members checked)"
    )
    assert (await me(h, "leap"))["points"]["available"] == 500


async def test_a_cdp_outage_stops_the_job_without_granting_twice(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness
    customers = ["ann", "bob", "cat", "dee"]
    ids = {}
    for customer in customers:
        h.fakes.cdp.add_profile(customer, {"birthday": "1980-11-23"})
        ids[customer] = local_id(await enroll(h, customer))
    cached = h.gateway.services.cdp
    assert isinstance(cached, CachedProfiles)
    cdp = cached.inner  # the Segment client behind the profile cache
    real_profile = cdp.profile

    async def failing(user_id: str) -> Any:
        if user_id == "cat":
            raise UpstreamUnavailable("cdp", "HTTP 503 OverCapacity")
        return await real_profile(user_id)

    monkeypatch.setattr(cdp, "profile", failing)
    # The job reads one page of 100: the failure stops it before it grants anything.
    with pytest.raises(JobFailed) as failed:
        await JOBS["birthdays"](h.gateway)
    assert str(failed.value) == (
        "0 birthday rewards granted (0 already granted, 0 members checked); "
        "stopped: cdp unavailable (HTTP 503 OverCapacity)"
    )
    assert (await count(h, "offers"), await count(h, "ledger_transactions")) == (0, 0)

    # In pages of one: the members before Cat's page are granted, then it stops.
    service = offer_service(h.gateway.services)
    before = sorted(c for c in customers if ids[c] < ids["cat"])
    report = await service.grant_birthdays(page_size=1)
    assert (report.granted, report.already_granted, report.members) == (len(before), 0, len(before))
    assert report.error == "cdp unavailable (HTTP 503 OverCapacity)"
    for customer in customers:
        expected = 500 if customer in before else 0
        assert (await me(h, customer))["points"]["available"] == expected, customer

    # The CDP is back: the next run grants the rest, and nobody twice.
    monkeypatch.setattr(cdp, "profile", real_profile)
    assert await JOBS["birthdays"](h.gateway) == (
        f"{4 - len(before)} birthday rewards granted ({len(before)} already granted, 4 members checked)"
    )
    for customer in customers:
        view = await me(h, customer)
        assert view["points"]["available"] == 500, customer
        assert [o["kind"] for o in view["offers"]] == ["BIRTHDAY"]
    assert await count(h, "offers") == 4


def test_the_cli_exits_non_zero_when_the_cdp_is_down(tmp_path: Path, sqlite_template: Path) -> None:
    db = tmp_path / "jobs.db"
    db.write_bytes(sqlite_template.read_bytes())
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATRON_")}
    env |= {
        "PYTHONPATH": str(ROOT),
        "PATRON_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "PATRON_DEMO": "true",
        "PATRON_JWT_SECRET": "x",
        **fake_upstream_env(),
        "PATRON_CDP_PROFILE_URL": "http://127.0.0.1:9/cdp",  # nothing listens there
        "PATRON_UPSTREAM_RETRIES": "0",
    }
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "jobs", "run", "birthdays"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    assert done.stderr.startswith(
        "patron: birthdays: failed: 0 birthday rewards granted (0 already granted, "
        "0 members checked); stopped: cdp unavailable"
    ), done.stderr


# --- the newsletter, from Segment webhooks ----------------------------------------------------
def segment_event(**fields: Any) -> dict[str, Any]:
    return {
        "version": 1,
        "messageId": str(uuid.uuid4()),
        "timestamp": "2026-11-23T12:00:00.000Z",
        "context": {"library": {"name": "analytics.js"}},
        **fields,
    }


def subscribed(user_id: str, message_id: str | None = None) -> dict[str, Any]:
    return segment_event(
        type="track",
        event="Newsletter Subscribed",
        userId=user_id,
        properties={"list": "weekly"},
        **({"messageId": message_id} if message_id else {}),
    )


async def post_cdp(
    h: Harness, body: bytes | dict[str, Any], signature: str | None = "sign"
) -> tuple[int, dict[str, Any]]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "Segment.io/1.0"}
    if signature == "sign":
        headers["X-Signature"] = sign(TEST_WEBHOOK_SECRET, raw)
    elif signature is not None:
        headers["X-Signature"] = signature
    response = await h.client.post("/webhooks/cdp", content=raw, headers=headers)
    return response.status_code, response.json()


async def test_a_newsletter_subscription_grants_one_promo_code(harness: Harness) -> None:
    h = harness
    banners(h)
    await enroll(h, "nia")
    event = subscribed("nia", "msg-1")
    assert await post_cdp(h, event) == (200, {"status": "granted"})
    view = await me(h, "nia")
    assert len(view["offers"]) == 1
    code = view["offers"][0]["code"]
    assert NEWS_CODE.fullmatch(code)
    assert view["offers"] == [
        {
            "kind": "NEWSLETTER",
            "title": "Newsletter: 10% off",
            "code": code,
            "discountPercent": "10",
            "bonusPoints": None,
            "validUntil": None,
            "content": {"name": "Newsletter banner"},
        }
    ]
    assert view["points"]["available"] == 0  # a code, not points

    # Segment redelivers the same event; then a new event, and an identify that says so too.
    assert await post_cdp(h, event) == (200, {"status": "duplicate"})
    assert await post_cdp(h, subscribed("nia", "msg-2")) == (
        200,
        {"status": "ignored", "reason": "already_granted"},
    )
    identify = segment_event(type="identify", userId="nia", traits={"newsletter_subscriber": True})
    assert await post_cdp(h, identify) == (200, {"status": "ignored", "reason": "already_granted"})
    assert [o["code"] for o in (await me(h, "nia"))["offers"]] == [code]
    assert await count(h, "offers") == 1
    assert await count(h, "webhook_deliveries") == 3

    # The `identify` form alone grants it too, for another member.
    await enroll(h, "oli")
    identify = segment_event(type="identify", userId="oli", traits={"newsletter_subscriber": True})
    assert await post_cdp(h, identify) == (200, {"status": "granted"})
    oli_code = (await me(h, "oli"))["offers"][0]["code"]
    assert NEWS_CODE.fullmatch(oli_code) and oli_code != code


async def test_other_cdp_events(harness: Harness) -> None:
    h = harness
    await enroll(h, "pam")
    birthday = segment_event(type="identify", userId="pam", traits={"birthday": "1990-01-02"})
    assert await post_cdp(h, birthday) == (
        200,
        {"status": "ignored", "reason": "traits_read_from_cdp"},
    )
    unsubscribed = segment_event(
        type="identify", userId="pam", traits={"newsletter_subscriber": False}
    )
    assert await post_cdp(h, unsubscribed) == (
        200,
        {"status": "ignored", "reason": "traits_read_from_cdp"},
    )
    page = segment_event(type="page", userId="pam", name="Home")
    assert await post_cdp(h, page) == (200, {"status": "ignored", "reason": "unhandled_event"})
    other = segment_event(type="track", userId="pam", event="Product Viewed")
    assert await post_cdp(h, other) == (200, {"status": "ignored", "reason": "unhandled_event"})
    stranger = subscribed("not-a-member")
    assert await post_cdp(h, stranger) == (200, {"status": "ignored", "reason": "not_a_member"})
    anonymous = segment_event(type="track", event="Newsletter Subscribed", anonymousId="a-1")
    assert await post_cdp(h, anonymous) == (200, {"status": "ignored", "reason": "not_a_member"})
    assert await count(h, "offers") == 0
    assert (await me(h, "pam"))["offers"] == []


async def test_a_delete_event_forgets_the_member(harness: Harness) -> None:
    h = harness
    await enroll(h, "pam")
    assert await post_cdp(h, subscribed("pam")) == (200, {"status": "granted"})
    delete = segment_event(type="delete", userId="pam")
    assert await post_cdp(h, delete) == (200, {"status": "forgotten"})
    assert await h.gql("{ me { id } }", token=token("pam", "member")) == {"data": {"me": None}}
    assert await count(h, "offers") == 0  # her promo code went with her
    assert [r["subject"]["ids"] for r in h.fakes.cdp.deletion_requests] == [["pam"]]
    assert await post_cdp(h, delete) == (200, {"status": "duplicate"})
    again = segment_event(type="delete", userId="pam")
    assert await post_cdp(h, again) == (200, {"status": "ignored", "reason": "not_a_member"})
    assert len(h.fakes.cdp.deletion_requests) == 1

    # The owner of a household with other members is not erased by an event: staff act.
    owner = await enroll(h, "own")
    other = await enroll(h, "kid")
    created = await h.gql(
        "mutation($o: ID!) { createHousehold(input: {ownerId: $o}) { household { id } userErrors { code } } }",
        {"o": owner},
        token("admin-1", "admin"),
    )
    household = created["data"]["createHousehold"]["household"]["id"]
    added = await h.gql(
        "mutation($h: ID!, $m: ID!) { addHouseholdMember(input: {householdId: $h, memberId: $m}) { userErrors { code } } }",
        {"h": household, "m": other},
        token("admin-1", "admin"),
    )
    assert added["data"]["addHouseholdMember"]["userErrors"] == []
    status, body = await post_cdp(h, segment_event(type="delete", userId="own"))
    assert (status, body["status"], body["code"]) == (200, "rejected", "NOT_ALLOWED")
    assert (await h.gql("{ me { id } }", token=token("own", "member")))["data"]["me"] == {
        "id": owner
    }


async def test_unsigned_or_malformed_cdp_events_write_nothing(harness: Harness) -> None:
    h = harness
    await enroll(h, "nia")
    event = json.dumps(subscribed("nia")).encode()
    for signature in (
        None,
        "",
        "0" * 40,
        sign("another-secret", event),
        "sha1=" + sign(TEST_WEBHOOK_SECRET, event),
    ):
        status, body = await post_cdp(h, event, signature)
        assert (status, body["error"]["code"]) == (401, "INVALID_SIGNATURE"), signature
    tampered = event.replace(b"nia", b"nib")
    assert (await post_cdp(h, tampered, sign(TEST_WEBHOOK_SECRET, event)))[0] == 401
    for malformed in (b"{not json", b"[]", json.dumps({"type": "track", "userId": "nia"}).encode(),
                      json.dumps(segment_event(userId="nia")).encode(),
                      json.dumps(segment_event(type="track", userId="nia")).encode(),
                      json.dumps(segment_event(type="identify", userId="nia", traits=[1])).encode()):  # fmt: skip
        status, body = await post_cdp(h, malformed)
        assert (status, body["error"]["code"]) == (400, "MALFORMED_EVENT"), malformed
    assert (await count(h, "offers"), await count(h, "webhook_deliveries")) == (0, 0)
    # Upper-case hex is the same signature.
    assert await post_cdp(h, event, sign(TEST_WEBHOOK_SECRET, event).upper()) == (
        200,
        {"status": "granted"},
    )


async def test_the_cdp_webhook_needs_its_secret(settings: Settings, harness: Harness) -> None:
    unset = settings.model_copy(update={"cdp_webhook_secret": None})
    http = harness.fakes.http_client()
    app = create_app(unset, http=http, clock=harness.clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://patron.test") as client:
            response = await client.post("/webhooks/cdp", content=b"{}")
    await http.aclose()
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "WEBHOOK_NOT_CONFIGURED"


# --- referrals ------------------------------------------------------------------------------
async def test_referral_points_for_both_on_the_first_purchase_only(harness: Harness) -> None:
    h = harness
    rita = await enroll(h, "rita")
    rob = await enroll(h, "rob", referredBy=rita)
    await enroll(h, "sam")  # referred by nobody

    # Too small to earn: not the first purchase that earns.
    small = await purchase(h, rob, "r-0", "0.50")
    assert (small["userErrors"], small["transaction"]) == ([], None)
    assert (await me(h, "rita"))["points"]["available"] == 0

    first = await purchase(h, rob, "r-1", "200.00")
    assert first["userErrors"] == []
    assert first["transaction"]["kind"] == "EARN" and first["transaction"]["points"] == 200
    assert first["member"]["points"] == {"available": 500, "pending": 200, "lifetimeEarned": 700}
    rob_view = await me(h, "rob")
    assert [
        (e["node"]["kind"], e["node"]["points"], e["node"]["status"], e["node"]["orderId"])
        for e in rob_view["transactions"]["edges"]
    ] == [("REFERRAL", 500, "POSTED", "r-1"), ("EARN", 200, "PENDING", "r-1")]
    rita_view = await me(h, "rita")
    assert rita_view["points"] == {"available": 1000, "pending": 0, "lifetimeEarned": 1000}
    assert rita_view["transactions"]["edges"] == [
        {
            "node": {
                "kind": "REFERRAL",
                "points": 1000,
                "status": "POSTED",
                "description": "Referral: a member you referred made a first purchase",
                "orderId": None,
            }
        }
    ]

    # A replay of the first purchase, and a second purchase: no more referral points.
    replay = await purchase(h, rob, "r-1", "200.00")
    assert replay["transaction"]["id"] == first["transaction"]["id"]
    await purchase(h, rob, "r-2", "100.00")
    assert (await me(h, "rob"))["points"] == {
        "available": 500,
        "pending": 300,
        "lifetimeEarned": 800,
    }
    assert (await me(h, "rita"))["points"] == {
        "available": 1000,
        "pending": 0,
        "lifetimeEarned": 1000,
    }

    # Without a referrer a first purchase earns just its points.
    await purchase(h, await enroll(h, "tia"), "t-1", "100.00")
    assert (await me(h, "tia"))["points"] == {"available": 0, "pending": 100, "lifetimeEarned": 100}
    assert await count(h, "ledger_transactions") == 5  # earns r-1, r-2, t-1 and two referrals


# --- bonus-point offers -------------------------------------------------------------------------
async def add_offer(h: Harness, key: str, member: str | None = None, **fields: Any) -> None:
    async with h.gateway.services.store.session() as session:
        assert await session.add_offer(
            NewOffer(
                id=str(uuid.uuid4()),
                key=key,
                kind=fields.pop("kind", OfferKind.BONUS_POINTS),
                title=fields.pop("title", key),
                created_at=h.clock(),
                member_id=local_id(member) if member else None,
                **fields,
            )
        )
    h.clock.advance(seconds=1)  # offers are listed in the order they were created


PREVIEW = "{ me { cart { total { amount } pointsPreview } offers { kind title bonusPoints } } }"


async def test_bonus_offers_change_the_preview_and_the_points_earned_alike(
    harness: Harness,
) -> None:
    h = harness
    for customer in ("bo", "cy"):
        h.fakes.commerce.add_cart(customer, [FakeLine("COAT", "Coat", 1, "1000.00")], "CAD")
    bo = await enroll(h, "bo")
    await enroll(h, "cy")
    cy_token = token("cy", "member")
    bo_token = token("bo", "member")
    before = await h.gql(PREVIEW, token=bo_token)
    assert before["data"]["me"] == {
        "cart": {"total": {"amount": "1000.00"}, "pointsPreview": 1000},
        "offers": [],
    }

    await add_offer(h, "double-points", bonus_multiplier=Decimal(2), title="Double points")
    await add_offer(h, "welcome-250", bo, bonus_points=250, title="250 bonus points")
    await add_offer(h, "gold-bonus", tier_key="gold", bonus_points=5000, title="Gold only")
    await add_offer(h, "expired", bonus_points=9000, valid_until=START - timedelta(seconds=1))
    await add_offer(h, "later", bonus_points=9000, valid_from=START + timedelta(days=1))

    preview = (await h.gql(PREVIEW, token=bo_token))["data"]["me"]
    assert preview == {
        "cart": {"total": {"amount": "1000.00"}, "pointsPreview": 2250},  # 1000 x 2 + 250
        "offers": [
            {"kind": "BONUS_POINTS", "title": "Double points", "bonusPoints": None},
            {"kind": "BONUS_POINTS", "title": "250 bonus points", "bonusPoints": 250},
        ],
    }
    assert (await h.gql(PREVIEW, token=cy_token))["data"]["me"]["cart"]["pointsPreview"] == 2000

    bought = await purchase(h, bo, "b-1", "1000.00")
    assert bought["transaction"] == {
        "id": bought["transaction"]["id"], "kind": "EARN", "points": 1000, "status": "PENDING",
        "orderId": "b-1", "channel": "POS",
    }  # fmt: skip
    assert bought["member"]["points"] == {"available": 0, "pending": 2250, "lifetimeEarned": 2250}
    view = await me(h, "bo")
    assert [
        (e["node"]["kind"], e["node"]["points"], e["node"]["status"], e["node"]["description"])
        for e in view["transactions"]["edges"]
    ] == [
        ("BONUS", 1250, "PENDING", "Bonus offers on purchase b-1"),
        ("EARN", 1000, "PENDING", "Purchase b-1"),
    ]

    # Each bonus offer is used once per member: gone for Bo, still there for Cy.
    after = (await h.gql(PREVIEW, token=bo_token))["data"]["me"]
    assert after == {"cart": {"total": {"amount": "1000.00"}, "pointsPreview": 1000}, "offers": []}
    await purchase(h, bo, "b-2", "100.00")
    assert (await me(h, "bo"))["points"]["pending"] == 2350
    assert (await h.gql(PREVIEW, token=cy_token))["data"]["me"]["cart"]["pointsPreview"] == 2000

    # The bonus leaves the return window with its earn.
    h.clock.advance(days=31)
    assert await h.gateway.services.ledger.mature_pending() == 3
    assert (await me(h, "bo"))["points"] == {
        "available": 2350,
        "pending": 0,
        "lifetimeEarned": 2350,
    }


async def test_concurrent_purchases_use_an_offer_and_a_referral_once(harness: Harness) -> None:
    h = harness
    rita = await enroll(h, "rita")
    rob = await enroll(h, "rob", referredBy=rita)
    await add_offer(h, "welcome-250", rob, bonus_points=250)
    await add_offer(h, "everyone-100", bonus_points=100)
    results = await asyncio.gather(*(purchase(h, rob, f"c-{i}", "100.00") for i in range(4)))
    assert [r["userErrors"] for r in results] == [[]] * 4
    # 4 x 100 earned, the two offers' 350 once, the referee's 500 once; the referrer's 1000 once.
    assert (await me(h, "rob"))["points"] == {
        "available": 500,
        "pending": 750,
        "lifetimeEarned": 1250,
    }
    assert (await me(h, "rita"))["points"] == {
        "available": 1000,
        "pending": 0,
        "lifetimeEarned": 1000,
    }
