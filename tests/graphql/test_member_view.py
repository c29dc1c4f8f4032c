"""The unified member view end to end: loyalty data joined with the CDP profile, the
commerce cart and orders, and CMS content, through the ASGI app and the vendor fakes."""

from __future__ import annotations

from datetime import timedelta

from adapters.commerce.fake import FakeLine
from tests.conftest import Harness, token
from tests.graphql.conftest import enroll, purchase

MEMBER_VIEW = """
{
  me {
    id
    externalIds { commerceCustomerId cdpUserId email }
    profile { userId firstName lastName email birthday audiences }
    points { available pending lifetimeEarned }
    transactions(first: 10) { edges { node { kind points status orderId channel } } }
    tier {
      current { key name content { deliveryKey fields imageUrl } }
      qualifyingSpend { amount currencyCode }
      nextTier { key }
      spendToNextTier { amount currencyCode }
    }
    offers { kind title discountPercent }
    cart {
      total { amount currencyCode }
      lineItems { sku name quantity unitPrice { amount } total { amount } imageUrl }
      pointsPreview
      tierDiscount { amount currencyCode }
    }
    orders(first: 5) { orderNumber total { amount currencyCode } state }
    household { id }
  }
}
"""


def seed_upstreams(h: Harness) -> None:
    h.fakes.cdp.add_profile(
        "cust-1",
        {
            "first_name": "Ava",
            "last_name": "Laurent",
            "email": "ava@example.com",
            "birthday": "1988-03-14",
            "newsletter_subscriber": True,
            "vip": False,
            "lifetime_value": 1200,
        },
    )
    h.fakes.commerce.add_cart(
        "cust-1",
        [
            FakeLine("COAT-1", "Cashmere overcoat", 1, "2495.00", "coat"),
            FakeLine("TIE-1", "Silk tie", 2, "165.00"),
        ],
        "CAD",
    )
    h.fakes.commerce.add_order(
        "cust-1", "310.00", "CAD", created_at=h.clock() - timedelta(days=3), order_number="HR-2"
    )
    h.fakes.commerce.add_order(
        "cust-1", "120.00", "CAD", created_at=h.clock() - timedelta(days=40), order_number="HR-1"
    )
    h.fakes.cms.add_content(
        "tiers/silver",
        "https://schema.example/tier.json",
        "Silver card",
        {"headline": "Silver"},
        image="silver",
    )


async def test_me_joins_loyalty_profile_cart_orders_and_content(harness: Harness) -> None:
    h = harness
    seed_upstreams(h)
    member_id = await enroll(h, "cust-1", email="Ava@Example.com")
    earned = await purchase(h, member_id, "order-1", "3000.00")
    assert earned["transaction"]["points"] == 3000
    h.clock.advance(days=31)  # out of the return window: available
    await purchase(h, member_id, "order-2", "100.00", "USD")  # silver now: 137 x 1.25

    body = await h.gql(MEMBER_VIEW, token=token("cust-1", "member"))

    assert "errors" not in body, body
    me = body["data"]["me"]
    assert me["id"] == member_id
    assert me["externalIds"] == {
        "commerceCustomerId": "cust-1",
        "cdpUserId": "cust-1",
        "email": "ava@example.com",
    }
    assert me["profile"] == {
        "userId": "cust-1",
        "firstName": "Ava",
        "lastName": "Laurent",
        "email": "ava@example.com",
        "birthday": "1988-03-14",
        "audiences": ["newsletter_subscriber"],
    }
    assert me["points"] == {"available": 3000, "pending": 171, "lifetimeEarned": 3171}
    assert me["transactions"]["edges"] == [
        {
            "node": {
                "kind": "EARN",
                "points": 171,
                "status": "PENDING",
                "orderId": "order-2",
                "channel": "POS",
            }
        },
        {
            "node": {
                "kind": "EARN",
                "points": 3000,
                "status": "POSTED",
                "orderId": "order-1",
                "channel": "POS",
            }
        },
    ]
    assert me["tier"] == {
        "current": {
            "key": "silver",
            "name": "Silver",
            "content": {
                "deliveryKey": "tiers/silver",
                "fields": {
                    "headline": "Silver",
                    "image": me["tier"]["current"]["content"]["fields"]["image"],
                },
                "imageUrl": "https://cdn.media.amplience.net/i/patron/silver",
            },
        },
        "qualifyingSpend": {"amount": "3137.00", "currencyCode": "CAD"},
        "nextTier": {"key": "gold"},
        "spendToNextTier": {"amount": "4363.00", "currencyCode": "CAD"},
    }
    assert me["offers"] == []  # silver has no standing discount and no offer is stored
    assert me["cart"] == {
        "total": {"amount": "2825.00", "currencyCode": "CAD"},
        "lineItems": [
            {
                "sku": "COAT-1",
                "name": "Cashmere overcoat",
                "quantity": 1,
                "unitPrice": {"amount": "2495.00"},
                "total": {"amount": "2495.00"},
                "imageUrl": "coat",
            },
            {
                "sku": "TIE-1",
                "name": "Silk tie",
                "quantity": 2,
                "unitPrice": {"amount": "165.00"},
                "total": {"amount": "330.00"},
                "imageUrl": None,
            },
        ],
        "pointsPreview": 3531,  # 2825 x 1.25, rounded down
        "tierDiscount": None,  # silver gives no discount
    }
    assert me["orders"] == [
        {"orderNumber": "HR-2", "total": {"amount": "310.00", "currencyCode": "CAD"}, "state": "Confirmed"},
        {"orderNumber": "HR-1", "total": {"amount": "120.00", "currencyCode": "CAD"}, "state": "Confirmed"},
    ]  # fmt: skip
    assert me["household"] is None


