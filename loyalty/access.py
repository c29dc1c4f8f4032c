"""Who may do what: roles, the viewer behind a request, and the rules, as plain functions.

Two kinds of right decide every access (README, Security: authorization):

- a **capability** of a role (`GRANTS`): to read any member, search members, record
  purchases, ... for anyone. `admin` holds every capability.
- **ownership**, for a viewer with the `member` role: a member reads itself and the members
  of its household (its `Circle`), and acts for itself (redeems, gifts, donates, enrols,
  creates and leaves a household, accepts an invitation to one, forgets itself); a
  household's owner manages it, but adds a member only with that member's consent: it
  invites, the member accepts (`household_join`).

Associates carry a `store` claim: they read any member (clienteling), but record purchases
and award points only for their own store (`store_scope`): a token without a store may not.

The GraphQL surface declares these rules as strawberry permissions
(`resolvers/permissions.py`); nothing here knows GraphQL.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


class Role(enum.StrEnum):
    MEMBER = "member"
    ASSOCIATE = "associate"
    MARKETER = "marketer"
    ADMIN = "admin"
    SERVICE = "service"


class Access(enum.StrEnum):
    """A rule's answer; the refusals are the `extensions.code` of the error."""

    ALLOWED = "ALLOWED"
    UNAUTHENTICATED = "UNAUTHENTICATED"  # no token
    NOT_ALLOWED = "NOT_ALLOWED"  # a token without the right


class Capability(enum.StrEnum):
    """What a role may do for any member (ownership aside)."""

    READ_ANY_MEMBER = "read any member (member, node, memberByCard, pointsChanged)"
    SEARCH_MEMBERS = "search members (members)"
    READ_INSIGHTS = "read insights (Member.insights)"
    SEE_HIDDEN_TIERS = "see hidden tiers (program)"
    READ_TOP_CUSTOMERS = "read top customers (topCustomers)"
    EXPORT_MEMBERS = "export a member (memberExport)"
    ENROLL_ANY = "enrol any customer (enrollMember)"
    RECORD_PURCHASES = "record purchases (recordPurchase), store-scoped for associates"
    RETURN_PURCHASES = "return purchases (returnPurchase)"
    REDEEM_FOR_ANY = "redeem for any member (redeemPoints)"
    GIFT_FOR_ANY = "gift from any member (giftPoints)"
    DONATE_FOR_ANY = "donate for any member (donatePoints)"
    AWARD_POINTS = "award points (awardPoints), store-scoped for associates"
    MANAGE_ANY_HOUSEHOLD = "manage any household (create, add directly, remove)"
    READ_ANY_INVITATIONS = (
        "read any member's household invitations (Member.householdInvitations and "
        "sentHouseholdInvitations)"
    )
    ASSIGN_TIERS = "assign tiers (assignTier)"
    FORGET_ANY = "forget any member (forgetMember)"


C = Capability
GRANTS: Mapping[Role, frozenset[Capability]] = {
    Role.MEMBER: frozenset(),  # ownership only
    Role.ASSOCIATE: frozenset(
        {
            C.READ_ANY_MEMBER,
            C.SEARCH_MEMBERS,
            C.READ_INSIGHTS,
            C.SEE_HIDDEN_TIERS,
            C.ENROLL_ANY,
            C.RECORD_PURCHASES,
            C.RETURN_PURCHASES,
            C.REDEEM_FOR_ANY,
            C.AWARD_POINTS,
            C.MANAGE_ANY_HOUSEHOLD,
            C.ASSIGN_TIERS,
        }
    ),
    Role.MARKETER: frozenset(
        {
            C.READ_ANY_MEMBER,
            C.SEARCH_MEMBERS,
            C.READ_INSIGHTS,
            C.SEE_HIDDEN_TIERS,
            C.READ_TOP_CUSTOMERS,
        }
    ),
    # POS and back office read members to transact, not their analytics.
    Role.SERVICE: frozenset(
        {
            C.READ_ANY_MEMBER,
            C.ENROLL_ANY,
            C.RECORD_PURCHASES,
            C.RETURN_PURCHASES,
            C.REDEEM_FOR_ANY,
            C.GIFT_FOR_ANY,
            C.DONATE_FOR_ANY,
            C.MANAGE_ANY_HOUSEHOLD,
            C.FORGET_ANY,
        }
    ),
    Role.ADMIN: frozenset(Capability),
}
STAFF_ROLES = frozenset({Role.ASSOCIATE, Role.MARKETER, Role.ADMIN})
# Capabilities an associate holds only for its own store (`store_scope`).
STORE_SCOPED = frozenset({C.RECORD_PURCHASES, C.AWARD_POINTS})
del C


