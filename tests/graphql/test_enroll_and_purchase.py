"""enrollMember and recordPurchase end to end: who may call them, how every refusal comes
back as a userError that changed nothing, exact points (currency, FX, the tier held before
the purchase), exactly-once by idempotency key and by order id, the return window, and the
transactions connection."""

from __future__ import annotations

import asyncio
import base64
import uuid
from typing import Any

import pytest

from loyalty.card import card_code
from tests.conftest import TEST_CARD_SECRET, Harness, token
from tests.graphql.conftest import ENROLL, RECORD, enroll, purchase

SERVICE = token("svc", "service")


def member_global_id(local: str) -> str:
    return base64.urlsafe_b64encode(f"Member:{local}".encode()).decode()


async def enroll_as(h: Harness, input: dict[str, Any], bearer: str | None) -> dict[str, Any]:
    body = await h.gql(ENROLL, {"input": input}, bearer)
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["enrollMember"]
    return payload


async def record(h: Harness, input: dict[str, Any], bearer: str | None = SERVICE) -> dict[str, Any]:
    body = await h.gql(RECORD, {"input": input}, bearer)
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["recordPurchase"]
    return payload


def purchase_input(member_id: str | None, order_id: str, amount: str, currency: str = "CAD", **extra: Any) -> dict[str, Any]:  # fmt: skip
    fields: dict[str, Any] = {
        "orderId": order_id,
        "total": {"amount": amount, "currencyCode": currency},
        "channel": "POS",
        "idempotencyKey": f"key-{order_id}",
        **extra,
    }
    if member_id is not None:
        fields["memberId"] = member_id
    return fields


async def points(h: Harness, member_id: str) -> dict[str, int]:
    body = await h.gql(
        "query($id: ID!) { member(id: $id) { points { available pending lifetimeEarned } } }",
        {"id": member_id},
        SERVICE,
    )
    assert "errors" not in body, body
    result: dict[str, int] = body["data"]["member"]["points"]
    return result


async def member_count(h: Harness) -> int:
    body = await h.gql("{ members { totalCount } }", token=token("assoc-1", "associate"))
    count: int = body["data"]["members"]["totalCount"]
    return count


def refused(code: str, field: list[str] | None) -> dict[str, Any]:
    """The shape of a refused payload, ignoring the message (for people)."""
    return {"code": code, "field": field}


def errors_of(payload: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"code": e["code"], "field": e["field"]} for e in payload["userErrors"]]


# --- enrollMember -------------------------------------------------------------------------
async def test_a_member_enrols_itself(harness: Harness) -> None:
    h = harness
    payload = await enroll_as(
        h, {"commerceCustomerId": "cust-1", "email": " Ava@Example.COM "}, token("cust-1", "member")
    )
    assert payload["userErrors"] == []
    member_id = payload["member"]["id"]

    me = await h.gql(
        "{ me { id externalIds { commerceCustomerId cdpUserId email } enrolledAt "
        "points { available pending lifetimeEarned } tier { current { key } } } }",
        token=token("cust-1", "member"),
    )
    assert me == {
        "data": {
            "me": {
                "id": member_id,
                "externalIds": {
                    "commerceCustomerId": "cust-1",
                    "cdpUserId": "cust-1",
                    "email": "ava@example.com",
                },
                "enrolledAt": "2026-11-23T12:00:00+00:00",
                "points": {"available": 0, "pending": 0, "lifetimeEarned": 0},
                "tier": {"current": {"key": "member"}},
            }
        }
    }


async def test_a_service_enrols_with_a_separate_cdp_id(harness: Harness) -> None:
    h = harness
    payload = await enroll_as(h, {"commerceCustomerId": "cust-1", "cdpUserId": "seg-1"}, SERVICE)
    assert payload["userErrors"] == []
    body = await h.gql(
        "query($id: ID!) { member(id: $id) { externalIds { commerceCustomerId cdpUserId email } } }",
        {"id": payload["member"]["id"]},
        SERVICE,
    )
    assert body == {
        "data": {
            "member": {
                "externalIds": {"commerceCustomerId": "cust-1", "cdpUserId": "seg-1", "email": None}
            }
        }
    }


