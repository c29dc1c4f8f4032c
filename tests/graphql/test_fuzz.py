"""Fuzzing with schemathesis in GraphQL mode: documents generated from `schema.graphql` for
every query and mutation field, valid ones (positive) and ones that break the schema
(negative: wrong types, missing arguments, unknown values), with the scalars drawn from
hostile values (`Decimal` overflows, NaN, huge exponents; deep JSON; ids of real members and
households besides garbage), sent through the app as every role in turn.

Every answer must be:

- below 500, and free of Python's traces;
- a GraphQL response, each of its errors with a string `extensions.code`;
- without an unexpected error in the log (`patron.graphql` at ERROR: a bug, not a refusal);
- for the fuzzing member (Ava), free of the other customers' personal data (email, last
  name, commerce id, card code, order numbers), and for an anonymous caller free of anyone's.

Afterwards the ledger still balances (the conftest's check) and the gateway still answers.
The cases are derandomized (the same documents on every run); `PATRON_FUZZ_EXAMPLES`
(default 12) sets how many per field and mode. The failures are reported together, each
with its role and document, so one run shows every bug it found."""

from __future__ import annotations

import base64
import logging
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import graphql
import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.generation import GenerationMode
from schemathesis.graphql import nodes
from schemathesis.specs.graphql import scalars

from gateway.app import create_app
from gateway.demo import Fakes, seed_database, seed_fakes
from gateway.settings import Settings
from tests.conftest import assert_ledger_balances, settings_for
from tests.graphql.apps import BASE_URL
from tests.graphql.fuzz_scene import Scene, build_scene

EXAMPLES = int(os.environ.get("PATRON_FUZZ_EXAMPLES", "12"))
SCHEMA = Path(__file__).resolve().parents[2] / "schema.graphql"
TRACES = ("Traceback", 'File "', "site-packages", '.py", line')


# --- the scalars ------------------------------------------------------------------------
def _json_values() -> st.SearchStrategy[graphql.ValueNode]:
    leaves = st.one_of(
        st.none().map(lambda _: nodes.Null),
        st.booleans().map(nodes.Boolean),
        st.integers().map(nodes.Int),
        st.floats(allow_nan=False, allow_infinity=False).map(nodes.Float),
        st.text(max_size=20).map(nodes.String),
    )
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4).map(nodes.List),
            st.dictionaries(st.from_regex(r"[a-z]{1,8}", fullmatch=True), inner, max_size=4).map(
                lambda d: nodes.Object(
                    [
                        graphql.ObjectFieldNode(name=graphql.NameNode(value=k), value=v)
                        for k, v in d.items()
                    ]
                )
            ),
        ),
        max_leaves=12,
    )


DECIMALS = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False, places=2).map(str).map(nodes.String),
    st.sampled_from(
        ["NaN", "-Infinity", "1e999999", "-0", "0.0000000001", "9" * 40, "1_000", " 1 ", "", "1,5"]
    ).map(nodes.String),
    st.integers().map(nodes.Int),
    st.floats(allow_nan=False, allow_infinity=False).map(nodes.Float),
)


