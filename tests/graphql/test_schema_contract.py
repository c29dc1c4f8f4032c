"""schema.graphql is generated from the code (`make schema`) and must be current, and the
schema must contain every type and field of the public contract (API.graphql)."""

from __future__ import annotations

from pathlib import Path

from graphql import GraphQLSchema, build_schema

from gateway.schema import schema_sdl

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "tests" / "contract" / "API.graphql"
SHARED_CONTRACT = ROOT.parent / "shared" / "API.graphql"

# Parts of the contract that later issues build; each entry must still be missing (the test
# fails once it exists, so the list only shrinks).
NOT_YET_BUILT: frozenset[str] = frozenset(
    {



    }
)  # fmt: skip


def missing_from(have: GraphQLSchema, want: GraphQLSchema) -> set[str]:
    """Types, fields, arguments and enum values of `want` that `have` lacks."""
    gone: set[str] = set()
    for name, wanted in want.type_map.items():
        if name.startswith("__"):
            continue
        held = have.type_map.get(name)
        if held is None:
            gone.add(name)
            continue
        for field_name, field in (getattr(wanted, "fields", None) or {}).items():
            held_field = (getattr(held, "fields", None) or {}).get(field_name)
            if held_field is None:
                gone.add(f"{name}.{field_name}")
                continue
            for arg in getattr(field, "args", {}) or {}:
                if arg not in (getattr(held_field, "args", {}) or {}):
                    gone.add(f"{name}.{field_name}({arg})")
        for value in getattr(wanted, "values", None) or {}:
            if value not in (getattr(held, "values", None) or {}):
                gone.add(f"{name}.{value}")
    return gone


def test_committed_schema_is_current() -> None:
    committed = (ROOT / "schema.graphql").read_text(encoding="utf-8")
    assert committed == schema_sdl(), "schema.graphql is stale: run `make schema` and commit it"


def test_committed_federated_schema_is_current() -> None:
    committed = (ROOT / "schema.federation.graphql").read_text(encoding="utf-8")
    assert committed == schema_sdl(federation=True), (
        "schema.federation.graphql is stale: run `make schema` and commit it"
    )


def test_the_federated_schema_leaves_the_plain_one_as_it_was() -> None:
    """Member carries its @key only while the federated schema is built."""
    plain = schema_sdl()
    federated = schema_sdl(federation=True)
    assert schema_sdl() == plain
    assert "@key" in federated and "_entities" in federated and "_service" in federated
    assert "@key" not in plain and "_entities" not in plain and "_service" not in plain
    assert "@link" not in plain and "_Any" not in plain


def test_schema_has_every_part_of_the_contract_not_listed_as_pending() -> None:
    gone = missing_from(build_schema(schema_sdl()), build_schema(CONTRACT.read_text()))
    assert gone - NOT_YET_BUILT == set(), "the schema lacks parts of API.graphql"
    assert NOT_YET_BUILT - gone == set(), "built now: remove these from NOT_YET_BUILT"


def test_vendored_contract_matches_the_shared_one() -> None:
    if SHARED_CONTRACT.exists():
        assert CONTRACT.read_text() == SHARED_CONTRACT.read_text(), (
            "../shared/API.graphql changed: copy it to tests/contract/API.graphql"
        )


def test_missing_from_sees_a_dropped_field() -> None:
    want = build_schema("type Query { a: Int b(x: Int): Int } enum E { X Y }")
    have = build_schema("type Query { a: Int b: Int } enum E { X }")
    assert missing_from(have, want) == {"Query.b(x)", "E.Y"}
