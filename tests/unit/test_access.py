"""The access rules alone (`loyalty.access`): the role x capability table, ownership, and the
store scope of associates. No GraphQL, no I/O."""

from __future__ import annotations

import pytest

from loyalty.access import (
    Access,
    Capability,
    Circle,
    HouseholdJoin,
    Role,
    Viewer,
    acts_for_member,
    enrolment_access,
    household_access,
    household_join,
    invitations_access,
    may_link_cdp_user,
    member_access,
    member_needs_circle,
    store_scope,
    unknown_target_access,
)

C = Capability
ANONYMOUS = Viewer.anonymous()
AVA = Viewer("ava", frozenset({Role.MEMBER}))
BEN = Viewer("ben", frozenset({Role.MEMBER}))
CY = Viewer("cy", frozenset({Role.MEMBER}))
ASSOCIATE = Viewer("assoc-1", frozenset({Role.ASSOCIATE}), store="TOR-1")
STORELESS = Viewer("assoc-2", frozenset({Role.ASSOCIATE}))
MARKETER = Viewer("mkt-1", frozenset({Role.MARKETER}))
SERVICE = Viewer("pos-1", frozenset({Role.SERVICE}), store="POS-STORE")
ADMIN = Viewer("admin-1", frozenset({Role.ADMIN}))
NO_ROLE = Viewer("someone", frozenset())

# Ava (member id m-ava) owns a household with Ben (m-ben); Cy (m-cy) is alone.
AVA_CIRCLE = Circle.of("m-ava", "h-1", ("m-ava", "m-ben"))
BEN_CIRCLE = Circle.of("m-ben", "h-1", ("m-ava", "m-ben"))
CY_CIRCLE = Circle.of("m-cy", None, ())

# The README's role x capability table, written out by hand.
EXPECTED_GRANTS = {
    Role.MEMBER: set(),
    Role.ASSOCIATE: {
        C.READ_ANY_MEMBER, C.SEARCH_MEMBERS, C.READ_INSIGHTS, C.SEE_HIDDEN_TIERS,
        C.ENROLL_ANY, C.RECORD_PURCHASES, C.RETURN_PURCHASES, C.REDEEM_FOR_ANY,
        C.AWARD_POINTS, C.MANAGE_ANY_HOUSEHOLD, C.ASSIGN_TIERS,
    },
    Role.MARKETER: {
        C.READ_ANY_MEMBER, C.SEARCH_MEMBERS, C.READ_INSIGHTS, C.SEE_HIDDEN_TIERS,
        C.READ_TOP_CUSTOMERS,
    },
    Role.SERVICE: {
        C.READ_ANY_MEMBER, C.ENROLL_ANY, C.RECORD_PURCHASES, C.RETURN_PURCHASES,
        C.REDEEM_FOR_ANY, C.GIFT_FOR_ANY, C.DONATE_FOR_ANY, C.MANAGE_ANY_HOUSEHOLD,
        C.FORGET_ANY,
    },
    Role.ADMIN: set(Capability),
}  # fmt: skip


@pytest.mark.parametrize("role", list(Role))
def test_each_role_holds_exactly_its_capabilities(role: Role) -> None:
    viewer = Viewer("x", frozenset({role}))
    assert {c for c in Capability if viewer.can(c)} == EXPECTED_GRANTS[role]


def test_staff_are_the_people_with_a_staff_role() -> None:
    assert [v.is_staff for v in (ASSOCIATE, MARKETER, ADMIN)] == [True, True, True]
    assert [v.is_staff for v in (ANONYMOUS, AVA, SERVICE, NO_ROLE)] == [False] * 4


def test_roles_add_up_and_no_token_can_nothing() -> None:
    both = Viewer("x", frozenset({Role.MARKETER, Role.SERVICE}))
    assert {c for c in Capability if both.can(c)} == (
        EXPECTED_GRANTS[Role.MARKETER] | EXPECTED_GRANTS[Role.SERVICE]
    )
    assert not any(ANONYMOUS.can(c) for c in Capability)
    assert not any(NO_ROLE.can(c) for c in Capability)