@dataclass(frozen=True, slots=True)
class Viewer:
    """The caller: `sub` is the token's subject (a member's commerce customer id)."""

    sub: str | None = None
    roles: frozenset[Role] = frozenset()
    store: str | None = None

    @classmethod
    def anonymous(cls) -> Viewer:
        return cls()

    @property
    def is_authenticated(self) -> bool:
        return self.sub is not None

    def has(self, *roles: Role) -> bool:
        return Role.ADMIN in self.roles or any(r in self.roles for r in roles)

    def can(self, capability: Capability) -> bool:
        """Whether one of the viewer's roles grants `capability`."""
        return any(capability in GRANTS[role] for role in self.roles)

    @property
    def is_staff(self) -> bool:
        """An associate, a marketer or an admin (people; `service` is a system)."""
        return bool(self.roles & STAFF_ROLES)

    @property
    def reads_any_member(self) -> bool:
        """Staff and service callers read any member; a member only its own."""
        return self.can(Capability.READ_ANY_MEMBER)

    @property
    def is_member(self) -> bool:
        return self.sub is not None and Role.MEMBER in self.roles


def parse_roles(values: Iterable[str]) -> frozenset[Role]:
    """Known roles from a token's `roles` claim; unknown names are ignored."""
    known = {r.value: r for r in Role}
    return frozenset(known[v] for v in values if v in known)


def decide(viewer: Viewer, allowed: bool) -> Access:
    """The answer of a rule: `UNAUTHENTICATED` without a token, whatever the rule says."""
    if not viewer.is_authenticated:
        return Access.UNAUTHENTICATED
    return Access.ALLOWED if allowed else Access.NOT_ALLOWED


def capability(viewer: Viewer, wanted: Capability) -> Access:
    return decide(viewer, viewer.can(wanted))


# --- ownership --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Circle:
    """What a member viewer owns: its own member and its household (if any), whose
    members it reads. Empty for a viewer that is no enrolled member."""

    member_id: str | None = None
    household_id: str | None = None
    member_ids: frozenset[str] = frozenset()  # itself and its household's members

    @classmethod
    def of(
        cls, member_id: str | None, household_id: str | None, household_members: Iterable[str]
    ) -> Circle:
        if member_id is None:
            return cls()
        return cls(member_id, household_id, frozenset({member_id, *household_members}))


def is_self(viewer: Viewer, commerce_customer_id: str) -> bool:
    """A member's token names the member by its commerce customer id (`sub`)."""
    return viewer.is_member and viewer.sub == commerce_customer_id


def member_needs_circle(viewer: Viewer, commerce_customer_id: str) -> bool:
    """Whether `member_access` depends on the viewer's household (so the caller loads it
    only then: staff, services and a member reading itself need no query)."""
    return (
        viewer.is_member
        and not viewer.reads_any_member
        and not is_self(viewer, commerce_customer_id)
    )


def member_access(
    viewer: Viewer, member_id: str, commerce_customer_id: str, circle: Circle = Circle()
) -> Access:
    """Reading a member's personal data: a role that reads any member, the member itself,
    or a member of its household."""
    return decide(
        viewer,
        viewer.reads_any_member
        or is_self(viewer, commerce_customer_id)
        or (viewer.is_member and member_id in circle.member_ids),
    )


def unknown_target_access(viewer: Viewer) -> Access:
    """An id (of a member, a household, a transaction, a card) that names nothing: a role
    that reads any member goes on, to be told `NOT_FOUND`; anyone else gets the answer it
    would get for something that exists and is not its own, so that a refusal never says
    whether a member exists."""
    return decide(viewer, viewer.reads_any_member)


