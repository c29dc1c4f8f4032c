"""The authorization table of the schema and the people the tests ask as.

`RULES` classifies every field of every object type of the schema, (type, field) -> Rule:
which permissions the field declares (`resolvers/permissions.py`) and, for each of them,
which of the nine `CALLERS` it lets through. The callers are relative to one known member
(the subject): anonymous, the member itself, a member of its household, another member, an
associate of its store and of another store, a marketer, a service and an admin.
`tests/graphql/test_authorization.py` fails on a field this table does not classify.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from strawberry.permission import BasePermission

from loyalty.access import Role, Viewer, parse_roles
from resolvers.permissions import (
    BEARER_REQUIRED,
    AddsHouseholdMember,
    AssignsTiers,
    Authenticated,
    AwardsPoints,
    CreatesHousehold,
    DonatesPoints,
    EnrollsMember,
    ExportsMembers,
    FollowsMember,
    ForgetsMember,
    GiftsPoints,
    ReadsHousehold,
    ReadsHouseholdInvitations,
    ReadsInsights,
    ReadsMember,
    ReadsMemberByCard,
    ReadsMemberById,
    ReadsNode,
    ReadsTopCustomers,
    RecordsPurchases,
    RedeemsPoints,
    RemovesHouseholdMember,
    ReturnsPurchases,
    SearchesMembers,
)
from resolvers.permissions import Rule as Permission
from tests.conftest import token

HOME_STORE = "TOR-1"  # where the subject shops (its purchases are recorded there)


@dataclass(frozen=True)
class Caller:
    """Who asks. `relation` names a member of the scene (`itself`, `household`, `other`):
    the token's subject is then that member's commerce customer id."""

    name: str
    relation: str | None = None
    sub: str | None = None
    roles: tuple[str, ...] = ()
    store: str | None = None

    def subject(self, scene: Any) -> str | None:
        if self.relation is not None:
            sub: str = getattr(scene, f"{self.relation}_sub")
            return sub
        return self.sub

    def token(self, scene: Any) -> str | None:
        sub = self.subject(scene)
        return token(sub, *self.roles, store=self.store) if sub is not None else None

    def viewer(self, scene: Any) -> Viewer:
        sub = self.subject(scene)
        if sub is None:
            return Viewer.anonymous()
        return Viewer(sub, parse_roles(self.roles), self.store)

    @property
    def anonymous(self) -> bool:
        return self.relation is None and self.sub is None


ANONYMOUS = Caller("anonymous")
ITSELF = Caller("the member itself", "itself", roles=(Role.MEMBER,))
HOUSEHOLD = Caller("a member of its household", "household", roles=(Role.MEMBER,))
OTHER = Caller("another member", "other", roles=(Role.MEMBER,))
ASSOCIATE_HERE = Caller(
    "an associate of its store", sub="assoc-tor", roles=(Role.ASSOCIATE,), store=HOME_STORE
)
ASSOCIATE_THERE = Caller(
    "an associate of another store", sub="assoc-mtl", roles=(Role.ASSOCIATE,), store="MTL-1"
)
MARKETER = Caller("a marketer", sub="mkt-1", roles=(Role.MARKETER,))
SERVICE = Caller("a service", sub="pos-1", roles=(Role.SERVICE,))
ADMIN = Caller("an admin", sub="admin-1", roles=(Role.ADMIN,))
CALLERS = (
    ANONYMOUS, ITSELF, HOUSEHOLD, OTHER, ASSOCIATE_HERE, ASSOCIATE_THERE, MARKETER, SERVICE,
    ADMIN,
)  # fmt: skip
ASSOCIATES = (ASSOCIATE_HERE, ASSOCIATE_THERE)


def callers(*allowed: Caller) -> frozenset[str]:
    return frozenset(c.name for c in allowed)


EVERYONE = callers(*CALLERS)
AUTHENTICATED = EVERYONE - {ANONYMOUS.name}
READERS = callers(ITSELF, HOUSEHOLD, *ASSOCIATES, MARKETER, SERVICE, ADMIN)


@dataclass(frozen=True)
class Refusal:
    code: str  # UNAUTHENTICATED | NOT_ALLOWED
    message: str
    field: str | None = None  # the input field of a mutation's user error


@dataclass(frozen=True)
class Rule:
    """A field's rule: its permissions in order, each with the callers it lets through (a
    caller must pass them all). No permission: `open` says whether the field may be
    reached with no permission on the way (public program data) or only through a field
    that has one (everything about a member)."""

    name: str
    stages: tuple[tuple[type[BasePermission], frozenset[str]], ...] = ()
    open: bool = False

    @property
    def permissions(self) -> tuple[type[BasePermission], ...]:
        return tuple(p for p, _ in self.stages)

    def refusal(self, caller: Caller) -> Refusal | None:
        """Why the rule refuses `caller` (None: allowed), as the first refusing permission
        says it."""
        for permission, allowed in self.stages:
            if caller.name in allowed:
                continue
            if caller.anonymous:
                return Refusal("UNAUTHENTICATED", BEARER_REQUIRED)
            assert issubclass(permission, Permission)
            return Refusal("NOT_ALLOWED", permission.refusal, permission.refusal_field)
        return None


def guarded(permission: type[BasePermission], *allowed: Caller | frozenset[str]) -> Rule:
    names: set[str] = set()
    for a in allowed:
        names |= a if isinstance(a, frozenset) else {a.name}
    return Rule(permission.__name__, ((permission, frozenset(names)),))


PUBLIC = Rule("public program data", open=True)
VIA_PARENT = Rule("none of its own: reached only through a field with a permission")

READS_MEMBER = guarded(ReadsMember, READERS)
READS_INSIGHTS = Rule(
    "ReadsMember, ReadsInsights",
    (
        (ReadsMember, READERS),
        (ReadsInsights, callers(*ASSOCIATES, MARKETER, ADMIN)),
    ),
)
READS_HOUSEHOLD = guarded(ReadsHousehold, READERS)


def classify(type_name: str, rule: Rule, *fields: str) -> dict[tuple[str, str], Rule]:
    return {(type_name, f): rule for f in fields}


def classify_types(rule: Rule, types: dict[str, Iterable[str]]) -> dict[tuple[str, str], Rule]:
    return {(t, f): rule for t, fields in types.items() for f in fields}


# Every field of every object type, by name: a field added to the schema fails
# `test_every_field_of_the_schema_has_a_rule` until it is given one here.
RULES: dict[tuple[str, str], Rule] = {
    # --- the roots: who may ask at all --------------------------------------------------
    ("Query", "program"): PUBLIC,
    ("Query", "me"): guarded(Authenticated, AUTHENTICATED),
    ("Query", "node"): guarded(ReadsNode, READERS),
    ("Query", "member"): guarded(ReadsMemberById, READERS),
    ("Query", "memberByCard"): guarded(ReadsMemberByCard, READERS),
    ("Query", "members"): guarded(SearchesMembers, *ASSOCIATES, MARKETER, ADMIN),
    ("Query", "topCustomers"): guarded(ReadsTopCustomers, MARKETER, ADMIN),
    ("Query", "memberExport"): guarded(ExportsMembers, ADMIN),
    ("Subscription", "pointsChanged"): guarded(FollowsMember, READERS),
    # Federation (PATRON_FEDERATION=true): each representation is checked on its own, like
    # member(id:) (`resolvers/visibility.py`; tests/graphql/test_federation.py asks it as
    # every caller), and every field of the Member it returns guards itself.
    ("Query", "_entities"): Rule("per representation, as member(id:)", open=True),
    ("Query", "_service"): PUBLIC,  # the subgraph's SDL: no data (refused in production)
    ("_Service", "sdl"): PUBLIC,
    # Mutations, for the scenes of `MUTATIONS` in test_authorization.py: the subject owns a
    # household with the household member (but for enrolment, creating a household, and
    # leaving or being forgotten, where the household member owns it). `addHouseholdMember`:
    # the subject, as the owner, invites; staff and services add (`MORE_CASES` there: the
    # subject accepting an invitation, declining one).
    ("Mutation", "enrollMember"): guarded(EnrollsMember, ITSELF, *ASSOCIATES, SERVICE, ADMIN),
    ("Mutation", "recordPurchase"): guarded(RecordsPurchases, ASSOCIATE_HERE, SERVICE, ADMIN),
    ("Mutation", "returnPurchase"): guarded(ReturnsPurchases, *ASSOCIATES, SERVICE, ADMIN),
    ("Mutation", "redeemPoints"): guarded(RedeemsPoints, ITSELF, *ASSOCIATES, SERVICE, ADMIN),
    ("Mutation", "giftPoints"): guarded(GiftsPoints, ITSELF, SERVICE, ADMIN),
    ("Mutation", "donatePoints"): guarded(DonatesPoints, ITSELF, SERVICE, ADMIN),
    ("Mutation", "awardPoints"): guarded(AwardsPoints, ASSOCIATE_HERE, ADMIN),
    ("Mutation", "createHousehold"): guarded(CreatesHousehold, ITSELF, *ASSOCIATES, SERVICE, ADMIN),
    ("Mutation", "addHouseholdMember"): guarded(
        AddsHouseholdMember, ITSELF, *ASSOCIATES, SERVICE, ADMIN
    ),
    ("Mutation", "removeHouseholdMember"): guarded(
        RemovesHouseholdMember, ITSELF, HOUSEHOLD, *ASSOCIATES, SERVICE, ADMIN
    ),
    ("Mutation", "assignTier"): guarded(AssignsTiers, *ASSOCIATES, ADMIN),
    ("Mutation", "forgetMember"): guarded(ForgetsMember, ITSELF, SERVICE, ADMIN),
    # --- a member: every field personal ---------------------------------------------------
    **classify(
        "Member",
        READS_MEMBER,
        "id",
        "enrolledAt",
        "externalIds",
        "profile",
        "points",
        "transactions",
        "tier",
        "household",
        "offers",
        "cart",
        "orders",
        "card",
    ),
    ("Member", "insights"): READS_INSIGHTS,
    # Its own decision: not its household's members, not staff but admins.
    ("Member", "householdInvitations"): guarded(ReadsHouseholdInvitations, ITSELF, ADMIN),
    # Whom its household's owner invited: the owner's business, not its household's.
    ("Member", "sentHouseholdInvitations"): guarded(ReadsHouseholdInvitations, ITSELF, ADMIN),
    **classify("Household", READS_HOUSEHOLD, "id", "owner", "members", "pooledPoints"),
    # --- reached only through a field with a permission -----------------------------------
    **classify_types(
        VIA_PARENT,
        {
            "ExternalIds": ("commerceCustomerId", "cdpUserId", "email"),
            "Profile": (
                "userId",
                "firstName",
                "lastName",
                "email",
                "birthday",
                "audiences",
                "traits",
            ),
            "PointsBalance": ("available", "pending", "lifetimeEarned", "expiringNext"),
            "ExpiringPoints": ("points", "expiresAt"),
            "PointsTransactionConnection": ("edges", "pageInfo"),
            "PointsTransactionEdge": ("node", "cursor"),
            "PointsTransaction": (
                "id",
                "kind",
                "points",
                "status",
                "occurredAt",
                "description",
                "orderId",
                "channel",
                "availableAt",
            ),
            "PageInfo": ("hasNextPage", "endCursor"),
            "TierStatus": (
                "current",
                "qualifyingSpend",
                "nextTier",
                "spendToNextTier",
                "validUntil",
            ),
            "Money": ("amount", "currencyCode"),
            "Offer": (
                "id",
                "kind",
                "title",
                "code",
                "discountPercent",
                "bonusPoints",
                "validUntil",
                "content",
            ),
            "Cart": ("id", "total", "lineItems", "pointsPreview", "tierDiscount"),
            "CartLine": ("sku", "name", "quantity", "unitPrice", "total", "imageUrl"),
            "Order": ("id", "orderNumber", "total", "createdAt", "state"),
            "MemberCard": ("code", "qrSvg"),
            "MemberInsights": (
                "segment",
                "recencyDays",
                "frequency12m",
                "spend12m",
                "engagementScore",
                "churnRisk",
                "computedAt",
            ),
            "MemberConnection": ("edges", "pageInfo", "totalCount"),
            "MemberEdge": ("node", "cursor"),
            "CustomerSpend": ("member", "spend", "orders"),
            "EnrollMemberPayload": ("member", "userErrors"),
            "PointsPayload": ("transaction", "member", "userErrors"),
            "HouseholdInvitation": ("householdId", "memberId", "expiresAt"),
            "HouseholdPayload": ("household", "invitation", "userErrors"),
            "MemberPayload": ("member", "userErrors"),
            "ForgetMemberPayload": ("forgottenMemberId", "userErrors"),
            "UserError": ("code", "field", "message"),
        },
    ),
    # --- public: the program, its tiers and their CMS copy (also under a member's tier) ---
    **classify_types(
        PUBLIC,
        {
            "Program": ("key", "name", "currencyCode", "pointsName", "tiers"),
            "Tier": (
                "key",
                "name",
                "rank",
                "hidden",
                "discountPercent",
                "earnMultiplier",
                "benefits",
                "minSpend",
                "content",
            ),
            "Content": ("deliveryId", "deliveryKey", "schema", "name", "fields", "imageUrl"),
        },
    ),
}