async def test_a_member_cannot_enrol_someone_else(harness: Harness) -> None:
    h = harness
    payload = await enroll_as(h, {"commerceCustomerId": "cust-2"}, token("cust-1", "member"))
    assert payload["member"] is None
    assert errors_of(payload) == [refused("NOT_ALLOWED", ["commerceCustomerId"])]
    assert await member_count(h) == 0


async def test_anonymous_and_marketers_cannot_enrol(harness: Harness) -> None:
    h = harness
    anonymous = await enroll_as(h, {"commerceCustomerId": "cust-1"}, None)
    assert anonymous["member"] is None
    assert [e["code"] for e in anonymous["userErrors"]] == ["NOT_ALLOWED"]
    marketer = await enroll_as(h, {"commerceCustomerId": "cust-1"}, token("mkt-1", "marketer"))
    assert marketer["member"] is None
    assert [e["code"] for e in marketer["userErrors"]] == ["NOT_ALLOWED"]
    assert await member_count(h) == 0


async def test_an_associate_enrols_a_customer(harness: Harness, associate_token: str) -> None:
    payload = await enroll_as(harness, {"commerceCustomerId": "cust-1"}, associate_token)
    assert payload["userErrors"] == []
    global_id = payload["member"]["id"]
    assert base64.urlsafe_b64decode(global_id).decode().startswith("Member:")
    assert await member_count(harness) == 1


async def test_a_commerce_customer_is_a_member_once(harness: Harness) -> None:
    h = harness
    first = await enroll(h, "cust-1")
    again = await enroll_as(h, {"commerceCustomerId": "cust-1"}, SERVICE)
    assert again["member"] is None
    assert errors_of(again) == [refused("ALREADY_MEMBER", ["commerceCustomerId"])]
    # ...its own token neither
    itself = await enroll_as(h, {"commerceCustomerId": "cust-1"}, token("cust-1", "member"))
    assert errors_of(itself) == [refused("ALREADY_MEMBER", ["commerceCustomerId"])]
    # ...nor another customer claiming its CDP user
    cdp = await enroll_as(h, {"commerceCustomerId": "cust-2", "cdpUserId": "cust-1"}, SERVICE)
    assert errors_of(cdp) == [refused("ALREADY_MEMBER", ["cdpUserId"])]
    assert await member_count(h) == 1
    assert await points(h, first) == {"available": 0, "pending": 0, "lifetimeEarned": 0}


@pytest.mark.parametrize(
    ("input", "field"),
    [
        ({"commerceCustomerId": "cust-1", "email": "not-an-email"}, ["email"]),
        ({"commerceCustomerId": "cust-1", "email": "ava@example"}, ["email"]),
        ({"commerceCustomerId": "cust-1", "email": "a b@example.com"}, ["email"]),
        ({"commerceCustomerId": "   "}, ["commerceCustomerId"]),
        ({"commerceCustomerId": "x" * 129}, ["commerceCustomerId"]),
        ({"commerceCustomerId": "cust-1", "cdpUserId": " "}, ["cdpUserId"]),
        ({"commerceCustomerId": "cust-1", "idempotencyKey": "  "}, ["idempotencyKey"]),
    ],
)
async def test_invalid_enrolment_input(
    harness: Harness, input: dict[str, Any], field: list[str]
) -> None:
    payload = await enroll_as(harness, input, SERVICE)
    assert payload["member"] is None
    assert errors_of(payload) == [refused("INVALID_INPUT", field)]
    assert await member_count(harness) == 0


