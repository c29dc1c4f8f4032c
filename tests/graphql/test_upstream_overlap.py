"""Upstream calls never wait for database work they do not depend on: `me` asks commerce for
the member's cart (keyed by the token's subject) while the database is still finding the
member, and only when the query asks for the cart."""

from __future__ import annotations

import gc
from typing import Any

import pytest
from sqlalchemy import event

import adapters.http
from adapters.commerce.client import CommercetoolsClient
from adapters.commerce.fake import FakeLine
from loyalty.errors import UpstreamUnavailable
from tests.conftest import Harness, token
from tests.graphql.conftest import enroll


@pytest.fixture
def timeline(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """'<upstream> <path> sent' and 'members read' events in the order they happen."""
    events: list[str] = []
    request = adapters.http.Upstream.request

    async def recorded(self: adapters.http.Upstream, method: str, path: str, **kw: Any) -> Any:
        events.append(f"{self.name} {path.rsplit('/', 1)[-1]} sent")
        return await request(self, method, path, **kw)

    def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT MEMBERS."):
            events.append("members read")

    monkeypatch.setattr(adapters.http.Upstream, "request", recorded)
    event.listen(harness.engine.sync_engine, "after_cursor_execute", after)
    return events


async def test_the_cart_is_asked_for_while_the_member_is_read(
    harness: Harness, timeline: list[str]
) -> None:
    h = harness
    h.fakes.commerce.add_cart("cust-1", [FakeLine("SKU-1", "Scarf", 1, "120.00")])
    await enroll(h, "cust-1")
    query, member = "{ me { cart { total { amount } } } }", token("cust-1", "member")
    await h.gql(query, token=member)  # commerce's OAuth token, fetched once
    timeline.clear()
    body = await h.gql(query, token=member)
    assert body == {"data": {"me": {"cart": {"total": {"amount": "120.00"}}}}}
    assert timeline == ["commerce carts sent", "members read"]


async def test_no_cart_asked_no_commerce_call(harness: Harness, timeline: list[str]) -> None:
    h = harness
    await enroll(h, "cust-1")
    timeline.clear()
    body = await h.gql("{ me { points { available } } }", token=token("cust-1", "member"))
    assert body == {"data": {"me": {"points": {"available": 0}}}}
    assert timeline == ["members read"]


async def test_a_cart_asked_through_a_fragment_is_prefetched(
    harness: Harness, timeline: list[str]
) -> None:
    h = harness
    await enroll(h, "cust-1")
    query = "{ me { ...Basket } } fragment Basket on Member { cart { id } }"
    await h.gql(query, token=token("cust-1", "member"))  # commerce's OAuth token
    timeline.clear()
    body = await h.gql(query, token=token("cust-1", "member"))
    assert body == {"data": {"me": {"cart": None}}}  # no active cart: null, not an error
    assert timeline == ["commerce carts sent", "members read"]


async def test_a_failed_prefetch_for_a_token_that_is_no_member_is_silent(
    harness: Harness,
    timeline: list[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The cart was asked for, commerce failed, and `me` is null (no such member): nobody
    reads the failure, and nothing complains about it (asyncio logs an exception nobody
    retrieved when its future is collected)."""

    async def down(self: object, customer_ids: object) -> object:
        raise UpstreamUnavailable("commerce", "HTTP 503")

    monkeypatch.setattr(CommercetoolsClient, "active_carts", down)
    body = await harness.gql("{ me { cart { id } } }", token=token("stranger", "member"))
    assert body == {"data": {"me": None}}
    assert timeline == ["members read"]  # the carts call failed before sending anything
    gc.collect()
    assert "never retrieved" not in caplog.text


async def test_a_cart_inside_an_inline_fragment_is_prefetched_once(
    harness: Harness, timeline: list[str]
) -> None:
    h = harness
    await enroll(h, "cust-1")
    query = (
        "{ me { ... on Member { cart { id } ...Again } } } fragment Again on Member { cart { id } }"
    )
    await h.gql(query, token=token("cust-1", "member"))  # commerce's OAuth token
    timeline.clear()
    body = await h.gql(query, token=token("cust-1", "member"))
    assert body == {"data": {"me": {"cart": None}}}
    assert timeline == ["commerce carts sent", "members read"]
