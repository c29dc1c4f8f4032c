"""Tiers end to end (issue 4): staff assignments (`assignTier`, audited), hidden tiers seen
only by staff and their holders, promotion on purchase, and the end-of-period review
(`patron jobs run tiers`) with at most one step down. Exact values throughout.

The programs: The Diamond Club (EUR, rolling 12 months, hidden Ambassador x2 and 15% off),
Harrods Rewards (GBP, calendar year, Europe/London: Green 1 0, Green 2 1000 x1.5, Gold 10000
x2, Black 25000 x3) and Club Harry (CAD, rolling 12 months). The clock starts on
2026-11-23 12:00 UTC.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from adapters.commerce.fake import FakeLine
from adapters.db import tables as t
from gateway.demo import fake_upstream_env
from gateway.jobs import run_job
from gateway.settings import PROGRAMS_DIR, Settings
from tests.conftest import START, Harness, token
from tests.graphql.conftest import enroll, purchase

ROOT = Path(__file__).resolve().parents[2]


def program(name: str) -> pytest.MarkDecorator:
    """Run the test on another program file (the `program_file` fixture)."""
    return pytest.mark.parametrize("program_file", [PROGRAMS_DIR / f"{name}.toml"], ids=[name])


@pytest.fixture
def program_file() -> Path:
    return PROGRAMS_DIR / "club-harry.toml"


@pytest.fixture
def settings(settings: Settings, program_file: Path) -> Settings:
    """The harness's settings, with the program this test runs on."""
    return settings.model_copy(update={"program": program_file})


ASSIGN = """
mutation($input: AssignTierInput!) {
  assignTier(input: $input) {
    member { id tier { current { key hidden } validUntil } }
    userErrors { code field message }
  }
}
"""

TIER_VIEW = """
query($id: ID!) {
  member(id: $id) {
    tier {
      current { key name hidden earnMultiplier discountPercent }
      qualifyingSpend { amount currencyCode }
      nextTier { key }
      spendToNextTier { amount currencyCode }
      validUntil
    }
  }
}
"""

PROGRAM_TIERS = "{ program { tiers { key hidden } } }"

ME = """
{
  me {
    tier { current { key hidden } nextTier { key } spendToNextTier { amount } validUntil }
    cart { total { amount currencyCode } pointsPreview tierDiscount { amount currencyCode } }
  }
}
"""

ASSOCIATE = token("assoc-7", "associate", store="PAR-1")
ADMIN = token("admin-1", "admin")


async def assign(
    h: Harness, member_id: str, tier_key: str, reason: str, tok: str | None = ASSOCIATE
) -> dict[str, Any]:
    body = await h.gql(
        ASSIGN, {"input": {"memberId": member_id, "tierKey": tier_key, "reason": reason}}, tok
    )
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["assignTier"]
    return result


async def tier_of(h: Harness, member_id: str) -> dict[str, Any]:
    body = await h.gql(TIER_VIEW, {"id": member_id}, ADMIN)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["member"]["tier"]
    return result


async def audit(h: Harness) -> list[tuple[str, str, str, datetime, datetime | None]]:
    ta = t.tier_assignments
    async with h.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(
                    ta.c.tier_key, ta.c.reason, ta.c.assigned_by, ta.c.assigned_at, ta.c.revoked_at
                ).order_by(ta.c.assigned_at)
            )
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


async def held_rows(h: Harness) -> dict[str, tuple[str, datetime, datetime]]:
    """member_tiers by the member's commerce id: (tier key, period start, valid until)."""
    mt, m = t.member_tiers, t.members
    async with h.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(
                    m.c.commerce_customer_id, mt.c.tier_key, mt.c.period_start, mt.c.valid_until
                ).join(m, m.c.id == mt.c.member_id)
            )
        ).all()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# --- assignTier ---------------------------------------------------------------------------------
