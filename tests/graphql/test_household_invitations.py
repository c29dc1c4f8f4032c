"""Joining a household takes both members' consent (README, Households): the owner naming a
member in `addHouseholdMember` only invites it, and the member joins by accepting (naming
itself) before the invitation expires. Staff and services still add at once.

The attack this closes: an owner adding any member id it knows (from a gift, a referral) to
read that member's profile, orders and cart and pull its points into the shared wallet.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from adapters.commerce.fake import FakeLine
from gateway.demo import Fakes
from gateway.jobs import run_job
from gateway.settings import Settings
from loyalty.privacy import PrivacyService
from resolvers.node import local_id, to_global_id
from tests.conftest import START, Harness, token
from tests.graphql.conftest import enroll
from tests.graphql.test_authorization import snapshot

AVA, BEN, CY, DEE = (token(who, "member") for who in ("ava-ct", "ben-ct", "cy-ct", "dee-ct"))
ASSOCIATE = token("assoc-1", "associate", store="TOR-1")
SERVICE = token("pos-1", "service")
ADMIN = token("admin-1", "admin")
UNKNOWN_HOUSEHOLD = to_global_id("Household", "00000000-0000-4000-8000-00000000beef")
NO_INVITATION = {
    "code": "NOT_ALLOWED",
    "field": ["householdId"],
    "message": "this member has no pending invitation to this household",
}
NOT_YOURS = {"code": "NOT_ALLOWED", "field": None, "message": "a member may act only for itself"}
WEEK = timedelta(days=7)
HOUR = timedelta(hours=1)

PAYLOAD = """
  household { id members { id } pooledPoints }
  invitation { householdId memberId expiresAt }
  userErrors { code field message }
