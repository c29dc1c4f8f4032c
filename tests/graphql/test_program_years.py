"""A year in each of the three programs, as the apps live it: the POS records purchases with
a service token, members serve themselves with their own tokens, an associate assigns a tier,
Segment's webhook reports a newsletter sign-up, and cron runs the birthdays and tiers jobs
while the test clock moves on. Every balance and tier is checked exactly; the arithmetic is
in the comments, from the program files (programs/*.toml).

The clock starts on Monday 2026-11-23 12:00 UTC (START).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.cdp_webhook import sign
from gateway.jobs import run_job
from gateway.settings import PROGRAMS_DIR, Settings
from tests.conftest import TEST_WEBHOOK_SECRET, Harness, token
from tests.graphql.conftest import ENROLL, enroll, purchase

POS = token("pos-1", "service")
ASSOCIATE = token("assoc-7", "associate", store="PAR-1")


def program(name: str) -> pytest.MarkDecorator:
    """Run the test on this program file (the `program_file` fixture)."""
    return pytest.mark.parametrize("program_file", [PROGRAMS_DIR / f"{name}.toml"], ids=[name])


@pytest.fixture
def program_file() -> Path:
    return PROGRAMS_DIR / "club-harry.toml"


@pytest.fixture
def settings(settings: Settings, program_file: Path) -> Settings:
    """The harness's settings, with the program this test runs on."""
    return settings.model_copy(update={"program": program_file})


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# --- what the apps do ---------------------------------------------------------------------
ME = """
{
  me {
    points { available pending lifetimeEarned }
    tier { current { key } spendToNextTier { amount } }
    offers { kind discountPercent }
  }
}
"""


async def me(h: Harness, who: str) -> dict[str, Any]:
    """What the member's app shows: points, tier, the gap to the next tier and the offers."""
    body = await h.gql(ME, token=token(who, "member"))
    assert "errors" not in body, body
    view = body["data"]["me"]
    gap = view["tier"]["spendToNextTier"]
    return {
        "points": view["points"],
        "tier": view["tier"]["current"]["key"],
        "toNext": gap["amount"] if gap else None,
        "offers": [(o["kind"], o["discountPercent"]) for o in view["offers"]],
    }