@pytest.mark.parametrize(
    "referrer",
    [
        member_global_id(str(uuid.UUID(int=1))),  # well formed, nobody
        "garbage",
        base64.urlsafe_b64encode(b"PointsTransaction:1").decode(),  # not a member id
    ],
)
async def test_an_unknown_referrer_is_not_found(harness: Harness, referrer: str) -> None:
    payload = await enroll_as(
        harness, {"commerceCustomerId": "cust-1", "referredBy": referrer}, SERVICE
    )
    assert payload["member"] is None
    assert errors_of(payload) == [refused("NOT_FOUND", ["referredBy"])]
    assert await member_count(harness) == 0


async def test_a_member_cannot_link_itself_to_another_customers_profile(
    harness: Harness,
) -> None:
    h = harness
    h.fakes.cdp.add_profile("cust-2", {"first_name": "Secret", "email": "ben@example.com"})
    payload = await enroll_as(
        h, {"commerceCustomerId": "cust-1", "cdpUserId": "cust-2"}, token("cust-1", "member")
    )
    me = await h.gql("{ me { profile { firstName email } } }", token=token("cust-1", "member"))
    assert "Secret" not in str(me)
    assert payload["member"] is None
    assert errors_of(payload) == [refused("NOT_ALLOWED", ["cdpUserId"])]
    assert await member_count(h) == 0


async def test_a_known_referrer_is_accepted(harness: Harness) -> None:
    referrer = await enroll(harness, "cust-1")
    payload = await enroll_as(
        harness, {"commerceCustomerId": "cust-2", "referredBy": referrer}, SERVICE
    )
    assert payload["userErrors"] == []
    assert payload["member"]["id"] != referrer
    assert await member_count(harness) == 2


async def test_enrolment_replay_returns_the_same_member(harness: Harness) -> None:
    h = harness
    input = {"commerceCustomerId": "cust-1", "email": "ava@example.com", "idempotencyKey": "e-1"}
    first = await enroll_as(h, input, SERVICE)
    again = await enroll_as(h, input, SERVICE)
    # the same input up to normalisation is the same input
    normalised = await enroll_as(h, {**input, "email": "AVA@example.com "}, SERVICE)
    assert first["userErrors"] == again["userErrors"] == normalised["userErrors"] == []
    assert first["member"]["id"] == again["member"]["id"] == normalised["member"]["id"]
    assert await member_count(h) == 1


async def test_enrolment_key_reused_for_another_input_conflicts(harness: Harness) -> None:
    h = harness
    first = await enroll_as(h, {"commerceCustomerId": "cust-1", "idempotencyKey": "e-1"}, SERVICE)
    assert first["userErrors"] == []
    other = await enroll_as(h, {"commerceCustomerId": "cust-2", "idempotencyKey": "e-1"}, SERVICE)
    assert other["member"] is None
    assert errors_of(other) == [refused("IDEMPOTENCY_CONFLICT", ["idempotencyKey"])]
    assert await member_count(h) == 1


async def test_an_idempotency_key_is_for_one_operation(harness: Harness) -> None:
    h = harness
    member_id = await enroll(h, "cust-1", idempotencyKey="shared-key")
    payload = await record(h, {**purchase_input(member_id, "o-1", "10.00"), "idempotencyKey": "shared-key"})  # fmt: skip
    assert payload["transaction"] is None
    assert errors_of(payload) == [refused("IDEMPOTENCY_CONFLICT", ["idempotencyKey"])]
    assert await points(h, member_id) == {"available": 0, "pending": 0, "lifetimeEarned": 0}