@program("diamond-club")
async def test_assign_tier_refusals_write_nothing(harness: Harness) -> None:
    h = harness
    ines = await enroll(h, "ines")
    member_token = token("ines", "member")
    unknown = base64.b64encode(f"Member:{uuid.uuid4()}".encode()).decode()
    cases = [
        (ines, "ambassador", "Invited", member_token,
         {"code": "NOT_ALLOWED", "field": None, "message": "this needs one of the roles: associate"}),
        (ines, "ambassador", "Invited", token("mkt-1", "marketer"),
         {"code": "NOT_ALLOWED", "field": None, "message": "this needs one of the roles: associate"}),
        (ines, "ambassador", "Invited", token("pos-1", "service"),
         {"code": "NOT_ALLOWED", "field": None, "message": "this needs one of the roles: associate"}),
        (ines, "ambassador", "Invited", None,
         {"code": "NOT_ALLOWED", "field": None, "message": "a bearer token is required"}),
        (ines, "ambassador", "   ", ASSOCIATE,
         {"code": "INVALID_INPUT", "field": ["reason"], "message": "a reason is required"}),
        (ines, "sapphire", "Invited", ASSOCIATE,
         {"code": "NOT_FOUND", "field": ["tierKey"], "message": "no such tier"}),
        (unknown, "ambassador", "Invited", ASSOCIATE,
         {"code": "NOT_FOUND", "field": ["memberId"], "message": "no such member"}),
        ("not-an-id", "ambassador", "Invited", ASSOCIATE,
         {"code": "NOT_FOUND", "field": ["memberId"], "message": "no such member"}),
    ]  # fmt: skip
    for member_id, tier_key, reason, tok, error in cases:
        result = await assign(h, member_id, tier_key, reason, tok)
        assert result == {"member": None, "userErrors": [error]}, (tier_key, reason)
    assert await audit(h) == []
    assert await held_rows(h) == {}
    assert (await tier_of(h, ines))["current"]["key"] == "radiant"


@program("diamond-club")
async def test_a_hidden_tier_outranks_spend_and_gives_its_multiplier_and_discount(
    harness: Harness,
) -> None:
    h = harness
    ines = await enroll(h, "ines")
    h.fakes.commerce.add_cart("ines", [FakeLine("RING-1", "Solitaire ring", 1, "2000.00")], "EUR")
    # 15,000 EUR in the last 12 months: Emerald by spend (x1.5, 10% off), held to 2027-11-23.
    assert (await purchase(h, ines, "d-1", "15000.00", "EUR"))["transaction"]["points"] == 15000
    emerald_until = "2027-11-23T13:00:00+01:00"  # 12 months on, in Paris
    assert await tier_of(h, ines) == {
        "current": {"key": "emerald", "name": "Emerald", "hidden": False,
                    "earnMultiplier": "1.5", "discountPercent": "10"},
        "qualifyingSpend": {"amount": "15000.00", "currencyCode": "EUR"},
        "nextTier": None,
        "spendToNextTier": None,
        "validUntil": emerald_until,
    }  # fmt: skip

    # A public tier below the held one changes nothing (a floor), but is audited.
    h.clock.advance(hours=1)
    floor = await assign(h, ines, "marquise", "Goodwill after a late delivery")
    assert floor == {
        "member": {"id": ines, "tier": {"current": {"key": "emerald", "hidden": False},
                                        "validUntil": emerald_until}},
        "userErrors": [],
    }  # fmt: skip

    # The invitation: an admin puts Ines in the hidden Ambassador tier.
    h.clock.advance(days=1)
    invited = await assign(h, ines, "ambassador", "  Invited to the atelier  ", ADMIN)
    assert invited == {
        "member": {"id": ines, "tier": {"current": {"key": "ambassador", "hidden": True},
                                        "validUntil": None}},
        "userErrors": [],
    }  # fmt: skip
    assert await tier_of(h, ines) == {
        "current": {"key": "ambassador", "name": "Ambassador", "hidden": True,
                    "earnMultiplier": "2", "discountPercent": "15"},
        "qualifyingSpend": {"amount": "15000.00", "currencyCode": "EUR"},
        "nextTier": None,
        "spendToNextTier": None,
        "validUntil": None,
    }  # fmt: skip

    # The audit trail: who, why, when; each assignment revoked by the next.
    assigned_1 = START + timedelta(hours=1)
    assigned_2 = assigned_1 + timedelta(days=1)
    assert await audit(h) == [
        ("marquise", "Goodwill after a late delivery", "assoc-7", assigned_1, assigned_2),
        ("ambassador", "Invited to the atelier", "admin-1", assigned_2, None),
    ]
    # The held tier is still Emerald (what spend earned), under the hidden tier.
    assert await held_rows(h) == {
        "ines": ("emerald", utc(2025, 11, 23, 12), utc(2027, 11, 23, 12)),
    }

    # Her cart: 2,000 EUR earns x2 and gets 15% off.
    view = (await h.gql(ME, token=token("ines", "member")))["data"]["me"]
    assert view == {
        "tier": {"current": {"key": "ambassador", "hidden": True}, "nextTier": None,
                 "spendToNextTier": None, "validUntil": None},
        "cart": {"total": {"amount": "2000.00", "currencyCode": "EUR"}, "pointsPreview": 4000,
                 "tierDiscount": {"amount": "300.00", "currencyCode": "EUR"}},
    }  # fmt: skip
    # And her next purchase earns x2.
    bought = await purchase(h, ines, "d-2", "1000.00", "EUR")
    assert bought["transaction"]["points"] == 2000
    # The review does not touch a hidden tier; assigning a public tier ends it (audited).
    h.clock.advance(days=1)
    back = await assign(h, ines, "radiant", "Left the atelier programme", ADMIN)
    assert back["member"]["tier"] == {
        "current": {"key": "emerald", "hidden": False},
        "validUntil": "2027-11-24T14:00:00+01:00",  # renewed by d-2 (16,000 EUR)
    }
    assert [(r[0], r[4]) for r in await audit(h)] == [
        ("marquise", assigned_2),
        ("ambassador", assigned_2 + timedelta(days=1)),
        ("radiant", None),
    ]