async def test_gold_member_sees_tier_discount_offer_and_cart_discount(harness: Harness) -> None:
    h = harness
    h.fakes.commerce.add_cart("cust-2", [FakeLine("BAG", "Weekender", 1, "1000.00")], "CAD")
    member_id = await enroll(h, "cust-2")
    await purchase(h, member_id, "big-order", "8000.00")
    body = await h.gql(
        "{ me { tier { current { key } } offers { kind title discountPercent code } "
        "cart { pointsPreview tierDiscount { amount currencyCode } } } }",
        token=token("cust-2", "member"),
    )
    me = body["data"]["me"]
    assert me["tier"]["current"]["key"] == "gold"
    assert me["offers"] == [
        {"kind": "TIER_DISCOUNT", "title": "Gold: 5% off", "discountPercent": "5", "code": None}
    ]
    assert me["cart"] == {
        "pointsPreview": 1500,
        "tierDiscount": {"amount": "50.00", "currencyCode": "CAD"},
    }


async def test_no_cart_and_no_profile_are_nulls_not_errors(harness: Harness) -> None:
    h = harness
    await enroll(h, "cust-3")
    body = await h.gql(
        "{ me { profile { userId } cart { id } orders { id } } }", token=token("cust-3", "member")
    )
    assert body == {"data": {"me": {"profile": None, "cart": None, "orders": []}}}


async def test_member_card_resolves_at_the_pos(harness: Harness, associate_token: str) -> None:
    h = harness
    member_id = await enroll(h, "cust-4")
    body = await h.gql("{ me { card { code qrSvg } } }", token=token("cust-4", "member"))
    card = body["data"]["me"]["card"]
    assert card["code"].startswith("PTN1.")
    assert card["qrSvg"].startswith("<svg") and "</svg>" in card["qrSvg"]

    found = await h.gql(
        "query($c: String!) { memberByCard(code: $c) { id externalIds { commerceCustomerId } } }",
        {"c": card["code"]},
        associate_token,
    )
    assert found["data"]["memberByCard"] == {
        "id": member_id,
        "externalIds": {"commerceCustomerId": "cust-4"},
    }


async def test_a_forged_or_unknown_card_is_not_found(
    harness: Harness, associate_token: str
) -> None:
    h = harness
    await enroll(h, "cust-5")
    body = await h.gql("{ me { card { code } } }", token=token("cust-5", "member"))
    code = body["data"]["me"]["card"]["code"]
    forged = code[:-2] + ("AA" if not code.endswith("AA") else "BB")
    for bad in (forged, "not-a-card", "PTN1.00000000-0000-0000-0000-000000000000.x"):
        result = await h.gql(
            "query($c: String!) { memberByCard(code: $c) { id } }", {"c": bad}, associate_token
        )
        assert result["data"] == {"memberByCard": None}
        assert [e["extensions"]["code"] for e in result["errors"]] == ["NOT_FOUND"]