# --- recordPurchase: points ---------------------------------------------------------------
async def test_a_cad_purchase_earns_one_point_per_dollar_pending(harness: Harness) -> None:
    h = harness
    member_id = await enroll(h, "cust-1")
    payload = await purchase(h, member_id, "order-1", "330.99")
    assert payload["userErrors"] == []
    assert payload["transaction"] == {
        "id": payload["transaction"]["id"],
        "kind": "EARN",
        "points": 330,
        "status": "PENDING",
        "orderId": "order-1",
        "channel": "POS",
    }
    assert payload["member"] == {
        "id": member_id,
        "points": {"available": 0, "pending": 330, "lifetimeEarned": 330},
    }


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("100.00", "USD", 137),  # 137.00 CAD
        ("99.99", "USD", 136),  # 136.9863 -> 136.99 CAD -> 136 points, rounded down
        ("0.72", "USD", 0),  # 0.9864 -> 0.99 CAD: nothing to earn
        ("10.00", "EUR", 14),  # 14.90 CAD
        ("100", "usd", 137),  # the code is case-insensitive
    ],
)
async def test_a_foreign_purchase_is_converted_then_rounded_down(
    harness: Harness, amount: str, currency: str, expected: int
) -> None:
    h = harness
    member_id = await enroll(h, "cust-1")
    payload = await purchase(h, member_id, "order-1", amount, currency)
    assert payload["userErrors"] == []
    if expected:
        assert payload["transaction"]["points"] == expected
    else:
        assert payload["transaction"] is None  # no points moved, no transaction
    assert payload["member"]["points"] == {
        "available": 0,
        "pending": expected,
        "lifetimeEarned": expected,
    }


async def test_the_multiplier_is_the_tier_held_before_the_purchase(harness: Harness) -> None:
    h = harness
    member_id = await enroll(h, "cust-1")
    first = await purchase(h, member_id, "o-1", "2400.00")
    assert first["transaction"]["points"] == 2400
    # 2400 spent before: still a member (x1) for this one, which takes the spend to 2600
    second = await purchase(h, member_id, "o-2", "200.00")
    assert second["transaction"]["points"] == 200
    # 2600 spent before: silver (x1.25)
    third = await purchase(h, member_id, "o-3", "100.00")
    assert third["transaction"]["points"] == 125
    fourth = await purchase(h, member_id, "o-4", "10.01")  # 12.5125 -> 12
    assert fourth["transaction"]["points"] == 12
    assert fourth["member"]["points"] == {
        "available": 0,
        "pending": 2737,
        "lifetimeEarned": 2737,
    }
    tier = await h.gql(
        "query($id: ID!) { member(id: $id) { tier { current { key } "
        "qualifyingSpend { amount currencyCode } } } }",
        {"id": member_id},
        SERVICE,
    )
    assert tier["data"]["member"]["tier"] == {
        "current": {"key": "silver"},
        "qualifyingSpend": {"amount": "2710.01", "currencyCode": "CAD"},
    }


async def test_spend_exactly_at_the_threshold_reaches_the_tier(harness: Harness) -> None:
    h = harness
    member_id = await enroll(h, "cust-1")
    assert (await purchase(h, member_id, "o-1", "2500.00"))["transaction"]["points"] == 2500
    assert (await purchase(h, member_id, "o-2", "100.00"))["transaction"]["points"] == 125


async def test_converted_spend_counts_toward_the_tier(harness: Harness) -> None:
    h = harness
    member_id = await enroll(h, "cust-1")
    # 1825 USD = 2500.25 CAD: silver from the next purchase on
    assert (await purchase(h, member_id, "o-1", "1825.00", "USD"))["transaction"]["points"] == 2500
    assert (await purchase(h, member_id, "o-2", "100.00"))["transaction"]["points"] == 125


async def test_spend_older_than_12_months_no_longer_counts(harness: Harness) -> None:
    h = harness
    member_id = await enroll(h, "cust-1")
    h.clock.advance(days=6)  # 2026-11-29
    assert (await purchase(h, member_id, "o-1", "2500.00"))["transaction"]["points"] == 2500
    h.clock.advance(days=366)  # 2027-11-30: o-1 is 12 months and a day old
    later = await purchase(h, member_id, "o-2", "100.00")
    assert later["transaction"]["points"] == 100  # a member again: x1


