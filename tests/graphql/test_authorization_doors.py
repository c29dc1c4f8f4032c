"""No leaks through other doors (README, Security: authorization): every way to reach a
member (`node`, `member`, `memberByCard`, `members`, a household, the subscription, the
mutations that name a member) refuses alike, and to anyone who may not read any member a
refusal never says whether the member, household, transaction or card exists: the answer
for "it exists and is not yours" is the same, byte for byte, as for "it does not exist"."""

from __future__ import annotations

import base64
from typing import Any

from resolvers.node import to_global_id
from tests.conftest import Harness, token
from tests.graphql.conftest import enroll, purchase
from tests.graphql.test_authorization import make_household, ok
from tests.graphql.ws import serving, ws_client

AVA = token("ava-secret-1", "member")  # owns a household with Ben
BEN = token("ben-secret-2", "member")
CY = token("cy-secret-3", "member")  # alone: "another member"
ASSOCIATE = token("assoc-1", "associate", store="TOR-1")
SERVICE = token("pos-1", "service")
UNKNOWN_MEMBER = to_global_id("Member", "00000000-0000-4000-8000-00000000dead")
UNKNOWN_HOUSEHOLD = to_global_id("Household", "00000000-0000-4000-8000-00000000beef")
NOT_YOURS = {
    "message": "a member may read only itself and its household",
    "extensions": {"code": "NOT_ALLOWED"},
}


def refusal_at(path: str, column: int) -> dict[str, Any]:
    return {**NOT_YOURS, "path": [path], "locations": [{"line": 1, "column": column}]}


async def people(h: Harness) -> dict[str, Any]:
    """Ava owns a household with Ben; Cy is alone. Each has a transaction."""
    ids = {
        "ava": await enroll(h, "ava-secret-1", email="ava@secret.example"),
        "ben": await enroll(h, "ben-secret-2"),
        "cy": await enroll(h, "cy-secret-3", email="cy@secret.example"),
    }
    for who in ("ava", "ben", "cy"):
        await purchase(h, ids[who], f"order-{who}", "100.00")
    ids["household"] = await make_household(h, ids["ava"], ids["ben"])
    ids["cy-household"] = await make_household(h, ids["cy"], await enroll(h, "dee-secret-4"))
    ids["txns"] = {}
    for who, tok in (("ava", AVA), ("cy", CY)):
        me = await ok(h, "{ me { transactions { edges { node { id } } } } }", {}, tok)
        ids["txns"][who] = me["transactions"]["edges"][0]["node"]["id"]
    return ids


def leaks_nothing(body: dict[str, Any]) -> None:
    text = str(body)
    for secret in ("secret", "00000000-"):
        assert secret not in text, body


async def answers(h: Harness, query: str, ids: list[str], tok: str | None) -> list[Any]:
    return [await h.gql(query, {"id": i}, tok) for i in ids]


async def test_member_by_id_exists_or_not_is_the_same_refusal(harness: Harness) -> None:
    h = harness
    p = await people(h)
    query = "query($id: ID!) { member(id: $id) { id } }"
    doors = [p["cy"], UNKNOWN_MEMBER, "garbage", p["household"], p["txns"]["cy"]]
    for body in await answers(h, query, doors, AVA):
        assert body == {"data": {"member": None}, "errors": [refusal_at("member", 19)]}
        leaks_nothing(body)
    for body in await answers(h, query, doors, None):
        assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]
    # Her own household's members she reads; a role that reads any member is told NOT_FOUND.
    assert (await h.gql(query, {"id": p["ben"]}, AVA))["data"] == {"member": {"id": p["ben"]}}
    missing = await h.gql(query, {"id": UNKNOWN_MEMBER}, ASSOCIATE)
    assert [e["extensions"]["code"] for e in missing["errors"]] == ["NOT_FOUND"]


async def test_node_exists_or_not_is_the_same_refusal(harness: Harness) -> None:
    h = harness
    p = await people(h)
    query = "query($id: ID!) { node(id: $id) { id } }"
    # Transactions have small sequential ids: the next one does not exist yet.
    cy_txn = base64.urlsafe_b64decode(p["txns"]["cy"]).decode()
    future_txn = to_global_id("PointsTransaction", int(cy_txn.split(":")[1]) + 1000)
    offer = to_global_id("Offer", "00000000-0000-4000-8000-000000000001")
    doors = [
        p["cy"], UNKNOWN_MEMBER,  # a member
        p["cy-household"], UNKNOWN_HOUSEHOLD,  # a household
        p["txns"]["cy"], future_txn,  # a transaction
        offer, "garbage",  # not resolvable at all
    ]  # fmt: skip
    for body in await answers(h, query, doors, AVA):
        assert body == {"data": {"node": None}, "errors": [refusal_at("node", 19)]}
        leaks_nothing(body)
    for body in await answers(h, query, doors, None):
        assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]
    # Ava reads her own, her household and its members' transactions (Ben's included).
    ben_view = await ok(h, "{ me { transactions { edges { node { id } } } } }", {}, BEN)
    ben_txn = ben_view["transactions"]["edges"][0]["node"]["id"]
    for own in (p["ava"], p["ben"], p["household"], p["txns"]["ava"], ben_txn):
        assert await h.gql(query, {"id": own}, AVA) == {"data": {"node": {"id": own}}}
    # Staff are told what does not exist.
    for unknown in (UNKNOWN_MEMBER, UNKNOWN_HOUSEHOLD, future_txn, offer, "garbage"):
        body = await h.gql(query, {"id": unknown}, ASSOCIATE)
        assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_FOUND"]