def _global(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode()


# Ids that are ours in form but not in range or alphabet, and one of each type that does
# not exist.
ODD_IDS = (
    "", "TWVtYmVyOg==", "bm9kZQ",
    *(_global(f"PointsTransaction:{n}") for n in ("99999999999999999999", "2147483648", "-1", "²", "١٢")),
    *(_global(f"{t}:{uuid.UUID(int=0)}") for t in ("Member", "Household", "Offer")),
)  # fmt: skip

# Strings that have broken gateways: NUL, past a column's length, non-ASCII where ASCII is
# compared, digits that are not ASCII, blank, and the values that mean something here.
ODD_STRINGS = (
    "", " ", "\x00", "a\x00b", "x" * 300, "ç" * 300, "²", "١٢", "\ud7ff", "🙂" * 70,
    "TOR-BLOOR", "gold", "black", "2026-11", "9999-99", "CAD", "XXX", "sickkids",
)  # fmt: skip


def scalar_strategies(scene: Scene) -> dict[str, st.SearchStrategy[graphql.ValueNode]]:
    members = st.sampled_from(tuple(scene.member_ids.values()))
    ids = st.one_of(
        members, members, st.sampled_from(scene.ids), st.sampled_from(ODD_IDS), st.text(max_size=40)
    )
    codes = st.sampled_from(scene.card_codes)
    strings = st.one_of(
        st.text(max_size=40),
        st.sampled_from(ODD_STRINGS),
        codes,
        codes.map(lambda code: code[:-1] + "ç"),  # a forged signature, not ASCII
        codes.map(lambda code: code + "\x00"),
    )
    return {
        "ID": ids.map(nodes.String),
        "String": strings.map(nodes.String),
        "Decimal": DECIMALS,
        "JSON": _json_values(),
    }


# --- the documents ----------------------------------------------------------------------
@dataclass(frozen=True)
class Document:
    field: str  # e.g. Mutation.giftPoints
    mode: str  # positive or negative
    query: str


def documents(scene: Scene, monkeypatch: pytest.MonkeyPatch) -> list[Document]:
    """EXAMPLES documents per root field and generation mode, derandomized."""
    for name, strategy in scalar_strategies(scene).items():
        monkeypatch.setitem(scalars.CUSTOM_SCALARS, name, strategy)
    schema = schemathesis.graphql.from_file(SCHEMA.read_text())
    found: list[Document] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            drawn: list[str] = []

            @settings(
                max_examples=EXAMPLES,
                derandomize=True,
                database=None,
                deadline=None,
                phases=[Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(operation.as_strategy(generation_mode=mode))
            def collect(case: Any) -> None:
                drawn.append(case.body)  # noqa: B023 (used at once, in this iteration)

            collect()
            found += [Document(operation.label, mode.value, q) for q in dict.fromkeys(drawn)]
    return found


# --- the app ----------------------------------------------------------------------------
@dataclass
class Fuzzed:
    client: httpx.AsyncClient
    scene: Scene
    app: Any


@pytest.fixture
async def fuzzed(database_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Fuzzed]:
    """The demo's world on SQLite, and on PostgreSQL when configured (where a NUL or an
    overlong string fails differently)."""
    # No rate limit: thousands of requests from one identity test the answers, not the
    # limiter (tests/graphql/test_rate_limit.py does).
    base = settings_for(database_url, monkeypatch)
    settings_ = Settings.model_validate(
        {
            **base.model_dump(),
            "rate_limit_anonymous": 0,
            "rate_limit_member": 0,
            "rate_limit_staff": 0,
            "rate_limit_service": 0,
        }
    )
    fakes = Fakes()
    seed_fakes(fakes)
    http = fakes.http_client()
    app = create_app(settings_, http=http)
    try:
        async with app.router.lifespan_context(app):
            gateway = app.state.gateway
            await seed_database(gateway.services, gateway.engine)
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
                yield Fuzzed(client, await build_scene(client), app)
            await assert_ledger_balances(gateway.engine)
    finally:
        await http.aclose()


# --- the checks -------------------------------------------------------------------------
def problems(response: httpx.Response, forbidden: dict[str, str]) -> list[str]:
    found: list[str] = []
    if response.status_code >= 500:
        found.append(f"status {response.status_code}")
    text = response.text
    found += [f"{trace!r} in the answer" for trace in TRACES if trace in text]
    found += [
        f"{owner}'s {secret!r} in the answer"
        for secret, owner in forbidden.items()
        if secret in text
    ]
    try:
        answer = response.json()
    except ValueError:
        return [*found, "not JSON"]
    if not isinstance(answer, dict) or not ({"data", "errors"} & answer.keys()):
        return [*found, "not a GraphQL response"]
    for error in answer.get("errors") or []:
        code = (error.get("extensions") or {}).get("code")
        if not isinstance(code, str):
            found.append(f"an error without a code: {error.get('message')!r}")
    return found


class Unexpected(logging.Handler):
    """Collects the unexpected errors (`patron.graphql` at ERROR) a request caused."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def take(self) -> list[str]:
        taken = [
            f"unexpected error logged: {r.getMessage()} ({r.exc_info and r.exc_info[1]!r})"
            for r in self.records
        ]
        self.records.clear()
        return taken


async def test_fuzzing_finds_no_500_no_trace_no_leak(
    fuzzed: Fuzzed, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = documents(fuzzed.scene, monkeypatch)
    fields = {d.field for d in corpus}
    schema = graphql.build_schema(SCHEMA.read_text())
    roots = [schema.query_type, schema.mutation_type]
    assert fields == {f"{root.name}.{name}" for root in roots if root for name in root.fields}
    unexpected = Unexpected()
    logger = logging.getLogger("patron.graphql")
    logger.addHandler(unexpected)
    failures: list[str] = []
    sent = 0
    try:
        for role, bearer in fuzzed.scene.tokens().items():
            headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
            forbidden = fuzzed.scene.forbidden(role)
            for document in corpus:
                response = await fuzzed.client.post(
                    "/graphql", json={"query": document.query}, headers=headers
                )
                sent += 1
                # What the caller sent, echoed in an error, is not a leak (the fuzzer knows
                # the card codes, to aim at real cards).
                hidden = {k: v for k, v in forbidden.items() if k not in document.query}
                found = problems(response, hidden) + unexpected.take()
                if found:
                    failures.append(
                        f"{role} {document.field} ({document.mode}): {'; '.join(found)}\n"
                        f"  {document.query!r}\n  -> {response.status_code} {response.text[:300]!r}"
                    )
    finally:
        logger.removeHandler(unexpected)
    assert not failures, f"{len(failures)} of {sent} answers:\n" + "\n".join(failures[:40])
    still = await fuzzed.client.post("/graphql", json={"query": "{ program { name } }"})
    assert still.status_code == 200 and still.json()["data"]["program"]["name"], still.text
