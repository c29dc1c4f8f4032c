"""What the fuzzer found (tests/graphql/test_fuzz.py), pinned through the API on SQLite
and PostgreSQL: each value is refused with its code, and nothing is written."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from sqlalchemy import func, select

from adapters.db import tables
from tests.conftest import Harness, token
from tests.graphql.conftest import RECORD, enroll
from tests.graphql.ws import serving, ws_client

SERVICE = token("pos-1", "service")
ADMIN = token("admin-1", "admin")


def purchase_input(member_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "memberId": member_id,
        "orderId": "order-1",
        "total": {"amount": "100.00", "currencyCode": "CAD"},
        "channel": "POS",
        "idempotencyKey": "purchase-order-1",
        **changes,
    }


async def transactions(h: Harness) -> int:
    async with h.engine.connect() as conn:
        count = (
            await conn.execute(select(func.count()).select_from(tables.ledger_transactions))
        ).scalar_one()
    return int(count)


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"total": {"amount": "1e999999", "currencyCode": "CAD"}}, "INVALID_AMOUNT", ["total"]),
        ({"total": {"amount": "9" * 40, "currencyCode": "CAD"}}, "INVALID_AMOUNT", ["total"]),
        ({"idempotencyKey": "k" * 256}, "INVALID_INPUT", ["idempotencyKey"]),
        ({"storeId": "S" * 65}, "INVALID_INPUT", ["storeId"]),
    ],
)
async def test_a_purchase_out_of_bounds_is_a_user_error(
    harness: Harness, changes: dict[str, Any], code: str, field: list[str]
) -> None:
    member = await enroll(harness, "c-1")
    before = await transactions(harness)
    body = await harness.gql(RECORD, {"input": purchase_input(member, **changes)}, SERVICE)
    payload = body["data"]["recordPurchase"]
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [(code, field)]
    assert payload["transaction"] is None
    assert await transactions(harness) == before


async def test_the_longest_idempotency_key_and_store_are_kept(harness: Harness) -> None:
    member = await enroll(harness, "c-1")
    changes = {"idempotencyKey": "k" * 255, "storeId": "S" * 64}
    body = await harness.gql(RECORD, {"input": purchase_input(member, **changes)}, SERVICE)
    assert body["data"]["recordPurchase"]["userErrors"] == []
    assert body["data"]["recordPurchase"]["transaction"]["points"] == 100


async def test_nul_in_a_variable_is_refused_before_anything_runs(harness: Harness) -> None:
    member = await enroll(harness, "c-1")
    before = await transactions(harness)
    for changes in ({"idempotencyKey": "a\x00b"}, {"orderId": "o\x00"}, {"storeId": "\x00"}):
        body = await harness.gql(RECORD, {"input": purchase_input(member, **changes)}, SERVICE)
        assert body == {
            "errors": [
                {
                    "message": "a variable's value: strings may not contain U+0000 (NUL)",
                    "extensions": {"code": "BAD_USER_INPUT"},
                }
            ]
        }
    assert await transactions(harness) == before


async def test_nul_in_a_literal_is_a_validation_error(harness: Harness) -> None:
    body = await harness.gql('{ memberByCard(code: "PTN1.\\u0000") { id } }', token=SERVICE)
    assert body.get("data") is None
    assert [(e["message"], e["extensions"]["code"]) for e in body["errors"]] == [
        ("strings may not contain U+0000 (NUL)", "GRAPHQL_VALIDATION_FAILED")
    ]


def node_id(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode()


@pytest.mark.parametrize("local", ["2147483648", "99999999999999999999", "²", "١٢"])
async def test_a_transaction_id_out_of_range_is_not_found(harness: Harness, local: str) -> None:
    body = await harness.gql(
        "query($id: ID!) { node(id: $id) { id } }",
        {"id": node_id(f"PointsTransaction:{local}")},
        ADMIN,
    )
    assert body["data"] == {"node": None}
    assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_FOUND"]


async def test_a_transaction_cursor_out_of_range_is_invalid_input(harness: Harness) -> None:
    member = await enroll(harness, "c-1")
    body = await harness.gql(
        "query($id: ID!, $after: String) { member(id: $id) { transactions(after: $after) { edges { cursor } } } }",
        {"id": member, "after": node_id("tx:99999999999999999999")},
        ADMIN,
    )
    assert [(e["path"], e["extensions"]["code"]) for e in body["errors"]] == [
        (["member", "transactions"], "INVALID_INPUT")
    ]


async def test_a_card_code_with_a_forged_non_ascii_signature_is_not_found(harness: Harness) -> None:
    member = await enroll(harness, "c-1")
    me = await harness.gql(
        "query($id: ID!) { member(id: $id) { card { code } } }", {"id": member}, ADMIN
    )
    code = me["data"]["member"]["card"]["code"]
    body = await harness.gql(
        "query($c: String!) { memberByCard(code: $c) { id } }", {"c": code[:-1] + "ç"}, SERVICE
    )
    assert body["data"] == {"memberByCard": None}
    assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_FOUND"]


async def test_nul_in_a_subscription_variable_is_refused(harness: Harness) -> None:
    subscription = "subscription($id: ID!) { pointsChanged(memberId: $id) { available } }"
    async with serving(harness.app) as url, ws_client(url) as client:
        assert await client.init({"Authorization": f"Bearer {ADMIN}"}) == {"type": "connection_ack"}
        await client.subscribe("1", subscription, {"id": "TWVtYmVyOg\x00"})
        message = await client.receive()
    error = {
        "message": "a variable's value: strings may not contain U+0000 (NUL)",
        "extensions": {"code": "BAD_USER_INPUT"},
    }
    assert message == {"id": "1", "type": "next", "payload": {"data": None, "errors": [error]}}