async def test_member_by_card_valid_forged_or_unknown_is_the_same_refusal(
    harness: Harness,
) -> None:
    h = harness
    p = await people(h)
    query = "query($id: String!) { memberByCard(code: $id) { id } }"
    card = "{ me { card { code } } }"
    cy_card = (await ok(h, card, {}, CY))["card"]["code"]
    ben_card = (await ok(h, card, {}, BEN))["card"]["code"]
    forged = cy_card[:-2] + ("AA" if not cy_card.endswith("AA") else "BB")
    doors = [cy_card, forged, "not-a-card", f"PTN1.{UNKNOWN_MEMBER}.x"]
    for body in await answers(h, query, doors, AVA):
        assert body == {"data": {"memberByCard": None}, "errors": [refusal_at("memberByCard", 23)]}
        leaks_nothing(body)
    assert (await h.gql(query, {"id": ben_card}, AVA))["data"] == {"memberByCard": {"id": p["ben"]}}
    for bad in (forged, "not-a-card"):
        body = await h.gql(query, {"id": bad}, SERVICE)
        assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_FOUND"]


async def test_member_search_refuses_members_and_services_whatever_it_would_find(
    harness: Harness,
) -> None:
    h = harness
    await people(h)
    for tok, code, message in (
        (AVA, "NOT_ALLOWED", "member search is for staff"),
        (SERVICE, "NOT_ALLOWED", "member search is for staff"),
        (None, "UNAUTHENTICATED", "a bearer token is required"),
    ):
        found = await h.gql('{ members(search: "cy-secret-3") { totalCount } }', token=tok)
        nothing = await h.gql('{ members(search: "nobody-at-all") { totalCount } }', token=tok)
        assert found == nothing
        assert found["data"] is None  # `members` is non-null: the refusal nulls the answer
        assert [(e["message"], e["extensions"]) for e in found["errors"]] == [
            (message, {"code": code})
        ]
    staff = await h.gql('{ members(search: "cy-secret-3") { totalCount } }', token=ASSOCIATE)
    assert staff == {"data": {"members": {"totalCount": 1}}}


async def test_a_household_is_read_by_its_members_only_and_lost_on_leaving(
    harness: Harness,
) -> None:
    h = harness
    p = await people(h)
    view = "{ me { household { id members { externalIds { commerceCustomerId } } pooledPoints } } }"
    # Each sees exactly its own household's members.
    assert (await ok(h, view, {}, BEN))["household"]["members"] == [
        {"externalIds": {"commerceCustomerId": "ava-secret-1"}},
        {"externalIds": {"commerceCustomerId": "ben-secret-2"}},
    ]
    node = "query($id: ID!) { node(id: $id) { id } }"
    assert await h.gql(node, {"id": p["household"]}, BEN) == {
        "data": {"node": {"id": p["household"]}}
    }
    # Ben leaves: the payload has no household for him, nor does node(id) or member(id).
    left = await h.gql(
        "mutation($i: RemoveHouseholdMemberInput!) { removeHouseholdMember(input: $i) "
        "{ household { id pooledPoints } userErrors { code } } }",
        {"i": {"householdId": p["household"], "memberId": p["ben"]}},
        BEN,
    )
    assert left == {"data": {"removeHouseholdMember": {"household": None, "userErrors": []}}}
    after = await h.gql(node, {"id": p["household"]}, BEN)
    assert after == await h.gql(node, {"id": UNKNOWN_HOUSEHOLD}, BEN)
    assert after["errors"][0]["extensions"] == {"code": "NOT_ALLOWED"}
    ava = await h.gql("query($id: ID!) { member(id: $id) { id } }", {"id": p["ava"]}, BEN)
    assert ava["errors"][0]["extensions"] == {"code": "NOT_ALLOWED"}
    assert (await ok(h, view, {}, BEN))["household"] is None
    # The owner, removing someone, still sees her household.
    assert (await ok(h, view, {}, AVA))["household"]["members"] == [
        {"externalIds": {"commerceCustomerId": "ava-secret-1"}}
    ]


