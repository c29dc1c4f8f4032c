"""`PATRON_FEDERATION=true`: the schema as an Apollo Federation 2 subgraph, through ASGI.

`_entities` answers each representation exactly as `member(id)` answers the same member
for the same caller (the table below compares them case by case), in one query per key.
The composition with a real gateway from npm is tests/integration/test_federation.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from gateway.demo import Fakes
from gateway.settings import Settings
from resolvers.entities import MAX_REPRESENTATIONS
from resolvers.node import to_global_id
from tests.conftest import Clock, Harness, SqlCounter, settings_for, token
from tests.graphql.conftest import enroll, purchase

ROOT = Path(__file__).resolve().parents[2]

ENTITIES = """
query($r: [_Any!]!) {
  _entities(representations: $r) {
    __typename
    ... on Member { id externalIds { commerceCustomerId } points { available } }
  }
}
"""
MEMBER = "query($id: ID!) { member(id: $id) { id externalIds { commerceCustomerId } points { available } } }"
NOT_ALLOWED = {
    "message": "a member may read only itself and its household",
    "extensions": {"code": "NOT_ALLOWED"},
}


@pytest.fixture
def settings(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    return settings_for(database_url, monkeypatch).model_copy(update={"federation": True})


def by_id(member_id: str) -> dict[str, Any]:
    return {"__typename": "Member", "id": member_id}


def by_commerce_id(commerce_id: str) -> dict[str, Any]:
    return {"__typename": "Member", "externalIds": {"commerceCustomerId": commerce_id}}


async def entities(h: Harness, representations: list[Any], tok: str | None) -> dict[str, Any]:
    return await h.gql(ENTITIES, {"r": representations}, tok)


def view(member_id: str, commerce_id: str, available: int) -> dict[str, Any]:
    return {
        "__typename": "Member",
        "id": member_id,
        "externalIds": {"commerceCustomerId": commerce_id},
        "points": {"available": available},
    }


async def test_service_sdl_is_the_committed_federated_schema(harness: Harness) -> None:
    body = await harness.gql("{ _service { sdl } }")  # anonymous: a router asks with no token
    committed = (ROOT / "schema.federation.graphql").read_text(encoding="utf-8")
    assert body == {"data": {"_service": {"sdl": committed.removesuffix("\n")}}}
    assert committed.startswith(
        'schema @link(url: "https://specs.apollo.dev/federation/v2.0", import: ["@key"]) {\n'
    )
    assert (
        'type Member implements Node @key(fields: "id") '
        '@key(fields: "externalIds { commerceCustomerId }") {\n'
    ) in committed
    assert "union _Entity = Member\n" in committed


async def test_entities_by_both_keys_for_a_service_caller(harness: Harness) -> None:
    h = harness
    ava = await enroll(h, "ava")
    ben = await enroll(h, "ben")
    await purchase(h, ava, "a-1", "120.00")
    h.clock.advance(days=31)  # past the pending days: available
    body = await entities(
        h,
        [by_commerce_id("ben"), by_id(ava), by_commerce_id("ava"), by_id(ben)],
        token("pos-1", "service"),
    )
    assert body == {
        "data": {
            "_entities": [
                view(ben, "ben", 0),
                view(ava, "ava", 120),
                view(ava, "ava", 120),
                view(ben, "ben", 0),
            ]
        }
    }


async def test_n_references_cost_one_query_per_key(harness: Harness) -> None:
    h = harness
    members = [(await enroll(h, f"c-{i}"), f"c-{i}") for i in range(6)]
    reps = [by_id(m) for m, _ in members[:3]] + [by_commerce_id(c) for _, c in members[3:]]
    query = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Member { id } } }"

    h.sql.reset()
    body = await h.gql(query, {"r": reps}, token("pos-1", "service"))
    assert body == {"data": {"_entities": [{"id": m} for m, _ in members]}}
    member_queries = [q for q in h.sql.queries if "FROM members" in q]
    assert len(member_queries) == 2, h.sql.queries  # one by id, one by commerce id
    assert h.sql.count == 2, h.sql.queries

    h.sql.reset()
    body = await h.gql(
        query, {"r": [by_id(members[0][0]), by_commerce_id("c-5")]}, token("pos-1", "service")
    )
    assert body == {"data": {"_entities": [{"id": members[0][0]}, {"id": members[5][0]}]}}
    assert h.sql.count == 2, h.sql.queries  # the same for 2 references as for 6


async def test_entities_answer_exactly_as_member_id_for_every_caller_and_target(
    harness: Harness,
) -> None:
    h = harness
    ava = await enroll(h, "ava")  # owns a household with Ben
    ben = await enroll(h, "ben")
    chloe = await enroll(h, "chloe")  # alone
    created = await h.gql(
        "mutation($i: CreateHouseholdInput!) { createHousehold(input: $i) { household { id } userErrors { code } } }",
        {"i": {"ownerId": ava}},
        token("ava", "member"),
    )
    household = created["data"]["createHousehold"]["household"]["id"]
    for who in ("ava", "ben"):  # Ava invites Ben; Ben accepts
        added = await h.gql(
            "mutation($i: AddHouseholdMemberInput!) { addHouseholdMember(input: $i) { userErrors { code } } }",
            {"i": {"householdId": household, "memberId": ben}},
            token(who, "member"),
        )
        assert added["data"]["addHouseholdMember"]["userErrors"] == []
    nobody = to_global_id("Member", "00000000-0000-0000-0000-000000000000")
    targets = {
        "itself": (ava, "ava"),
        "household mate": (ben, "ben"),
        "another member": (chloe, "chloe"),
        "nobody": (nobody, "not-a-member"),
    }
    callers = {
        "anonymous": None,
        "member": token("ava", "member"),
        "mate": token("ben", "member"),
        "associate": token("assoc-1", "associate", store="TOR-1"),
        "marketer": token("mkt-1", "marketer"),
        "service": token("pos-1", "service"),
        "admin": token("admin-1", "admin"),
        "no role": token("ava"),
    }
    answers: dict[tuple[str, str], tuple[Any, Any]] = {}
    for caller, tok in callers.items():
        for target, (member_id, commerce_id) in targets.items():
            direct = await h.gql(MEMBER, {"id": member_id}, tok)
            expected_data = direct["data"]["member"]
            expected_errors = [
                {"message": e["message"], "extensions": e["extensions"]}
                for e in direct.get("errors", [])
            ]
            for rep in (by_id(member_id), by_commerce_id(commerce_id)):
                body = await entities(h, [rep], tok)
                entity = body["data"]["_entities"][0]
                if entity is not None:
                    assert entity.pop("__typename") == "Member"
                errors = [
                    {"message": e["message"], "extensions": e["extensions"]}
                    for e in body.get("errors", [])
                ]
                assert (entity, errors) == (expected_data, expected_errors), (caller, target, rep)
                assert all(e["path"] == ["_entities", 0] for e in body.get("errors", []))
            answers[caller, target] = (
                expected_data is not None,
                expected_errors[0]["extensions"]["code"] if expected_errors else None,
            )

    # And what member(id) says, so that the comparison above compares something.
    staff = {"associate", "marketer", "service", "admin"}
    for (caller, target), answer in answers.items():
        if caller == "anonymous":
            assert answer == (False, "UNAUTHENTICATED"), (caller, target)
        elif target == "nobody":
            assert answer == (False, "NOT_FOUND" if caller in staff else "NOT_ALLOWED")
        elif caller in staff or (caller in ("member", "mate") and target != "another member"):
            assert answer == (True, None), (caller, target)
        else:
            assert answer == (False, "NOT_ALLOWED"), (caller, target)


async def test_a_refused_representation_costs_only_its_own_place(harness: Harness) -> None:
    h = harness
    ava = await enroll(h, "ava")
    ben = await enroll(h, "ben")
    body = await entities(
        h, [by_id(ben), by_id(ava), by_commerce_id("ben")], token("ava", "member")
    )
    assert body["data"] == {"_entities": [None, view(ava, "ava", 0), None]}
    assert body["errors"] == [
        {**NOT_ALLOWED, "locations": [{"line": 3, "column": 3}], "path": ["_entities", 0]},
        {**NOT_ALLOWED, "locations": [{"line": 3, "column": 3}], "path": ["_entities", 2]},
    ]


async def test_anonymous_entities_are_refused(harness: Harness) -> None:
    h = harness
    ava = await enroll(h, "ava")
    body = await entities(h, [by_id(ava), by_commerce_id("ava")], None)
    assert body["data"] == {"_entities": [None, None]}
    assert [(e["extensions"], e["path"]) for e in body["errors"]] == [
        ({"code": "UNAUTHENTICATED"}, ["_entities", 0]),
        ({"code": "UNAUTHENTICATED"}, ["_entities", 1]),
    ]


@pytest.mark.parametrize(
    ("representation", "message"),
    [
        ("Member", "a representation is an object with a __typename"),
        ({"id": "x"}, "a representation is an object with a __typename"),
        ({"__typename": 7, "id": "x"}, "a representation is an object with a __typename"),
        ({"__typename": "Household", "id": "x"}, "Member is the only entity of this subgraph"),
        (
            {"__typename": "ExternalIds", "commerceCustomerId": "ava"},
            "Member is the only entity of this subgraph",
        ),
        (
            {"__typename": "Member"},
            "a Member representation needs id or externalIds { commerceCustomerId }",
        ),
        (
            {"__typename": "Member", "id": 12},
            "a Member representation needs id or externalIds { commerceCustomerId }",
        ),
        (
            {"__typename": "Member", "externalIds": "ava"},
            "a Member representation needs id or externalIds { commerceCustomerId }",
        ),
        (
            {"__typename": "Member", "externalIds": {"commerceCustomerId": None}},
            "a Member representation needs id or externalIds { commerceCustomerId }",
        ),
    ],
)
async def test_a_malformed_representation_is_invalid_input_in_its_place(
    harness: Harness, representation: Any, message: str
) -> None:
    h = harness
    ava = await enroll(h, "ava")
    body = await entities(h, [representation, by_id(ava)], token("pos-1", "service"))
    assert body["data"] == {"_entities": [None, view(ava, "ava", 0)]}
    assert body["errors"] == [
        {
            "message": message,
            "locations": [{"line": 3, "column": 3}],
            "path": ["_entities", 0],
            "extensions": {"code": "INVALID_INPUT"},
        }
    ]


async def test_more_representations_than_the_limit_are_refused_whole(harness: Harness) -> None:
    h = harness
    ava = await enroll(h, "ava")
    at_limit = await entities(h, [by_id(ava)] * MAX_REPRESENTATIONS, token("pos-1", "service"))
    assert "errors" not in at_limit
    assert len(at_limit["data"]["_entities"]) == MAX_REPRESENTATIONS

    h.sql.reset()
    over = await entities(h, [by_id(ava)] * (MAX_REPRESENTATIONS + 1), token("pos-1", "service"))
    assert over == {
        "data": None,
        "errors": [
            {
                "message": f"at most {MAX_REPRESENTATIONS} representations in one _entities call",
                "locations": [{"line": 3, "column": 3}],
                "path": ["_entities"],
                "extensions": {"code": "INVALID_INPUT"},
            }
        ],
    }
    assert h.sql.count == 0  # refused before any read


async def test_production_refuses_the_subgraph_schema_and_still_resolves_entities(
    settings: Settings, fakes: Fakes, clock: Clock
) -> None:
    prod = settings.model_copy(update={"env": "prod"})
    http = fakes.http_client()
    app = create_app(prod, http=http, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://patron.test") as client:
            h = Harness(app, client, fakes, clock, SqlCounter())
            ava = await enroll(h, "ava")
            refused = await h.gql("{ _service { sdl } }", token=token("admin-1", "admin"))
            assert refused == {  # a request error (GraphQL over HTTP): no data
                "errors": [
                    {
                        "message": "the subgraph schema (_service) is not served when "
                        "PATRON_ENV=prod: compose from schema.federation.graphql",
                        "locations": [{"line": 1, "column": 3}],
                        "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"},
                    }
                ],
            }
            resolved = await entities(h, [by_commerce_id("ava")], token("pos-1", "service"))
            assert resolved == {"data": {"_entities": [view(ava, "ava", 0)]}}
            anonymous = await entities(h, [by_commerce_id("ava")], None)
            assert anonymous["data"] == {"_entities": [None]}
            assert anonymous["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED"}
    await http.aclose()
