"""`PATRON_ENV=prod` through the app: no introspection, no GraphiQL, no field suggestions,
unexpected errors masked with the request id that the answer's `X-Request-Id` and the log
record of the exception carry. Each against dev, where the same request shows what prod
hides (so the test could fail)."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.logs import log_config
from gateway.request_id import RequestIdLogFilter
from tests.graphql.apps import app_client, sqlite_settings

GR = "application/graphql-response+json"
UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")

Gateway = Callable[[str], AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def gateway(tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch) -> Gateway:
    """`gateway("prod")` or `gateway("dev")`: a client of the app in that mode."""

    def make(env: str) -> AbstractAsyncContextManager[httpx.AsyncClient]:
        folder = tmp_path / env
        folder.mkdir()
        return app_client(sqlite_settings(folder, sqlite_template, monkeypatch, env=env))

    return make


@pytest.fixture
async def prod(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway("prod") as client:
        yield client


async def ask(client: httpx.AsyncClient, query: str, **headers: str) -> httpx.Response:
    return await client.post("/graphql", json={"query": query}, headers={"Accept": GR, **headers})


def messages(response: httpx.Response) -> list[tuple[str, str | None]]:
    return [(e["message"], e.get("extensions", {}).get("code")) for e in response.json()["errors"]]


# --- introspection ------------------------------------------------------------------------
def disabled(*fields: str) -> list[tuple[str, str]]:
    return [
        (
            f"GraphQL introspection has been disabled, but the requested query contained the field '{f}'.",
            "GRAPHQL_VALIDATION_FAILED",
        )
        for f in fields
    ]


INTROSPECTION = [
    ("{ __schema { queryType { name } } }", disabled("__schema", "queryType")),
    ('{ __type(name: "Member") { fields { name } } }', disabled("__type", "fields")),
]


@pytest.mark.parametrize(("query", "refusals"), INTROSPECTION)
async def test_introspection_is_refused_in_prod(
    prod: httpx.AsyncClient, query: str, refusals: list[tuple[str, str]]
) -> None:
    response = await ask(prod, query)
    assert response.status_code == 400
    assert "data" not in response.json()
    assert messages(response) == refusals


async def test_introspection_answers_in_dev_and_typename_everywhere(gateway: Gateway) -> None:
    async with gateway("dev") as dev:
        for query, _ in INTROSPECTION:
            response = await ask(dev, query)
            assert response.status_code == 200 and "errors" not in response.json(), response.text
    async with gateway("prod") as prod:
        response = await ask(prod, "{ __typename }")
        assert response.json() == {"data": {"__typename": "Query"}}


# --- GraphiQL -----------------------------------------------------------------------------
async def test_no_graphiql_in_prod(gateway: Gateway) -> None:
    browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    async with gateway("dev") as dev:
        page = await dev.get("/graphql", headers=browser)
        script = await dev.get("/static/graphiql/graphiql.min.js")
        assert (page.status_code, script.status_code) == (200, 200)
    async with gateway("prod") as prod:
        page = await prod.get("/graphql", headers=browser)
        assert page.status_code == 404
        assert page.headers["content-type"] == "application/json"
        assert page.json() == {
            "errors": [{"message": "Not Found", "extensions": {"code": "NOT_FOUND"}}]
        }
        for asset in ("graphiql.min.js", "graphiql.min.css", "init.js"):
            assert (await prod.get(f"/static/graphiql/{asset}")).status_code == 404


# --- suggestions --------------------------------------------------------------------------
SUGGESTED = [
    ("{ mee { id } }", "Cannot query field 'mee' on type 'Query'.", " Did you mean 'me'?"),
    (
        "{ members(frist: 1) { totalCount } }",
        "Unknown argument 'frist' on field 'Query.members'.",
        " Did you mean 'first'?",
    ),
    (
        "{ members(segment: NURSERYY) { totalCount } }",
        "Value 'NURSERYY' does not exist in 'RfmSegment' enum.",
        " Did you mean the enum value 'NURSERY' or 'NURTURE'?",
    ),
    ("query($m: Membr) { __typename }", "Unknown type 'Membr'.", " Did you mean 'Member'?"),
    (
        "{ program }",
        "Field 'program' of type 'Program!' must have a selection of subfields.",
        " Did you mean 'program { ... }'?",
    ),
]


async def test_no_suggestions_in_prod(gateway: Gateway) -> None:
    async with gateway("dev") as dev:
        for query, message, hint in SUGGESTED:
            assert message + hint in [m for m, _ in messages(await ask(dev, query))]
    async with gateway("prod") as prod:
        for query, message, _ in SUGGESTED:
            found = [m for m, _ in messages(await ask(prod, query))]
            assert message in found
            assert not [m for m in found if "Did you mean" in m], found


async def test_no_suggestions_for_variables_either(prod: httpx.AsyncClient) -> None:
    response = await prod.post(
        "/graphql",
        json={
            "query": "query($s: RfmSegment) { members(segment: $s) { totalCount } }",
            "variables": {"s": "NURSERYY"},
        },
    )
    assert messages(response) == [
        (
            "Variable '$s' has invalid value: Value 'NURSERYY' does not exist in 'RfmSegment' enum.",
            "BAD_USER_INPUT",
        )
    ]


# --- request ids and masking --------------------------------------------------------------
async def test_every_answer_has_a_request_id(prod: httpx.AsyncClient) -> None:
    kept = await prod.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"X-Request-Id": "lb-1234.a"}
    )
    assert kept.headers["x-request-id"] == "lb-1234.a"
    for response in (
        await prod.post("/graphql", json={"query": "{ __typename }"}),
        await prod.post(
            "/graphql", json={"query": "{ __typename }"}, headers={"X-Request-Id": "bad id"}
        ),
        await prod.request("PUT", "/graphql"),
        await prod.get("/healthz"),
        await prod.post("/webhooks/cms", content=b"{}"),
    ):
        assert UUID4.fullmatch(response.headers["x-request-id"]), response.headers


def _boom(monkeypatch: pytest.MonkeyPatch) -> None:
    async def program_for_viewer(info: Any) -> Any:
        raise RuntimeError("secret internals: postgres://patron:hunter2@db")

    monkeypatch.setattr("resolvers.query.program_for_viewer", program_for_viewer)


async def test_an_unexpected_error_is_masked_with_the_request_id_the_log_carries(
    prod: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _boom(monkeypatch)
    caplog.handler.addFilter(RequestIdLogFilter())
    response = await prod.post(
        "/graphql", json={"query": "{ program { name } }"}, headers={"X-Request-Id": "req-42"}
    )
    assert response.status_code == 200  # executed: data is present (null: program is non-null)
    assert response.headers["x-request-id"] == "req-42"
    assert response.json() == {
        "data": None,
        "errors": [
            {
                "message": "Internal error",
                "locations": [{"line": 1, "column": 3}],
                "path": ["program"],
                "extensions": {"code": "INTERNAL_ERROR", "requestId": "req-42"},
            }
        ],
    }
    assert "hunter2" not in response.text and "Traceback" not in response.text
    logged = [r for r in caplog.records if r.exc_info and "hunter2" in str(r.exc_info[1])]
    assert [getattr(r, "request_id", None) for r in logged] == ["req-42"]


async def test_an_extensions_own_failure_is_masked_too(
    prod: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception in a schema extension ends the operation outside strawberry's masking:
    the view masks it (same code, same request id)."""

    def on_execute(self: Any) -> Any:
        raise RuntimeError("secret internals of an extension")
        yield  # a generator, as strawberry's hooks are

    monkeypatch.setattr("gateway.cache_control.PublicQueryCacheControl.on_execute", on_execute)
    response = await prod.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"X-Request-Id": "req-ext"}
    )
    assert response.json() == {
        "errors": [
            {
                "message": "Internal error",
                "extensions": {"code": "INTERNAL_ERROR", "requestId": "req-ext"},
            }
        ]
    }


