"""Spending, gifting, donating and awarding: each rule's refusal is a userError with a code,
and a refused or replayed mutation moves nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Harness, token
from tests.graphql.conftest import enroll, purchase

PAYLOAD = "transaction { id kind points } userErrors { code field }"


async def run(h: Harness, name: str, input: dict[str, Any], tok: str) -> dict[str, Any]:
    kind = f"{name[0].upper()}{name[1:]}Input"
    body = await h.gql(
        f"mutation($i: {kind}!) {{ {name}(input: $i) {{ {PAYLOAD} }} }}", {"i": input}, tok
    )
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"][name]
    return result


async def available(h: Harness, member_id: str) -> int:
    body = await h.gql(
        "query($id: ID!) { member(id: $id) { points { available } } }",
        {"id": member_id},
        token("svc", "service"),
    )
    value: int = body["data"]["member"]["points"]["available"]
    return value


@pytest.fixture
async def pair(harness: Harness) -> tuple[str, str]:
    """Ava with 1,000 available points and Ben with none."""
    ava = await enroll(harness, "ava")
    ben = await enroll(harness, "ben")
    await purchase(harness, ava, "o-1", "1000.00")
    harness.clock.advance(days=30)
    return ava, ben


AVA = token("ava", "member")
SVC = token("pos", "service")
ASSOC = token("assoc-1", "associate", store="TOR-1")


@pytest.mark.parametrize(
    ("name", "make", "tok", "code", "field"),
    [
        (
            "redeemPoints",
            lambda a, b: {"memberId": a, "points": 0},
            AVA,
            "INVALID_AMOUNT",
            ["points"],
        ),
        (
            "redeemPoints",
            lambda a, b: {"memberId": a, "points": -5},
            AVA,
            "INVALID_AMOUNT",
            ["points"],
        ),
        (
            "redeemPoints",
            lambda a, b: {"memberId": a, "points": 10_000_001},
            AVA,
            "INVALID_AMOUNT",
            ["points"],
        ),
        (
            "redeemPoints",
            lambda a, b: {"memberId": a, "points": 1001},
            AVA,
            "INSUFFICIENT_POINTS",
            ["points"],
        ),
        ("redeemPoints", lambda a, b: {"memberId": b, "points": 1}, AVA, "NOT_ALLOWED", None),
        (
            "redeemPoints",
            lambda a, b: {"memberId": "TWVtYmVyOnh5eg==", "points": 1},
            SVC,
            "NOT_FOUND",
            ["memberId"],
        ),
        (
            "giftPoints",
            lambda a, b: {"fromMemberId": a, "toMemberId": a, "points": 10},
            AVA,
            "INVALID_INPUT",
            ["toMemberId"],
        ),
        (
            "giftPoints",
            lambda a, b: {"fromMemberId": a, "toMemberId": b, "points": 1001},
            AVA,
            "INSUFFICIENT_POINTS",
            ["points"],
        ),
        (
            "giftPoints",
            lambda a, b: {"fromMemberId": b, "toMemberId": a, "points": 1},
            AVA,
            "NOT_ALLOWED",
            None,
        ),
        (
            "giftPoints",
            lambda a, b: {"fromMemberId": a, "toMemberId": "bad", "points": 1},
            AVA,
            "NOT_FOUND",
            ["toMemberId"],
        ),
        (
            "donatePoints",
            lambda a, b: {"memberId": a, "charityKey": "nope", "points": 10},
            AVA,
            "NOT_FOUND",
            ["charityKey"],
        ),
        (
            "donatePoints",
            lambda a, b: {"memberId": a, "charityKey": "sickkids", "points": 0},
            AVA,
            "INVALID_AMOUNT",
            ["points"],
        ),
        (
            "awardPoints",
            lambda a, b: {"memberId": a, "points": 501, "reason": "VIP"},
            ASSOC,
            "LIMIT_EXCEEDED",
            ["points"],
        ),
        (
            "awardPoints",
            lambda a, b: {"memberId": a, "points": 10, "reason": " "},
            ASSOC,
            "INVALID_INPUT",
            ["reason"],
        ),
        (
            "awardPoints",
            lambda a, b: {"memberId": a, "points": 10, "reason": "x"},
            AVA,
            "NOT_ALLOWED",
            None,
        ),
        ("returnPurchase", lambda a, b: {"orderId": "unknown"}, SVC, "NOT_FOUND", ["orderId"]),
        (
            "returnPurchase",
            lambda a, b: {"orderId": "o-1", "amount": {"amount": "1000.01", "currencyCode": "CAD"}},
            SVC,
            "INVALID_AMOUNT",
            ["amount"],
        ),
        (
            "returnPurchase",
            lambda a, b: {"orderId": "o-1", "amount": {"amount": "10.00", "currencyCode": "USD"}},
            SVC,
            "INVALID_AMOUNT",
            ["amount", "currencyCode"],
        ),
        ("returnPurchase", lambda a, b: {"orderId": "o-1"}, AVA, "NOT_ALLOWED", None),
    ],
)
async def test_refusals_say_why_and_move_nothing(
    harness: Harness,
    pair: tuple[str, str],
    name: str,
    make: Any,
    tok: str,
    code: str,
    field: list[str] | None,
) -> None:
    ava, ben = pair
    result = await run(harness, name, {**make(ava, ben), "idempotencyKey": "k-1"}, tok)
    assert result["transaction"] is None
    assert result["userErrors"] == [{"code": code, "field": field}]
    assert await available(harness, ava) == 1000
    assert await available(harness, ben) == 0


async def test_gifts_are_limited_per_day(harness: Harness, pair: tuple[str, str]) -> None:
    h = harness
    ava, ben = pair
    await purchase(h, ava, "o-2", "9000.00")
    h.clock.advance(days=30)
    ok = await run(
        h,
        "giftPoints",
        {"fromMemberId": ava, "toMemberId": ben, "points": 4000, "idempotencyKey": "g1"},
        AVA,
    )
    assert ok["userErrors"] == []
    over = await run(
        h,
        "giftPoints",
        {"fromMemberId": ava, "toMemberId": ben, "points": 1001, "idempotencyKey": "g2"},
        AVA,
    )
    assert over["userErrors"] == [{"code": "LIMIT_EXCEEDED", "field": ["points"]}]
    h.clock.advance(days=1)  # a new day in Toronto
    again = await run(
        h,
        "giftPoints",
        {"fromMemberId": ava, "toMemberId": ben, "points": 1001, "idempotencyKey": "g3"},
        AVA,
    )
    assert again["userErrors"] == []
    assert await available(h, ben) == 5001


async def test_associate_awards_are_limited_per_associate_per_day(
    harness: Harness, pair: tuple[str, str]
) -> None:
    h = harness
    ava, ben = pair
    for i in range(4):
        result = await run(
            h,
            "awardPoints",
            {"memberId": ben, "points": 500, "reason": "Apology", "idempotencyKey": f"a{i}"},
            ASSOC,
        )
        assert result["userErrors"] == []
    over = await run(
        h,
        "awardPoints",
        {"memberId": ava, "points": 1, "reason": "One more", "idempotencyKey": "a5"},
        ASSOC,
    )
    assert over["userErrors"] == [{"code": "LIMIT_EXCEEDED", "field": ["points"]}]
    other = token("assoc-2", "associate", store="TOR-1")
    fine = await run(
        h,
        "awardPoints",
        {"memberId": ava, "points": 1, "reason": "Thanks", "idempotencyKey": "a6"},
        other,
    )
    assert fine["userErrors"] == []
    assert await available(h, ben) == 2000
    async with h.engine.connect() as conn:
        from sqlalchemy import text

        audit = (
            await conn.execute(
                text(
                    "SELECT actor, store_id, description, channel FROM ledger_transactions WHERE kind = 'AWARD' ORDER BY id LIMIT 1"
                )
            )
        ).one()
    assert tuple(audit) == ("assoc-1", "TOR-1", "Apology", "ASSOCIATE")


@pytest.mark.parametrize(
    ("name", "make", "tok"),
    [
        ("redeemPoints", lambda a, b: {"memberId": a, "points": 100}, AVA),
        ("giftPoints", lambda a, b: {"fromMemberId": a, "toMemberId": b, "points": 100}, AVA),
        (
            "donatePoints",
            lambda a, b: {"memberId": a, "charityKey": "movember", "points": 100},
            AVA,
        ),
        ("awardPoints", lambda a, b: {"memberId": a, "points": 100, "reason": "Thanks"}, ASSOC),
        (
            "returnPurchase",
            lambda a, b: {"orderId": "o-1", "amount": {"amount": "100.00", "currencyCode": "CAD"}},
            SVC,
        ),
    ],
)
async def test_a_replay_moves_nothing_and_a_changed_input_conflicts(
    harness: Harness, pair: tuple[str, str], name: str, make: Any, tok: str
) -> None:
    h = harness
    ava, ben = pair
    input = {**make(ava, ben), "idempotencyKey": "same-key"}
    first = await run(h, name, input, tok)
    assert first["userErrors"] == [] and first["transaction"] is not None
    after_first = (await available(h, ava), await available(h, ben))
    replay = await run(h, name, input, tok)
    assert replay == first
    assert (await available(h, ava), await available(h, ben)) == after_first
    changed = (
        {**input, "points": 101}
        if "points" in input
        else {**input, "amount": {"amount": "101.00", "currencyCode": "CAD"}}
    )
    conflict = await run(h, name, changed, tok)
    assert conflict == {
        "transaction": None,
        "userErrors": [{"code": "IDEMPOTENCY_CONFLICT", "field": ["idempotencyKey"]}],
    }
    assert (await available(h, ava), await available(h, ben)) == after_first