"""
ADD = f"mutation($i: AddHouseholdMemberInput!) {{ addHouseholdMember(input: $i) {{ {PAYLOAD} }} }}"
REMOVE = (
    "mutation($i: RemoveHouseholdMemberInput!) "
    f"{{ removeHouseholdMember(input: $i) {{ {PAYLOAD} }} }}"
)
ME = "{ me { points { available } household { id } householdInvitations { householdId memberId expiresAt } } }"


def iso(moment: Any) -> str:
    return str(moment.isoformat())


async def add(h: Harness, household: str, member: str, tok: str | None) -> dict[str, Any]:
    body = await h.gql(ADD, {"i": {"householdId": household, "memberId": member}}, tok)
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["addHouseholdMember"]
    return payload


async def remove(h: Harness, household: str, member: str, tok: str) -> dict[str, Any]:
    body = await h.gql(REMOVE, {"i": {"householdId": household, "memberId": member}}, tok)
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["removeHouseholdMember"]
    return payload


async def me(h: Harness, tok: str) -> dict[str, Any]:
    body = await h.gql(ME, token=tok)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["me"]
    return result


def refused(error: dict[str, Any]) -> dict[str, Any]:
    return {"household": None, "invitation": None, "userErrors": [error]}


def invitation(household: str, member: str, expires: Any) -> dict[str, Any]:
    return {"householdId": household, "memberId": member, "expiresAt": iso(expires)}


async def create_household(h: Harness, owner: str, tok: str) -> str:
    body = await h.gql(
        "mutation($i: CreateHouseholdInput!) { createHousehold(input: $i) "
        "{ household { id } userErrors { code } } }",
        {"i": {"ownerId": owner}},
        tok,
    )
    assert body["data"]["createHousehold"]["userErrors"] == [], body
    household: str = body["data"]["createHousehold"]["household"]["id"]
    return household


async def award(h: Harness, member: str, points: int, key: str) -> None:
    body = await h.gql(
        "mutation($i: AwardPointsInput!) { awardPoints(input: $i) { userErrors { code } } }",
        {"i": {"memberId": member, "points": points, "reason": "Seed", "idempotencyKey": key}},
        ADMIN,
    )
    assert body["data"]["awardPoints"]["userErrors"] == [], body


@dataclass
class People:
    ava: str  # owns `household`, alone in it
    ben: str  # 300 available points, a profile, a cart and an order
    cy: str
    dee: str
    household: str


async def people(h: Harness) -> People:
    h.fakes.cdp.add_profile("ben-ct", {"first_name": "Benedict", "email": "ben@private.example"})
    h.fakes.commerce.add_cart("ben-ct", [FakeLine("RING-1", "Signet ring", 1, "900.00", "ring")])
    h.fakes.commerce.add_order("ben-ct", "420.00", created_at=START - timedelta(days=2))
    ava = await enroll(h, "ava-ct")
    ben = await enroll(h, "ben-ct", email="ben@private.example")
    cy, dee = await enroll(h, "cy-ct"), await enroll(h, "dee-ct")
    await award(h, ben, 300, "seed-ben")
    return People(ava, ben, cy, dee, await create_household(h, ava, AVA))


async def rows(h: Harness, sql: str) -> list[tuple[Any, ...]]:
    async with h.engine.connect() as conn:
        return [tuple(r) for r in (await conn.execute(text(sql))).all()]


def uuid(global_id: str) -> str:
    found = local_id(global_id, "Member") or local_id(global_id, "Household")
    assert found is not None
    return found


# --- the attack -----------------------------------------------------------------------------
async def test_an_owner_naming_a_member_only_invites_it(harness: Harness) -> None:
    h = harness
    p = await people(h)
    before = await snapshot(h)

    invited = await add(h, p.household, p.ben, AVA)

    # No error, but no member added: an invitation that expires in a week, and only ids.
    assert invited == {
        "household": {"id": p.household, "members": [{"id": p.ava}], "pooledPoints": 0},
        "invitation": invitation(p.household, p.ben, START + WEEK),
        "userErrors": [],
    }
    # Nothing moved: every table as before but for the one invitation row.
    after = await snapshot(h)
    assert {k: v for k, v in after.items() if k != "household_invitations"} == {
        k: v for k, v in before.items() if k != "household_invitations"
    }
    assert await rows(
        h, "SELECT household_id, member_id, invited_by_id FROM household_invitations"
    ) == [(uuid(p.household), uuid(p.ben), uuid(p.ava))]
    # Ava reads nothing of Ben: not his profile, orders, cart, points or invitations.
    for field in ("profile { firstName }", "orders { id }", "cart { id }", "points { available }"):
        body = await h.gql(
            f"query($id: ID!) {{ member(id: $id) {{ {field} }} }}", {"id": p.ben}, AVA
        )
        assert body["data"] == {"member": None}
        assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_ALLOWED"]
    node = await h.gql("query($id: ID!) { node(id: $id) { id } }", {"id": p.ben}, AVA)
    assert node["data"] == {"node": None}
    assert "Benedict" not in str(invited) and "ben-ct" not in str(invited)
    # Ben keeps his points and no household; he sees the invitation.
    assert await me(h, BEN) == {
        "points": {"available": 300},
        "household": None,
        "householdInvitations": [invitation(p.household, p.ben, START + WEEK)],
    }
    assert (await me(h, AVA))["points"] == {"available": 0}


async def test_the_invited_member_accepts_and_joins_with_its_points(harness: Harness) -> None:
    h = harness
    p = await people(h)
    await add(h, p.household, p.ben, AVA)
    h.clock.advance(days=2)

    accepted = await add(h, p.household, p.ben, BEN)

    assert accepted == {
        "household": {"id": p.household, "members": [{"id": p.ava}, {"id": p.ben}], "pooledPoints": 300},
        "invitation": None,
        "userErrors": [],
    }  # fmt: skip
    assert await me(h, BEN) == {
        "points": {"available": 300},  # the shared wallet's
        "household": {"id": p.household},
        "householdInvitations": [],  # used up
    }
    assert await rows(h, "SELECT * FROM household_invitations") == []
    # Now they read each other: his profile, orders and cart; her member view.
    body = await h.gql(
        "query($id: ID!) { member(id: $id) { profile { firstName } orders { total { amount } } cart { id } } }",
        {"id": p.ben},
        AVA,
    )
    assert "errors" not in body, body
    assert body["data"]["member"]["profile"] == {"firstName": "Benedict"}
    assert body["data"]["member"]["orders"] == [{"total": {"amount": "420.00"}}]
    assert body["data"]["member"]["cart"] is not None
    her = await h.gql("query($id: ID!) { member(id: $id) { id } }", {"id": p.ava}, BEN)
    assert her == {"data": {"member": {"id": p.ava}}}
    # An invitation is used once: having left, Ben cannot accept it again.
    assert (await remove(h, p.household, p.ben, BEN))["userErrors"] == []
    assert await add(h, p.household, p.ben, BEN) == refused(NO_INVITATION)
    assert (await me(h, BEN))["household"] is None


async def test_accepting_without_a_pending_invitation_is_refused_alike(harness: Harness) -> None:
    """No invitation, another household's, another member's, an unknown or a malformed
    household id: one answer, and nothing changes."""
    h = harness
    p = await people(h)
    cy_household = await create_household(h, p.cy, CY)  # which invited nobody
    await add(h, p.household, p.dee, AVA)  # Ava invited Dee, not Ben
    before = await snapshot(h)
    for household in (p.household, cy_household, UNKNOWN_HOUSEHOLD, "garbage", p.ben):
        assert await add(h, household, p.ben, BEN) == refused(NO_INVITATION), household
    assert await snapshot(h) == before
    # Ben cannot take Dee's invitation for her (he is neither the owner nor Dee).
    assert await add(h, p.household, p.dee, BEN) == refused(NOT_YOURS)
    assert await snapshot(h) == before
    # An invitation is for its household only.
    await add(h, p.household, p.ben, AVA)
    assert await add(h, cy_household, p.ben, BEN) == refused(NO_INVITATION)
    assert (await add(h, p.household, p.ben, BEN))["userErrors"] == []


async def test_an_invitation_expires_after_the_program_s_days(harness: Harness) -> None:
    h = harness
    p = await people(h)
    await add(h, p.household, p.ben, AVA)
    h.clock.advance(days=7, seconds=-1)
    assert (await me(h, BEN))["householdInvitations"] == [
        invitation(p.household, p.ben, START + WEEK)
    ]
    h.clock.advance(seconds=1)  # exactly its expiresAt
    assert (await me(h, BEN))["householdInvitations"] == []
    assert await add(h, p.household, p.ben, BEN) == refused(NO_INVITATION)
    assert await me(h, BEN) == {
        "points": {"available": 300},
        "household": None,
        "householdInvitations": [],
    }
    # Invited again, for another week, Ben can join.
    again = await add(h, p.household, p.ben, AVA)
    assert again["invitation"] == invitation(p.household, p.ben, START + 2 * WEEK)
    assert (await add(h, p.household, p.ben, BEN))["household"]["pooledPoints"] == 300


async def test_a_second_invitation_replaces_the_first(harness: Harness) -> None:
    h = harness
    p = await people(h)
    await add(h, p.household, p.ben, AVA)
    h.clock.advance(days=3)
    second = await add(h, p.household, p.ben, AVA)
    assert second["invitation"] == invitation(p.household, p.ben, START + timedelta(days=10))
    assert (await me(h, BEN))["householdInvitations"] == [second["invitation"]]
    assert len(await rows(h, "SELECT * FROM household_invitations")) == 1


async def test_staff_and_services_add_at_once(harness: Harness) -> None:
    h = harness
    p = await people(h)
    await award(h, p.cy, 50, "seed-cy")
    by_associate = await add(h, p.household, p.ben, ASSOCIATE)
    assert by_associate == {
        "household": {"id": p.household, "members": [{"id": p.ava}, {"id": p.ben}], "pooledPoints": 300},
        "invitation": None,
        "userErrors": [],
    }  # fmt: skip
    # Adding a member who was invited uses its invitation up.
    await add(h, p.household, p.cy, AVA)
    by_service = await add(h, p.household, p.cy, SERVICE)
    assert by_service["household"]["pooledPoints"] == 350
    assert {m["id"] for m in by_service["household"]["members"]} == {p.ava, p.ben, p.cy}
    assert (await me(h, CY))["householdInvitations"] == []
    assert await rows(h, "SELECT * FROM household_invitations") == []
    # Staff are told what does not exist.
    assert (await add(h, UNKNOWN_HOUSEHOLD, p.dee, ADMIN))["userErrors"] == [
        {"code": "NOT_FOUND", "field": ["householdId"], "message": "no such household"}
    ]


async def test_pending_invitations_count_towards_the_household_s_members(
    harness: Harness,
) -> None:
    """Club Harry: at most 4. Ava and Ben are in; Cy and Dee invited: no fifth invitation
    until one of them answers, is withdrawn or expires."""
    h = harness
    p = await people(h)
    eve, fay = await enroll(h, "eve-ct"), await enroll(h, "fay-ct")
    await add(h, p.household, p.ben, AVA)
    await add(h, p.household, p.ben, BEN)
    for invited in (p.cy, p.dee):
        assert (await add(h, p.household, invited, AVA))["userErrors"] == []
    full = {
        "code": "LIMIT_EXCEEDED",
        "field": ["memberId"],
        "message": "a household has at most 4 members, pending invitations included",
    }
    assert await add(h, p.household, eve, AVA) == refused(full)
    # Inviting Cy again replaces his invitation: it is not a fifth.
    assert (await add(h, p.household, p.cy, AVA))["userErrors"] == []
    # Ava withdraws Dee's invitation: Eve's place.
    withdrawn = await remove(h, p.household, p.dee, AVA)
    assert withdrawn["userErrors"] == [] and withdrawn["invitation"] is None
    assert (await me(h, DEE))["householdInvitations"] == []
    assert (await add(h, p.household, eve, AVA))["userErrors"] == []
    assert await add(h, p.household, fay, AVA) == refused(full)
    # A week later both invitations have lapsed: they count no more.
    h.clock.advance(days=7)
    assert (await add(h, p.household, fay, AVA))["userErrors"] == []
    assert (await add(h, p.household, p.dee, AVA))["userErrors"] == []
    assert await add(h, p.household, eve, AVA) == refused(full)
    # Staff fill the household meanwhile: accepting is refused, the invitation kept.
    assert (await add(h, p.household, p.cy, SERVICE))["userErrors"] == []
    assert (await add(h, p.household, eve, SERVICE))["userErrors"] == []
    assert await add(h, p.household, fay, token("fay-ct", "member")) == refused(
        {"code": "LIMIT_EXCEEDED", "field": ["memberId"], "message": "a household has at most 4 members"}
    )  # fmt: skip
    fays = await me(h, token("fay-ct", "member"))
    assert fays["householdInvitations"] == [invitation(p.household, fay, START + 2 * WEEK)]


async def test_an_invited_member_declines_and_the_owner_withdraws(harness: Harness) -> None:
    h = harness
    p = await people(h)
    await add(h, p.household, p.ben, AVA)
    await add(h, p.household, p.cy, AVA)
    # Dee may do neither.
    assert (await remove(h, p.household, p.ben, DEE))["userErrors"] == [NOT_YOURS]
    declined = await remove(h, p.household, p.ben, BEN)
    assert declined == {"household": None, "invitation": None, "userErrors": []}
    assert await add(h, p.household, p.ben, BEN) == refused(NO_INVITATION)
    withdrawn = await remove(h, p.household, p.cy, AVA)
    assert withdrawn["household"] == {
        "id": p.household,
        "members": [{"id": p.ava}],
        "pooledPoints": 0,
    }
    assert await add(h, p.household, p.cy, CY) == refused(NO_INVITATION)
    assert await rows(h, "SELECT * FROM household_invitations") == []
    # Nothing left to drop: as for anyone not in the household.
    assert (await remove(h, p.household, p.cy, AVA))["userErrors"] == [
        {"code": "NOT_FOUND", "field": ["memberId"], "message": "not a member of this household"}
    ]


async def test_a_member_in_another_household_is_invited_like_anyone(harness: Harness) -> None:
    """The owner learns nothing of the member it invites: only the member, accepting, is
    told it must leave its household first."""
    h = harness
    p = await people(h)
    cy_household = await create_household(h, p.cy, CY)
    await add(h, cy_household, p.ben, SERVICE)
    invited = await add(h, p.household, p.ben, AVA)
    assert invited["userErrors"] == []
    assert invited["invitation"] == invitation(p.household, p.ben, START + WEEK)
    assert await add(h, p.household, p.ben, BEN) == refused(
        {"code": "ALREADY_IN_HOUSEHOLD", "field": ["memberId"], "message": "this member is already in a household"}
    )  # fmt: skip
    assert len((await me(h, BEN))["householdInvitations"]) == 1  # kept
    assert (await remove(h, cy_household, p.ben, BEN))["userErrors"] == []
    joined = await add(h, p.household, p.ben, BEN)
    assert [m["id"] for m in joined["household"]["members"]] == [p.ava, p.ben]
    # And an owner naming a member of its own household is told so (it reads them anyway).
    assert await add(h, p.household, p.ben, AVA) == refused(
        {"code": "ALREADY_IN_HOUSEHOLD", "field": ["memberId"], "message": "this member is already in this household"}
    )  # fmt: skip


async def test_an_invitation_shows_only_to_the_invited_member(harness: Harness) -> None:
    h = harness
    p = await people(h)
    await add(h, p.household, p.ben, SERVICE)  # Ben is in Ava's household
    dee_household = await create_household(h, p.dee, DEE)
    await add(h, dee_household, p.ben, DEE)
    query = "query($id: ID!) { member(id: $id) { id householdInvitations { householdId } } }"
    own = await h.gql(query, {"id": p.ben}, BEN)
    assert own == {
        "data": {"member": {"id": p.ben, "householdInvitations": [{"householdId": dee_household}]}}
    }
    # His household's owner reads him, not his invitations; nor do associates: the field
    # alone is null, the rest of the member answers.
    for tok in (AVA, ASSOCIATE, SERVICE):
        body = await h.gql(query, {"id": p.ben}, tok)
        assert body["data"] == {"member": {"id": p.ben, "householdInvitations": None}}
        assert [(e["message"], e["path"], e["extensions"]) for e in body["errors"]] == [
            (
                "a member's household invitations are for itself only",
                ["member", "householdInvitations"],
                {"code": "NOT_ALLOWED"},
            )
        ]
        read = await h.gql("query($id: ID!) { member(id: $id) { id } }", {"id": p.ben}, tok)
        assert read == {"data": {"member": {"id": p.ben}}}


async def test_a_member_is_shown_its_ten_newest_invitations(harness: Harness) -> None:
    h = harness
    p = await people(h)
    households = []
    for n in range(11):
        owner = await enroll(h, f"own-{n}")
        households.append(await create_household(h, owner, token(f"own-{n}", "member")))
        await add(h, households[-1], p.ben, token(f"own-{n}", "member"))
        h.clock.advance(minutes=1)
    shown = (await me(h, BEN))["householdInvitations"]
    assert [i["householdId"] for i in shown] == households[:0:-1]  # newest first, not the 1st
    # The oldest is still pending: accepted by its household's id.
    joined = await add(h, households[0], p.ben, BEN)
    assert joined["userErrors"] == [] and joined["household"]["id"] == households[0]


# --- erasure --------------------------------------------------------------------------------
async def test_erasure_deletes_a_member_s_invitations_either_side(harness: Harness) -> None:
    h = harness
    p = await people(h)
    dee_household = await create_household(h, p.dee, DEE)
    await add(h, p.household, p.dee, AVA)  # Dee is invited ...
    h.clock.advance(hours=1)
    await add(h, dee_household, p.ben, DEE)  # ... and invites Ben
    await add(h, p.household, p.cy, AVA)  # not hers: stays
    export = await h.gql("query($id: ID!) { memberExport(id: $id) }", {"id": p.dee}, ADMIN)
    assert export["data"]["memberExport"]["householdInvitations"] == [
        {"householdId": uuid(p.household), "memberId": uuid(p.dee), "invitedById": uuid(p.ava), "createdAt": iso(START), "expiresAt": iso(START + WEEK)},
        {"householdId": uuid(dee_household), "memberId": uuid(p.ben), "invitedById": uuid(p.dee), "createdAt": iso(START + HOUR), "expiresAt": iso(START + HOUR + WEEK)},
    ]  # fmt: skip

    forgotten = await h.gql(
        "mutation($i: ForgetMemberInput!) { forgetMember(input: $i) { userErrors { code } } }",
        {"i": {"memberId": p.dee}},
        DEE,
    )
    assert forgotten["data"]["forgetMember"] == {"userErrors": []}

    # Her household (she was alone in it) is dissolved with its invitations.
    assert await rows(h, "SELECT household_id, member_id FROM household_invitations") == [
        (uuid(p.household), uuid(p.cy))
    ]
    assert await rows(h, f"SELECT id FROM households WHERE id = '{uuid(dee_household)}'") == []
    assert (await me(h, BEN))["householdInvitations"] == []
    assert await add(h, dee_household, p.ben, BEN) == refused(NO_INVITATION)


# --- concurrency ----------------------------------------------------------------------------
async def forget(h: Harness, member: str) -> list[dict[str, Any]]:
    body = await h.gql(
        "mutation($i: ForgetMemberInput!) { forgetMember(input: $i) { userErrors { code message } } }",
        {"i": {"memberId": member}},
        SERVICE,
    )
    assert "errors" not in body, body
    errors: list[dict[str, Any]] = body["data"]["forgetMember"]["userErrors"]
    return errors


OWNER_WITH_MEMBERS = {
    "code": "NOT_ALLOWED",
    "message": "this member owns a household with other members: remove them from the "
    "household first",
}


async def test_accepting_while_the_owner_is_erased_never_leaves_a_member_behind(
    harness: Harness,
) -> None:
    """Both at once, many times: the member joins and the erasure is refused, or the
    household is dissolved and the member told it has no invitation. Never a member in a
    household without its owner, never points lost with the owner's wallet."""
    h = harness
    outcomes = set()
    for n in range(8):
        owner = await enroll(h, f"own-{n}")
        member = await enroll(h, f"mem-{n}")
        await award(h, member, 100, f"seed-{n}")
        household = await create_household(h, owner, token(f"own-{n}", "member"))
        await add(h, household, member, token(f"own-{n}", "member"))
        accepted, erased = await asyncio.gather(
            add(h, household, member, token(f"mem-{n}", "member")), forget(h, owner)
        )
        if accepted["userErrors"] == []:
            assert erased == [OWNER_WITH_MEMBERS]
            assert accepted["household"]["pooledPoints"] == 100
            outcomes.add("joined")
        else:
            assert (accepted, erased) == (refused(NO_INVITATION), [])
            assert await me(h, token(f"mem-{n}", "member")) == {
                "points": {"available": 100},
                "household": None,
                "householdInvitations": [],
            }
            outcomes.add("dissolved")
    assert outcomes <= {"joined", "dissolved"}
    orphans = await rows(
        h,
        "SELECT hm.member_id FROM household_members hm JOIN households h ON h.id = hm.household_id"
        " JOIN members o ON o.id = h.owner_id WHERE o.forgotten_at IS NOT NULL",
    )
    assert orphans == []