@program("harrods-rewards")
async def test_a_public_assignment_is_a_floor_until_the_next_review(harness: Harness) -> None:
    h = harness
    nia = await enroll(h, "nia")
    result = await assign(h, nia, "gold", "Personal Shopping client")
    # Held like Gold reached by spend this year: through 2027.
    assert result["member"]["tier"] == {
        "current": {"key": "gold", "hidden": False},
        "validUntil": "2028-01-01T00:00:00+00:00",
    }
    assert await held_rows(h) == {"nia": ("gold", utc(2026, 1, 1), utc(2028, 1, 1))}
    assert (await purchase(h, nia, "h-1", "100.00", "GBP"))["transaction"]["points"] == 200  # x2

    # 2028: no 2027 spend: the review takes her one tier down and ends the assignment.
    h.clock.now = utc(2028, 1, 2, 6)
    review = await h.gateway.services.tiers.review()
    assert review.describe() == "1 member reviewed: 0 requalified, 1 moved down one tier"
    assert await held_rows(h) == {"nia": ("green-2", utc(2027, 1, 1), utc(2029, 1, 1))}
    assert await audit(h) == [
        ("gold", "Personal Shopping client", "assoc-7", START, utc(2028, 1, 2, 6)),
    ]
    tier = await tier_of(h, nia)
    assert (tier["current"]["key"], tier["validUntil"]) == ("green-2", "2029-01-01T00:00:00+00:00")


# --- visibility of hidden tiers ---------------------------------------------------------------
@program("diamond-club")
async def test_hidden_tiers_are_listed_for_staff_and_their_holders_only(harness: Harness) -> None:
    h = harness
    await enroll(h, "olga")
    ines = await enroll(h, "ines")
    await assign(h, ines, "ambassador", "Invited to the atelier")
    public = [
        {"key": "radiant", "hidden": False},
        {"key": "marquise", "hidden": False},
        {"key": "emerald", "hidden": False},
    ]
    everything = [*public, {"key": "ambassador", "hidden": True}]
    for tok, tiers in [
        (None, public),
        (token("olga", "member"), public),  # a member who does not hold it
        (token("nobody", "member"), public),  # a token of no enrolled member
        (token("pos-1", "service"), public),
        (token("ines", "member"), everything),  # its holder
        (ASSOCIATE, everything),
        (token("mkt-1", "marketer"), everything),
        (ADMIN, everything),
    ]:
        body = await h.gql(PROGRAM_TIERS, token=tok)
        assert body == {"data": {"program": {"tiers": tiers}}}, tok
    me = (await h.gql(ME, token=token("ines", "member")))["data"]["me"]
    assert me["tier"]["current"] == {"key": "ambassador", "hidden": True}


