"""Erasure (`forgetMember`) and export (`memberExport`) of a member's personal data.

Philippa Wexford (commerce id `ct-7f3a9c`, CDP user `seg-4d2e81`) buys, gifts points to Ben
with a message naming her, joins Ben's household, holds a staff tier assignment and a
personal promo code. The export shows all of it; after `forgetMember` no row of any table
holds her identifiers, email or names, the books balance, the CDP was asked once to delete
her, and she is gone from every read.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import JSON, String, Text, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.db import tables as t
from gateway.app import create_app
from gateway.demo import FAKE_PREFIXES, IN_PROCESS_BASE, Fakes
from gateway.jobs import JOBS, JobFailed
from gateway.settings import Settings
from resolvers.node import local_id, to_global_id
from tests.conftest import START, Clock, Harness, SqlCounter, assert_ledger_balances, token
from tests.graphql.conftest import enroll, purchase

COMMERCE_ID = "ct-7f3a9c"
CDP_ID = "seg-4d2e81"
EMAIL = "philippa.wq@example.com"
FIRST_NAME = "Philippa"
LAST_NAME = "Wexford"
PERSONAL = (COMMERCE_ID, CDP_ID, EMAIL, FIRST_NAME, LAST_NAME)
GIFT_MESSAGE = "Happy birthday Ben! Love, Philippa Wexford"
ASSIGNMENT_ID = "00000000-0000-4000-8000-0000000000a1"
OFFER_ID = "00000000-0000-4000-8000-0000000000b1"

FORGET = """
mutation($input: ForgetMemberInput!) {
  forgetMember(input: $input) { forgottenMemberId userErrors { code field message } }
}
"""
EXPORT = "query($id: ID!) { memberExport(id: $id) }"
ADMIN = token("admin-1", "admin")


class CdpSwitch(httpx.AsyncBaseTransport):
    """The fakes in process; while `down`, every CDP call is a 503."""

    def __init__(self, fakes: Fakes) -> None:
        self.inner = httpx.ASGITransport(app=fakes.app())
        self.down = False
        self.refused: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        cdp = (FAKE_PREFIXES["cdp_api"], FAKE_PREFIXES["cdp_profiles"])
        if self.down and request.url.path.startswith(cdp):
            self.refused.append(f"{request.method} {request.url.path}")
            return httpx.Response(503, json={"message": "Service Unavailable"}, request=request)
        return await self.inner.handle_async_request(request)


@dataclass
class PrivacyHarness(Harness):
    cdp: CdpSwitch


@pytest.fixture
async def h(settings: Settings, fakes: Fakes, clock: Clock) -> AsyncIterator[PrivacyHarness]:
    switch = CdpSwitch(fakes)
    http = httpx.AsyncClient(mounts={IN_PROCESS_BASE: switch})
    app = create_app(settings, http=http, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://patron.test") as client:
            yield PrivacyHarness(app, client, fakes, clock, SqlCounter(), switch)
        await assert_ledger_balances(app.state.gateway.engine)
    await http.aclose()


# --- the story ------------------------------------------------------------------------------
@dataclass
class Story:
    philippa: str  # global ids
    ben: str
    household: str
    card: str

    @property
    def philippa_uuid(self) -> str:
        found = local_id(self.philippa, "Member")
        assert found is not None
        return found

    @property
    def ben_uuid(self) -> str:
        found = local_id(self.ben, "Member")
        assert found is not None
        return found


async def story(h: Harness) -> Story:
    """Philippa buys for 250.00 CAD, 31 days later gifts Ben 100 points with a message and
    joins Ben's household; an associate assigned her the gold tier; she has a promo code."""
    philippa = await enroll(h, COMMERCE_ID, cdpUserId=CDP_ID, email=EMAIL)
    ben = await enroll(h, "ct-ben", cdpUserId="seg-ben")
    philippa_uuid = local_id(philippa, "Member")
    async with h.engine.begin() as conn:
        await conn.execute(
            update(t.members)
            .where(t.members.c.id == philippa_uuid)
            .values(first_name=FIRST_NAME, last_name=LAST_NAME)
        )
    h.fakes.cdp.add_profile(
        CDP_ID,
        {"first_name": FIRST_NAME, "email": EMAIL, "vip": True},
        external_ids=[("email", EMAIL)],
    )
    bought = await purchase(h, philippa, "ord-1", "250.00")
    assert bought["userErrors"] == [], bought
    async with h.engine.begin() as conn:
        await conn.execute(
            t.tier_assignments.insert().values(
                id=ASSIGNMENT_ID,
                member_id=philippa_uuid,
                tier_key="gold",
                reason=f"Invited by the CEO: {FIRST_NAME} {LAST_NAME} is his sister",
                assigned_by="assoc-1",
                assigned_at=START,
            )
        )
        await conn.execute(
            t.offers.insert().values(
                id=OFFER_ID,
                key="newsletter",
                kind="NEWSLETTER",
                title="10% off for subscribing",
                code="NEWS-PW-10",
                discount_percent="10",
                member_id=philippa_uuid,
                active=True,
                created_at=START,
            )
        )
    h.clock.advance(days=31)
    gift = await h.gql(
        """mutation($i: GiftPointsInput!) { giftPoints(input: $i) { userErrors { code } } }""",
        {
            "i": {
                "fromMemberId": philippa,
                "toMemberId": ben,
                "points": 100,
                "message": GIFT_MESSAGE,
                "idempotencyKey": "gift-1",
            }
        },
        token(COMMERCE_ID, "member"),
    )
    assert gift["data"]["giftPoints"] == {"userErrors": []}, gift
    created = await h.gql(
        "mutation($i: CreateHouseholdInput!) { createHousehold(input: $i) { household { id } userErrors { code } } }",
        {"i": {"ownerId": ben}},
        token("ct-ben", "member"),
    )
    household = created["data"]["createHousehold"]["household"]["id"]
    h.clock.advance(hours=1)
    for who in ("ct-ben", COMMERCE_ID):  # Ben invites Philippa; she accepts
        added = await h.gql(
            "mutation($i: AddHouseholdMemberInput!) { addHouseholdMember(input: $i) { userErrors { code } } }",
            {"i": {"householdId": household, "memberId": philippa}},
            token(who, "member"),
        )
        assert added["data"]["addHouseholdMember"] == {"userErrors": []}, added
    card = await h.gql(
        "query($id: ID!) { member(id: $id) { card { code } } }", {"id": philippa}, ADMIN
    )
    return Story(philippa, ben, household, card["data"]["member"]["card"]["code"])