class PausedAfterReadingTheHousehold:
    """The privacy store, its erasure sessions paused once they have read the member's
    household: the moment a member could join it unseen."""

    def __init__(self, inner: Any, read: asyncio.Event, resume: asyncio.Event) -> None:
        self.inner, self.read, self.resume = inner, read, resume

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[Any]:
        async with self.inner.session() as session:
            household_of: Callable[[str], Any] = session.household_of

            async def paused(member_id: str) -> Any:
                found = await household_of(member_id)
                self.read.set()
                await self.resume.wait()
                return found

            session.household_of = paused
            yield session


async def test_an_erasure_counts_the_owner_s_members_again_under_the_lock(
    harness: Harness, database_url: str
) -> None:
    """PostgreSQL: the owner's erasure has read its household (the owner alone) when the
    member accepts and joins; the erasure then counts again under the household's lock and
    is refused. (SQLite serializes write transactions: the member could not join then.)"""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite serializes write transactions: no interleaving to test")
    h = harness
    owner, member = await enroll(h, "own-1"), await enroll(h, "mem-1")
    await award(h, member, 100, "seed")
    household = await create_household(h, owner, token("own-1", "member"))
    await add(h, household, member, token("own-1", "member"))
    privacy: PrivacyService = h.gateway.services.privacy
    read, resume = asyncio.Event(), asyncio.Event()
    privacy.store = PausedAfterReadingTheHousehold(privacy.store, read, resume)  # type: ignore[assignment]

    erasing = asyncio.create_task(forget(h, owner))
    await asyncio.wait_for(read.wait(), 10)
    joined = await add(h, household, member, token("mem-1", "member"))
    assert joined["userErrors"] == [] and joined["household"]["pooledPoints"] == 100
    resume.set()
    assert await asyncio.wait_for(erasing, 10) == [OWNER_WITH_MEMBERS]
    assert (await me(h, token("mem-1", "member")))["household"] == {"id": household}