# --- promotion on purchase --------------------------------------------------------------------
@program("harrods-rewards")
async def test_a_purchase_that_crosses_a_threshold_promotes_at_once(harness: Harness) -> None:
    h = harness
    pia = await enroll(h, "pia")
    assert (await purchase(h, pia, "p-1", "999.00", "GBP"))["transaction"]["points"] == 999
    assert await held_rows(h) == {}  # Green 1 is everyone's: nothing held
    tier = await tier_of(h, pia)
    assert (tier["current"]["key"], tier["validUntil"]) == ("green-1", None)

    h.clock.advance(hours=1)
    assert (await purchase(h, pia, "p-2", "1.00", "GBP"))["transaction"]["points"] == 1
    # 1,000 GBP this year: Green 2 now, held through next year.
    assert await held_rows(h) == {"pia": ("green-2", utc(2026, 1, 1), utc(2028, 1, 1))}
    assert await tier_of(h, pia) == {
        "current": {"key": "green-2", "name": "Green 2", "hidden": False,
                    "earnMultiplier": "1.5", "discountPercent": "0"},
        "qualifyingSpend": {"amount": "1000.00", "currencyCode": "GBP"},
        "nextTier": {"key": "gold"},
        "spendToNextTier": {"amount": "9000.00", "currencyCode": "GBP"},
        "validUntil": "2028-01-01T00:00:00+00:00",
    }  # fmt: skip
    assert (await purchase(h, pia, "p-3", "9000.00", "GBP"))["transaction"]["points"] == 13500
    assert (await purchase(h, pia, "p-4", "100.00", "GBP"))["transaction"]["points"] == 200  # x2
    assert await held_rows(h) == {"pia": ("gold", utc(2026, 1, 1), utc(2028, 1, 1))}


# --- the review at the end of the period -------------------------------------------------------
@program("harrods-rewards")
async def test_the_year_end_review_drops_one_tier_at_most_and_keeps_requalifiers(
    harness: Harness, settings: Settings
) -> None:
    h = harness
    gus = await enroll(h, "gus")  # Gold in 2026, nothing in 2027
    kit = await enroll(h, "kit")  # Gold in 2026 and again in 2027
    bea = await enroll(h, "bea")  # Black in 2026, 1,500 GBP in 2027
    await purchase(h, gus, "g-1", "10000.00", "GBP")
    await purchase(h, kit, "k-1", "10000.00", "GBP")
    await purchase(h, bea, "b-1", "25000.00", "GBP")

    h.clock.now = utc(2027, 6, 1, 12)  # British Summer Time
    await purchase(h, kit, "k-2", "10000.00", "GBP")  # requalified: Gold renewed through 2028
    await purchase(h, bea, "b-2", "1500.00", "GBP")
    assert await held_rows(h) == {
        "gus": ("gold", utc(2026, 1, 1), utc(2028, 1, 1)),
        "kit": ("gold", utc(2027, 1, 1), utc(2029, 1, 1)),
        "bea": ("black", utc(2026, 1, 1), utc(2028, 1, 1)),
    }
    h.clock.now = utc(2027, 12, 31, 23, 59)
    assert [(await tier_of(h, m))["current"]["key"] for m in (gus, kit, bea)] == [
        "gold", "gold", "black",
    ]  # fmt: skip

    # 2028: the job at five past midnight.
    h.clock.now = utc(2028, 1, 1, 0, 5)
    http = h.fakes.http_client()
    assert await run_job(settings, "tiers", http=http, clock=h.clock) == (
        "2 members reviewed: 0 requalified, 2 moved down one tier"
    )
    after = {
        "gus": ("green-2", utc(2027, 1, 1), utc(2029, 1, 1)),  # zero spend: one tier, not two
        "kit": ("gold", utc(2027, 1, 1), utc(2029, 1, 1)),  # not due: requalified in 2027
        "bea": ("gold", utc(2027, 1, 1), utc(2029, 1, 1)),  # 1,500 GBP earns Green 2: one down
    }
    assert await held_rows(h) == after
    gus_tier = await tier_of(h, gus)
    assert gus_tier == {
        "current": {"key": "green-2", "name": "Green 2", "hidden": False,
                    "earnMultiplier": "1.5", "discountPercent": "0"},
        "qualifyingSpend": {"amount": "0.00", "currencyCode": "GBP"},
        "nextTier": {"key": "gold"},
        "spendToNextTier": {"amount": "10000.00", "currencyCode": "GBP"},
        "validUntil": "2029-01-01T00:00:00+00:00",
    }  # fmt: skip
    kit_tier = await tier_of(h, kit)
    assert (kit_tier["current"]["key"], kit_tier["validUntil"]) == (
        "gold",
        "2029-01-01T00:00:00+00:00",
    )
    assert (await purchase(h, gus, "g-2", "100.00", "GBP"))["transaction"]["points"] == 150

    # Idempotent: a second run (another replica, a retried cron) changes nothing.
    assert await run_job(settings, "tiers", http=http, clock=h.clock) == (
        "0 members reviewed: 0 requalified, 0 moved down one tier"
    )
    await http.aclose()
    assert await held_rows(h) == after

    # A year later, with no spend: each goes one more step down; Green 1 is held by no one.
    h.clock.now = utc(2029, 1, 1, 0, 5)
    review = await h.gateway.services.tiers.review()
    assert review.describe() == "3 members reviewed: 0 requalified, 3 moved down one tier"
    assert await held_rows(h) == {
        "kit": ("green-2", utc(2028, 1, 1), utc(2030, 1, 1)),
        "bea": ("green-2", utc(2028, 1, 1), utc(2030, 1, 1)),
    }
    assert (await tier_of(h, gus))["current"]["key"] == "green-1"