async def forget(h: Harness, member_id: str, tok: str = ADMIN) -> dict[str, Any]:
    body = await h.gql(FORGET, {"input": {"memberId": member_id}}, tok)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["forgetMember"]
    return result


async def export(h: Harness, member_id: str, tok: str = ADMIN) -> dict[str, Any]:
    body: dict[str, Any] = await h.gql(EXPORT, {"id": member_id}, tok)
    return body


# --- database helpers ---------------------------------------------------------------------
async def snapshot(engine: AsyncEngine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a stable order."""
    tables: dict[str, list[tuple[Any, ...]]] = {}
    async with engine.connect() as conn:
        for table in t.metadata.sorted_tables:
            rows = (await conn.execute(select(table))).all()
            tables[table.name] = sorted((tuple(r) for r in rows), key=repr)
    return tables


async def occurrences(engine: AsyncEngine, needles: tuple[str, ...]) -> list[str]:
    """`table.column = value` for every text or JSON value of every table that contains one
    of `needles` (case-insensitive)."""
    found: list[str] = []
    async with engine.connect() as conn:
        for table in t.metadata.sorted_tables:
            columns = [c for c in table.c if isinstance(c.type, String | Text | JSON)]
            if not columns:
                continue
            for row in (await conn.execute(select(*columns))).all():
                for column, value in zip(columns, row, strict=True):
                    rendered = value if isinstance(value, str) else json.dumps(value)
                    if any(n.lower() in rendered.lower() for n in needles):
                        found.append(f"{table.name}.{column.name} = {value!r}")
    return found


async def rows(engine: AsyncEngine, statement: str, **params: Any) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        return [dict(r._mapping) for r in (await conn.execute(text(statement), params)).all()]


def iso(moment: Any) -> str:
    return str(moment.isoformat())


WALL_CLOCK = "<written at>"


def without_wall_clock(document: dict[str, Any]) -> dict[str, Any]:
    """The export with the `createdAt` stamps the store takes from the wall clock (accounts,
    transactions, outbox rows) replaced by a marker, after checking they are ISO 8601."""
    out = json.loads(json.dumps(document))
    for section in ("accounts", "transactions", "outboxEvents"):
        for row in out[section]:
            assert datetime.fromisoformat(row["createdAt"]).tzinfo is not None
            row["createdAt"] = WALL_CLOCK
    result: dict[str, Any] = out
    return result


def expected_export(s: Story) -> dict[str, Any]:
    p, b = s.philippa_uuid, s.ben_uuid
    household = local_id(s.household, "Household")
    gift_day = START + timedelta(days=31)
    joined = gift_day + timedelta(hours=1)
    return {
        "format": "patron-member-export/1",
        "exportedAt": iso(joined),
        "program": "club-harry",
        "member": {
            "id": p,
            "commerceCustomerId": COMMERCE_ID,
            "cdpUserId": CDP_ID,
            "email": EMAIL,
            "firstName": FIRST_NAME,
            "lastName": LAST_NAME,
            "enrolledAt": iso(START),
            "referredById": None,
            "forgottenAt": None,
        },
        "household": {
            "id": household,
            "ownerId": b,
            "createdAt": iso(gift_day),
            "joinedAt": iso(joined),
            "memberIds": [b, p],
        },
        "accounts": [
            {"code": f"member:{p}:available", "kind": "wallet_available", "householdId": None, "balance": 0, "createdAt": WALL_CLOCK},
            {"code": f"member:{p}:pending", "kind": "wallet_pending", "householdId": None, "balance": 0, "createdAt": WALL_CLOCK},
        ],
        "tierAssignments": [
            {
                "id": ASSIGNMENT_ID,
                "tierKey": "gold",
                "reason": "Invited by the CEO: Philippa Wexford is his sister",
                "assignedBy": "assoc-1",
                "assignedAt": iso(START),
                "revokedAt": None,
            }
        ],
        "heldTier": None,
        "insights": None,
        "purchases": [
            {
                "orderId": "ord-1",
                "currency": "CAD",
                "amount": {"amount": "250.00", "currencyCode": "CAD"},
                "programAmount": {"amount": "250.00", "currencyCode": "CAD"},
                "returnedAmount": {"amount": "0.00", "currencyCode": "CAD"},
                "returnedProgramAmount": {"amount": "0.00", "currencyCode": "CAD"},
                "occurredAt": iso(START),
                "channel": "POS",
                "storeId": None,
                "transactionId": 1,
                "source": "api",
            }
        ],
        "transactions": [
            {
                "id": 1, "kind": "EARN", "points": 250, "status": "POSTED",
                "occurredAt": iso(START), "availableAt": iso(START + timedelta(days=30)),
                "description": "Purchase ord-1", "orderId": "ord-1", "channel": "POS",
                "storeId": None, "actor": None, "reversesId": None,
                "extra": {"total": "250.00", "currency": "CAD", "tier": "member"},
                "createdAt": WALL_CLOCK,
                "postings": [{"source": "program:issuance", "destination": f"member:{p}:pending", "amount": 250}],
            },
            {
                # The return window passed (a system transaction in her own accounts).
                "id": 2, "kind": "ADJUSTMENT", "points": 0, "status": "POSTED",
                "occurredAt": iso(START + timedelta(days=30)), "availableAt": None,
                "description": "Return window passed", "orderId": None, "channel": "SYSTEM",
                "storeId": None, "actor": None, "reversesId": None, "extra": {"matures": 1},
                "createdAt": WALL_CLOCK,
                "postings": [{"source": f"member:{p}:pending", "destination": f"member:{p}:available", "amount": 250}],
            },
            {
                "id": 3, "kind": "GIFT_SENT", "points": -100, "status": "POSTED",
                "occurredAt": iso(gift_day), "availableAt": None,
                "description": GIFT_MESSAGE, "orderId": None, "channel": None,
                "storeId": None, "actor": COMMERCE_ID, "reversesId": None,
                "extra": {"to_member_id": b},
                "createdAt": WALL_CLOCK,
                "postings": [{"source": f"member:{p}:available", "destination": "program:gifts", "amount": 100}],
            },
            # (4 is Ben's side of the gift: his, not hers.)
            {
                "id": 5, "kind": "ADJUSTMENT", "points": -150, "status": "POSTED",
                "occurredAt": iso(joined), "availableAt": None,
                "description": "Points moved to the household wallet", "orderId": None,
                "channel": "SYSTEM", "storeId": None, "actor": None, "reversesId": None,
                "extra": {},
                "createdAt": WALL_CLOCK,
                "postings": [{"source": f"member:{p}:available", "destination": f"member:{b}:available", "amount": 150}],
            },
        ],
        "offers": [
            {
                "id": OFFER_ID,
                "key": "newsletter",
                "kind": "NEWSLETTER",
                "title": "10% off for subscribing",
                "code": "NEWS-PW-10",
                "discountPercent": "10",
                "bonusPoints": None,
                "bonusMultiplier": None,
                "tierKey": None,
                "validFrom": None,
                "validUntil": None,
                "redeemedAt": None,
                "active": True,
                "createdAt": iso(START),
            }
        ],
        "outboxEvents": [
            {
                "id": 1, "messageId": "patron-club-harry-txn-1", "event": "Loyalty Points Earned",
                "properties": {"points": 250, "kind": "EARN", "status": "PENDING", "transaction_id": 1, "order_id": "ord-1", "program": "club-harry"},
                "occurredAt": iso(START), "createdAt": WALL_CLOCK, "sentAt": None, "attempts": 0, "lastError": None,
            },
            {
                "id": 2, "messageId": "patron-club-harry-txn-3", "event": "Loyalty Points Gifted",
                "properties": {"points": -100, "kind": "GIFT_SENT", "status": "POSTED", "transaction_id": 3, "order_id": None, "program": "club-harry"},
                "occurredAt": iso(gift_day), "createdAt": WALL_CLOCK, "sentAt": None, "attempts": 0, "lastError": None,
            },
            {
                "id": 4, "messageId": "patron-club-harry-txn-5", "event": "Loyalty Points Adjusted",
                "properties": {"points": -150, "kind": "ADJUSTMENT", "status": "POSTED", "transaction_id": 5, "order_id": None, "program": "club-harry"},
                "occurredAt": iso(joined), "createdAt": WALL_CLOCK, "sentAt": None, "attempts": 0, "lastError": None,
            },
        ],
        "householdInvitations": [],  # Ben's invitation was used up when she accepted it
        "cdp": {
            "userId": CDP_ID,
            "profile": {
                "traits": {"first_name": FIRST_NAME, "email": EMAIL, "vip": True},
                "audiences": ["vip"],
            },
            "externalIds": [{"type": "user_id", "id": CDP_ID}, {"type": "email", "id": EMAIL}],
        },
    }  # fmt: skip


# --- export -------------------------------------------------------------------------------
async def test_export_holds_everything_about_a_member(h: PrivacyHarness) -> None:
    s = await story(h)
    body = await export(h, s.philippa)
    assert "errors" not in body, body
    assert without_wall_clock(body["data"]["memberExport"]) == expected_export(s)


async def test_export_with_the_cdp_down_has_an_error_entry(h: PrivacyHarness) -> None:
    s = await story(h)
    h.cdp.down = True
    body = await export(h, s.philippa)
    assert "errors" not in body, body
    document = without_wall_clock(body["data"]["memberExport"])
    assert document["cdp"] == {
        "userId": CDP_ID,
        "error": {
            "code": "UPSTREAM_UNAVAILABLE",
            "upstream": "cdp",
            "message": document["cdp"]["error"]["message"],
        },
    }
    assert "503" in document["cdp"]["error"]["message"]
    assert {k: v for k, v in document.items() if k != "cdp"} == {
        k: v for k, v in expected_export(s).items() if k != "cdp"
    }


async def test_export_is_for_admins_only(h: PrivacyHarness) -> None:
    s = await story(h)
    for tok in (
        token(COMMERCE_ID, "member"),  # even her own: the export is an admin's answer to a request
        token("assoc-1", "associate", store="TOR-1"),
        token("mkt-1", "marketer"),
        token("pos-1", "service"),
    ):
        body = await export(h, s.philippa, tok)
        assert body["data"] == {"memberExport": None}
        assert [e["extensions"] for e in body["errors"]] == [{"code": "NOT_ALLOWED"}]
    anonymous = await export(h, s.philippa, "")
    assert [e["extensions"] for e in anonymous["errors"]] == [{"code": "UNAUTHENTICATED"}]
    for unknown in (to_global_id("Member", "no-such-member"), "not-an-id", s.household):
        body = await export(h, unknown)
        assert body["data"] == {"memberExport": None}
        assert [e["extensions"] for e in body["errors"]] == [{"code": "NOT_FOUND"}]


# --- erasure ------------------------------------------------------------------------------
async def test_an_admin_forgets_a_member(h: PrivacyHarness) -> None:
    s = await story(h)
    p, b = s.philippa_uuid, s.ben_uuid
    assert await occurrences(h.engine, PERSONAL)  # she is all over the database before
    ledger_before = await rows(
        h.engine,
        "SELECT id, kind, points, occurred_at, order_id, channel, store_id, member_id"
        " FROM ledger_transactions ORDER BY id",
    )
    postings_before = await rows(h.engine, "SELECT * FROM ledger_postings ORDER BY id")

    assert await forget(h, s.philippa) == {"forgottenMemberId": s.philippa, "userErrors": []}

    # Nothing of her identifiers, email or names is left in any text or JSON column.
    assert await occurrences(h.engine, PERSONAL) == []
    member = await rows(h.engine, "SELECT * FROM members WHERE id = :id", id=p)
    assert member == [
        {
            "id": p,
            "commerce_customer_id": None,
            "cdp_user_id": None,
            "email": None,
            "first_name": None,
            "last_name": None,
            "enrolled_at": member[0]["enrolled_at"],
            "referred_by_id": None,
            "forgotten_at": member[0]["forgotten_at"],
        }
    ]
    assert member[0]["forgotten_at"] is not None
    # Every posting stays; the transactions keep kind, points, dates, order, channel, store.
    assert await rows(h.engine, "SELECT * FROM ledger_postings ORDER BY id") == postings_before
    assert (
        await rows(
            h.engine,
            "SELECT id, kind, points, occurred_at, order_id, channel, store_id, member_id"
            " FROM ledger_transactions ORDER BY id",
        )
        == ledger_before
    )
    # Free text is gone from her transactions and from Ben's side of her gift.
    scrubbed = await rows(
        h.engine, "SELECT id, description, actor FROM ledger_transactions ORDER BY id"
    )
    assert scrubbed == [
        {"id": 1, "description": None, "actor": None},
        {"id": 2, "description": "Return window passed", "actor": None},  # a system move
        {"id": 3, "description": None, "actor": None},
        {"id": 4, "description": None, "actor": None},  # Ben's GIFT_RECEIVED
        {"id": 5, "description": None, "actor": None},
    ]
    # Her own wallet was empty (its points went to the household): nothing to forfeit.
    assert (
        await rows(h.engine, "SELECT code FROM ledger_accounts WHERE code = 'program:forfeited'")
        == []
    )
    # Her offers, outbox rows, stored results are gone; the assignment's audit stays.
    assert await rows(h.engine, "SELECT id FROM offers") == []
    assert await rows(h.engine, "SELECT user_id, message_id FROM outbox ORDER BY id") == [
        {"user_id": "seg-ben", "message_id": "patron-club-harry-txn-4"}
    ]
    assert await rows(h.engine, "SELECT key FROM idempotency_keys") == []
    assert await rows(
        h.engine, "SELECT member_id, tier_key, reason, assigned_by FROM tier_assignments"
    ) == [{"member_id": p, "tier_key": "gold", "reason": "[erased]", "assigned_by": "assoc-1"}]
    # She left Ben's household; Ben keeps it and its wallet.
    assert await rows(h.engine, "SELECT member_id FROM household_members") == [{"member_id": b}]
    # The CDP was asked once to delete and suppress her; nothing is left queued.
    assert h.fakes.cdp.deletion_requests == [
        {"regulationType": "SUPPRESS_WITH_DELETE", "subject": {"type": "USER_ID", "ids": [CDP_ID]}}
    ]
    assert await rows(h.engine, "SELECT name FROM job_state WHERE name LIKE 'cdp-deletion:%'") == []
    await assert_ledger_balances(h.engine)

    # Gone from every read.
    by_id = await h.gql("query($id: ID!) { member(id: $id) { id } }", {"id": s.philippa}, ADMIN)
    assert by_id["data"] == {"member": None}
    assert [e["extensions"]["code"] for e in by_id["errors"]] == ["NOT_FOUND"]
    by_card = await h.gql(
        "query($c: String!) { memberByCard(code: $c) { id } }",
        {"c": s.card},
        token("pos-1", "service"),
    )
    assert by_card["data"] == {"memberByCard": None}
    assert [e["extensions"]["code"] for e in by_card["errors"]] == ["NOT_FOUND"]
    me = await h.gql("{ me { id } }", token=token(COMMERCE_ID, "member"))
    assert me == {"data": {"me": None}}
    top = await h.gql(
        '{ topCustomers(month: "2026-11") { member { id } orders } }',
        token=token("mkt-1", "marketer"),
    )
    assert top == {"data": {"topCustomers": []}}
    household = await h.gql(
        "query($id: ID!) { node(id: $id) { ... on Household { members { id } pooledPoints } } }",
        {"id": s.household},
        ADMIN,
    )
    assert household == {"data": {"node": {"members": [{"id": s.ben}], "pooledPoints": 250}}}
    gone = await export(h, s.philippa)
    assert [e["extensions"]["code"] for e in gone["errors"]] == ["NOT_FOUND"]

    # Forgetting her again: she is not found.
    assert await forget(h, s.philippa) == {
        "forgottenMemberId": None,
        "userErrors": [{"code": "NOT_FOUND", "field": ["memberId"], "message": "no such member"}],
    }
    assert len(h.fakes.cdp.deletion_requests) == 1

    # Her commerce customer id may enrol again, as a new member with nothing of the old.
    again = await enroll(h, COMMERCE_ID, cdpUserId=CDP_ID, email=EMAIL)
    assert again != s.philippa
    view = await h.gql(
        "{ me { points { available pending lifetimeEarned } household { id } transactions { edges { node { id } } } } }",
        token=token(COMMERCE_ID, "member"),
    )
    assert view == {
        "data": {
            "me": {
                "points": {"available": 0, "pending": 0, "lifetimeEarned": 0},
                "household": None,
                "transactions": {"edges": []},
            }
        }
    }


async def test_a_member_forgets_itself_and_its_points_are_forfeited(h: PrivacyHarness) -> None:
    """A member alone: its available and still-pending points are forfeited in the erasure,
    and the jobs never touch its anonymous wallet afterwards."""
    member = await enroll(h, COMMERCE_ID, cdpUserId=CDP_ID, email=EMAIL)
    uuid = local_id(member, "Member")
    await purchase(h, member, "ord-1", "300.00")
    h.clock.advance(days=31)
    assert await h.gateway.services.ledger.mature_pending() == 1  # ord-1's 300 available
    await purchase(h, member, "ord-2", "120.00")  # 120 still pending

    assert await forget(h, member, token(COMMERCE_ID, "member")) == {
        "forgottenMemberId": member,
        "userErrors": [],
    }

    balances = await rows(
        h.engine,
        "SELECT code, balance FROM ledger_accounts WHERE code LIKE 'member:%' ORDER BY code",
    )
    assert balances == [
        {"code": f"member:{uuid}:available", "balance": 0},
        {"code": f"member:{uuid}:pending", "balance": 0},
    ]
    forfeiture = await rows(
        h.engine,
        "SELECT t.kind, t.points, t.status, t.description, t.member_id, s.code AS source,"
        " d.code AS destination, p.amount FROM ledger_transactions t"
        " JOIN ledger_postings p ON p.transaction_id = t.id"
        " JOIN ledger_accounts s ON s.id = p.source_id"
        " JOIN ledger_accounts d ON d.id = p.destination_id"
        " WHERE d.code = 'program:forfeited' ORDER BY p.id",
    )
    common = {
        "kind": "ADJUSTMENT",
        "points": -420,
        "status": "POSTED",
        "description": "Points forfeited on erasure",
        "member_id": uuid,
        "destination": "program:forfeited",
    }
    assert forfeiture == [
        {**common, "source": f"member:{uuid}:pending", "amount": 120},
        {**common, "source": f"member:{uuid}:available", "amount": 300},
    ]
    # No earn is left pending, so the jobs find nothing to move in the anonymous wallet.
    assert await rows(h.engine, "SELECT id FROM ledger_transactions WHERE status = 'PENDING'") == []
    h.clock.advance(days=3650)
    assert await h.gateway.services.ledger.mature_pending() == 0
    assert await h.gateway.services.ledger.expire() == 0
    assert await occurrences(h.engine, PERSONAL) == []
    assert [r["subject"]["ids"] for r in h.fakes.cdp.deletion_requests] == [[CDP_ID]]


async def test_a_service_forgets_an_owner_alone_in_its_household(h: PrivacyHarness) -> None:
    member = await enroll(h, COMMERCE_ID, cdpUserId=CDP_ID, email=EMAIL)
    created = await h.gql(
        "mutation($i: CreateHouseholdInput!) { createHousehold(input: $i) { userErrors { code } } }",
        {"i": {"ownerId": member}},
        token(COMMERCE_ID, "member"),
    )
    assert created["data"]["createHousehold"] == {"userErrors": []}
    assert await forget(h, member, token("crm-1", "service")) == {
        "forgottenMemberId": member,
        "userErrors": [],
    }
    assert await rows(h.engine, "SELECT id FROM households") == []
    assert await rows(h.engine, "SELECT member_id FROM household_members") == []
    assert await occurrences(h.engine, PERSONAL) == []


async def test_cdp_down_at_erasure_the_deletion_is_queued_and_sent_later(
    h: PrivacyHarness,
) -> None:
    s = await story(h)
    h.cdp.down = True
    assert await forget(h, s.philippa) == {"forgottenMemberId": s.philippa, "userErrors": []}
    assert h.cdp.refused == ["POST /cdp-api/regulations"]
    assert h.fakes.cdp.deletion_requests == []
    # The local erasure stands; only the CDP user id is kept, until the CDP has it.
    assert await occurrences(h.engine, (COMMERCE_ID, EMAIL, FIRST_NAME, LAST_NAME)) == []
    queued = await rows(
        h.engine, "SELECT name, value FROM job_state WHERE name LIKE 'cdp-deletion:%'"
    )
    assert [q["name"] for q in queued] == [f"cdp-deletion:{s.philippa_uuid}"]
    value = queued[0]["value"]
    value = json.loads(value) if isinstance(value, str) else value
    assert value["cdp_user_id"] == CDP_ID
    assert value["queued_at"] == iso(START + timedelta(days=31, hours=1))
    assert value["attempts"] == 1
    assert "503" in value["last_error"]

    # The job while the CDP is still down: it fails, the request stays queued.
    with pytest.raises(JobFailed, match="0 CDP deletion requests sent, 1 still queued"):
        await JOBS["cdp-deletions"](h.gateway)
    assert h.fakes.cdp.deletion_requests == []
    queued = await rows(h.engine, "SELECT value FROM job_state WHERE name LIKE 'cdp-deletion:%'")
    value = queued[0]["value"]
    value = json.loads(value) if isinstance(value, str) else value
    assert value["attempts"] == 2

    # The CDP is back: the next run delivers it, once.
    h.cdp.down = False
    assert await JOBS["cdp-deletions"](h.gateway) == "1 CDP deletion requests sent, 0 still queued"
    assert h.fakes.cdp.deletion_requests == [
        {"regulationType": "SUPPRESS_WITH_DELETE", "subject": {"type": "USER_ID", "ids": [CDP_ID]}}
    ]
    assert await rows(h.engine, "SELECT name FROM job_state WHERE name LIKE 'cdp-deletion:%'") == []
    assert await occurrences(h.engine, PERSONAL) == []
    assert await JOBS["cdp-deletions"](h.gateway) == "0 CDP deletion requests sent, 0 still queued"
    assert len(h.fakes.cdp.deletion_requests) == 1


async def test_refusals_change_nothing(h: PrivacyHarness) -> None:
    s = await story(h)
    before = await snapshot(h.engine)
    not_allowed = {
        "forgottenMemberId": None,
        "userErrors": [
            {
                "code": "NOT_ALLOWED",
                "field": ["memberId"],
                "message": "only the member itself, an admin or a back-office service may forget a member",
            }
        ],
    }
    # Ben (a member) may not forget Philippa, though she is in his household.
    assert await forget(h, s.philippa, token("ct-ben", "member")) == not_allowed
    assert await forget(h, s.philippa, token("assoc-1", "associate", store="TOR-1")) == not_allowed
    assert await forget(h, s.philippa, token("mkt-1", "marketer")) == not_allowed
    # A member token for an id that does not exist says no rather than "not found".
    assert (
        await forget(h, to_global_id("Member", "no-such-member"), token("ct-ben", "member"))
        == not_allowed
    )
    assert await forget(h, s.philippa, "") == {
        "forgottenMemberId": None,
        "userErrors": [
            {"code": "NOT_ALLOWED", "field": None, "message": "a bearer token is required"}
        ],
    }
    not_found = {
        "forgottenMemberId": None,
        "userErrors": [{"code": "NOT_FOUND", "field": ["memberId"], "message": "no such member"}],
    }
    assert await forget(h, to_global_id("Member", "no-such-member")) == not_found
    assert await forget(h, s.household) == not_found  # not a member's id
    # Ben owns a household with Philippa in it.
    assert await forget(h, s.ben) == {
        "forgottenMemberId": None,
        "userErrors": [
            {
                "code": "NOT_ALLOWED",
                "field": ["memberId"],
                "message": "this member owns a household with other members: remove them from the household first",
            }
        ],
    }
    assert await snapshot(h.engine) == before
    assert h.fakes.cdp.deletion_requests == []


async def test_a_gift_received_loses_its_message_on_both_sides(h: PrivacyHarness) -> None:
    """Ben gifted Philippa with a message naming her: forgetting her scrubs his side too,
    and he keeps his points history (kind, points, date) and his link to her uuid."""
    philippa = await enroll(h, COMMERCE_ID, cdpUserId=CDP_ID, email=EMAIL)
    ben = await enroll(h, "ct-ben", cdpUserId="seg-ben")
    await purchase(h, ben, "ord-b", "500.00")
    h.clock.advance(days=31)
    gift = await h.gql(
        "mutation($i: GiftPointsInput!) { giftPoints(input: $i) { userErrors { code } } }",
        {
            "i": {
                "fromMemberId": ben,
                "toMemberId": philippa,
                "points": 200,
                "message": "For Philippa Wexford, with love",
                "idempotencyKey": "g",
            }
        },
        token("pos-1", "service"),
    )
    assert gift["data"]["giftPoints"] == {"userErrors": []}
    assert await forget(h, philippa) == {"forgottenMemberId": philippa, "userErrors": []}
    uuid = local_id(philippa, "Member")
    assert await rows(
        h.engine,
        "SELECT kind, points, description, actor, member_id FROM ledger_transactions"
        " WHERE kind LIKE 'GIFT%' ORDER BY id",
    ) == [
        {
            "kind": "GIFT_SENT",
            "points": -200,
            "description": None,
            "actor": "pos-1",
            "member_id": local_id(ben, "Member"),
        },
        {
            "kind": "GIFT_RECEIVED",
            "points": 200,
            "description": None,
            "actor": "pos-1",
            "member_id": uuid,
        },
    ]
    assert await occurrences(h.engine, PERSONAL) == []
    ben_view = await h.gql(
        "{ me { points { available } transactions(first: 1) { edges { node { kind points description } } } } }",
        token=token("ct-ben", "member"),
    )
    assert ben_view == {
        "data": {
            "me": {
                "points": {"available": 300},
                "transactions": {
                    "edges": [{"node": {"kind": "GIFT_SENT", "points": -200, "description": None}}]
                },
            }
        }
    }


async def test_a_cdp_delete_event_can_forget_the_member(h: PrivacyHarness) -> None:
    """`PrivacyService.forget_cdp_user`: what the CDP webhook calls for a Segment `delete`."""
    member = await enroll(h, COMMERCE_ID, cdpUserId=CDP_ID, email=EMAIL)
    privacy = h.gateway.services.privacy
    erasure = await privacy.forget_cdp_user(CDP_ID)
    assert erasure is not None
    assert (erasure.member_id, erasure.cdp_user_id, erasure.forfeited_points) == (
        local_id(member, "Member"),
        CDP_ID,
        0,
    )
    assert erasure.deletion_sent is True
    assert await privacy.forget_cdp_user(CDP_ID) is None  # no member has this CDP id now
    assert await occurrences(h.engine, PERSONAL) == []