async def test_a_refusal_costs_only_its_own_field(harness: Harness) -> None:
    h = harness
    p = await people(h)
    body = await h.gql(
        "query($id: ID!) { program { key } me { id points { available } insights { segment } } "
        "member(id: $id) { id } }",
        {"id": p["cy"]},
        AVA,
    )
    assert body["data"] == {
        "program": {"key": "club-harry"},
        "me": {"id": p["ava"], "points": {"available": 0}, "insights": None},
        "member": None,
    }
    assert [(e["path"], e["extensions"]["code"]) for e in body["errors"]] == [
        (["me", "insights"], "NOT_ALLOWED"),
        (["member"], "NOT_ALLOWED"),
    ]


async def test_following_points_exists_or_not_is_the_same_refusal(harness: Harness) -> None:
    h = harness
    p = await people(h)
    subscription = "subscription($id: ID!) { pointsChanged(memberId: $id) { available } }"
    received = []
    async with serving(h.app) as url:
        for target in (p["cy"], UNKNOWN_MEMBER, "garbage"):
            async with ws_client(url, AVA) as client:
                assert await client.init() == {"type": "connection_ack"}
                await client.subscribe("1", subscription, {"id": target})
                received.append((await client.receive(), await client.receive()))
    assert (
        received
        == [
            (
                {"id": "1", "type": "next", "payload": {"data": None, "errors": [NOT_YOURS]}},
                {"id": "1", "type": "complete"},
            )
        ]
        * 3
    )


async def test_mutations_naming_a_member_refuse_alike_whether_it_exists(harness: Harness) -> None:
    h = harness
    p = await people(h)
    not_yours = {
        "code": "NOT_ALLOWED",
        "field": None,
        "message": "a member may act only for itself",
    }
    cases = [
        ("redeemPoints", "RedeemPointsInput", lambda m: {"memberId": m, "points": 1, "idempotencyKey": "k"}, not_yours),
        ("donatePoints", "DonatePointsInput", lambda m: {"memberId": m, "charityKey": "sickkids", "points": 1, "idempotencyKey": "k"}, not_yours),
        ("giftPoints", "GiftPointsInput", lambda m: {"fromMemberId": m, "toMemberId": p["ava"], "points": 1, "idempotencyKey": "k"}, not_yours),
        ("createHousehold", "CreateHouseholdInput", lambda m: {"ownerId": m}, not_yours),
        ("forgetMember", "ForgetMemberInput", lambda m: {"memberId": m}, {
            "code": "NOT_ALLOWED", "field": ["memberId"],
            "message": "only the member itself, an admin or a back-office service may forget a member",
        }),
        # Adding someone else to a household she does not own; accepting, for herself, an
        # invitation she does not have: the same answer for a household or none.
        ("addHouseholdMember", "AddHouseholdMemberInput", lambda m: {"householdId": m, "memberId": p["ben"]}, not_yours),
        ("addHouseholdMember", "AddHouseholdMemberInput", lambda m: {"householdId": m, "memberId": p["ava"]}, {
            "code": "NOT_ALLOWED", "field": ["householdId"],
            "message": "this member has no pending invitation to this household",
        }),
    ]  # fmt: skip
    for name, input_type, make, refusal in cases:
        document = f"mutation($i: {input_type}!) {{ {name}(input: $i) {{ userErrors {{ code field message }} }} }}"
        targets = (
            (p["cy-household"], UNKNOWN_HOUSEHOLD, "garbage")
            if name == "addHouseholdMember"
            else (p["cy"], UNKNOWN_MEMBER, "garbage")
        )
        for target in targets:
            body = await h.gql(document, {"i": make(target)}, AVA)
            assert body == {"data": {name: {"userErrors": [refusal]}}}, (name, target)


async def test_ownership_checks_cost_no_query_per_member(harness: Harness) -> None:
    """A member reading its household's members is checked by its own member and household,
    loaded once per request (and primed for the balance and tier loaders): a household of
    four costs the same statements as a household of two."""
    h = harness
    small = [await enroll(h, f"s{i}") for i in range(2)]
    large = [await enroll(h, f"l{i}") for i in range(4)]
    await make_household(h, small[0], small[1])
    household = await make_household(h, large[0], large[1])
    for member in large[2:]:
        await ok(
            h,
            "mutation($i: AddHouseholdMemberInput!) { addHouseholdMember(input: $i) "
            "{ userErrors { code } } }",
            {"i": {"householdId": household, "memberId": member}},
            SERVICE,
        )
    view = (
        "{ me { id points { available } household { pooledPoints owner { id } members "
        "{ id externalIds { commerceCustomerId } points { available } tier { current { key } } } } } }"
    )
    counts = []
    for sub, size in (("s0", 2), ("l0", 4)):  # the owners
        h.sql.reset()
        body = await ok(h, view, {}, token(sub, "member"))
        assert len(body["household"]["members"]) == size
        counts.append(h.sql.count)
    assert counts == [14, 14], "\n".join(q.split("\n")[0][:90] for q in h.sql.queries)
