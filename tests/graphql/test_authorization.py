"""Authorization on every field, for every caller (README, Security: authorization).

- The guard: every field of every object type of the schema has a rule in
  `tests/graphql/authz.RULES`; the permissions each field declares are exactly its rule's;
  and a field without a permission of its own is never reachable from a root without
  passing one that has one (only public program data is).
- Reads: every field of every object type reachable from `Member` (found by walking the
  schema, not listed by hand), asked for a known member by each of the nine callers,
  through `member(id:)` and through a door that checks nothing, is exactly what an admin
  gets (allowed), or null with the exact error at the exact path (refused).
- Roots and the subscription: each asked by each caller.
- Mutations: mutation x caller, allowed or `NOT_ALLOWED`; a refusal changes no row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import strawberry
from graphql import (
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    GraphQLUnionType,
    get_named_type,
    is_leaf_type,
)
from sqlalchemy import text
from strawberry.permission import PermissionExtension
from strawberry.types import Info

from adapters.commerce.fake import FakeLine
from adapters.db.tables import metadata
from gateway.schema import build_schema
from loyalty.models import OfferKind
from loyalty.store import NewOffer
from resolvers.context import Context
from resolvers.members import Member
from resolvers.node import local_id
from resolvers.permissions import AddsHouseholdMember, RemovesHouseholdMember
from tests.conftest import Harness, token
from tests.graphql.authz import (
    ADMIN,
    ASSOCIATES,
    CALLERS,
    HOME_STORE,
    HOUSEHOLD,
    ITSELF,
    RULES,
    SERVICE,
    Caller,
    Refusal,
    Rule,
    guarded,
)
from tests.graphql.conftest import enroll
from tests.graphql.ws import serving, ws_client

SCHEMA = build_schema()
GRAPHQL: GraphQLSchema = SCHEMA._schema
# The guard also covers the schema as a federation subgraph (PATRON_FEDERATION=true).
SCHEMAS: dict[str, GraphQLSchema] = {
    "plain": GRAPHQL,
    "federated": build_schema(federation=True)._schema,
}
CALLER_IDS = [c.name for c in CALLERS]


def object_types(schema: GraphQLSchema) -> dict[str, GraphQLObjectType]:
    return {
        name: t
        for name, t in schema.type_map.items()
        if isinstance(t, GraphQLObjectType) and not name.startswith("__")
    }


def declared_permissions(type_name: str, field_name: str) -> tuple[type, ...]:
    """The permission classes a field declares, in the order they run."""
    gql_field = object_types(SCHEMAS["federated"])[type_name].fields[field_name]
    definition = gql_field.extensions["strawberry-definition"]
    return tuple(
        type(permission)
        for extension in definition.extensions
        if isinstance(extension, PermissionExtension)
        for permission in extension.permissions
    )


# --- the guard: a rule for every field -----------------------------------------------------
def schema_fields(schema: GraphQLSchema) -> set[tuple[str, str]]:
    return {(t, f) for t, gtype in object_types(schema).items() for f in gtype.fields}


def test_every_field_of_the_schema_has_a_rule() -> None:
    fields = set().union(*(schema_fields(s) for s in SCHEMAS.values()))
    assert sorted(fields - RULES.keys()) == [], "fields without a rule: classify them in authz.py"
    assert sorted(RULES.keys() - fields) == [], "rules for fields the schema no longer has"
    assert schema_fields(GRAPHQL) <= schema_fields(SCHEMAS["federated"])


@pytest.mark.parametrize(("type_name", "field_name"), sorted(RULES))
def test_each_field_declares_the_permissions_of_its_rule(type_name: str, field_name: str) -> None:
    assert declared_permissions(type_name, field_name) == RULES[type_name, field_name].permissions


@pytest.mark.parametrize("flavour", sorted(SCHEMAS))
def test_no_field_is_reachable_without_a_permission_unless_it_is_public(flavour: str) -> None:
    """From the roots, through fields without a permission only: everything reached is
    public program data (`program`, its tiers and their content), or federation's
    `_entities` and `_service`."""
    schema = SCHEMAS[flavour]
    types = object_types(schema)
    reached: set[tuple[str, str]] = set()
    seen: set[str] = set()
    pending = ["Query", "Mutation", "Subscription"]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        for field_name, gql_field in types[name].fields.items():
            rule = RULES[name, field_name]
            if rule.permissions:
                continue  # everything below is behind this field's permission
            reached.add((name, field_name))
            inner = get_named_type(gql_field.type)
            if isinstance(inner, GraphQLObjectType):
                pending.append(inner.name)
            elif isinstance(inner, GraphQLUnionType):  # _entities: Member
                pending.extend(t.name for t in schema.get_possible_types(inner))
    assert {(t, f) for t, f in reached if not RULES[t, f].open} == set()
    expected = {"Query", "Program", "Tier", "Content"}
    if flavour == "federated":
        expected |= {"_Service"}
    assert {t for t, _ in reached} == expected


# --- reads: every field reachable from a member --------------------------------------------
def reachable_from(type_name: str) -> set[tuple[str, str]]:
    types = object_types(GRAPHQL)
    found: set[tuple[str, str]] = set()
    pending, seen = [type_name], set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        for field_name, gql_field in types[name].fields.items():
            found.add((name, field_name))
            inner = get_named_type(gql_field.type)
            if isinstance(inner, GraphQLObjectType):
                pending.append(inner.name)
    return found


def selection(gtype: GraphQLObjectType, path: tuple[str, ...]) -> tuple[str, set[tuple[str, str]]]:
    """Every field of `gtype`, and of the types below it; a type already on the path (a
    household's members are members) only by its `id`. Returns the selection and the
    (type, field) pairs it asks."""
    parts: list[str] = []
    asked: set[tuple[str, str]] = set()
    for name, gql_field in gtype.fields.items():
        required = [a for a, arg in gql_field.args.items() if isinstance(arg.type, GraphQLNonNull)]
        assert not [a for a in required if gql_field.args[a].default_value is None], (
            f"{gtype.name}.{name} has a required argument: give the walk a value for it"
        )
        inner = get_named_type(gql_field.type)
        if is_leaf_type(inner):
            parts.append(name)
            asked.add((gtype.name, name))
            continue
        assert isinstance(inner, GraphQLObjectType), f"{gtype.name}.{name}: not an object"
        if inner.name in path:
            if "id" in inner.fields:
                parts.append(f"{name} {{ id }}")
                asked |= {(gtype.name, name), (inner.name, "id")}
            continue
        below, below_asked = selection(inner, (*path, inner.name))
        parts.append(f"{name} {{ {below} }}")
        asked |= {(gtype.name, name), *below_asked}
    return " ".join(parts), asked


def member_field_queries(root: str) -> dict[str, tuple[str, set[tuple[str, str]]]]:
    """One query per field of `Member`, asking the whole tree below it."""
    member = object_types(GRAPHQL)["Member"]
    queries = {}
    for name in member.fields:
        tree, asked = selection(GraphQLObjectType("Only", {name: member.fields[name]}), ("Member",))
        queries[name] = (
            f"query($id: ID!) {{ {root}(id: $id) {{ {tree} }} }}",
            {(t if t != "Only" else "Member", f) for t, f in asked},
        )
    return queries


def test_the_member_queries_ask_every_field_reachable_from_a_member() -> None:
    asked = set().union(*(a for _, a in member_field_queries("member").values()))
    assert asked == reachable_from("Member")
    # Today: 108 fields of 21 types. A field added below Member is asked without any change.
    assert (len(asked), len({t for t, _ in asked})) == (108, 21)


def filled(value: Any, gtype: GraphQLOutputType, out: set[tuple[str, str]]) -> None:
    """The (type, field) pairs that hold a value (not null, not an empty list)."""
    if isinstance(gtype, GraphQLNonNull):
        gtype = gtype.of_type
    if value is None:
        return
    if isinstance(gtype, GraphQLList):
        for item in value:
            filled(item, gtype.of_type, out)
        return
    if not isinstance(gtype, GraphQLObjectType):
        return
    for name, inner in value.items():
        if inner is not None and inner != []:
            out.add((gtype.name, name))
        filled(inner, gtype.fields[name].type, out)


@dataclass
class Scene:
    """The subject, a member of its household, another member; global ids and subs."""

    n: int
    itself_sub: str
    household_sub: str
    other_sub: str
    subject: str = ""
    housemate: str = ""
    other: str = ""
    newcomer: str = ""
    household: str = ""
    order: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


RECORD = """
mutation($i: RecordPurchaseInput!) { recordPurchase(input: $i) { userErrors { code } } }
"""


async def ok(h: Harness, query: str, variables: dict[str, Any], tok: str | None) -> Any:
    body = await h.gql(query, variables, tok)
    assert "errors" not in body, body
    (payload,) = body["data"].values()
    if isinstance(payload, dict) and "userErrors" in payload:
        assert payload["userErrors"] == [], payload
    return payload


async def record(h: Harness, member: str, order: str, amount: str, key: str) -> None:
    purchase = {
        "memberId": member,
        "orderId": order,
        "total": {"amount": amount, "currencyCode": "CAD"},
        "channel": "POS",
        "storeId": HOME_STORE,
        "idempotencyKey": key,
    }
    await ok(h, RECORD, {"i": purchase}, token("svc", "service"))


async def make_household(h: Harness, owner: str, member: str) -> str:
    svc = token("svc", "service")
    created = await ok(
        h,
        "mutation($i: CreateHouseholdInput!) { createHousehold(input: $i) { household { id } userErrors { code } } }",
        {"i": {"ownerId": owner}},
        svc,
    )
    household: str = created["household"]["id"]
    await ok(
        h,
        "mutation($i: AddHouseholdMemberInput!) { addHouseholdMember(input: $i) { userErrors { code } } }",
        {"i": {"householdId": household, "memberId": member}},
        svc,
    )
    return household


async def invite(h: Harness, household: str, member: str, owner_sub: str) -> None:
    """The household's owner (its token's subject) invites a member."""
    await ok(
        h,
        "mutation($i: AddHouseholdMemberInput!) { addHouseholdMember(input: $i) { userErrors { code } } }",
        {"i": {"householdId": household, "memberId": member}},
        token(owner_sub, "member"),
    )


async def read_scene(h: Harness) -> Scene:
    """Ava, with a value in every field of her member view: a gold tier with CMS copy, a
    household with Ben (and an invitation from her to Fay), earned, pending and awarded
    points, an offer with every detail, a CDP profile, a cart, orders, and an invitation to
    Dee's household. Cy is another member."""
    s = Scene(0, "ava", "ben", "cy")
    for tier in ("member", "silver", "gold", "black"):
        h.fakes.cms.add_content(
            f"tiers/{tier}", "https://schema.example/tier.json", tier, {"t": tier}, image=tier
        )
    h.fakes.cms.add_content(
        "offers/vip-welcome", "https://schema.example/offer.json", "VIP", {}, image="vip"
    )
    h.fakes.cdp.add_profile(
        "ava",
        {"first_name": "Ava", "last_name": "Laurent", "email": "ava@example.com",
         "birthday": "1988-03-14", "vip": True},
    )  # fmt: skip
    h.fakes.commerce.add_cart("ava", [FakeLine("COAT-1", "Overcoat", 1, "2495.00", "coat")])
    h.fakes.commerce.add_order(
        "ava", "310.00", created_at=h.clock() - timedelta(days=3), order_number="HR-2"
    )
    s.subject = await enroll(h, "ava", email="ava@example.com")
    s.housemate = await enroll(h, "ben")
    s.other = await enroll(h, "cy")
    await record(h, s.subject, "ava-1", "8000.00", "k-ava-1")  # gold
    h.clock.advance(days=31)  # available (and expiring in 24 months)
    await record(h, s.subject, "ava-2", "100.00", "k-ava-2")  # pending
    await ok(
        h,
        "mutation($i: AwardPointsInput!) { awardPoints(input: $i) { userErrors { code } } }",
        {"i": {"memberId": s.subject, "points": 100, "reason": "Welcome", "idempotencyKey": "a"}},
        token("assoc-tor", "associate", store=HOME_STORE),
    )
    s.household = await make_household(h, s.subject, s.housemate)
    await invite(h, s.household, await enroll(h, "fay"), "ava")  # pending, sent by Ava
    dee = await enroll(h, "dee")
    await invite(h, await make_household(h, dee, await enroll(h, "eve")), s.subject, "dee")
    member_id = local_id(s.subject, "Member")
    async with h.gateway.services.store.session() as session:
        assert await session.add_offer(
            NewOffer(
                id="00000000-0000-4000-8000-000000000001",
                key="vip-welcome",
                kind=OfferKind.PROMO_CODE,
                title="Welcome, VIP",
                created_at=h.clock(),
                code="VIP-10",
                discount_percent=Decimal("10"),
                bonus_points=100,
                member_id=member_id,
                valid_until=h.clock() + timedelta(days=30),
            )
        )
    return s