async def test_spend_within_12_months_still_counts(harness: Harness) -> None:
    h = harness
    member_id = await enroll(h, "cust-1")
    assert (await purchase(h, member_id, "o-1", "2500.00"))["transaction"]["points"] == 2500
    h.clock.advance(days=364)  # 2027-11-22: o-1 is a day short of 12 months old
    assert (await purchase(h, member_id, "o-2", "100.00"))["transaction"]["points"] == 125
    h.clock.advance(days=2)  # 2027-11-24: o-1 is older than 12 months
    # o-2 brought the 12-month spend to 2600 on 2027-11-22: Silver is held (renewed) for 12
    # months from then, although the spend of the last 12 months is now 100.
    assert (await purchase(h, member_id, "o-3", "100.00"))["transaction"]["points"] == 125
    h.clock.advance(days=365)  # 2028-11-23: the held Silver ended unrenewed: one tier down
    assert (await purchase(h, member_id, "o-4", "100.00"))["transaction"]["points"] == 100


async def test_a_purchase_by_card_code(harness: Harness, associate_token: str) -> None:
    h = harness
    member_id = await enroll(h, "cust-1")
    card = await h.gql("{ me { card { code } } }", token=token("cust-1", "member"))
    code = card["data"]["me"]["card"]["code"]

    payload = await record(
        h,
        {**purchase_input(None, "o-1", "80.00"), "cardCode": code, "channel": "ASSOCIATE"},
        associate_token,
    )

    assert payload["userErrors"] == []
    assert payload["member"] == {
        "id": member_id,
        "points": {"available": 0, "pending": 80, "lifetimeEarned": 80},
    }
    assert payload["transaction"]["channel"] == "ASSOCIATE"
    assert payload["transaction"]["points"] == 80


# --- recordPurchase: refusals change nothing ----------------------------------------------
@pytest.fixture
async def earner(harness: Harness) -> str:
    """A member with 100 pending points, the balance every refusal must leave alone."""
    member_id = await enroll(harness, "cust-1")
    assert (await purchase(harness, member_id, "o-0", "100.00"))["transaction"]["points"] == 100
    return member_id


UNCHANGED = {"available": 0, "pending": 100, "lifetimeEarned": 100}


async def test_a_forged_card_is_not_found(harness: Harness, earner: str) -> None:
    h = harness
    card = await h.gql("{ me { card { code } } }", token=token("cust-1", "member"))
    code = card["data"]["me"]["card"]["code"]
    prefix, member, signature = code.split(".")
    other = str(uuid.UUID(int=7))
    for forged in (
        f"{prefix}.{member}.{signature[:-2]}{'AA' if not signature.endswith('AA') else 'BB'}",
        f"{prefix}.{other}.{signature}",  # another member's id under this signature
        "not-a-card",
        "",
    ):
        payload = await record(h, {**purchase_input(None, "o-1", "50.00"), "cardCode": forged})
        assert payload["transaction"] is None and payload["member"] is None
        assert errors_of(payload) == [refused("NOT_FOUND", ["cardCode"])], forged
    assert await points(h, earner) == UNCHANGED


async def test_a_card_of_an_unknown_member_is_not_found_on_the_card(
    harness: Harness, earner: str
) -> None:
    code = card_code(str(uuid.UUID(int=7)), TEST_CARD_SECRET)
    payload = await record(harness, {**purchase_input(None, "o-1", "50.00"), "cardCode": code})
    assert payload["transaction"] is None
    assert errors_of(payload) == [refused("NOT_FOUND", ["cardCode"])]


async def test_an_unknown_member_id_is_not_found(harness: Harness, earner: str) -> None:
    for member_id in (member_global_id(str(uuid.UUID(int=7))), "garbage"):
        payload = await record(harness, purchase_input(member_id, "o-1", "50.00"))
        assert payload["transaction"] is None and payload["member"] is None
        assert errors_of(payload) == [refused("NOT_FOUND", ["memberId"])]
    assert await points(harness, earner) == UNCHANGED


async def test_both_or_neither_of_member_id_and_card_code(harness: Harness, earner: str) -> None:
    h = harness
    card = await h.gql("{ me { card { code } } }", token=token("cust-1", "member"))
    code = card["data"]["me"]["card"]["code"]
    both = await record(h, {**purchase_input(earner, "o-1", "50.00"), "cardCode": code})
    neither = await record(h, purchase_input(None, "o-1", "50.00"))
    for payload in (both, neither):
        assert payload["transaction"] is None and payload["member"] is None
        assert [e["code"] for e in payload["userErrors"]] == ["INVALID_INPUT"]
    assert await points(h, earner) == UNCHANGED