async def test_staff_read_members_by_id_and_unknown_is_not_found(
    harness: Harness, associate_token: str
) -> None:
    h = harness
    member_id = await enroll(h, "cust-6")
    ok = await h.gql(
        "query($id: ID!) { member(id: $id) { externalIds { commerceCustomerId } } }",
        {"id": member_id},
        associate_token,
    )
    assert ok == {"data": {"member": {"externalIds": {"commerceCustomerId": "cust-6"}}}}
    for unknown in ("TWVtYmVyOm5vcGU=", "garbage", "UG9pbnRzVHJhbnNhY3Rpb246MQ=="):
        missing = await h.gql(
            "query($id: ID!) { member(id: $id) { id } }", {"id": unknown}, associate_token
        )
        assert missing["data"] == {"member": None}
        assert missing["errors"][0]["extensions"] == {"code": "NOT_FOUND"}


async def test_a_member_cannot_read_another_member(harness: Harness) -> None:
    h = harness
    await enroll(h, "cust-7")
    other = await enroll(h, "cust-8")
    h.fakes.cdp.add_profile("cust-8", {"first_name": "Secret"})
    body = await h.gql(
        "query($id: ID!) { member(id: $id) { id profile { firstName } points { available } } }",
        {"id": other},
        token("cust-7", "member"),
    )
    assert body["data"] == {"member": None}
    assert body["errors"][0]["extensions"] == {"code": "NOT_ALLOWED"}
    assert "Secret" not in str(body)
    # ...and node(id) is no way around it
    via_node = await h.gql(
        "query($id: ID!) { node(id: $id) { id } }", {"id": other}, token("cust-7", "member")
    )
    assert via_node["data"] == {"node": None}
    assert via_node["errors"][0]["extensions"] == {"code": "NOT_ALLOWED"}


async def test_no_token_no_personal_data(harness: Harness) -> None:
    h = harness
    member_id = await enroll(h, "cust-9")
    me = await h.gql("{ me { id } }")
    assert me["data"] == {"me": None}
    assert me["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED"}
    other = await h.gql("query($id: ID!) { member(id: $id) { id } }", {"id": member_id})
    assert other["data"] == {"member": None}
    assert other["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED"}
    search = await h.gql("{ members { totalCount } }")
    assert search["data"] is None
    assert search["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED"}


async def test_program_is_public_without_hidden_tiers(harness: Harness) -> None:
    body = await harness.gql(
        "{ program { key name currencyCode pointsName tiers { key rank hidden minSpend earnMultiplier discountPercent } } }"
    )
    assert body == {
        "data": {
            "program": {
                "key": "club-harry",
                "name": "Club Harry",
                "currencyCode": "CAD",
                "pointsName": "points",
                "tiers": [
                    {"key": "member", "rank": 0, "hidden": False, "minSpend": "0", "earnMultiplier": "1", "discountPercent": "0"},
                    {"key": "silver", "rank": 1, "hidden": False, "minSpend": "2500", "earnMultiplier": "1.25", "discountPercent": "0"},
                    {"key": "gold", "rank": 2, "hidden": False, "minSpend": "7500", "earnMultiplier": "1.5", "discountPercent": "5"},
                    {"key": "black", "rank": 3, "hidden": False, "minSpend": "20000", "earnMultiplier": "2", "discountPercent": "10"},
                ],
            }
        }
    }  # fmt: skip


async def test_a_malformed_request_is_a_400(harness: Harness) -> None:
    c = harness.client
    bad_json = await c.post(
        "/graphql", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert bad_json.status_code == 400
    no_query = await c.post("/graphql", json={"variables": {}})
    assert no_query.status_code == 400
    # A document that does not parse is a GraphQL request error: 200 under application/json
    # (httpx accepts */*), 400 under application/graphql-response+json (test_graphql_over_http).
    syntax = await c.post("/graphql", json={"query": "{ me { "})
    assert syntax.status_code == 200
    assert syntax.json()["errors"][0]["message"].startswith("Syntax Error")


async def test_an_untrustworthy_token_is_a_401(harness: Harness) -> None:
    c = harness.client
    for header in (
        "Bearer not.a.jwt",
        "Basic dXNlcjpwYXNz",
        f"Bearer {token('cust-1', 'member', ttl=-120)}",
        "Bearer " + token("cust-1", "member")[:-4] + "AAAA",
    ):
        response = await c.post(
            "/graphql", json={"query": "{ me { id } }"}, headers={"Authorization": header}
        )
        assert response.status_code == 401, header
        assert response.json()["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED"}
