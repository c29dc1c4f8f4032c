"""The storefront's, the mobile app's and the associate app's operations (`examples/`), as
those apps send them: by `documentId`, with PATRON_TRUSTED_DOCUMENTS_ONLY on and the
default operation and rate limits; each answers without an error, and the subscription
over WebSocket."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.demo import Fakes
from gateway.settings import Settings
from gateway.trusted_documents.manifest import EXAMPLES_DIR, document_hash, example_documents
from tests.conftest import Clock, Harness, running, token
from tests.graphql.conftest import enroll
from tests.graphql.test_member_view import seed_upstreams
from tests.graphql.ws import serving, ws_client

DOCUMENTS = example_documents(EXAMPLES_DIR)
HASHES = {name.removesuffix(".graphql"): document_hash(d) for name, d in DOCUMENTS.items()}


async def run(
    h: Harness, name: str, tok: str | None, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The example `name` (`app/Operation`) by documentId; its data, having checked that it
    answered without an error."""
    headers = {"Authorization": f"Bearer {tok}"} if tok else {}
    payload = {"documentId": f"sha256:{HASHES[name]}", "variables": variables or {}}
    response = await h.client.post("/graphql", json=payload, headers=headers)
    body = response.json()
    assert (response.status_code, body.get("errors")) == (200, None), (name, body)
    data: dict[str, Any] = body["data"]
    return data


@pytest.fixture
async def trusted(settings: Settings, fakes: Fakes, clock: Clock) -> AsyncIterator[Harness]:
    async with running(
        settings.model_copy(update={"trusted_documents_only": True}), fakes, clock
    ) as h:
        yield h


async def test_every_example_runs_under_the_default_limits(trusted: Harness) -> None:
    h = trusted
    ava_id = await enroll(h, "cust-1")  # a service may send any document
    ben_id = await enroll(h, "cust-2")
    seed_upstreams(h)
    ava, associate = token("cust-1", "member"), token("assoc-1", "associate", store="TOR-1")
    ran = set()

    async def step(
        name: str, tok: str | None, variables: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        ran.add(name)
        return await run(h, name, tok, variables)

    program = await step("storefront/Program", None)
    assert program["program"]["key"] == "club-harry"
    joined = await step(
        "storefront/EnrollMember",
        token("cust-9", "member"),
        {
            "input": {
                "commerceCustomerId": "cust-9",
                "referredBy": ava_id,
                "idempotencyKey": "join-9",
            }
        },
    )
    assert joined["enrollMember"]["userErrors"] == []

    found = await step("associate/MemberSearch", associate, {"search": "cust-1"})
    assert found["members"]["totalCount"] == 1
    card = (await step("mobile/MemberCard", ava))["me"]["card"]
    scanned = await step("associate/MemberByCard", associate, {"code": card["code"]})
    assert scanned["memberByCard"]["id"] == ava_id
    sale = {
        "cardCode": card["code"],
        "orderId": "TOR-1-0001",
        "total": {"amount": "450.00", "currencyCode": "CAD"},
        "channel": "POS",
        "idempotencyKey": "sale-1",
    }
    recorded = await step("associate/RecordPurchase", associate, {"input": sale})
    assert recorded["recordPurchase"]["userErrors"] == []
    award = {
        "memberId": ava_id,
        "points": 400,
        "reason": "alterations delay",
        "idempotencyKey": "award-1",
    }
    awarded = await step("associate/AwardPoints", associate, {"input": award})
    assert awarded["awardPoints"]["userErrors"] == []

    redeem = {"memberId": ava_id, "points": 100, "idempotencyKey": "redeem-1"}
    assert (await step("storefront/RedeemPoints", ava, {"input": redeem}))["redeemPoints"][
        "userErrors"
    ] == []
    gift = {"fromMemberId": ava_id, "toMemberId": ben_id, "points": 100, "idempotencyKey": "gift-1"}
    assert (await step("mobile/GiftPoints", ava, {"input": gift}))["giftPoints"]["userErrors"] == []
    donation = {
        "memberId": ava_id,
        "charityKey": "sickkids",
        "points": 100,
        "idempotencyKey": "give-1",
    }
    assert (await step("mobile/DonatePoints", ava, {"input": donation}))["donatePoints"][
        "userErrors"
    ] == []

    view = (await step("storefront/MemberView", ava))["me"]
    assert view["points"] == {
        "available": 100,
        "pending": 450,
        "lifetimeEarned": 850,
        "expiringNext": {"points": 100, "expiresAt": "2028-11-23T12:00:00+00:00"},
    }
    assert view["profile"]["firstName"] == "Ava" and view["cart"]["pointsPreview"] > 0
    assert (await step("storefront/CheckoutPoints", ava))["me"]["points"] == {"available": 100}
    history = (await step("mobile/PointsHistory", ava, {"first": 3}))["me"]["transactions"]
    assert [e["node"]["kind"] for e in history["edges"]] == ["DONATION", "GIFT_SENT", "REDEEM"]
    assert (await step("mobile/Household", ava))["me"]["household"] is None

    async with serving(h.app) as url, ws_client(url, ava) as client:
        assert await client.init() == {"type": "connection_ack"}
        ran.add("mobile/PointsChanged")
        await client.subscribe("1", DOCUMENTS["mobile/PointsChanged.graphql"], {"memberId": ava_id})
        message = await client.receive()
    assert message == {
        "id": "1",
        "type": "next",
        "payload": {
            "data": {"pointsChanged": {"available": 100, "pending": 450, "lifetimeEarned": 850}}
        },
    }

    # Ava invites Ben to her household; his app shows the invitation and he accepts.
    created = await h.gql(
        "mutation($o: ID!) { createHousehold(input: {ownerId: $o}) { household { id } } }",
        {"o": ava_id},
        token("pos-1", "service"),  # services send any document
    )
    household = created["data"]["createHousehold"]["household"]["id"]
    joining = {"input": {"householdId": household, "memberId": ben_id}}
    invited = (await step("mobile/AddHouseholdMember", ava, joining))["addHouseholdMember"]
    assert (invited["userErrors"], invited["invitation"]["memberId"]) == ([], ben_id)
    ben = token("cust-2", "member")
    shown = (await step("mobile/HouseholdInvitations", ben))["me"]["householdInvitations"]
    assert [i["householdId"] for i in shown] == [household]
    accepted = (await step("mobile/AddHouseholdMember", ben, joining))["addHouseholdMember"]
    assert (accepted["userErrors"], accepted["household"]["pooledPoints"]) == ([], 200)
    assert ran == set(HASHES)
