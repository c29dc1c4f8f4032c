"""Club Harry's households: one shared wallet owned by the owner, the best tier of its
members for all of them, limits from the program. Members join by accepting the owner's
invitation (the consent rules themselves: test_household_invitations.py)."""

from __future__ import annotations

from typing import Any

from tests.conftest import Harness, token
from tests.graphql.conftest import enroll, purchase

HOUSEHOLD = "household { id owner { externalIds { commerceCustomerId } } members { externalIds { commerceCustomerId } } pooledPoints } invitation { householdId memberId expiresAt }"


async def household_op(h: Harness, name: str, input: dict[str, Any], tok: str) -> dict[str, Any]:
    kind = f"{name[0].upper()}{name[1:]}Input"
    body = await h.gql(
        f"mutation($i: {kind}!) {{ {name}(input: $i) {{ {HOUSEHOLD} userErrors {{ code field }} }} }}",
        {"i": input},
        tok,
    )
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"][name]
    return result


async def me(h: Harness, who: str) -> dict[str, Any]:
    body = await h.gql(
        "{ me { points { available pending } tier { current { key } } household { pooledPoints members { externalIds { commerceCustomerId } } } } }",
        token=token(who, "member"),
    )
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["me"]
    return result


def ids(household: dict[str, Any]) -> list[str]:
    return [m["externalIds"]["commerceCustomerId"] for m in household["members"]]


async def invite_and_accept(
    h: Harness, household_id: str, member_id: str, owner: str, member: str
) -> dict[str, Any]:
    """The owner (its commerce id) invites the member, which accepts: the accepting
    payload."""
    input = {"householdId": household_id, "memberId": member_id}
    invited = await household_op(h, "addHouseholdMember", input, token(owner, "member"))
    assert invited["userErrors"] == [], invited
    assert invited["invitation"]["memberId"] == member_id
    accepted = await household_op(h, "addHouseholdMember", input, token(member, "member"))
    assert accepted["userErrors"] == [], accepted
    return accepted


async def test_a_household_shares_one_wallet_and_its_best_tier(harness: Harness) -> None:
    h = harness
    ava = await enroll(h, "ava")
    ben = await enroll(h, "ben")
    await purchase(h, ava, "a-1", "8000.00")  # gold
    await purchase(h, ben, "b-1", "300.00")
    h.clock.advance(days=31)

    created = await household_op(h, "createHousehold", {"ownerId": ava}, token("ava", "member"))
    assert created["userErrors"] == []
    household_id = created["household"]["id"]
    # Ava invites Ben: nothing moves until he accepts.
    invited = await household_op(
        h,
        "addHouseholdMember",
        {"householdId": household_id, "memberId": ben},
        token("ava", "member"),
    )
    assert invited["userErrors"] == []
    assert ids(invited["household"]) == ["ava"]
    assert invited["household"]["pooledPoints"] == 8000
    assert invited["invitation"] == {
        "householdId": household_id,
        "memberId": ben,
        "expiresAt": "2026-12-31T12:00:00+00:00",  # START + 31 days + 7 days
    }
    added = await household_op(
        h,
        "addHouseholdMember",
        {"householdId": household_id, "memberId": ben},
        token("ben", "member"),
    )
    assert added["userErrors"] == []
    assert added["invitation"] is None
    assert ids(added["household"]) == ["ava", "ben"]
    assert added["household"]["owner"] == {"externalIds": {"commerceCustomerId": "ava"}}
    # Ben's 300 available points joined the shared wallet.
    assert added["household"]["pooledPoints"] == 8300

    # Ben holds Ava's gold tier, so his purchase earns x1.5, into the shared wallet.
    ben_view = await me(h, "ben")
    assert ben_view["tier"] == {"current": {"key": "gold"}}
    earned = await purchase(h, ben, "b-2", "100.00")
    assert earned["transaction"]["points"] == 150
    assert (await me(h, "ava"))["points"] == {"available": 8300, "pending": 150}

    # Ben spends from the shared wallet.
    spent = await h.gql(
        "mutation($i: RedeemPointsInput!) { redeemPoints(input: $i) { member { points { available } } userErrors { code } } }",
        {"i": {"memberId": ben, "points": 1000, "idempotencyKey": "r1"}},
        token("ben", "member"),
    )
    assert spent["data"]["redeemPoints"] == {
        "member": {"points": {"available": 7300}},
        "userErrors": [],
    }

    # Ben leaves: he takes nothing, and earns into his own wallet again, at his own tier.
    left = await household_op(
        h,
        "removeHouseholdMember",
        {"householdId": household_id, "memberId": ben},
        token("ben", "member"),
    )
    assert left["userErrors"] == []
    # He no longer reads the household he left (her wallet, her members): null, no error.
    assert left["household"] is None
    ava_view = await me(h, "ava")
    assert ava_view["household"]["members"] == [{"externalIds": {"commerceCustomerId": "ava"}}]
    ben_view = await me(h, "ben")
    assert ben_view == {
        "points": {"available": 0, "pending": 0},
        "tier": {"current": {"key": "member"}},
        "household": None,
    }
    assert (await me(h, "ava"))["points"] == {"available": 7300, "pending": 150}
    again = await purchase(h, ben, "b-3", "100.00")
    assert again["transaction"]["points"] == 100
    assert (await me(h, "ben"))["points"] == {"available": 0, "pending": 100}