def household_access(viewer: Viewer, household_id: str, circle: Circle = Circle()) -> Access:
    """Reading a household (its owner, members, pooled points): a role that reads any
    member, or one of its members."""
    return decide(
        viewer,
        viewer.reads_any_member or (viewer.is_member and circle.household_id == household_id),
    )


def acts_for_member(viewer: Viewer, wanted: Capability, member_commerce_id: str | None) -> Access:
    """Acting for a member (redeem, gift, donate, create its household, leave, forget
    itself): the capability to do it for anyone, or the member itself.
    `member_commerce_id` is None when the member does not exist: only the capability
    then allows, so the answer does not say whether it exists."""
    return decide(
        viewer,
        viewer.can(wanted)
        or (member_commerce_id is not None and is_self(viewer, member_commerce_id)),
    )


class HouseholdJoin(enum.StrEnum):
    """What `addHouseholdMember` does for its caller: both members consent to a join."""

    ADD = "add"  # staff and services: they verify both consents in person, the member joins
    INVITE = "invite"  # the household's owner: a pending invitation; nothing moves
    ACCEPT = "accept"  # the member itself: joins if the household invited it


def household_join(
    viewer: Viewer, owner_commerce_id: str | None, member_commerce_id: str | None
) -> HouseholdJoin | None:
    """Adding a member to a household: the capability to manage any household adds it; the
    owner (`owner_commerce_id`, None when the household does not exist) invites it; the
    member itself (`member_commerce_id`, None when it does not exist) accepts. None: the
    viewer may do none of these (`decide(viewer, False)` says why)."""
    if viewer.can(Capability.MANAGE_ANY_HOUSEHOLD):
        return HouseholdJoin.ADD
    if owner_commerce_id is not None and is_self(viewer, owner_commerce_id):
        return HouseholdJoin.INVITE
    if member_commerce_id is not None and is_self(viewer, member_commerce_id):
        return HouseholdJoin.ACCEPT
    return None


def invitations_access(viewer: Viewer, commerce_customer_id: str) -> Access:
    """A member's household invitations: the member itself only (not its household: an
    invitation is its own decision), and admins."""
    return decide(
        viewer,
        viewer.can(Capability.READ_ANY_INVITATIONS) or is_self(viewer, commerce_customer_id),
    )


def enrolment_access(viewer: Viewer, commerce_customer_id: str) -> Access:
    """Enrolment: a role that enrols anyone, or a member enrolling itself."""
    return decide(
        viewer, viewer.can(Capability.ENROLL_ANY) or is_self(viewer, commerce_customer_id)
    )


def may_link_cdp_user(viewer: Viewer, commerce_customer_id: str, cdp_user_id: str | None) -> bool:
    """Only a role that enrols anyone may link a CDP user other than the customer's own id:
    else a member could enrol itself with another customer's profile and read it."""
    return (
        cdp_user_id is None
        or cdp_user_id == commerce_customer_id
        or viewer.can(Capability.ENROLL_ANY)
    )


# --- store scope ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StoreScope:
    """Where a purchase or an award is recorded (`store_id`), or why the viewer may not
    record it there (`refusal`, with the input field it is about)."""

    store_id: str | None
    refusal: str | None = None
    field: str | None = None


def store_scope(viewer: Viewer, wanted: Capability, requested: str | None) -> StoreScope:
    """The store of a purchase (`recordPurchase`) or award (`awardPoints`).

    Services and admins record for any store: the one requested, else their token's.
    An associate (without either of those roles) records only for its own store: the
    token's `store` claim, which `storeId` defaults to and must equal; an associate token
    without a `store` records nothing."""
    if wanted not in STORE_SCOPED:
        raise ValueError(f"{wanted} is not store-scoped")
    unscoped = [r for r in viewer.roles if wanted in GRANTS[r] and r is not Role.ASSOCIATE]
    if unscoped:
        return StoreScope(requested or viewer.store)
    if viewer.store is None:
        return StoreScope(
            None, "an associate's token names no store: it may not record purchases or award "
            "points"
        )  # fmt: skip
    if requested is None or requested == viewer.store:
        return StoreScope(viewer.store)
    return StoreScope(
        None,
        f"an associate records purchases and awards points only for its own store ({viewer.store})",
        "storeId",
    )