@pytest.mark.parametrize(
    ("viewer", "circle", "expected"),
    [
        (ANONYMOUS, Circle(), Access.UNAUTHENTICATED),
        (AVA, AVA_CIRCLE, Access.ALLOWED),  # itself
        (BEN, BEN_CIRCLE, Access.ALLOWED),  # its household
        (CY, CY_CIRCLE, Access.NOT_ALLOWED),
        (CY, Circle(), Access.NOT_ALLOWED),
        (ASSOCIATE, Circle(), Access.ALLOWED),
        (STORELESS, Circle(), Access.ALLOWED),  # reading is not store-scoped
        (MARKETER, Circle(), Access.ALLOWED),
        (SERVICE, Circle(), Access.ALLOWED),
        (ADMIN, Circle(), Access.ALLOWED),
        (NO_ROLE, Circle(), Access.NOT_ALLOWED),
        # a token without the member role does not read "itself", even with its sub
        (Viewer("ava", frozenset()), AVA_CIRCLE, Access.NOT_ALLOWED),
    ],
)
def test_reading_ava(viewer: Viewer, circle: Circle, expected: Access) -> None:
    assert member_access(viewer, "m-ava", "ava", circle) is expected


def test_only_a_member_reading_another_member_needs_its_household() -> None:
    assert member_needs_circle(BEN, "ava")
    assert not member_needs_circle(AVA, "ava")
    for viewer in (ANONYMOUS, ASSOCIATE, MARKETER, SERVICE, ADMIN, NO_ROLE):
        assert not member_needs_circle(viewer, "ava")


@pytest.mark.parametrize(
    ("viewer", "circle", "expected"),
    [
        (ANONYMOUS, Circle(), Access.UNAUTHENTICATED),
        (AVA, AVA_CIRCLE, Access.ALLOWED),
        (BEN, BEN_CIRCLE, Access.ALLOWED),
        (CY, CY_CIRCLE, Access.NOT_ALLOWED),
        (ASSOCIATE, Circle(), Access.ALLOWED),
        (SERVICE, Circle(), Access.ALLOWED),
        (NO_ROLE, AVA_CIRCLE, Access.NOT_ALLOWED),
    ],
)
def test_reading_ava_s_household(viewer: Viewer, circle: Circle, expected: Access) -> None:
    assert household_access(viewer, "h-1", circle) is expected


def test_something_that_does_not_exist_is_refused_like_something_not_yours() -> None:
    assert unknown_target_access(ANONYMOUS) is Access.UNAUTHENTICATED
    assert unknown_target_access(AVA) is member_access(AVA, "m-cy", "cy", AVA_CIRCLE)
    assert unknown_target_access(AVA) is Access.NOT_ALLOWED
    for reader in (ASSOCIATE, MARKETER, SERVICE, ADMIN):
        assert unknown_target_access(reader) is Access.ALLOWED  # then told NOT_FOUND


@pytest.mark.parametrize(
    ("viewer", "wanted", "member", "expected"),
    [
        (AVA, C.REDEEM_FOR_ANY, "ava", Access.ALLOWED),
        (AVA, C.REDEEM_FOR_ANY, "ben", Access.NOT_ALLOWED),  # not even its household's
        (AVA, C.REDEEM_FOR_ANY, None, Access.NOT_ALLOWED),  # no such member
        (ASSOCIATE, C.REDEEM_FOR_ANY, "ava", Access.ALLOWED),
        (ASSOCIATE, C.GIFT_FOR_ANY, "ava", Access.NOT_ALLOWED),
        (SERVICE, C.GIFT_FOR_ANY, None, Access.ALLOWED),  # then told NOT_FOUND
        (MARKETER, C.DONATE_FOR_ANY, "ava", Access.NOT_ALLOWED),
        (ADMIN, C.FORGET_ANY, "ava", Access.ALLOWED),
        (ANONYMOUS, C.FORGET_ANY, "ava", Access.UNAUTHENTICATED),
    ],
)
def test_acting_for_a_member(
    viewer: Viewer, wanted: Capability, member: str | None, expected: Access
) -> None:
    assert acts_for_member(viewer, wanted, member) is expected