async def test_household_rules_refuse_with_codes(harness: Harness) -> None:
    h = harness
    members = [await enroll(h, f"m{i}") for i in range(6)]
    owner = token("m0", "member")
    household_id = (await household_op(h, "createHousehold", {"ownerId": members[0]}, owner))[
        "household"
    ]["id"]
    for i, m in enumerate(members[1:4], start=1):
        await invite_and_accept(h, household_id, m, "m0", f"m{i}")
    full = await household_op(
        h, "addHouseholdMember", {"householdId": household_id, "memberId": members[4]}, owner
    )
    assert full == {
        "household": None,
        "invitation": None,
        "userErrors": [{"code": "LIMIT_EXCEEDED", "field": ["memberId"]}],
    }
    twice = await household_op(h, "createHousehold", {"ownerId": members[1]}, token("m1", "member"))
    assert twice["userErrors"] == [{"code": "ALREADY_IN_HOUSEHOLD", "field": ["ownerId"]}]
    not_owner = await household_op(
        h,
        "addHouseholdMember",
        {"householdId": household_id, "memberId": members[5]},
        token("m1", "member"),
    )
    assert not_owner["userErrors"] == [{"code": "NOT_ALLOWED", "field": None}]
    owner_leaves = await household_op(
        h, "removeHouseholdMember", {"householdId": household_id, "memberId": members[0]}, owner
    )
    assert owner_leaves["userErrors"] == [{"code": "NOT_ALLOWED", "field": ["memberId"]}]
    someone_else = await household_op(h, "createHousehold", {"ownerId": members[5]}, owner)
    assert someone_else["userErrors"] == [{"code": "NOT_ALLOWED", "field": None}]
    unknown = await household_op(
        h,
        "addHouseholdMember",
        {"householdId": "SG91c2Vob2xkOm5v", "memberId": members[5]},
        token("svc", "service"),
    )
    assert unknown["userErrors"] == [{"code": "NOT_FOUND", "field": ["householdId"]}]


async def test_a_member_reads_its_household_and_not_others(harness: Harness) -> None:
    h = harness
    ava, ben, cy = (await enroll(h, "ava"), await enroll(h, "ben"), await enroll(h, "cy"))
    household_id = (
        await household_op(h, "createHousehold", {"ownerId": ava}, token("ava", "member"))
    )["household"]["id"]
    await invite_and_accept(h, household_id, ben, "ava", "ben")
    q = "query($id: ID!) { member(id: $id) { externalIds { commerceCustomerId } } }"
    assert (await h.gql(q, {"id": ava}, token("ben", "member")))["data"] == {
        "member": {"externalIds": {"commerceCustomerId": "ava"}}
    }
    refused = await h.gql(q, {"id": ava}, token("cy", "member"))
    assert refused["data"] == {"member": None}
    assert refused["errors"][0]["extensions"] == {"code": "NOT_ALLOWED"}
    via_node = await h.gql(
        "query($id: ID!) { node(id: $id) { id } }", {"id": household_id}, token("cy", "member")
    )
    assert via_node["data"] == {"node": None}
    assert cy