@pytest.mark.parametrize(
    ("amount", "currency", "field"),
    [
        ("0", "CAD", ["total"]),
        ("0.00", "CAD", ["total"]),
        ("-10.00", "CAD", ["total"]),
        ("1.001", "CAD", ["total"]),  # more fraction digits than CAD has
        ("12000.5", "JPY", ["total"]),  # JPY has none
        ("12000", "JPY", ["total", "currencyCode"]),  # no JPY rate in Club Harry
        ("10.00", "XYZ", ["total"]),  # not a currency
        ("NaN", "CAD", ["total"]),
        ("Infinity", "CAD", ["total"]),
    ],
)
async def test_an_invalid_amount_is_refused(
    harness: Harness, earner: str, amount: str, currency: str, field: list[str]
) -> None:
    payload = await record(harness, purchase_input(earner, "o-1", amount, currency))
    assert payload["transaction"] is None and payload["member"] is None
    assert errors_of(payload) == [refused("INVALID_AMOUNT", field)]
    assert await points(harness, earner) == UNCHANGED


@pytest.mark.parametrize("amount", ["2147483648.00", "100000000000000000000.00"])
async def test_an_absurd_total_is_an_invalid_amount(
    harness: Harness, earner: str, amount: str
) -> None:
    body = await harness.gql(RECORD, {"input": purchase_input(earner, "o-1", amount)}, SERVICE)
    assert "errors" not in body, body
    payload = body["data"]["recordPurchase"]
    assert errors_of(payload) == [refused("INVALID_AMOUNT", ["total"])]
    assert await points(harness, earner) == UNCHANGED


@pytest.mark.parametrize("order_id", ["", "   ", "x" * 129])
async def test_an_invalid_order_id_is_refused(harness: Harness, earner: str, order_id: str) -> None:
    payload = await record(harness, purchase_input(earner, order_id, "10.00"))
    assert payload["transaction"] is None
    assert errors_of(payload) == [refused("INVALID_INPUT", ["orderId"])]
    assert await points(harness, earner) == UNCHANGED


@pytest.mark.parametrize(
    "bearer",
    [token("cust-1", "member"), token("mkt-1", "marketer"), None],
    ids=["member", "marketer", "anonymous"],
)
async def test_only_services_and_associates_record_purchases(
    harness: Harness, earner: str, bearer: str | None
) -> None:
    payload = await record(harness, purchase_input(earner, "o-1", "500.00"), bearer)
    assert payload["transaction"] is None and payload["member"] is None
    assert [e["code"] for e in payload["userErrors"]] == ["NOT_ALLOWED"]
    assert await points(harness, earner) == UNCHANGED


async def test_an_admin_records_purchases(harness: Harness, earner: str, admin_token: str) -> None:
    payload = await record(harness, purchase_input(earner, "o-1", "5.00"), admin_token)
    assert payload["userErrors"] == []
    assert payload["member"]["points"] == {"available": 0, "pending": 105, "lifetimeEarned": 105}


# --- recordPurchase: exactly once ---------------------------------------------------------
async def test_a_replay_returns_the_first_transaction(harness: Harness, earner: str) -> None:
    h = harness
    first = await record(h, purchase_input(earner, "o-1", "50.00"))
    again = await record(h, purchase_input(earner, "o-1", "50.00"))
    assert first["userErrors"] == again["userErrors"] == []
    assert again["transaction"] == first["transaction"]
    assert again["member"]["points"] == {"available": 0, "pending": 150, "lifetimeEarned": 150}
    assert await points(h, earner) == {"available": 0, "pending": 150, "lifetimeEarned": 150}