async def test_two_members_accepting_the_last_place_one_joins(harness: Harness) -> None:
    h = harness
    p = await people(h)
    eve = await enroll(h, "eve-ct")
    await add(h, p.household, p.ben, SERVICE)
    await add(h, p.household, p.dee, AVA)
    await add(h, p.household, eve, AVA)
    await add(h, p.household, p.cy, SERVICE)  # 3 members: 1 place for 2 invitations
    answers = await asyncio.gather(
        add(h, p.household, p.dee, DEE), add(h, p.household, eve, token("eve-ct", "member"))
    )
    assert sorted(a["userErrors"] != [] for a in answers) == [False, True]
    assert [a["userErrors"] for a in answers if a["userErrors"]] == [
        [{"code": "LIMIT_EXCEEDED", "field": ["memberId"], "message": "a household has at most 4 members"}]
    ]  # fmt: skip
    assert len(await rows(h, "SELECT * FROM household_members")) == 4


async def test_the_invitations_job_deletes_only_expired_invitations(
    harness: Harness, settings: Settings
) -> None:
    h = harness
    p = await people(h)
    await add(h, p.household, p.ben, AVA)  # expires at START + 1 week
    h.clock.advance(days=3)
    await add(h, p.household, p.cy, AVA)  # expires 3 days later
    h.clock.advance(days=4)  # Ben's exactly at its expiresAt, Cy's pending
    fakes = Fakes()
    http = fakes.http_client()
    try:
        run = run_job(settings, "invitations", http=http, clock=h.clock)
        assert await run == "1 expired household invitations deleted"
        assert await rows(h, "SELECT member_id FROM household_invitations") == [(uuid(p.cy),)]
        again = run_job(settings, "invitations", http=http, clock=h.clock)
        assert await again == "0 expired household invitations deleted"
        # The pending one is still Cy's to accept.
        assert (await add(h, p.household, p.cy, CY))["household"]["pooledPoints"] == 0
    finally:
        await http.aclose()


