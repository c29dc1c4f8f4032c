"""`POST /webhooks/commerce` end to end through ASGI: signed commercetools messages in
Platform format, exact points, each message and each order counted once whatever the path,
refusals that write nothing, and returns clawed back in proportion."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from adapters.commerce.fake import FakeLine, _iso
from adapters.commerce.messages import CommercetoolsOrderDetails
from gateway.backfill import backfill_of
from gateway.signed_requests import MAX_BODY_BYTES
from gateway.webhooks import sign
from loyalty.errors import UpstreamUnavailable
from tests.conftest import START, TEST_WEBHOOK_SECRET, Harness, token
from tests.graphql.conftest import enroll, purchase

SERVICE = token("svc", "service")
TABLES = ("webhook_deliveries", "purchases", "ledger_transactions", "idempotency_keys")


# --- messages, as the relay sends them ----------------------------------------------------
def order_created(order: dict[str, Any], message_id: str | None = None) -> dict[str, Any]:
    return {
        "notificationType": "Message",
        "projectKey": "patron-demo",
        "id": message_id or str(uuid.uuid4()),
        "version": 1,
        "sequenceNumber": 1,
        "resource": {"typeId": "order", "id": order["id"]},
        "resourceVersion": 1,
        "type": "OrderCreated",
        "order": order,
        "createdAt": order["createdAt"],
        "lastModifiedAt": order["createdAt"],
    }


def return_item(line_item_id: str, quantity: int) -> dict[str, Any]:
    stamp = _iso(START)
    return {
        "type": "LineItemReturnItem",
        "id": str(uuid.uuid4()),
        "quantity": quantity,
        "lineItemId": line_item_id,
        "shipmentState": "Returned",
        "paymentState": "Initial",
        "createdAt": stamp,
        "lastModifiedAt": stamp,
    }


def return_info_added(
    order_id: str, items: list[dict[str, Any]], message_id: str | None = None
) -> dict[str, Any]:
    stamp = _iso(START)
    return {
        "notificationType": "Message",
        "projectKey": "patron-demo",
        "id": message_id or str(uuid.uuid4()),
        "version": 1,
        "sequenceNumber": 2,
        "resource": {"typeId": "order", "id": order_id},
        "resourceVersion": 2,
        "type": "ReturnInfoAdded",
        "returnInfo": {"items": items, "returnTrackingId": "RT-1", "returnDate": stamp},
        "createdAt": stamp,
        "lastModifiedAt": stamp,
    }


def return_info_set(order_id: str, infos: list[list[dict[str, Any]]]) -> dict[str, Any]:
    message = return_info_added(order_id, [])
    message["type"] = "ReturnInfoSet"
    message["returnInfo"] = [{"items": items} for items in infos]
    return message


async def deliver(
    h: Harness,
    message: dict[str, Any] | bytes,
    *,
    secret: str = TEST_WEBHOOK_SECRET,
    signature: str | bytes | None = None,
) -> httpx.Response:
    body = message if isinstance(message, bytes) else json.dumps(message).encode()
    signed = signature if signature is not None else sign(secret, body)
    headers = {
        b"Content-Type": b"application/json",
        b"X-Patron-Signature": signed if isinstance(signed, bytes) else signed.encode(),
    }
    return await h.client.post("/webhooks/commerce", content=body, headers=headers)


async def accepted(h: Harness, message: dict[str, Any]) -> dict[str, Any]:
    response = await deliver(h, message)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


# --- reading the outcome --------------------------------------------------------------------
async def points(h: Harness, member_id: str) -> dict[str, int]:
    body = await h.gql(
        "query($id: ID!) { member(id: $id) { points { available pending } } }",
        {"id": member_id},
        SERVICE,
    )
    assert "errors" not in body, body
    result: dict[str, int] = body["data"]["member"]["points"]
    return result


async def total_points(h: Harness, member_id: str) -> int:
    p = await points(h, member_id)
    return p["available"] + p["pending"]


async def counts(h: Harness) -> dict[str, int]:
    result: dict[str, int] = {}
    async with h.engine.connect() as conn:
        for table in TABLES:
            result[table] = (await conn.execute(text(f"SELECT COUNT(*) FROM {table}"))).scalar_one()
    return result


async def purchase_row(h: Harness, order_id: str) -> Any:
    async with h.engine.connect() as conn:
        return (
            await conn.execute(
                text("SELECT * FROM purchases WHERE order_id = :id"), {"id": order_id}
            )
        ).one()


def order_at(h: Harness, customer_id: str | None, total: str, currency: str = "CAD", **extra: Any) -> dict[str, Any]:  # fmt: skip
    extra.setdefault("created_at", START - timedelta(days=2))
    return h.fakes.commerce.add_order(customer_id, total, currency, **extra)


NOTHING_WRITTEN = dict.fromkeys(TABLES, 0)


# --- OrderCreated ---------------------------------------------------------------------------
async def test_order_created_earns_exact_points_for_a_member(harness: Harness) -> None:
    member = await enroll(harness, "cust-1")
    order = order_at(harness, "cust-1", "330.00")
    harness.fakes.reset_requests()

    answer = await accepted(harness, order_created(order))

    assert answer["status"] == "recorded"
    assert answer["orderId"] == order["id"]
    assert isinstance(answer["transactionId"], int)
    assert await points(harness, member) == {"available": 0, "pending": 330}
    row = await purchase_row(harness, order["id"])
    assert (row.source, row.channel, row.amount_minor, row.currency) == (
        "webhook",
        "WEB",
        33000,
        "CAD",
    )
    occurred = (
        row.occurred_at
        if isinstance(row.occurred_at, datetime)
        else datetime.fromisoformat(row.occurred_at)
    )
    assert occurred.replace(tzinfo=None) == (START - timedelta(days=2)).replace(tzinfo=None)
    assert harness.fakes.commerce.requests == []  # answered without calling commerce


async def test_the_same_message_twice_earns_once_and_says_duplicate(harness: Harness) -> None:
    member = await enroll(harness, "cust-1")
    message = order_created(order_at(harness, "cust-1", "330.00"))

    first = await accepted(harness, message)
    second = await accepted(harness, message)

    assert first["status"] == "recorded"
    assert second == {"status": "duplicate"}
    assert await total_points(harness, member) == 330
    assert (await counts(harness))["webhook_deliveries"] == 1
    assert (await counts(harness))["ledger_transactions"] == 1


async def test_the_same_order_under_another_message_id_earns_once(harness: Harness) -> None:
    member = await enroll(harness, "cust-1")
    order = order_at(harness, "cust-1", "330.00")

    first = await accepted(harness, order_created(order))
    second = await accepted(harness, order_created(order))

    assert first["status"] == second["status"] == "recorded"
    assert second["transactionId"] == first["transactionId"]
    assert await total_points(harness, member) == 330
    after = await counts(harness)
    assert (after["webhook_deliveries"], after["purchases"], after["ledger_transactions"]) == (
        2,
        1,
        1,
    )


async def test_webhook_then_pos_then_backfill_earn_once_in_total(harness: Harness) -> None:
    member = await enroll(harness, "cust-1")
    order = order_at(harness, "cust-1", "330.00")

    assert (await accepted(harness, order_created(order)))["status"] == "recorded"
    pos = await purchase(harness, member, order["id"], "330.00", key="pos-till-7-0001")
    assert pos["userErrors"] == []
    report = await backfill_of(harness.gateway).run(date(2026, 1, 1))

    assert (report.orders_seen, report.earned, report.already_recorded, report.points_earned) == (
        1,
        0,
        1,
        0,
    )
    assert await points(harness, member) == {"available": 0, "pending": 330}
    after = await counts(harness)
    assert (after["purchases"], after["ledger_transactions"]) == (1, 1)


async def test_backfill_first_then_the_webhook_earns_once(harness: Harness) -> None:
    member = await enroll(harness, "cust-1")
    order = order_at(harness, "cust-1", "120.00")

    report = await backfill_of(harness.gateway).run(date(2026, 1, 1))
    answer = await accepted(harness, order_created(order))

    assert (report.earned, report.points_earned) == (1, 120)
    assert answer["status"] == "recorded"
    assert await total_points(harness, member) == 120


async def test_a_usd_order_converts_through_the_program_fx(harness: Harness) -> None:
    member = await enroll(harness, "cust-1")
    order = order_at(harness, "cust-1", "100.00", "USD")  # 1.37 CAD per USD

    await accepted(harness, order_created(order))

    assert await total_points(harness, member) == 137
    row = await purchase_row(harness, order["id"])
    assert (row.currency, row.amount_minor, row.program_amount_minor) == ("USD", 10000, 13700)


async def test_a_non_members_order_is_acknowledged_and_ignored(harness: Harness) -> None:
    await enroll(harness, "cust-1")
    answer = await accepted(harness, order_created(order_at(harness, "stranger", "330.00")))
    guest = await accepted(harness, order_created(order_at(harness, None, "80.00")))

    assert answer["status"] == guest["status"] == "ignored"
    assert answer["reason"] == guest["reason"] == "not_a_member"
    after = await counts(harness)
    assert (after["purchases"], after["ledger_transactions"]) == (0, 0)


async def test_a_cancelled_order_earns_nothing(harness: Harness) -> None:
    member = await enroll(harness, "cust-1")
    order = order_at(harness, "cust-1", "330.00", state="Cancelled")

    answer = await accepted(harness, order_created(order))

    assert (answer["status"], answer["reason"]) == ("ignored", "cancelled")
    assert await total_points(harness, member) == 0
    assert (await counts(harness))["purchases"] == 0


async def test_an_order_in_a_currency_without_a_rate_is_rejected_once(harness: Harness) -> None:
    member = await enroll(harness, "cust-1")
    message = order_created(order_at(harness, "cust-1", "5000", "JPY"))

    answer = await accepted(harness, message)
    again = await accepted(harness, message)

    assert (answer["status"], answer["code"]) == ("rejected", "INVALID_AMOUNT")
    assert again == {"status": "duplicate"}
    assert await total_points(harness, member) == 0


async def test_other_message_types_are_ignored(harness: Harness) -> None:
    message = {
        "notificationType": "Message",
        "id": str(uuid.uuid4()),
        "type": "OrderStateChanged",
        "resource": {"typeId": "order", "id": "o-1"},
        "orderState": "Complete",
    }
    answer = await accepted(harness, message)
    not_a_message = await accepted(
        harness,
        {"notificationType": "ResourceCreated", "resource": {"typeId": "order", "id": "o-1"}},
    )

    assert (answer["status"], answer["reason"]) == ("ignored", "unhandled_type")
    assert not_a_message["status"] == "ignored"


# --- refusals that write nothing ----------------------------------------------------------
@pytest.mark.parametrize(
    "case", ["unsigned", "tampered", "wrong secret", "wrong scheme", "garbage"]
)
async def test_a_bad_signature_is_401_and_writes_nothing(harness: Harness, case: str) -> None:
    await enroll(harness, "cust-1")
    before = await counts(harness)
    body = json.dumps(order_created(order_at(harness, "cust-1", "330.00"))).encode()
    good = sign(TEST_WEBHOOK_SECRET, body)
    if case == "unsigned":
        response = await harness.client.post("/webhooks/commerce", content=body)
    elif case == "tampered":
        response = await deliver(harness, body.replace(b"33000", b"99900"), signature=good)
    elif case == "wrong secret":
        response = await deliver(harness, body, secret="not-the-secret")
    elif case == "wrong scheme":
        response = await deliver(harness, body, signature=good.replace("sha256=", "sha1="))
    else:
        response = await deliver(harness, body, signature="sha256=\u00e9t\u00e9 ".encode("latin-1"))

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "INVALID_SIGNATURE"
    assert await counts(harness) == before


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"\xff\xfe",
        b"[]",
        json.dumps({"notificationType": "Message", "type": "OrderCreated"}).encode(),  # no id
        json.dumps(
            {"notificationType": "Message", "id": "m-1", "type": "OrderCreated"}
        ).encode(),  # no order
        json.dumps(
            {"id": "m-2", "type": "OrderCreated", "order": {"id": "o-1"}}
        ).encode(),  # order lacks fields
        json.dumps(
            {
                "id": "m-3",
                "type": "ReturnInfoAdded",
                "resource": {"typeId": "order", "id": "o"},
                "returnInfo": {"items": [{"id": "r", "quantity": 1}]},
            }
        ).encode(),  # no lineItemId
    ],
    ids=[
        "not json",
        "not utf-8",
        "not an object",
        "no id",
        "no order",
        "bad order",
        "bad return item",
    ],
)
async def test_a_malformed_message_is_400_and_writes_nothing(harness: Harness, body: bytes) -> None:
    await enroll(harness, "cust-1")
    before = await counts(harness)

    response = await deliver(harness, body)

    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "MALFORMED_MESSAGE"
    assert await counts(harness) == before


async def test_a_body_over_the_limit_is_413(harness: Harness) -> None:
    body = b'{"id": "' + b"x" * MAX_BODY_BYTES + b'"}'
    response = await deliver(harness, body)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert await counts(harness) == NOTHING_WRITTEN


async def test_without_a_secret_the_webhook_is_503(harness: Harness) -> None:
    gateway = harness.gateway
    gateway.settings = gateway.settings.model_copy(update={"webhook_secret": None})
    response = await deliver(harness, order_created(order_at(harness, "cust-1", "1.00")))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "WEBHOOK_NOT_CONFIGURED"


# --- returns --------------------------------------------------------------------------------
def two_line_order(h: Harness, customer_id: str = "cust-1") -> dict[str, Any]:
    """330.00 CAD: a 200.00 coat and two 65.00 ties."""
    return order_at(
        h,
        customer_id,
        "330.00",
        lines=[FakeLine("COAT", "Coat", 1, "200.00"), FakeLine("TIE", "Tie", 2, "65.00")],
    )


async def test_a_return_of_one_of_two_line_items_claws_back_in_proportion(harness: Harness) -> None:
    member = await enroll(harness, "cust-1")
    order = two_line_order(harness)
    _, ties = (line["id"] for line in order["lineItems"])
    await accepted(harness, order_created(order))
    assert await points(harness, member) == {"available": 0, "pending": 330}

    answer = await accepted(harness, return_info_added(order["id"], [return_item(ties, 2)]))

    assert answer["status"] == "returned"
    assert isinstance(answer["transactionId"], int)
    assert await points(harness, member) == {"available": 0, "pending": 200}  # 330 - 130
    row = await purchase_row(harness, order["id"])
    assert row.returned_program_amount_minor == 13000


async def test_partial_returns_then_the_rest_claw_back_everything_once(harness: Harness) -> None:
    member = await enroll(harness, "cust-1")
    order = two_line_order(harness)
    coat, ties = (line["id"] for line in order["lineItems"])
    await accepted(harness, order_created(order))

    one_tie = return_item(ties, 1)
    first = return_info_added(order["id"], [one_tie])
    await accepted(harness, first)
    assert await total_points(harness, member) == 265  # 330 - 65
    assert await accepted(harness, first) == {"status": "duplicate"}

    # ReturnInfoSet repeats the whole return list: the tie already returned is not clawed twice.
    coat_back = return_item(coat, 1)
    answer = await accepted(harness, return_info_set(order["id"], [[one_tie], [coat_back]]))
    assert answer["status"] == "returned"
    assert await total_points(harness, member) == 65  # 265 - 200

    # The last tie brings back every unit: what is left of the order goes, nothing more.
    last = await accepted(harness, return_info_added(order["id"], [return_item(ties, 1)]))
    assert last["status"] == "returned"
    assert await total_points(harness, member) == 0


async def test_a_return_whose_order_has_not_arrived_yet_earns_then_claws_back(
    harness: Harness,
) -> None:
    member = await enroll(harness, "cust-1")
    order = two_line_order(harness)
    coat, _ = (line["id"] for line in order["lineItems"])

    answer = await accepted(harness, return_info_added(order["id"], [return_item(coat, 1)]))
    late = await accepted(harness, order_created(order))

    assert answer["status"] == "returned"
    assert late["status"] == "recorded"
    assert await total_points(harness, member) == 130  # 330 earned once, 200 returned
    row = await purchase_row(harness, order["id"])
    assert row.source == "webhook"


async def test_a_return_of_a_non_members_order_is_ignored(harness: Harness) -> None:
    order = two_line_order(harness, "stranger")
    coat, _ = (line["id"] for line in order["lineItems"])
    answer = await accepted(harness, return_info_added(order["id"], [return_item(coat, 1)]))
    assert (answer["status"], answer["reason"]) == ("ignored", "not_a_member")
    assert (await counts(harness))["ledger_transactions"] == 0


async def test_a_return_of_an_unknown_line_item_is_rejected(harness: Harness) -> None:
    member = await enroll(harness, "cust-1")
    order = two_line_order(harness)
    await accepted(harness, order_created(order))
    answer = await accepted(harness, return_info_added(order["id"], [return_item("nope", 1)]))
    assert (answer["status"], answer["code"]) == ("rejected", "INVALID_INPUT")
    assert await total_points(harness, member) == 330


async def test_commerce_down_during_a_return_is_503_and_a_retry_works(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    member = await enroll(harness, "cust-1")
    order = two_line_order(harness)
    _, ties = (line["id"] for line in order["lineItems"])
    await accepted(harness, order_created(order))
    message = return_info_added(order["id"], [return_item(ties, 2)])

    async def down(self: CommercetoolsOrderDetails, order_id: str) -> None:
        raise UpstreamUnavailable("commerce", "connection refused")

    with monkeypatch.context() as patch:
        patch.setattr(CommercetoolsOrderDetails, "order_detail", down)
        response = await deliver(harness, message)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "UPSTREAM_UNAVAILABLE"
    assert await total_points(harness, member) == 330
    assert (await counts(harness))["webhook_deliveries"] == 1  # only the OrderCreated

    assert (await accepted(harness, message))["status"] == "returned"
    assert await total_points(harness, member) == 200


async def test_when_every_line_is_back_the_whole_order_is_clawed_back(harness: Harness) -> None:
    """330.00 paid for 300.00 of goods (30.00 shipping): once commerce lists every unit as
    returned, the rest of the order's points go too, not only the goods' share."""
    member = await enroll(harness, "cust-1")
    order = order_at(
        harness,
        "cust-1",
        "330.00",
        lines=[FakeLine("COAT", "Coat", 1, "200.00"), FakeLine("TIE", "Tie", 2, "50.00")],
    )
    coat, ties = (line["id"] for line in order["lineItems"])
    await accepted(harness, order_created(order))

    both_ties = return_item(ties, 2)
    await accepted(harness, return_info_added(order["id"], [both_ties]))
    assert await total_points(harness, member) == 230  # 330 - 330 x 100/330

    order["returnInfo"] = [{"items": [both_ties]}]  # what commerce now holds
    await accepted(harness, return_info_added(order["id"], [return_item(coat, 1)]))
    assert await total_points(harness, member) == 0  # not 30: the shipping share goes too


async def test_the_same_message_delivered_concurrently_earns_once(harness: Harness) -> None:
    member = await enroll(harness, "cust-1")
    message = order_created(order_at(harness, "cust-1", "330.00"))

    responses = await asyncio.gather(*(deliver(harness, message) for _ in range(6)))

    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    statuses = [r.json()["status"] for r in responses]
    assert set(statuses) <= {"recorded", "duplicate"} and "recorded" in statuses
    assert await total_points(harness, member) == 330
    after = await counts(harness)
    assert (after["webhook_deliveries"], after["purchases"], after["ledger_transactions"]) == (
        1,
        1,
        1,
    )