async def test_a_key_reused_for_another_input_conflicts(harness: Harness, earner: str) -> None:
    h = harness
    first = await record(h, purchase_input(earner, "o-1", "50.00"))
    assert first["userErrors"] == []
    for changed in (
        purchase_input(earner, "o-1", "60.00", idempotencyKey="key-o-1"),
        purchase_input(earner, "o-2", "50.00", idempotencyKey="key-o-1"),
        purchase_input(earner, "o-1", "50.00", "USD", idempotencyKey="key-o-1"),
        {**purchase_input(earner, "o-1", "50.00"), "channel": "WEB"},
    ):
        payload = await record(h, changed)
        assert payload["transaction"] is None and payload["member"] is None
        assert errors_of(payload) == [refused("IDEMPOTENCY_CONFLICT", ["idempotencyKey"])]
    assert await points(h, earner) == {"available": 0, "pending": 150, "lifetimeEarned": 150}


async def test_an_order_never_earns_twice(harness: Harness, earner: str) -> None:
    h = harness
    first = await record(h, purchase_input(earner, "o-1", "50.00"))
    for key, amount in (("another-key", "50.00"), ("yet-another-key", "5000.00")):
        again = await record(h, purchase_input(earner, " o-1 ", amount, idempotencyKey=key))
        assert again["userErrors"] == []
        assert again["transaction"] == first["transaction"]
    assert await points(h, earner) == {"available": 0, "pending": 150, "lifetimeEarned": 150}


async def test_an_order_of_another_member_is_not_allowed(harness: Harness, earner: str) -> None:
    h = harness
    other = await enroll(h, "cust-2")
    payload = await record(h, purchase_input(other, "o-0", "100.00", idempotencyKey="k-other"))
    assert payload["transaction"] is None and payload["member"] is None
    assert errors_of(payload) == [refused("NOT_ALLOWED", ["orderId"])]
    assert await points(h, earner) == UNCHANGED
    assert await points(h, other) == {"available": 0, "pending": 0, "lifetimeEarned": 0}


async def test_concurrent_deliveries_of_one_order_earn_once(harness: Harness, earner: str) -> None:
    """The POS, the webhook relay and a retry deliver the same order at once, under
    different keys: one transaction, whichever wins."""
    h = harness
    results = await asyncio.gather(
        *(
            record(h, purchase_input(earner, "o-1", "50.00", idempotencyKey=f"k-{i}"))
            for i in range(5)
        )
    )
    assert [r["userErrors"] for r in results] == [[]] * 5
    assert len({r["transaction"]["id"] for r in results}) == 1
    assert await points(h, earner) == {"available": 0, "pending": 150, "lifetimeEarned": 150}


async def test_concurrent_replays_of_one_key_earn_once(harness: Harness, earner: str) -> None:
    h = harness
    results = await asyncio.gather(
        *(record(h, purchase_input(earner, "o-1", "50.00")) for _ in range(5))
    )
    assert [r["userErrors"] for r in results] == [[]] * 5
    assert len({r["transaction"]["id"] for r in results}) == 1
    assert await points(h, earner) == {"available": 0, "pending": 150, "lifetimeEarned": 150}


# --- the return window --------------------------------------------------------------------
async def test_pending_points_become_available_after_30_days(harness: Harness) -> None:
    h = harness
    member_id = await enroll(h, "cust-1")
    await purchase(h, member_id, "o-1", "100.00")
    h.clock.advance(days=10)
    await purchase(h, member_id, "o-2", "40.00")

    h.clock.advance(days=19, hours=23, minutes=59)
    assert await points(h, member_id) == {"available": 0, "pending": 140, "lifetimeEarned": 140}
    h.clock.advance(minutes=1)  # 30 days after the first purchase
    assert await points(h, member_id) == {"available": 100, "pending": 40, "lifetimeEarned": 140}
    h.clock.advance(days=10)
    assert await points(h, member_id) == {"available": 140, "pending": 0, "lifetimeEarned": 140}

    body = await h.gql(
        "query($id: ID!) { member(id: $id) { transactions { edges { node { orderId status } } } } }",
        {"id": member_id},
        SERVICE,
    )
    assert body["data"]["member"]["transactions"]["edges"] == [
        {"node": {"orderId": "o-2", "status": "POSTED"}},
        {"node": {"orderId": "o-1", "status": "POSTED"}},
    ]


