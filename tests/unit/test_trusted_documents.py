"""The trusted documents alone: the examples and their manifest (current, each valid and
well under the operation limits), `patron trusted-documents`, and the resolution of a
request's parameters into a document, or its refusal, with an in-process APQ store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from graphql import parse, validate

from adapters.cache.store import MemoryCacheStore
from gateway.cli import main
from gateway.limits import OperationLimits
from gateway.limits.aliases import operation_aliases
from gateway.limits.cost import operation_cost
from gateway.limits.depth import operation_depth
from gateway.schema import build_schema
from gateway.trusted_documents.manifest import (
    DEFAULT_MANIFEST,
    EXAMPLES_DIR,
    ManifestError,
    build_manifest,
    document_hash,
    example_documents,
    load_manifest,
    manifest_text,
)
from gateway.trusted_documents.persisted import PersistedQueries
from gateway.trusted_documents.policy import TrustPolicy
from gateway.trusted_documents.resolution import DocumentParams, DocumentRefusal, TrustedDocuments
from tests.adapters.conftest import Now

SCHEMA = build_schema()._schema
PROGRAM = "query Program {\n  program {\n    key\n  }\n}"
PROGRAM_HASH = document_hash(PROGRAM)
OTHER = "{ me { id } }"
OTHER_HASH = document_hash(OTHER)

# Each example's cost under the default limits (`gateway.limits.cost`): the storefront's
# member view is under 5% of PATRON_MAX_COST (5000).
COSTS = {
    "associate/AwardPoints.graphql": 26,
    "associate/MemberByCard.graphql": 63,
    "associate/MemberSearch.graphql": 286,
    "associate/RecordPurchase.graphql": 28,
    "mobile/AddHouseholdMember.graphql": 24,
    "mobile/DonatePoints.graphql": 26,
    "mobile/GiftPoints.graphql": 25,
    "mobile/Household.graphql": 89,
    "mobile/HouseholdInvitations.graphql": 23,
    "mobile/MemberCard.graphql": 10,
    "mobile/PointsChanged.graphql": 4,
    "mobile/PointsHistory.graphql": 234,
    "storefront/CheckoutPoints.graphql": 13,
    "storefront/EnrollMember.graphql": 25,
    "storefront/MemberView.graphql": 178,
    "storefront/Program.graphql": 116,
    "storefront/RedeemPoints.graphql": 26,
}


# --- the examples and the manifest ------------------------------------------------------------
def test_the_committed_manifest_is_current() -> None:
    """Fails when an example changed without `make documents`."""
    assert DEFAULT_MANIFEST.read_text(encoding="utf-8") == manifest_text(build_manifest())


def test_the_examples_are_the_apps_operations_each_valid_against_the_schema() -> None:
    documents = example_documents(EXAMPLES_DIR)
    assert sorted(documents) == sorted(COSTS)
    for name, document in documents.items():
        assert validate(SCHEMA, parse(document)) == [], name


def test_every_example_is_well_under_the_default_limits() -> None:
    limits = OperationLimits()
    found = {}
    for name, document in example_documents(EXAMPLES_DIR).items():
        parsed = parse(document, max_lexical_tokens=limits.max_tokens)
        operation = parsed.definitions[0]
        fragments = {}.get
        assert operation_depth(operation, fragments) <= 6, name  # type: ignore[arg-type]
        assert operation_aliases(operation, fragments) == 0, name  # type: ignore[arg-type]
        found[name] = operation_cost(SCHEMA, parsed)
    assert found == COSTS
    assert found["storefront/MemberView.graphql"] * 20 < limits.max_cost


def test_a_manifest_is_loaded_only_when_each_document_is_its_hashs(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({PROGRAM_HASH: PROGRAM}))
    assert load_manifest(path) == {PROGRAM_HASH: PROGRAM}
    path.write_text(json.dumps({PROGRAM_HASH: PROGRAM + " "}))
    with pytest.raises(ManifestError, match="is not its hash's"):
        load_manifest(path)
    path.write_text("[]")
    with pytest.raises(ManifestError, match="not a JSON object"):
        load_manifest(path)


def test_patron_trusted_documents_writes_checks_and_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    examples = tmp_path / "examples"
    (examples / "app").mkdir(parents=True)
    (examples / "app" / "Program.graphql").write_text("# the programme\n" + PROGRAM)
    manifest = examples / "manifest.json"
    assert main(["trusted-documents", "--examples", str(examples), "--check"]) == 1
    assert main(["trusted-documents", "--examples", str(examples)]) == 0
    assert json.loads(manifest.read_text()) == {PROGRAM_HASH: PROGRAM}
    assert main(["trusted-documents", "--examples", str(examples), "--check"]) == 0

    (examples / "app" / "Two.graphql").write_text(
        "query Two { a: program { key } } query B { me { id } }"
    )
    assert main(["trusted-documents", "--examples", str(examples)]) == 2
    assert (
        "app/Two.graphql: a trusted document holds exactly one named operation"
        in capsys.readouterr().err
    )
    (examples / "app" / "Two.graphql").write_text("query Other { program { key } }")
    assert main(["trusted-documents", "--examples", str(examples)]) == 2
    assert "app/Two.graphql: the operation is Other" in capsys.readouterr().err


# --- resolution -----------------------------------------------------------------------------
@pytest.fixture
def now() -> Now:
    return Now()


@pytest.fixture
def persisted(now: Now) -> PersistedQueries:
    return PersistedQueries(MemoryCacheStore(clock=now), ttl=86400)


def documents(persisted: PersistedQueries | None, trusted_only: bool = False) -> TrustedDocuments:
    return TrustedDocuments(TrustPolicy({PROGRAM_HASH: PROGRAM}, trusted_only), persisted)


def apq(sha256: str, version: object = 1) -> dict[str, object]:
    return {"persistedQuery": {"version": version, "sha256Hash": sha256}}


async def refusal(
    docs: TrustedDocuments, params: DocumentParams, staff: bool = False
) -> tuple[int, str, str]:
    with pytest.raises(DocumentRefusal) as raised:
        await docs.resolve(params, staff)
    return raised.value.status, raised.value.code, raised.value.message


async def test_a_document_id_names_a_manifest_document(persisted: PersistedQueries) -> None:
    docs = documents(persisted)
    assert await docs.resolve(DocumentParams(None, f"sha256:{PROGRAM_HASH}"), False) == PROGRAM
    assert await docs.resolve(DocumentParams(None, PROGRAM_HASH), False) == PROGRAM  # bare hex
    assert await docs.resolve(DocumentParams(None, None, apq(PROGRAM_HASH)), False) == PROGRAM
    assert await docs.resolve(DocumentParams(OTHER), False) == OTHER
    assert await docs.resolve(DocumentParams(None), False) is None


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            DocumentParams(None, "sha256:" + "A" * 64),
            'documentId must be "sha256:" and 64 lowercase hexadecimal digits',
        ),
        (
            DocumentParams(None, "md5:abc"),
            'documentId must be "sha256:" and 64 lowercase hexadecimal digits',
        ),
        (
            DocumentParams(None, 42),
            'documentId must be "sha256:" and 64 lowercase hexadecimal digits',
        ),
        (
            DocumentParams(OTHER, f"sha256:{PROGRAM_HASH}"),
            "send either documentId or query, not both",
        ),
        (
            DocumentParams(None, None, apq(PROGRAM_HASH, version=2)),
            "extensions.persistedQuery must be {version: 1, sha256Hash}",
        ),
        (
            DocumentParams(None, None, {"persistedQuery": "x"}),
            "extensions.persistedQuery must be {version: 1, sha256Hash}",
        ),
        (
            DocumentParams(None, None, apq("sha256:" + PROGRAM_HASH)),
            "persistedQuery.sha256Hash must be 64 lowercase hexadecimal digits",
        ),
    ],
)
async def test_malformed_names_are_refused(
    persisted: PersistedQueries, params: DocumentParams, message: str
) -> None:
    assert await refusal(documents(persisted), params) == (400, "INVALID_DOCUMENT_ID", message)


async def test_apq_an_unknown_hash_then_its_registration_then_the_hash_alone(
    persisted: PersistedQueries, now: Now
) -> None:
    docs = documents(persisted)
    lookup = DocumentParams(None, None, apq(OTHER_HASH))
    assert await refusal(docs, lookup) == (
        200,
        "PERSISTED_QUERY_NOT_FOUND",
        "PersistedQueryNotFound",
    )
    assert await docs.resolve(DocumentParams(OTHER, None, apq(OTHER_HASH)), False) == OTHER
    assert await docs.resolve(lookup, False) == OTHER
    assert await docs.resolve(DocumentParams(None, f"sha256:{OTHER_HASH}"), False) == OTHER
    now.t += 86401  # past PATRON_APQ_TTL
    assert (await refusal(docs, lookup))[1] == "PERSISTED_QUERY_NOT_FOUND"


async def test_a_registration_is_checked_against_its_hash(persisted: PersistedQueries) -> None:
    docs = documents(persisted)
    wrong = DocumentParams(OTHER, None, apq(PROGRAM_HASH))
    assert await refusal(docs, wrong) == (
        400,
        "PERSISTED_QUERY_HASH_MISMATCH",
        "the query's SHA-256 is not sha256Hash",
    )
    assert await persisted.get(PROGRAM_HASH) is None


async def test_without_an_apq_store_nothing_is_registered() -> None:
    docs = documents(None)
    assert await docs.resolve(DocumentParams(OTHER, None, apq(OTHER_HASH)), False) == OTHER
    assert (await refusal(docs, DocumentParams(None, None, apq(OTHER_HASH))))[
        1
    ] == "PERSISTED_QUERY_NOT_FOUND"


async def test_a_stored_document_that_is_not_its_hashs_is_not_served(now: Now) -> None:
    store = MemoryCacheStore(clock=now)
    await store.set_many({f"apq:{OTHER_HASH}": b"{ program { key } }"}, 60)
    assert await PersistedQueries(store, 60).get(OTHER_HASH) is None


TRUSTED_ONLY = (
    403,
    "TRUSTED_DOCUMENT_REQUIRED",
    "this gateway runs only its apps' trusted documents: send one by documentId",
)


async def test_trusted_only_callers_not_staff_run_the_manifest_only(
    persisted: PersistedQueries,
) -> None:
    docs = documents(persisted, trusted_only=True)
    assert await docs.resolve(DocumentParams(None, f"sha256:{PROGRAM_HASH}"), False) == PROGRAM
    assert await docs.resolve(DocumentParams(PROGRAM), False) == PROGRAM  # its exact text
    assert await docs.resolve(DocumentParams(PROGRAM, None, apq(PROGRAM_HASH)), False) == PROGRAM
    assert await refusal(docs, DocumentParams(OTHER)) == TRUSTED_ONLY
    assert await refusal(docs, DocumentParams(OTHER, None, apq(OTHER_HASH))) == TRUSTED_ONLY
    assert await persisted.get(OTHER_HASH) is None  # registration refused: nothing stored
    assert await refusal(docs, DocumentParams(None, None, apq(OTHER_HASH))) == TRUSTED_ONLY


async def test_trusted_only_staff_and_services_send_and_register_anything(
    persisted: PersistedQueries,
) -> None:
    docs = documents(persisted, trusted_only=True)
    assert await docs.resolve(DocumentParams(OTHER), True) == OTHER
    assert await docs.resolve(DocumentParams(OTHER, None, apq(OTHER_HASH)), True) == OTHER
    assert await docs.resolve(DocumentParams(None, f"sha256:{OTHER_HASH}"), True) == OTHER
    # What staff registered is still not for a member.
    assert await refusal(docs, DocumentParams(None, f"sha256:{OTHER_HASH}")) == TRUSTED_ONLY