@strawberry.type
class DoorlessQuery:
    """A door that checks nothing: what a forgotten check in a future root field would be.
    The fields of `Member` must refuse by themselves."""

    @strawberry.field
    async def member_without_guard(self, info: Info[Any, Any], id: strawberry.ID) -> Member | None:
        member = await info.context.loaders.member_by_id.load(local_id(id, "Member") or "")
        return Member.of(member) if member else None


DOORLESS = strawberry.Schema(query=DoorlessQuery)


async def ask_doorless(h: Harness, query: str, scene: Scene, caller: Caller) -> dict[str, Any]:
    context = Context.build(caller.viewer(scene), h.gateway.services)
    result = await DOORLESS.execute(query, {"id": scene.subject}, context_value=context)
    body: dict[str, Any] = {"data": result.data}
    if result.errors:
        body["errors"] = [e.formatted for e in result.errors]
    return body


def without_locations(body: dict[str, Any]) -> dict[str, Any]:
    if "errors" in body:
        body = {
            **body,
            "errors": [{k: v for k, v in e.items() if k != "locations"} for e in body["errors"]],
        }
    return body


def refused(refusal: Refusal, path: list[str]) -> dict[str, Any]:
    return {"message": refusal.message, "path": path, "extensions": {"code": refusal.code}}