SENT = "query($id: ID!) { member(id: $id) { sentHouseholdInvitations { memberId expiresAt } } }"


async def sent(h: Harness, member: str, tok: str) -> Any:
    body = await h.gql(SENT, {"id": member}, tok)
    return body["data"]["member"]["sentHouseholdInvitations"] if "errors" not in body else body


async def test_an_owner_sees_the_invitations_it_sent_until_answered_or_expired(
    harness: Harness,
) -> None:
    h = harness
    p = await people(h)
    assert await sent(h, p.ava, AVA) == []
    await add(h, p.household, p.ben, AVA)  # expires at START + 1 week
    h.clock.advance(days=3)
    await add(h, p.household, p.cy, AVA)  # expires 3 days later
    ben = {"memberId": p.ben, "expiresAt": iso(START + WEEK)}
    cy = {"memberId": p.cy, "expiresAt": iso(START + 3 * timedelta(days=1) + WEEK)}
    assert await sent(h, p.ava, AVA) == [cy, ben]  # newest first
    assert await sent(h, p.ava, ADMIN) == [cy, ben]
    # Cy accepts: his is used up. Ben's expires.
    await add(h, p.household, p.cy, CY)
    assert await sent(h, p.ava, AVA) == [ben]
    h.clock.advance(days=4)
    assert await sent(h, p.ava, AVA) == []
    # A member of the household who does not own it has sent none, and may not read the
    # owner's: null with NOT_ALLOWED, the rest of the owner intact.
    assert await sent(h, p.cy, CY) == []
    await add(h, p.household, p.dee, AVA)
    body = await h.gql(
        "query($id: ID!) { member(id: $id) { id sentHouseholdInvitations { memberId } } }",
        {"id": p.ava},
        CY,
    )
    assert body["data"] == {"member": {"id": p.ava, "sentHouseholdInvitations": None}}
    assert [(e["path"], e["extensions"]["code"], e["message"]) for e in body["errors"]] == [
        (
            ["member", "sentHouseholdInvitations"],
            "NOT_ALLOWED",
            "a member's household invitations are for itself only",
        )
    ]
