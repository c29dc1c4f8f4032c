"""Worked examples of the ledger, readable as a story: a year (and then some) in the life of
a Club Harry member. Club Harry: 1 point per CAD, USD at 1.37, points pending for 30 days,
expiring 24 months after they become available."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.conftest import START, Harness, token
from tests.graphql.conftest import enroll, purchase

POINTS = """
query($id: ID!) {
  member(id: $id) {
    points { available pending lifetimeEarned expiringNext { points expiresAt } }
    tier { current { key } qualifyingSpend { amount } }
    transactions(first: 20) { edges { node { kind points status orderId description } } }
  }
}
"""


async def points(h: Harness, member_id: str) -> dict[str, Any]:
    body = await h.gql(POINTS, {"id": member_id}, token("svc", "service"))
    assert "errors" not in body, body
    member: dict[str, Any] = body["data"]["member"]
    return member


async def mutate(h: Harness, name: str, input: dict[str, Any], tok: str) -> dict[str, Any]:
    body = await h.gql(
        f"mutation($input: {name[0].upper()}{name[1:]}Input!) {{ {name}(input: $input) {{ "
        "transaction { kind points status description } "
        "member { points { available pending } } userErrors { code field message } } }",
        {"input": input},
        tok,
    )
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"][name]
    return result


async def test_a_year_in_the_life_of_a_member(harness: Harness) -> None:
    h = harness
    ava = await enroll(h, "ava")
    ben = await enroll(h, "ben")
    ava_token = token("ava", "member")
    svc = token("pos", "service")

    # Day 0: a suit in Toronto, 1,200 CAD: 1,200 points, pending through the return window.
    await purchase(h, ava, "suit", "1200.00")
    # Day 10: shoes in New York, 500 USD = 685 CAD: 685 points, pending too.
    h.clock.advance(days=10)
    await purchase(h, ava, "shoes", "500.00", "USD")
    assert (await points(h, ava))["points"]["pending"] == 1885

    # Day 20: one pair of the shoes goes back, 200 USD of 500: 685 x 200/500 = 274 points,
    # taken from the still-pending points.
    h.clock.advance(days=10)
    returned = await mutate(
        h,
        "returnPurchase",
        {
            "orderId": "shoes",
            "amount": {"amount": "200.00", "currencyCode": "USD"},
            "idempotencyKey": "ret-1",
        },
        svc,
    )
    assert returned["userErrors"] == []
    assert returned["transaction"] == {
        "kind": "RETURN",
        "points": -274,
        "status": "POSTED",
        "description": "Return of order shoes",
    }
    assert returned["member"]["points"] == {"available": 0, "pending": 1611}

    # Day 45: both return windows have passed: everything is available.
    h.clock.advance(days=25)
    view = await points(h, ava)
    assert view["points"]["available"] == 1611
    assert view["points"]["pending"] == 0
    assert view["points"]["lifetimeEarned"] == 1611
    assert view["tier"] == {"current": {"key": "member"}, "qualifyingSpend": {"amount": "1611.00"}}

    # Day 46: a gift of 300 points to Ben.
    h.clock.advance(days=1)
    gift = await mutate(
        h,
        "giftPoints",
        {
            "fromMemberId": ava,
            "toMemberId": ben,
            "points": 300,
            "message": "Merci",
            "idempotencyKey": "gift-1",
        },
        ava_token,
    )
    assert gift["userErrors"] == []
    assert gift["transaction"]["kind"] == "GIFT_SENT"
    assert gift["member"]["points"] == {"available": 1311, "pending": 0}
    assert (await points(h, ben))["points"]["available"] == 300

    # Day 50: 500 points to SickKids, worth 5.00 CAD at 100 points a dollar.
    h.clock.advance(days=4)
    donation = await mutate(
        h,
        "donatePoints",
        {"memberId": ava, "charityKey": "sickkids", "points": 500, "idempotencyKey": "don-1"},
        ava_token,
    )
    assert donation["transaction"] == {
        "kind": "DONATION",
        "points": -500,
        "status": "POSTED",
        "description": "Donation to SickKids Foundation",
    }
    async with h.engine.connect() as conn:
        from sqlalchemy import text

        extra = (
            await conn.execute(
                text("SELECT extra FROM ledger_transactions WHERE kind = 'DONATION'")
            )
        ).scalar_one()
    extra = extra if isinstance(extra, dict) else __import__("json").loads(extra)
    assert extra == {"charity": "sickkids", "amount": "5.00", "currency": "CAD"}

    # Day 60: 200 points redeemed at the till.
    h.clock.advance(days=10)
    redeemed = await mutate(
        h,
        "redeemPoints",
        {"memberId": ava, "points": 200, "reason": "Tie", "idempotencyKey": "red-1"},
        ava_token,
    )
    assert redeemed["member"]["points"] == {"available": 611, "pending": 0}

    # The suit's points became available on day 30 and expire 24 months later. Spending used
    # the oldest points first (300 + 500 + 200 = 1,000 of the suit's 1,200), so 200 expire.
    view = await points(h, ava)
    suit_expiry = START + timedelta(days=30)
    assert view["points"]["expiringNext"] == {
        "points": 200,
        "expiresAt": suit_expiry.replace(year=suit_expiry.year + 2).isoformat(),
    }

    h.clock.now = suit_expiry.replace(year=suit_expiry.year + 2) + timedelta(hours=1)
    ledger = h.gateway.services.ledger
    assert await ledger.expire() == 200
    assert await ledger.expire() == 0  # idempotent
    view = await points(h, ava)
    shoes_expiry = START + timedelta(days=40)
    assert view["points"]["available"] == 411
    assert view["points"]["expiringNext"] == {
        "points": 411,
        "expiresAt": shoes_expiry.replace(year=shoes_expiry.year + 2).isoformat(),
    }
    assert [
        (e["node"]["kind"], e["node"]["points"], e["node"]["status"])
        for e in view["transactions"]["edges"]
    ] == [
        ("EXPIRY", -200, "POSTED"),
        ("REDEEM", -200, "POSTED"),
        ("DONATION", -500, "POSTED"),
        ("GIFT_SENT", -300, "POSTED"),
        ("RETURN", -274, "POSTED"),
        ("EARN", 685, "POSTED"),
        ("EARN", 1200, "POSTED"),
    ]
    # Ben's gift, received on day 46, is untouched and expires on its own date.
    assert (await points(h, ben))["points"]["available"] == 300


async def test_a_full_return_inside_the_window_reverses_the_earn(harness: Harness) -> None:
    h = harness
    ava = await enroll(h, "ava")
    await purchase(h, ava, "coat", "999.00")
    h.clock.advance(days=5)
    result = await mutate(
        h, "returnPurchase", {"orderId": "coat", "idempotencyKey": "r"}, token("pos", "service")
    )
    assert result["transaction"]["points"] == -999
    view = await points(h, ava)
    assert view["points"] == {
        "available": 0,
        "pending": 0,
        "lifetimeEarned": 0,
        "expiringNext": None,
    }
    assert [e["node"]["status"] for e in view["transactions"]["edges"]] == ["POSTED", "REVERSED"]
    assert view["tier"]["qualifyingSpend"] == {"amount": "0.00"}
    again = await mutate(
        h, "returnPurchase", {"orderId": "coat", "idempotencyKey": "r2"}, token("pos", "service")
    )
    assert again["userErrors"][0]["code"] == "INVALID_AMOUNT"


async def test_a_return_after_spending_takes_what_is_left_never_below_zero(
    harness: Harness,
) -> None:
    h = harness
    ava = await enroll(h, "ava")
    await purchase(h, ava, "bag", "1000.00")
    h.clock.advance(days=31)
    await mutate(
        h,
        "redeemPoints",
        {"memberId": ava, "points": 900, "idempotencyKey": "spend"},
        token("ava", "member"),
    )
    result = await mutate(
        h, "returnPurchase", {"orderId": "bag", "idempotencyKey": "ret"}, token("pos", "service")
    )
    assert result["transaction"]["points"] == -100
    assert result["member"]["points"] == {"available": 0, "pending": 0}