# --- transactions pagination --------------------------------------------------------------
TRANSACTIONS = """
query($id: ID!, $first: Int, $after: String) {
  member(id: $id) {
    transactions(first: $first, after: $after) {
      edges { cursor node { id orderId points } }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""


async def page(h: Harness, member_id: str, first: int, after: str | None) -> dict[str, Any]:
    body = await h.gql(TRANSACTIONS, {"id": member_id, "first": first, "after": after}, SERVICE)
    assert "errors" not in body, body
    connection: dict[str, Any] = body["data"]["member"]["transactions"]
    return connection


async def test_transactions_page_newest_first_with_cursors(harness: Harness) -> None:
    h = harness
    member_id = await enroll(h, "cust-1")
    ids = {}
    for n in range(1, 6):
        h.clock.advance(minutes=1)
        earned = await purchase(h, member_id, f"o-{n}", f"{n}0.00")
        ids[f"o-{n}"] = earned["transaction"]["id"]

    one = await page(h, member_id, 2, None)
    assert [(e["node"]["orderId"], e["node"]["points"]) for e in one["edges"]] == [
        ("o-5", 50),
        ("o-4", 40),
    ]
    assert [e["node"]["id"] for e in one["edges"]] == [ids["o-5"], ids["o-4"]]
    assert one["pageInfo"] == {"hasNextPage": True, "endCursor": one["edges"][1]["cursor"]}

    two = await page(h, member_id, 2, one["pageInfo"]["endCursor"])
    assert [e["node"]["orderId"] for e in two["edges"]] == ["o-3", "o-2"]
    assert two["pageInfo"] == {"hasNextPage": True, "endCursor": two["edges"][1]["cursor"]}

    three = await page(h, member_id, 2, two["pageInfo"]["endCursor"])
    assert [e["node"]["orderId"] for e in three["edges"]] == ["o-1"]
    assert three["pageInfo"] == {"hasNextPage": False, "endCursor": three["edges"][0]["cursor"]}

    past = await page(h, member_id, 2, three["pageInfo"]["endCursor"])
    assert past == {"edges": [], "pageInfo": {"hasNextPage": False, "endCursor": None}}

    everything = await page(h, member_id, 5, None)
    assert [e["node"]["orderId"] for e in everything["edges"]] == ["o-5", "o-4", "o-3", "o-2", "o-1"]  # fmt: skip
    assert everything["pageInfo"]["hasNextPage"] is False
    assert len({e["cursor"] for e in everything["edges"]}) == 5


async def test_transactions_of_a_new_member_and_a_bad_cursor(harness: Harness) -> None:
    h = harness
    member_id = await enroll(h, "cust-1")
    assert await page(h, member_id, 20, None) == {
        "edges": [],
        "pageInfo": {"hasNextPage": False, "endCursor": None},
    }
    body = await h.gql(TRANSACTIONS, {"id": member_id, "first": 2, "after": "bm9wZQ=="}, SERVICE)
    assert body["data"] == {"member": None}
    assert [e["extensions"]["code"] for e in body["errors"]] == ["INVALID_INPUT"]
    assert body["errors"][0]["path"] == ["member", "transactions"]


async def test_a_members_transactions_are_only_its_own(harness: Harness) -> None:
    h = harness
    ava = await enroll(h, "cust-1")
    ben = await enroll(h, "cust-2")
    await purchase(h, ava, "o-a", "10.00")
    await purchase(h, ben, "o-b", "20.00")
    ava_page = await page(h, ava, 10, None)
    ben_page = await page(h, ben, 10, None)
    assert [e["node"]["orderId"] for e in ava_page["edges"]] == ["o-a"]
    assert [e["node"]["orderId"] for e in ben_page["edges"]] == ["o-b"]