def looks(
    available: int,
    pending: int,
    lifetime: int,
    tier: str,
    to_next: str | None,
    offers: list[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    return {
        "points": {"available": available, "pending": pending, "lifetimeEarned": lifetime},
        "tier": tier,
        "toNext": to_next,
        "offers": offers or [],
    }


async def earns(
    h: Harness, member_id: str, order_id: str, amount: str, currency: str, channel: str = "POS"
) -> int:
    """A purchase recorded by the POS (or the web shop's back office): the points it earned."""
    result = await purchase(h, member_id, order_id, amount, currency, channel=channel)
    assert result["userErrors"] == [], result
    points: int = result["transaction"]["points"]
    return points


async def enroll_self(h: Harness, who: str, referred_by: str) -> str:
    """A customer enrols in the app, with the id of the member who referred them."""
    body = await h.gql(
        ENROLL,
        {"input": {"commerceCustomerId": who, "referredBy": referred_by}},
        token(who, "member"),
    )
    payload = body["data"]["enrollMember"]
    assert payload["userErrors"] == [], payload
    member_id: str = payload["member"]["id"]
    return member_id


async def newsletter(h: Harness, who: str) -> tuple[int, dict[str, Any]]:
    """Segment's signed webhook: the customer subscribed to the newsletter."""
    event = {
        "version": 1,
        "type": "track",
        "event": "Newsletter Subscribed",
        "userId": who,
        "messageId": str(uuid.uuid4()),
        "timestamp": h.clock().isoformat(),
        "properties": {"list": "weekly"},
    }
    raw = json.dumps(event).encode()
    response = await h.client.post(
        "/webhooks/cdp",
        content=raw,
        headers={
            "Content-Type": "application/json",
            "X-Signature": sign(TEST_WEBHOOK_SECRET, raw),
        },
    )
    return response.status_code, response.json()


async def job(h: Harness, settings: Settings, name: str) -> str:
    """`patron jobs run NAME`, as cron runs it, at the test clock's time."""
    http = h.fakes.http_client()
    try:
        return await run_job(settings, name, http=http, clock=h.clock)
    finally:
        await http.aclose()


async def redeem(h: Harness, member_id: str, who: str, points: int, key: str) -> dict[str, Any]:
    body = await h.gql(
        "mutation($i: RedeemPointsInput!) { redeemPoints(input: $i) { "
        "member { points { available pending } } userErrors { code field } } }",
        {"i": {"memberId": member_id, "points": points, "idempotencyKey": key}},
        token(who, "member"),
    )
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["redeemPoints"]
    assert result["userErrors"] == [], result
    return result


async def household(h: Harness, name: str, input: dict[str, Any], who: str) -> dict[str, Any]:
    body = await h.gql(
        f"mutation($i: {name[0].upper()}{name[1:]}Input!) {{ {name}(input: $i) {{ "
        "household { id pooledPoints } userErrors { code field } } }",
        {"i": input},
        token(who, "member"),
    )
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"][name]
    assert result["userErrors"] == [], result
    return result


async def assign_tier(h: Harness, member_id: str, tier_key: str, reason: str) -> dict[str, Any]:
    body = await h.gql(
        "mutation($i: AssignTierInput!) { assignTier(input: $i) { "
        "member { tier { current { key hidden } spendToNextTier { amount } validUntil } } "
        "userErrors { code field } } }",
        {"i": {"memberId": member_id, "tierKey": tier_key, "reason": reason}},
        ASSOCIATE,
    )
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["assignTier"]
    assert result["userErrors"] == [], result
    tier: dict[str, Any] = result["member"]["tier"]
    return tier


# --- Club Harry ---------------------------------------------------------------------------
# CAD, rolling 12 months, America/Toronto. 1 point per CAD x the tier's multiplier: Member 0,
# Silver 2500 (x1.25), Gold 7500 (x1.5), Black 20000 (x2). USD at 1.37. Pending 30 days.
# Birthday: 500 points and 15% off. Newsletter: 10% off. Referral: 1000 to the referrer,
# 500 to the referee. Households share the owner's wallet and their best tier.
# A tier with a discount lists it among the offers, as a standing TIER_DISCOUNT (Gold 5%).
# `lifetimeEarned` counts what the member itself earned (its own transactions), while
# `available` and `pending` are the wallet it spends from (the household's, in one).
GOLD_5 = ("TIER_DISCOUNT", "5")


@program("club-harry")
async def test_a_year_of_club_harry(harness: Harness, settings: Settings) -> None:
    h = harness
    h.fakes.cdp.add_profile("ava", {"first_name": "Ava", "birthday": "1988-02-14"})
    h.fakes.cdp.add_profile("ben", {"first_name": "Ben"})

    # 2026-11-23: Ava enrols at the till and subscribes to the newsletter: a 10% code.
    ava = await enroll(h, "ava")
    assert await newsletter(h, "ava") == (200, {"status": "granted"})
    assert await me(h, "ava") == looks(0, 0, 0, "member", "2500.00", [("NEWSLETTER", "10")])

    # A suit, 2,000 CAD at the POS: 2000 x 1 = 2,000 points, pending for 30 days.
    # 2,500 - 2,000 = 500.00 CAD to Silver.
    assert await earns(h, ava, "ch-1", "2000.00", "CAD") == 2000
    assert await me(h, "ava") == looks(0, 2000, 2000, "member", "500.00", [("NEWSLETTER", "10")])

    # Ben enrols in the app, referred by Ava.
    ben = await enroll_self(h, "ben", referred_by=ava)

    # 2026-11-28: Ava orders online in New York, 1,000 USD = 1,000 x 1.37 = 1,370 CAD; she was
    # a Member before it counted: 1,370 x 1 = 1,370 points. 12-month spend 2,000 + 1,370 =
    # 3,370 CAD: Silver at once; 7,500 - 3,370 = 4,130.00 to Gold.
    h.clock.now = utc(2026, 11, 28, 12)
    assert await earns(h, ava, "ch-2", "1000.00", "USD", channel="WEB") == 1370
    assert await me(h, "ava") == looks(0, 3370, 3370, "silver", "4130.00", [("NEWSLETTER", "10")])

    # 2026-12-03: Ben's first purchase, 400 CAD: 400 points pending, and the referral:
    # 500 for Ben and 1,000 for Ava, available at once.
    h.clock.now = utc(2026, 12, 3, 12)
    assert await earns(h, ben, "ch-3", "400.00", "CAD") == 400
    assert await me(h, "ben") == looks(500, 400, 900, "member", "2100.00")  # 2,500 - 400
    assert await me(h, "ava") == looks(
        1000, 3370, 4370, "silver", "4130.00", [("NEWSLETTER", "10")]
    )

    # 2027-01-03: every return window has passed (the last, ch-3's, on 2027-01-02).
    # Ava: 1,000 + 2,000 + 1,370 = 4,370 available; Ben: 500 + 400 = 900.
    h.clock.now = utc(2027, 1, 3, 12)
    assert await me(h, "ava") == looks(4370, 0, 4370, "silver", "4130.00", [("NEWSLETTER", "10")])
    assert await me(h, "ben") == looks(900, 0, 900, "member", "2100.00")

    # Ava makes a household and invites Ben, who accepts: his 900 points join her wallet:
    # 4,370 + 900 = 5,270. Ben now holds the household's best tier, Silver; his own spend is
    # still 400 CAD, so Gold is 7,500 - 400 = 7,100.00 away for him.
    created = await household(h, "createHousehold", {"ownerId": ava}, "ava")
    household_id = created["household"]["id"]
    joining = {"householdId": household_id, "memberId": ben}
    invited = await household(h, "addHouseholdMember", joining, "ava")
    assert invited["household"]["pooledPoints"] == 4370
    added = await household(h, "addHouseholdMember", joining, "ben")
    assert added["household"]["pooledPoints"] == 5270
    assert await me(h, "ben") == looks(5270, 0, 900, "silver", "7100.00")

    # 2027-01-04: Ben buys a coat, 1,000 CAD, at Silver: 1,000 x 1.25 = 1,250 points, into
    # the shared wallet. His own spend 400 + 1,000 = 1,400: 6,100.00 to Gold.
    h.clock.now = utc(2027, 1, 4, 12)
    assert await earns(h, ben, "ch-4", "1000.00", "CAD") == 1250
    assert await me(h, "ben") == looks(5270, 1250, 2150, "silver", "6100.00")

    # (Ben's lifetime: 900 + 1,250 = 2,150; Ava's stays 2,000 + 1,370 + 1,000 = 4,370.)
    # Ben spends 2,000 of the shared points in the app: 5,270 - 2,000 = 3,270.
    spent = await redeem(h, ben, "ben", 2000, "ben-redeem-1")
    assert spent["member"]["points"] == {"available": 3270, "pending": 1250}
    assert await me(h, "ava") == looks(
        3270, 1250, 4370, "silver", "4130.00", [("NEWSLETTER", "10")]
    )

    # 2027-02-14, 07:00 in Toronto: Ava's birthday. The job gives her 500 points, available at
    # once, and a 15% code. ch-4 left its window on 2027-02-03: 3,270 + 1,250 + 500 = 5,020.
    # Her lifetime: 4,370 + 500 = 4,870.
    h.clock.now = utc(2027, 2, 14, 12)
    assert await job(h, settings, "birthdays") == (
        "1 birthday rewards granted (0 already granted, 2 members checked)"
    )
    assert await job(h, settings, "birthdays") == (
        "0 birthday rewards granted (1 already granted, 2 members checked)"
    )
    assert await me(h, "ava") == looks(
        5020, 0, 4870, "silver", "4130.00", [("NEWSLETTER", "10"), ("BIRTHDAY", "15")]
    )

    # 2027-03-01: Ava buys 5,000 CAD as a Silver: 5,000 x 1.25 = 6,250 points. 12-month spend
    # 2,000 + 1,370 + 5,000 = 8,370: Gold, held to 2028-03-01; 20,000 - 8,370 = 11,630.00 to
    # Black; Gold's 5% shows as a TIER_DISCOUNT. The birthday code (valid 30 days, to
    # 2027-03-16) is still listed. Her lifetime: 4,870 + 6,250 = 11,120.
    h.clock.now = utc(2027, 3, 1, 12)
    assert await earns(h, ava, "ch-5", "5000.00", "CAD") == 6250
    assert await me(h, "ava") == looks(
        5020,
        6250,
        11120,
        "gold",
        "11630.00",
        [GOLD_5, ("NEWSLETTER", "10"), ("BIRTHDAY", "15")],
    )
    # Ben shares Gold: 20,000 - his 1,400 = 18,600.00 to Black.
    assert await me(h, "ben") == looks(5020, 6250, 2150, "gold", "18600.00", [GOLD_5])

    # 2027-04-01: Ben buys 1,000 CAD as a Gold: x1.5 = 1,500 points. ch-5 is available since
    # 2027-03-31: 5,020 + 6,250 = 11,270. Ben's own spend 2,400 stays under Silver's 2,500;
    # 20,000 - 2,400 = 17,600.00 to Black. His lifetime: 2,150 + 1,500 = 3,650.
    h.clock.now = utc(2027, 4, 1, 12)
    assert await earns(h, ben, "ch-6", "1000.00", "CAD") == 1500
    assert await me(h, "ben") == looks(11270, 1500, 3650, "gold", "17600.00", [GOLD_5])

    # 2028-03-01 13:00 UTC: Ava's Gold period (2027-03-01 12:00 to 2028-03-01 12:00) has
    # ended. Its spend was ch-5's 5,000 CAD: Silver, not Gold: one tier down, to Silver. Ben
    # holds no tier of his own. A second run finds nobody due.
    h.clock.now = utc(2028, 3, 1, 13)
    assert await job(h, settings, "tiers") == (
        "1 member reviewed: 0 requalified, 1 moved down one tier"
    )
    assert await job(h, settings, "tiers") == (
        "0 members reviewed: 0 requalified, 0 moved down one tier"
    )
    # Everything is available: 11,270 + 1,500 = 12,770. Ava has no spend in the last 12
    # months (ch-5 is an hour too old): 7,500.00 to Gold. Last year's birthday code expired.
    assert await me(h, "ava") == looks(12770, 0, 11120, "silver", "7500.00", [("NEWSLETTER", "10")])
    # Ben: Silver from the household; his 12-month spend is ch-6's 1,000: 6,500.00 to Gold.
    assert await me(h, "ben") == looks(12770, 0, 3650, "silver", "6500.00")
    # And he earns as a Silver again: 100 x 1.25 = 125.
    assert await earns(h, ben, "ch-7", "100.00", "CAD") == 125
    assert await me(h, "ava") == looks(
        12770, 125, 11120, "silver", "7500.00", [("NEWSLETTER", "10")]
    )


# --- Harrods Rewards ----------------------------------------------------------------------
# GBP, calendar year, Europe/London. Green 1 0 (x1), Green 2 1000 (x1.5), Gold 10000 (x2),
# Black 25000 (x3). EUR at 0.85. Pending 28 days. No birthday, newsletter or referral
# sections: those events give nothing.


@program("harrods-rewards")
async def test_a_year_of_harrods_rewards(harness: Harness, settings: Settings) -> None:
    h = harness
    h.fakes.cdp.add_profile("nia", {"first_name": "Nia", "birthday": "1991-12-10"})

    # 2026-11-23: Nia enrols; she subscribes to the newsletter: the programme has no
    # newsletter offer.
    nia = await enroll(h, "nia")
    assert await newsletter(h, "nia") == (
        200,
        {"status": "ignored", "reason": "no_newsletter_offer"},
    )
    assert await me(h, "nia") == looks(0, 0, 0, "green-1", "1000.00")

    # 800 GBP in the store: 800 x 1 = 800 points, pending 28 days. 1,000 - 800 = 200.00.
    assert await earns(h, nia, "hr-1", "800.00", "GBP") == 800
    assert await me(h, "nia") == looks(0, 800, 800, "green-1", "200.00")

    # 2026-11-26: 500 EUR online = 500 x 0.85 = 425 GBP, as a Green 1: 425 points. 2026 spend
    # 800 + 425 = 1,225: Green 2 through 2027; 10,000 - 1,225 = 8,775.00 to Gold.
    h.clock.now = utc(2026, 11, 26, 12)
    assert await earns(h, nia, "hr-2", "500.00", "EUR", channel="WEB") == 425
    assert await me(h, "nia") == looks(0, 1225, 1225, "green-2", "8775.00")

    # 2026-11-28: Olly enrols in the app, referred by Nia, and buys 100 GBP: 100 points and no
    # referral points for either (no [referral] section).
    h.clock.now = utc(2026, 11, 28, 12)
    olly = await enroll_self(h, "olly", referred_by=nia)
    assert await earns(h, olly, "hr-o1", "100.00", "GBP") == 100
    assert await me(h, "olly") == looks(0, 100, 100, "green-1", "900.00")
    assert await me(h, "nia") == looks(0, 1225, 1225, "green-2", "8775.00")

    # 2026-12-10: Nia's birthday: the programme has no birthday reward; the job does nothing.
    h.clock.now = utc(2026, 12, 10, 12)
    assert await job(h, settings, "birthdays") == (
        "0 birthday rewards granted (0 already granted, 0 members checked)"
    )
    assert await me(h, "nia") == looks(0, 1225, 1225, "green-2", "8775.00")

    # 2026-12-20: 9,000 GBP as a Green 2: x1.5 = 13,500 points. 2026 spend 1,225 + 9,000 =
    # 10,225: Gold through 2027; 25,000 - 10,225 = 14,775.00 to Black. hr-1's window ends
    # 2026-12-21, so everything is still pending: 800 + 425 + 13,500 = 14,725.
    h.clock.now = utc(2026, 12, 20, 12)
    assert await earns(h, nia, "hr-3", "9000.00", "GBP") == 13500
    assert await me(h, "nia") == looks(0, 14725, 14725, "gold", "14775.00")

    # 2027-01-05: a new year: the 2027 spend is 0, Gold is held, Black is 25,000.00 away.
    # hr-1 and hr-2 are available (800 + 425 = 1,225); hr-3 is pending to 2027-01-17.
    h.clock.now = utc(2027, 1, 5, 12)
    assert await me(h, "nia") == looks(1225, 13500, 14725, "gold", "25000.00")
    # Nia spends 500 points (5 GBP) in the app: 1,225 - 500 = 725.
    spent = await redeem(h, nia, "nia", 500, "nia-redeem-1")
    assert spent["member"]["points"] == {"available": 725, "pending": 13500}

    # 2027-03-01: 2,000 GBP as a Gold: x2 = 4,000 points. 725 + 13,500 = 14,225 available.
    # 25,000 - 2,000 = 23,000.00 to Black. Lifetime 14,725 + 4,000 = 18,725.
    h.clock.now = utc(2027, 3, 1, 12)
    assert await earns(h, nia, "hr-4", "2000.00", "GBP") == 4000
    assert await me(h, "nia") == looks(14225, 4000, 18725, "gold", "23000.00")

    # 2028-01-01 00:05: the year-end review. Nia's Gold (reached in 2026) is due: her 2027
    # spend, 2,000 GBP, earns Green 2, one below Gold: Green 2, held through 2028. Olly holds
    # nothing (Green 1 is everyone's).
    h.clock.now = utc(2028, 1, 1, 0, 5)
    assert await job(h, settings, "tiers") == (
        "1 member reviewed: 0 requalified, 1 moved down one tier"
    )
    assert await job(h, settings, "tiers") == (
        "0 members reviewed: 0 requalified, 0 moved down one tier"
    )
    # 14,225 + 4,000 = 18,225 available; 2028 spend 0: 10,000.00 to Gold.
    assert await me(h, "nia") == looks(18225, 0, 18725, "green-2", "10000.00")
    assert await me(h, "olly") == looks(100, 0, 100, "green-1", "1000.00")
    # She earns as a Green 2 now: 100 x 1.5 = 150.
    assert await earns(h, nia, "hr-5", "100.00", "GBP") == 150
    assert await me(h, "nia") == looks(18225, 150, 18875, "green-2", "9900.00")


# --- The Diamond Club ---------------------------------------------------------------------
# EUR, carats, rolling 12 months, Europe/Paris. Radiant 0 (x1), Marquise 5000 (x1.25, 5%),
# Emerald 15000 (x1.5, 10%), and the hidden Ambassador (x2, 15%) by invitation. USD at 0.92.
# Pending 30 days. Birthday: 250 carats and 10% off. No newsletter or referral sections.
# The tier's discount is listed among the offers as a standing TIER_DISCOUNT.
MARQUISE_5 = ("TIER_DISCOUNT", "5")
EMERALD_10 = ("TIER_DISCOUNT", "10")
AMBASSADOR_15 = ("TIER_DISCOUNT", "15")


@program("diamond-club")
async def test_a_year_of_the_diamond_club(harness: Harness, settings: Settings) -> None:
    h = harness
    h.fakes.cdp.add_profile("ines", {"first_name": "Ines", "birthday": "1985-12-24"})

    # 2026-11-23: Ines enrols at the boutique; a newsletter sign-up brings no offer here.
    ines = await enroll(h, "ines")
    assert await newsletter(h, "ines") == (
        200,
        {"status": "ignored", "reason": "no_newsletter_offer"},
    )
    # A bracelet, 3,000 EUR: 3,000 carats, pending 30 days. 5,000 - 3,000 = 2,000.00.
    assert await earns(h, ines, "dc-1", "3000.00", "EUR") == 3000
    assert await me(h, "ines") == looks(0, 3000, 3000, "radiant", "2000.00")

    # 2026-11-25: earrings in New York, 2,500 USD = 2,500 x 0.92 = 2,300 EUR, as a Radiant:
    # 2,300 carats. 12-month spend 5,300: Marquise; 15,000 - 5,300 = 9,700.00 to Emerald.
    h.clock.now = utc(2026, 11, 25, 12)
    assert await earns(h, ines, "dc-2", "2500.00", "USD") == 2300
    assert await me(h, "ines") == looks(0, 5300, 5300, "marquise", "9700.00", [MARQUISE_5])

    # 2026-11-28: Jo enrols in the app, referred by Ines; Jo's first purchase, 500 EUR, earns
    # 500 carats and no referral carats for either (no [referral] section).
    h.clock.now = utc(2026, 11, 28, 12)
    jo = await enroll_self(h, "jo", referred_by=ines)
    assert await earns(h, jo, "dc-j1", "500.00", "EUR") == 500
    assert await me(h, "jo") == looks(0, 500, 500, "radiant", "4500.00")
    assert await me(h, "ines") == looks(0, 5300, 5300, "marquise", "9700.00", [MARQUISE_5])

    # 2026-12-24, 13:00 in Paris: Ines's birthday: 250 carats, available at once, and a 10%
    # code. dc-1 is available since 2026-12-23, dc-2 pending to 2026-12-25:
    # 3,000 + 250 = 3,250 available, 2,300 pending.
    h.clock.now = utc(2026, 12, 24, 12)
    assert await job(h, settings, "birthdays") == (
        "1 birthday rewards granted (0 already granted, 2 members checked)"
    )
    assert await me(h, "ines") == looks(
        3250, 2300, 5550, "marquise", "9700.00", [MARQUISE_5, ("BIRTHDAY", "10")]
    )

    # 2027-01-15: a necklace, 10,000 EUR, as a Marquise: x1.25 = 12,500 carats. 12-month spend
    # 5,300 + 10,000 = 15,300: Emerald, the top public tier (nothing further to reach).
    # 3,250 + 2,300 = 5,550 available. The birthday code is valid to 2027-01-23.
    h.clock.now = utc(2027, 1, 15, 12)
    assert await earns(h, ines, "dc-3", "10000.00", "EUR") == 12500
    assert await me(h, "ines") == looks(
        5550, 12500, 18050, "emerald", None, [EMERALD_10, ("BIRTHDAY", "10")]
    )

    # 2027-02-01: the invitation: an associate puts Ines in the hidden Ambassador tier.
    h.clock.now = utc(2027, 2, 1, 12)
    invited = await assign_tier(h, ines, "ambassador", "Invited to the atelier")
    assert invited == {
        "current": {"key": "ambassador", "hidden": True},
        "spendToNextTier": None,
        "validUntil": None,
    }
    assert await me(h, "ines") == looks(5550, 12500, 18050, "ambassador", None, [AMBASSADOR_15])

    # 2027-02-10: a ring, 1,000 EUR, as an Ambassador: x2 = 2,000 carats. (Her 12-month spend,
    # 16,300, renews Emerald underneath to 2028-02-10.) dc-3 is pending to 2027-02-14.
    h.clock.now = utc(2027, 2, 10, 12)
    assert await earns(h, ines, "dc-4", "1000.00", "EUR") == 2000
    assert await me(h, "ines") == looks(5550, 14500, 20050, "ambassador", None, [AMBASSADOR_15])

    # 2028-02-10 13:00 UTC: the review of Ines's Emerald period (to 2028-02-10 12:00): its
    # spend, dc-4's 1,000 EUR, earns Radiant; one below Emerald: Marquise. Jo holds nothing.
    # The hidden tier is untouched: she is still an Ambassador.
    h.clock.now = utc(2028, 2, 10, 13)
    assert await job(h, settings, "tiers") == (
        "1 member reviewed: 0 requalified, 1 moved down one tier"
    )
    # 5,550 + 12,500 + 2,000 = 20,050 carats available.
    assert await me(h, "ines") == looks(20050, 0, 20050, "ambassador", None, [AMBASSADOR_15])
    assert await me(h, "jo") == looks(500, 0, 500, "radiant", "5000.00")

    # The invitation ends: staff assign Radiant; she is left with the reviewed Marquise.
    # No spend in the last 12 months: 15,000.00 to Emerald.
    ended = await assign_tier(h, ines, "radiant", "Left the atelier programme")
    assert ended == {
        "current": {"key": "marquise", "hidden": False},
        "spendToNextTier": {"amount": "15000.00"},
        "validUntil": "2029-02-10T13:00:00+01:00",
    }
    assert await me(h, "ines") == looks(20050, 0, 20050, "marquise", "15000.00", [MARQUISE_5])
    # And she earns as a Marquise: 1,000 x 1.25 = 1,250 carats.
    assert await earns(h, ines, "dc-5", "1000.00", "EUR") == 1250
    assert await me(h, "ines") == looks(20050, 1250, 21300, "marquise", "14000.00", [MARQUISE_5])