def expected_answer(
    root: str, name: str, door: Refusal | None, caller: Caller, reference: dict[str, Any]
) -> dict[str, Any]:
    """`reference`: the admin's `{root: {name: ...}}`."""
    if door is not None:
        return {"data": {root: None}, "errors": [refused(door, [root])]}
    refusal = RULES["Member", name].refusal(caller)
    if refusal is None:
        return {"data": reference}
    nullable = not isinstance(object_types(GRAPHQL)["Member"].fields[name].type, GraphQLNonNull)
    # A refused non-null field nulls its parent (GraphQL's null propagation); a nullable
    # one is null by itself and its siblings are untouched.
    data = {root: {name: None}} if nullable else {root: None}
    return {"data": data, "errors": [refused(refusal, [root, name])]}


def nested_rules_allow(asked: set[tuple[str, str]], top: str, caller: Caller) -> None:
    """Below a member field the caller may read, nothing refuses it: the objects there are
    the subject's, its household and their members (so the admin's answer is expected)."""
    if RULES["Member", top].refusal(caller) is not None:
        return
    for key in asked - {("Member", top)}:
        assert RULES[key].refusal(caller) is None, (key, caller.name)


@pytest.mark.parametrize("caller", CALLERS, ids=CALLER_IDS)
async def test_every_field_of_a_member_as_each_caller(harness: Harness, caller: Caller) -> None:
    h = harness
    scene = await read_scene(h)
    public = member_field_queries("member")
    doorless = member_field_queries("memberWithoutGuard")
    door = RULES["Query", "member"].refusal(caller)
    assert set(public) == set(object_types(GRAPHQL)["Member"].fields)
    values: set[tuple[str, str]] = set()
    for name, (query, asked) in public.items():
        reference = await h.gql(query, {"id": scene.subject}, ADMIN.token(scene))
        assert "errors" not in reference, reference
        filled(reference["data"]["member"], GRAPHQL.type_map["Member"], values)
        nested_rules_allow(asked, name, caller)

        answer = await h.gql(query, {"id": scene.subject}, caller.token(scene))
        assert without_locations(answer) == expected_answer(
            "member", name, door, caller, reference["data"]
        ), name

        doorless_query = doorless[name][0]
        doorless_reference = {"memberWithoutGuard": reference["data"]["member"]}
        answer = await ask_doorless(h, doorless_query, scene, caller)
        assert without_locations(answer) == expected_answer(
            "memberWithoutGuard", name, None, caller, doorless_reference
        ), name
    # Every field holds a value for the admin, so "allowed" above means a value was shown.
    assert reachable_from("Member") - values == set()