@pytest.mark.parametrize(
    ("viewer", "owner", "member", "expected"),
    [
        # Ava owns the household: naming Cy, she invites him; nothing is added.
        (AVA, "ava", "cy", HouseholdJoin.INVITE),
        (AVA, "ava", None, HouseholdJoin.INVITE),  # then told NOT_FOUND
        (AVA, "ava", "ava", HouseholdJoin.INVITE),  # then told she is in it already
        # Cy, naming himself, accepts (the invitation is checked when he joins), whether
        # the household exists or not.
        (CY, "ava", "cy", HouseholdJoin.ACCEPT),
        (CY, None, "cy", HouseholdJoin.ACCEPT),
        # Ben is in Ava's household, but neither its owner nor the member named.
        (BEN, "ava", "cy", None),
        (BEN, None, "cy", None),
        (CY, "ava", None, None),
        (NO_ROLE, "ava", "cy", None),
        (Viewer("ava", frozenset()), "ava", "cy", None),  # no member role
        (ANONYMOUS, "ava", "cy", None),
        (MARKETER, "ava", "cy", None),
        # Staff and services add at once, whoever the household and the member.
        (ASSOCIATE, "ava", "cy", HouseholdJoin.ADD),
        (STORELESS, None, None, HouseholdJoin.ADD),
        (SERVICE, "ava", "cy", HouseholdJoin.ADD),
        (ADMIN, "ava", "cy", HouseholdJoin.ADD),
        (Viewer("ava", frozenset({Role.MEMBER, Role.ASSOCIATE})), "ava", "cy", HouseholdJoin.ADD),
    ],
)
def test_adding_a_household_member_takes_both_consents(
    viewer: Viewer, owner: str | None, member: str | None, expected: HouseholdJoin | None
) -> None:
    assert household_join(viewer, owner, member) is expected


def test_a_member_s_invitations_are_its_own() -> None:
    assert invitations_access(AVA, "ava") is Access.ALLOWED
    assert invitations_access(BEN, "ava") is Access.NOT_ALLOWED  # even its household
    assert invitations_access(ADMIN, "ava") is Access.ALLOWED
    for viewer in (ASSOCIATE, MARKETER, SERVICE, NO_ROLE):
        assert invitations_access(viewer, "ava") is Access.NOT_ALLOWED
    assert invitations_access(ANONYMOUS, "ava") is Access.UNAUTHENTICATED


def test_enrolment() -> None:
    assert enrolment_access(AVA, "ava") is Access.ALLOWED
    assert enrolment_access(AVA, "ben") is Access.NOT_ALLOWED
    assert enrolment_access(MARKETER, "ben") is Access.NOT_ALLOWED
    assert enrolment_access(ASSOCIATE, "ben") is Access.ALLOWED
    assert enrolment_access(ANONYMOUS, "ben") is Access.UNAUTHENTICATED
    assert may_link_cdp_user(AVA, "ava", None)
    assert may_link_cdp_user(AVA, "ava", "ava")
    assert not may_link_cdp_user(AVA, "ava", "seg-ben")
    assert may_link_cdp_user(SERVICE, "ava", "seg-ava")


@pytest.mark.parametrize("wanted", [C.RECORD_PURCHASES, C.AWARD_POINTS])
def test_an_associate_records_and_awards_for_its_own_store_only(wanted: Capability) -> None:
    assert store_scope(ASSOCIATE, wanted, None) == store_scope(ASSOCIATE, wanted, "TOR-1")
    assert store_scope(ASSOCIATE, wanted, "TOR-1").store_id == "TOR-1"
    assert store_scope(ASSOCIATE, wanted, "TOR-1").refusal is None
    other = store_scope(ASSOCIATE, wanted, "MTL-1")
    assert other.store_id is None and other.field == "storeId"
    assert other.refusal == (
        "an associate records purchases and awards points only for its own store (TOR-1)"
    )
    storeless = store_scope(STORELESS, wanted, None)
    assert storeless.refusal == (
        "an associate's token names no store: it may not record purchases or award points"
    )
    assert store_scope(STORELESS, wanted, "TOR-1").refusal == storeless.refusal


def test_services_and_admins_record_for_any_store() -> None:
    assert store_scope(SERVICE, C.RECORD_PURCHASES, "MTL-1").store_id == "MTL-1"
    assert store_scope(SERVICE, C.RECORD_PURCHASES, None).store_id == "POS-STORE"
    assert store_scope(ADMIN, C.AWARD_POINTS, "MTL-1").store_id == "MTL-1"
    assert store_scope(ADMIN, C.AWARD_POINTS, None).store_id is None
    # an associate who is also an admin is not store-scoped
    both = Viewer("x", frozenset({Role.ASSOCIATE, Role.ADMIN}), store="TOR-1")
    assert store_scope(both, C.AWARD_POINTS, "MTL-1").store_id == "MTL-1"
    with pytest.raises(ValueError):
        store_scope(ADMIN, C.REDEEM_FOR_ANY, None)