@program("harrods-rewards")
async def test_reads_and_earning_apply_a_due_review_before_the_job_runs(harness: Harness) -> None:
    h = harness
    gus = await enroll(h, "gus")
    await purchase(h, gus, "g-1", "30000.00", "GBP")  # Black
    # Two years without the job and without spend: one step down per period ended.
    h.clock.now = utc(2029, 3, 1, 12)
    tier = await tier_of(h, gus)
    assert (tier["current"]["key"], tier["validUntil"]) == ("green-2", "2030-01-01T00:00:00+00:00")
    assert (await purchase(h, gus, "g-2", "100.00", "GBP"))["transaction"]["points"] == 150
    review = await h.gateway.services.tiers.review()
    assert review.describe() == "1 member reviewed: 0 requalified, 1 moved down one tier"
    assert await held_rows(h) == {"gus": ("green-2", utc(2028, 1, 1), utc(2030, 1, 1))}


async def test_rolling_12_months_holds_a_tier_to_the_anniversary_of_qualifying(
    harness: Harness,
) -> None:
    h = harness  # Club Harry: Silver 2500 x1.25, Gold 7500 x1.5, Black 20000 x2
    ava = await enroll(h, "ava")
    await purchase(h, ava, "o-1", "7500.00")  # Gold on 2026-11-23
    gold_until = utc(2027, 11, 23, 12)
    assert await held_rows(h) == {"ava": ("gold", utc(2025, 11, 23, 12), gold_until)}
    h.clock.now = utc(2027, 11, 23, 11)  # an hour before the anniversary
    assert (await purchase(h, ava, "o-2", "100.00"))["transaction"]["points"] == 150
    # o-2 did not bring the 12-month spend (7,600) back under Gold: renewed for 12 months.
    assert await held_rows(h) == {
        "ava": ("gold", utc(2026, 11, 23, 11), utc(2028, 11, 23, 11)),
    }
    # The anniversary: the 12 months up to it hold o-2 only (100 CAD): one tier down.
    h.clock.now = utc(2028, 11, 23, 12)
    review = await h.gateway.services.tiers.review()
    assert review.describe() == "1 member reviewed: 0 requalified, 1 moved down one tier"
    assert await held_rows(h) == {
        "ava": ("silver", utc(2027, 11, 23, 11), utc(2029, 11, 23, 11)),
    }
    assert (await purchase(h, ava, "o-3", "100.00"))["transaction"]["points"] == 125


def test_the_cli_runs_the_tiers_job(tmp_path: Path, sqlite_template: Path) -> None:
    db = tmp_path / "jobs.db"
    db.write_bytes(sqlite_template.read_bytes())
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATRON_")}
    env |= {
        "PYTHONPATH": str(ROOT),
        "PATRON_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "PATRON_DEMO": "true",
        "PATRON_JWT_SECRET": "x",
        **fake_upstream_env(),
    }
    for _ in range(2):  # idempotent
        done = subprocess.run(
            [sys.executable, "-m", "gateway", "jobs", "run", "tiers"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == (
            "patron: tiers: 0 members reviewed: 0 requalified, 0 moved down one tier"
        )