# --- roots and the subscription ---------------------------------------------------------------
ROOTS: dict[str, tuple[str, Any]] = {
    "program": ("{ program { key tiers { key } } }", lambda s: {}),
    "me": ("{ me { id } }", lambda s: {}),
    "node": ("query($id: ID!) { node(id: $id) { id } }", lambda s: {"id": s.subject}),
    "member": ("query($id: ID!) { member(id: $id) { id } }", lambda s: {"id": s.subject}),
    "memberByCard": (
        "query($c: String!) { memberByCard(code: $c) { id } }",
        lambda s: {"c": s.extra["card"]},
    ),
    "members": ('{ members(search: "ava") { totalCount } }', lambda s: {}),
    "topCustomers": (
        '{ topCustomers(month: "2026-11") { spend { amount } orders } }',
        lambda s: {},
    ),
    "memberExport": (
        "query($id: ID!) { memberExport(id: $id) }",
        lambda s: {"id": s.subject},
    ),
}
ME = {
    "the member itself": "subject",
    "a member of its household": "housemate",
    "another member": "other",
}


def test_every_root_query_is_asked() -> None:
    assert set(ROOTS) == set(object_types(GRAPHQL)["Query"].fields)


@pytest.mark.parametrize("caller", CALLERS, ids=CALLER_IDS)
async def test_every_root_query_as_each_caller(harness: Harness, caller: Caller) -> None:
    h = harness
    scene = await read_scene(h)
    card = await ok(h, "{ me { card { code } } }", {}, token("ava", "member"))
    scene.extra["card"] = card["card"]["code"]
    for name, (query, variables) in ROOTS.items():
        admin = ADMIN.token(scene) if name != "me" else token("ava", "member")
        reference = await h.gql(query, variables(scene), admin)
        assert "errors" not in reference and reference["data"][name] is not None, reference
        answer = await h.gql(query, variables(scene), caller.token(scene))
        refusal = RULES["Query", name].refusal(caller)
        if refusal is not None:
            nullable = not isinstance(
                object_types(GRAPHQL)["Query"].fields[name].type, GraphQLNonNull
            )
            assert without_locations(answer) == {
                "data": {name: None} if nullable else None,
                "errors": [refused(refusal, [name])],
            }, name
        elif name == "me":  # the caller's own member; null for a token that is no member's
            relation = ME.get(caller.name)
            assert answer == {
                "data": {"me": {"id": getattr(scene, relation)} if relation else None}
            }
        else:
            assert answer == reference, name