async def test_dev_shows_the_error(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    _boom(monkeypatch)
    async with gateway("dev") as dev:
        response = await dev.post("/graphql", json={"query": "{ program { name } }"})
    assert messages(response) == [("secret internals: postgres://patron:hunter2@db", None)]


BAD_DECIMAL = (
    'mutation { recordPurchase(input: {orderId: "o-1", total: {amount: "lots", currencyCode: "CAD"},'
    ' channel: POS, idempotencyKey: "k-1"}) { userErrors { code } } }'
)


async def test_a_value_a_scalar_refuses_is_the_clients_error_in_prod(
    prod: httpx.AsyncClient,
) -> None:
    """The Decimal scalar refuses "lots"; in a variable the error carries strawberry's
    coercion exception: still the client's input, never masked as an internal error."""
    by_literal = await prod.post("/graphql", json={"query": BAD_DECIMAL})
    by_variable = await prod.post(
        "/graphql",
        json={
            "query": 'mutation($t: MoneyInput!) { recordPurchase(input: {orderId: "o", total: $t,'
            ' channel: POS, idempotencyKey: "k"}) { userErrors { code } } }',
            "variables": {"t": {"amount": "lots", "currencyCode": "CAD"}},
        },
    )
    assert messages(by_literal) == [
        ('Value cannot represent a Decimal: "lots".', "GRAPHQL_VALIDATION_FAILED")
    ]
    assert messages(by_variable) == [
        (
            """Variable '$t' has invalid value at .amount: Value cannot represent a Decimal: "lots".""",
            "BAD_USER_INPUT",
        )
    ]


def test_serve_logs_every_line_with_its_request_id() -> None:
    config = log_config()
    assert config["filters"] == {"request_id": {"()": "gateway.request_id.RequestIdLogFilter"}}
    assert {name: h["filters"] for name, h in config["handlers"].items()} == {
        "default": ["request_id"], "access": ["request_id"], "patron": ["request_id"],
    }  # fmt: skip
    assert all("[%(request_id)s]" in f["fmt"] for f in config["formatters"].values())
    assert config["root"] == {"handlers": ["patron"], "level": "WARNING"}
    record = logging.LogRecord("strawberry.execution", logging.ERROR, __file__, 1, "x", None, None)
    assert RequestIdLogFilter().filter(record) and record.request_id == "-"
