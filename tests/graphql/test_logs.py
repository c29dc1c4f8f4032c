"""The logs of real requests, as `patron serve` writes them in JSON: one object per line,
each with the request id of the request that wrote it, and never a token, an email, a name,
a card code, a variable's value or a profile's traits.

The requests: a member view (its answer holds the member's email, names and card code), a
failed login (a forged token), a signed webhook whose order carries the customer's email,
GraphQL errors that quote what the client sent, and an unexpected error.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gateway.auth import issue_token
from gateway.json_logs import JsonFormatter
from gateway.request_id import RequestIdLogFilter
from gateway.webhooks import sign
from tests.conftest import TEST_WEBHOOK_SECRET, Harness, token
from tests.graphql.conftest import enroll, purchase
from tests.graphql.test_commerce_webhook import order_at, order_created
from tests.graphql.test_member_view import seed_upstreams

Lines = Callable[[], list[dict[str, Any]]]

MEMBER_VIEW = """
query MemberView {
  me {
    externalIds { commerceCustomerId email }
    profile { firstName lastName email birthday }
    card { code }
    points { available }
  }
}
"""
RECORD = """mutation Record($input: RecordPurchaseInput!) {
  recordPurchase(input: $input) { userErrors { code } } }"""
BASE_FIELDS = {"time", "level", "logger", "message", "request_id"}


@pytest.fixture
def json_lines() -> Iterator[Lines]:
    """The log lines written during the test, as `patron serve` formats them in JSON."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdLogFilter())
    root, patron = logging.getLogger(), logging.getLogger("patron")
    level = patron.level
    root.addHandler(handler)
    patron.setLevel(logging.INFO)  # as gateway.logs configures it
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        patron.setLevel(level)


async def test_logs_carry_request_ids_and_no_personal_data(
    harness: Harness, json_lines: Lines, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness
    seed_upstreams(h)  # Ava Laurent, ava@example.com, born 1988-03-14
    member_id = await enroll(h, "cust-1", email="Ava@Example.com")
    await purchase(h, member_id, "order-1", "3000.00")
    member = token("cust-1", "member")
    forged = issue_token("not-the-secret-0123456789abcdef0", "cust-1", ["member"], ttl=600)
    ids: dict[str, str] = {}

    async def post(name: str, path: str, **kwargs: Any) -> Any:
        response = await h.client.post(path, **kwargs)
        ids[name] = response.headers["x-request-id"]
        return response

    def bearer(value: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {value}"}

    view = await post("view", "/graphql", json={"query": MEMBER_VIEW}, headers=bearer(member))
    me = view.json()["data"]["me"]
    assert me["externalIds"]["email"] == "ava@example.com"
    assert me["profile"]["lastName"] == "Laurent"
    card_code = me["card"]["code"]

    login = await post("login", "/graphql", json={"query": MEMBER_VIEW}, headers=bearer(forged))
    assert login.status_code == 401

    order = order_at(h, "cust-1", "480.00", email="ava@example.com")
    message = json.dumps(order_created(order)).encode()
    signature = sign(TEST_WEBHOOK_SECRET, message)
    webhook = await post(
        "webhook",
        "/webhooks/commerce",
        content=message,
        headers={"Content-Type": "application/json", "X-Patron-Signature": signature},
    )
    assert webhook.json()["status"] == "recorded"

    total = {"amount": "ava@example.com", "currencyCode": "CAD"}
    variables = {"input": {"memberId": member_id, "orderId": "o-2", "total": total,
                           "channel": "POS", "idempotencyKey": "k-2"}}  # fmt: skip
    bad_variables = await post(
        "variables", "/graphql", json={"query": RECORD, "variables": variables},
        headers=bearer(token("svc", "service")),
    )  # fmt: skip
    assert "ava@example.com" in bad_variables.text  # the client is told its own value...
    literal = '{ members(first: "Ava Laurent") { totalCount } }'
    bad_literal = await post("literal", "/graphql", json={"query": literal})
    assert "Ava Laurent" in bad_literal.text  # ...and its own literal

    async def program_for_viewer(info: Any) -> Any:
        raise RuntimeError("kaboom")

    monkeypatch.setattr("resolvers.query.program_for_viewer", program_for_viewer)
    broken = await post("broken", "/graphql", json={"query": "query Program { program { name } }"})
    assert broken.json()["errors"][0]["path"] == ["program"]

    lines = json_lines()
    text = "\n".join(json.dumps(line) for line in lines)
    secrets = [member, forged, signature.split("=", 1)[1], card_code, token("svc", "service")]
    for secret in secrets:
        assert secret not in text
    for personal in (r"ava@example\.com", r"\bAva\b", r"\bLaurent\b", r"1988-03-14"):
        assert not re.search(personal, text, re.IGNORECASE), personal
    assert all(set(line) >= BASE_FIELDS for line in lines)
    written_in = {line["request_id"] for line in lines}
    assert "-" not in written_in and set(ids.values()) <= written_in  # all inside a request

    def of(name: str) -> list[dict[str, Any]]:
        return [line for line in lines if line["request_id"] == ids[name]]

    assert [_access(line) for line in of("view")] == [
        {"status": 200, "path": "/graphql", "operation": "MemberView", "operation_type": "query",
         "outcome": "ok", "role": "member"},
    ]  # fmt: skip
    assert [_access(line) for line in of("login")] == [
        {"status": 401, "path": "/graphql", "operation": "unknown", "operation_type": "unknown",
         "outcome": "unauthenticated"},
    ]  # fmt: skip
    assert [(line["logger"], line["level"]) for line in of("webhook")] == [
        ("patron.webhooks", "INFO"),  # the message's outcome
        ("patron.access", "INFO"),
    ]
    assert of("webhook")[1]["path"] == "/webhooks/commerce"

    def graphql_lines(name: str) -> list[tuple[str, str]]:
        return [(line["level"], line["message"]) for line in of(name)
                if line["logger"] == "patron.graphql"]  # fmt: skip

    assert graphql_lines("variables") == [
        (
            "INFO",
            "GraphQL request error: Variable '$input' has invalid value (the value is not logged)",
        )
    ]
    assert graphql_lines("literal") == [
        ("INFO", 'GraphQL request error: Int cannot represent non-integer value: "…"')
    ]
    errors = [line for line in of("broken") if line["logger"] == "patron.graphql"]
    assert [(line["level"], line["message"]) for line in errors] == [
        ("ERROR", "unexpected error at program")
    ]
    assert errors[0]["exception"].endswith("RuntimeError: kaboom")
    # Only the unexpected error has a traceback; strawberry's own logger is silent.
    assert [line["request_id"] for line in lines if "exception" in line] == [ids["broken"]]
    assert not [line for line in lines if line["logger"].startswith("strawberry")]


def _access(line: dict[str, Any]) -> dict[str, Any]:
    assert line["logger"] == "patron.access" and line["level"] == "INFO", line
    assert line["method"] == "POST" and line["duration_ms"] >= 0
    hidden = {"time", "level", "logger", "message", "request_id", "method", "duration_ms"}
    return {key: value for key, value in line.items() if key not in hidden}