@pytest.mark.parametrize("caller", CALLERS, ids=CALLER_IDS)
async def test_following_a_member_s_points_as_each_caller(harness: Harness, caller: Caller) -> None:
    h = harness
    scene = Scene(0, "ava", "ben", "cy")
    scene.subject = await enroll(h, "ava")
    scene.housemate = await enroll(h, "ben")
    await enroll(h, "cy")
    await make_household(h, scene.subject, scene.housemate)
    refusal = RULES["Subscription", "pointsChanged"].refusal(caller)
    tok = caller.token(scene)
    async with serving(h.app) as url, ws_client(url) as client:
        init = {"Authorization": f"Bearer {tok}"} if tok else {}
        assert await client.init(init) == {"type": "connection_ack"}
        await client.subscribe(
            "1", "subscription($id: ID!) { pointsChanged(memberId: $id) { available } }",
            {"id": scene.subject},
        )  # fmt: skip
        first = await client.receive()
        if refusal is None:
            assert first == {
                "id": "1",
                "type": "next",
                "payload": {"data": {"pointsChanged": {"available": 0}}},
            }
        else:
            error = {"message": refusal.message, "extensions": {"code": refusal.code}}
            assert first == {
                "id": "1",
                "type": "next",
                "payload": {"data": None, "errors": [error]},
            }
            assert await client.receive() == {"id": "1", "type": "complete"}


