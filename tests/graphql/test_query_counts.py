"""No N+1: a list of members costs one query per table and one call per upstream batch,
whatever the number of members."""

from __future__ import annotations

from adapters.commerce.fake import FakeLine
from tests.conftest import Harness
from tests.graphql.conftest import enroll, purchase

MEMBERS_VIEW = """
query($first: Int!) {
  members(first: $first) {
    totalCount
    edges {
      node {
        externalIds { commerceCustomerId }
        profile { firstName audiences }
        points { available pending lifetimeEarned }
        transactions(first: 2) { edges { node { points } } }
        tier { current { key content { name } } qualifyingSpend { amount } nextTier { key } }
        offers { kind title }
        cart { total { amount } pointsPreview tierDiscount { amount } }
        household { id }
      }
    }
  }
}
"""


async def populate(h: Harness, n: int) -> None:
    for tier in ("member", "silver", "gold", "black"):
        h.fakes.cms.add_content(f"tiers/{tier}", "https://schema.example/tier.json", tier, {})
    for i in range(n):
        commerce_id = f"cust-{i:03d}"
        member_id = await enroll(h, commerce_id)
        await purchase(h, member_id, f"order-{i}", str(1000 * (i % 25) + 10))
        h.fakes.cdp.add_profile(commerce_id, {"first_name": f"Customer {i}", "vip": i % 2 == 0})
        h.fakes.commerce.add_cart(commerce_id, [FakeLine(f"SKU-{i}", "Shirt", 1, "200.00")])


async def test_members_view_of_25_costs_one_batch_per_upstream(
    harness: Harness, associate_token: str
) -> None:
    h = harness
    await populate(h, 25)

    async def run(first: int) -> tuple[tuple[int, int], dict[str, int], list[dict[str, object]]]:
        h.fakes.reset_requests()
        h.clear_caches()  # a cold cache: count the upstream calls (warm: tests/graphql/test_cache.py)
        h.sql.reset()
        body = await h.gql(MEMBERS_VIEW, {"first": first}, associate_token)
        assert "errors" not in body, body
        carts = [r for r in h.fakes.commerce.requests if r.path.endswith("/carts")]
        tokens = [r for r in h.fakes.commerce.requests if r.path.endswith("/oauth/token")]
        return (
            (h.sql.count, h.sql.checkouts),
            {
                "carts": len(carts),
                "commerce_total": len(h.fakes.commerce.requests) - len(tokens),
                "cms": len(h.fakes.cms.requests),
                "cdp": len(h.fakes.cdp.requests),
            },
            body["data"]["members"]["edges"],
        )

    sql_5, calls_5, edges_5 = await run(5)
    sql_25, calls_25, edges_25 = await run(25)

    assert len(edges_5) == 5 and len(edges_25) == 25
    assert calls_25 == {"carts": 1, "commerce_total": 1, "cms": 1, "cdp": 25}
    assert calls_5 == {"carts": 1, "commerce_total": 1, "cms": 1, "cdp": 5}
    # The same statements for 5 and for 25 members: one per table, never one per member;
    # the reads that overlap share a connection (`SharedConnection`), so the whole view
    # takes three from the pool.
    assert sql_25 == sql_5
    assert sql_25 == (12, 3), "\n".join(q.split("\n")[0][:90] for q in h.sql.queries)
    by_customer = {e["node"]["externalIds"]["commerceCustomerId"]: e["node"] for e in edges_25}  # type: ignore[index]
    for i, (tier, preview, discount) in {
        0: ("member", 200, None),  # 200.00 x 1
        3: ("silver", 250, None),  # x 1.25
        8: ("gold", 300, "10.00"),  # x 1.5, 5% off
        20: ("black", 400, "20.00"),  # x 2, 10% off
    }.items():
        node = by_customer[f"cust-{i:03d}"]
        assert node["profile"] == {
            "firstName": f"Customer {i}",
            "audiences": ["vip"] if i % 2 == 0 else [],
        }
        assert node["tier"]["current"] == {"key": tier, "content": {"name": tier}}
        assert node["cart"] == {
            "total": {"amount": "200.00"},
            "pointsPreview": preview,
            "tierDiscount": {"amount": discount} if discount else None,
        }
