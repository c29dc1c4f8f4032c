"""The CMS and profile caches through the schema: a repeated member view makes no CMS or
CDP call, a CDP outage after a view still shows the cached profile, the cart (like the
loyalty data) is never cached, and the steady state of a member view upstream."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta

import pytest

from adapters.cache.cached_ports import CachedProfiles
from adapters.commerce.fake import FakeLine
from loyalty.errors import UpstreamUnavailable
from loyalty.upstreams import Profile
from tests.conftest import Harness, token
from tests.graphql.conftest import enroll
from tests.graphql.test_offers import post_cdp, subscribed

VIEW = """
{
  me {
    profile { firstName audiences }
    tier { current { key content { name } } }
    cart { total { amount } }
  }
}
"""


async def member(h: Harness) -> str:
    for tier in ("member", "silver", "gold", "black"):
        h.fakes.cms.add_content(f"tiers/{tier}", "https://schema.example/tier.json", tier, {})
    h.fakes.cdp.add_profile("cust-1", {"first_name": "Ann", "vip": True})
    h.fakes.commerce.add_cart("cust-1", [FakeLine("SKU-1", "Shirt", 1, "200.00")])
    await enroll(h, "cust-1")
    return token("cust-1", "member")


async def view(h: Harness, member_token: str) -> dict[str, object]:
    body = await h.gql(VIEW, token=member_token)
    assert "errors" not in body, body
    me: dict[str, object] = body["data"]["me"]
    return me


async def test_a_second_view_makes_no_cms_and_no_cdp_call(harness: Harness) -> None:
    h = harness
    member_token = await member(h)
    h.fakes.reset_requests()
    first = await view(h, member_token)
    assert (len(h.fakes.cms.requests), len(h.fakes.cdp.requests)) == (1, 1)
    h.fakes.reset_requests()
    assert await view(h, member_token) == first
    assert (len(h.fakes.cms.requests), len(h.fakes.cdp.requests)) == (0, 0)
    assert first["profile"] == {"firstName": "Ann", "audiences": ["vip"]}


async def test_cdp_down_after_a_view_serves_the_cached_profile(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness
    member_token = await member(h)
    first = await view(h, member_token)
    cached = h.gateway.services.cdp
    assert isinstance(cached, CachedProfiles)

    async def down(user_ids: Sequence[str]) -> Mapping[str, Profile | None]:
        raise UpstreamUnavailable("cdp", "HTTP 503")

    monkeypatch.setattr(cached.inner, "profiles", down)
    assert await view(h, member_token) == first
    # Past the fresh TTL: still served (stale), the background refresh fails quietly.
    cached.cache.clock = lambda: 10**10 + 0.0
    monkeypatch.setattr(cached.cache, "fresh_ttl", 1.0)
    monkeypatch.setattr(cached.cache, "stale_ttl", 10.0**12)
    assert await view(h, member_token) == first
    await cached.cache.drain()


async def test_a_changed_cart_shows_at_once(harness: Harness) -> None:
    h = harness
    member_token = await member(h)
    first = await view(h, member_token)
    assert first["cart"] == {"total": {"amount": "200.00"}}
    h.fakes.commerce.add_cart("cust-1", [FakeLine("SKU-2", "Coat", 2, "300.00")])
    second = await view(h, member_token)
    assert second["cart"] == {"total": {"amount": "600.00"}}


STEADY_VIEW = """
{
  me {
    profile { firstName audiences }
    points { available pending }
    tier { current { key content { name fields } } }
    offers { kind content { name fields } }
    cart { total { amount } pointsPreview }
    orders(first: 3) { orderNumber total { amount } }
  }
}
"""


async def test_steady_state_one_commerce_call_and_nothing_else_upstream(
    harness: Harness,
) -> None:
    """The issue's steady state: after one warm-up view, the same member's next view (within
    the TTLs) makes no CMS call, one commerce call (the cart) and no CDP call."""
    h = harness
    member_token = await member(h)
    h.fakes.cms.add_content(
        "offers/newsletter", "https://schema.example/banner.json", "Newsletter", {"pct": 10}
    )
    h.fakes.commerce.add_order(
        "cust-1", "310.00", created_at=h.clock() - timedelta(days=3), order_number="HR-1"
    )
    status, answer = await post_cdp(h, subscribed("cust-1"))
    assert (status, answer) == (200, {"status": "granted"})

    h.fakes.reset_requests()
    warm = await h.gql(STEADY_VIEW, token=member_token)
    assert "errors" not in warm, warm
    me = warm["data"]["me"]
    assert me["profile"] == {"firstName": "Ann", "audiences": ["vip"]}
    assert me["tier"]["current"]["content"] == {"name": "member", "fields": {}}
    assert me["offers"] == [
        {"kind": "NEWSLETTER", "content": {"name": "Newsletter", "fields": {"pct": 10}}}
    ]
    assert me["cart"] == {"total": {"amount": "200.00"}, "pointsPreview": 200}
    assert me["orders"] == [{"orderNumber": "HR-1", "total": {"amount": "310.00"}}]
    warm_calls = (
        len(h.fakes.cms.requests),
        sorted(r.path for r in h.fakes.commerce.requests),
        len(h.fakes.cdp.requests),
    )
    assert warm_calls == (1, ["/oauth/token", "/patron-demo/carts", "/patron-demo/orders"], 1)

    h.fakes.reset_requests()
    steady = await h.gql(STEADY_VIEW, token=member_token)

    assert steady == warm
    assert h.fakes.cms.requests == []
    assert [r.path for r in h.fakes.commerce.requests] == ["/patron-demo/carts"]
    assert h.fakes.cdp.requests == []