# --- mutations ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """A mutation's input for a scene; `owner`: who owns the scene's household ("itself",
    "household", "inviting": the household member owns it and invited the subject, or None:
    no household); `enrolled`: whether the subject is a member yet."""

    input: Any
    owner: str | None = "itself"
    enrolled: bool = True


MUTATIONS: dict[str, Case] = {
    "enrollMember": Case(lambda s: {"commerceCustomerId": s.itself_sub}, None, enrolled=False),
    "recordPurchase": Case(
        lambda s: {
            "memberId": s.subject,
            "orderId": f"new-{s.n}",
            "total": {"amount": "100.00", "currencyCode": "CAD"},
            "channel": "POS",
            "storeId": HOME_STORE,
            "idempotencyKey": f"rp-{s.n}",
        }
    ),
    "returnPurchase": Case(lambda s: {"orderId": s.order, "idempotencyKey": f"ret-{s.n}"}),
    "redeemPoints": Case(
        lambda s: {"memberId": s.subject, "points": 100, "idempotencyKey": f"red-{s.n}"}
    ),
    "giftPoints": Case(
        lambda s: {
            "fromMemberId": s.subject,
            "toMemberId": s.other,
            "points": 100,
            "idempotencyKey": f"gift-{s.n}",
        }
    ),
    "donatePoints": Case(
        lambda s: {
            "memberId": s.subject,
            "charityKey": "sickkids",
            "points": 100,
            "idempotencyKey": f"don-{s.n}",
        }
    ),
    "awardPoints": Case(
        lambda s: {
            "memberId": s.subject,
            "points": 50,
            "reason": "Thank you",
            "storeId": HOME_STORE,
            "idempotencyKey": f"aw-{s.n}",
        }
    ),
    "createHousehold": Case(lambda s: {"ownerId": s.subject}, None),
    "addHouseholdMember": Case(lambda s: {"householdId": s.household, "memberId": s.newcomer}),
    "removeHouseholdMember": Case(
        lambda s: {"householdId": s.household, "memberId": s.subject}, "household"
    ),
    "assignTier": Case(lambda s: {"memberId": s.subject, "tierKey": "gold", "reason": "VIP"}),
    "forgetMember": Case(lambda s: {"memberId": s.subject}, "household"),
}


# Mutations whose permission lets other callers through in another scene: the subject
# invited to the household member's household. (scene name -> mutation, case, rule)
INVITED = Case(lambda s: {"householdId": s.household, "memberId": s.subject}, "inviting")
MORE_CASES: dict[str, tuple[str, Case, Rule]] = {
    # The subject accepts; its owner invites it again (a later expiry); staff and services add.
    "addHouseholdMember, invited": (
        "addHouseholdMember",
        INVITED,
        guarded(AddsHouseholdMember, ITSELF, HOUSEHOLD, *ASSOCIATES, SERVICE, ADMIN),
    ),
    # The subject declines; the owner withdraws the invitation; staff and services drop it.
    "removeHouseholdMember, invited": (
        "removeHouseholdMember",
        INVITED,
        guarded(RemovesHouseholdMember, ITSELF, HOUSEHOLD, *ASSOCIATES, SERVICE, ADMIN),
    ),
}
CASES: dict[str, tuple[str, Case, Rule]] = {
    **{name: (name, case, RULES["Mutation", name]) for name, case in MUTATIONS.items()},
    **MORE_CASES,
}


def test_every_mutation_is_asked() -> None:
    assert set(MUTATIONS) == set(object_types(GRAPHQL)["Mutation"].fields)
    assert {name for name, _, _ in MORE_CASES.values()} <= set(MUTATIONS)


async def mutation_scene(h: Harness, n: int, case: Case) -> Scene:
    """Fresh members for one caller: the subject (with 500 available points and an order
    of its store), a member of its household, another member, a newcomer."""
    s = Scene(n, f"ava-{n}", f"ben-{n}", f"cy-{n}")
    s.housemate = await enroll(h, s.household_sub)
    s.other = await enroll(h, s.other_sub)
    s.newcomer = await enroll(h, f"dee-{n}")
    if not case.enrolled:
        return s
    s.subject = await enroll(h, s.itself_sub)
    s.order = f"order-{n}"
    await record(h, s.subject, s.order, "100.00", f"k-order-{n}")
    await ok(
        h,
        "mutation($i: AwardPointsInput!) { awardPoints(input: $i) { userErrors { code } } }",
        {
            "i": {
                "memberId": s.subject,
                "points": 500,
                "reason": "Seed",
                "idempotencyKey": f"seed-{n}",
            }
        },
        token(f"admin-seed-{n}", "admin"),
    )
    if case.owner == "itself":
        s.household = await make_household(h, s.subject, s.housemate)
    elif case.owner == "household":
        s.household = await make_household(h, s.housemate, s.subject)
    elif case.owner == "inviting":
        s.household = await make_household(h, s.housemate, s.newcomer)
        await invite(h, s.household, s.subject, s.household_sub)
        h.clock.advance(minutes=1)  # so that the owner inviting again changes the row
    return s


async def snapshot(h: Harness) -> dict[str, list[str]]:
    """Every row of every table (and the CDP deletion requests sent)."""
    rows: dict[str, list[str]] = {}
    async with h.engine.connect() as conn:
        for table in metadata.sorted_tables:
            result = await conn.execute(text(f'SELECT * FROM "{table.name}"'))
            rows[table.name] = sorted(repr(tuple(r)) for r in result.all())
    rows["cdp deletion requests"] = [repr(r) for r in h.fakes.cdp.deletion_requests]
    return rows


def mutation_document(name: str) -> str:
    """`name(input: $i)` with every field of its payload (objects by their `__typename`)."""
    gql_field = object_types(GRAPHQL)["Mutation"].fields[name]
    payload = get_named_type(gql_field.type)
    assert isinstance(payload, GraphQLObjectType)
    parts = [
        f if is_leaf_type(get_named_type(t.type)) else f"{f} {{ __typename }}"
        for f, t in payload.fields.items()
        if f != "userErrors"
    ]
    input_type = get_named_type(gql_field.args["input"].type).name
    return (
        f"mutation($i: {input_type}!) {{ {name}(input: $i) "
        f"{{ {' '.join(parts)} userErrors {{ code field message }} }} }}"
    )


def store_refusal(caller: Caller) -> Refusal | None:
    """What an associate of another store is told (its token's store is not the input's)."""
    if caller.store is not None and caller.store != HOME_STORE:
        return Refusal(
            "NOT_ALLOWED",
            f"an associate records purchases and awards points only for its own store "
            f"({caller.store})",
            "storeId",
        )
    return None


@pytest.mark.parametrize("scene", sorted(CASES))
async def test_each_mutation_as_each_caller(harness: Harness, scene: str) -> None:
    h = harness
    name, case, rule = CASES[scene]
    document = mutation_document(name)
    for n, caller in enumerate(CALLERS):
        scene = await mutation_scene(h, n, case)
        before = await snapshot(h)
        body = await h.gql(document, {"i": case.input(scene)}, caller.token(scene))
        assert "errors" not in body, (caller.name, body)
        payload = body["data"][name]
        refusal = rule.refusal(caller)
        if refusal is not None and name in ("recordPurchase", "awardPoints"):
            refusal = store_refusal(caller) or refusal
        if refusal is None:
            assert payload["userErrors"] == [], (caller.name, payload)
            assert await snapshot(h) != before, caller.name
            continue
        expected = {
            "code": "NOT_ALLOWED",  # a mutation's refusal is data, UNAUTHENTICATED too
            "field": [refusal.field] if refusal.field else None,
            "message": refusal.message,
        }
        assert payload == {
            **{k: None for k in payload if k != "userErrors"},
            "userErrors": [expected],
        }, caller.name
        assert await snapshot(h) == before, caller.name
