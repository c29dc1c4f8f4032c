"""`pointsChanged` over the real `graphql-transport-ws` protocol: the current balance first,
then the fresh balance after each change, under the access rules of `member(id)`; the token
in the upgrade's header or in the `connection_init` payload; and, with Redis, across two
gateway replicas."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from adapters.cache.pubsub import InProcessBroker, RedisBroker
from gateway.app import create_app
from gateway.demo import Fakes
from gateway.settings import Settings
from loyalty.ports import points_channel
from resolvers.node import local_id, to_global_id
from tests.conftest import (
    REDIS_URL,
    Clock,
    Harness,
    SqlCounter,
    assert_ledger_balances,
    token,
)
from tests.graphql.conftest import enroll, purchase
from tests.graphql.ws import GraphQLWs, serving, ws_client

POINTS_CHANGED = """
subscription($id: ID!) {
  pointsChanged(memberId: $id) { available pending lifetimeEarned }
}
"""

ZERO = {"available": 0, "pending": 0, "lifetimeEarned": 0}


NOT_HOUSEHOLD = "a member may read only itself and its household"


def refused(op_id: str, code: str, message: str) -> dict[str, Any]:
    """The `next` message of a subscription refused by its resolver."""
    error = {"message": message, "extensions": {"code": code}}
    return {"id": op_id, "type": "next", "payload": {"data": None, "errors": [error]}}


def bearer(sub: str, *roles: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(sub, *roles)}"}


def next_points(message: dict[str, Any], op_id: str = "1") -> dict[str, Any]:
    assert message["type"] == "next" and message["id"] == op_id, message
    assert "errors" not in message["payload"], message
    points: dict[str, Any] = message["payload"]["data"]["pointsChanged"]
    return points


@pytest.fixture
async def url(harness: Harness) -> AsyncIterator[str]:
    async with serving(harness.app) as ws_url:
        yield ws_url


@contextlib.asynccontextmanager
async def member_subscribed(
    url: str, member_id: str, init: dict[str, Any]
) -> AsyncIterator[GraphQLWs]:
    """A connection initialised with `init`, subscribed to `member_id` as operation "1"."""
    async with ws_client(url) as client:
        assert await client.init(init) == {"type": "connection_ack"}
        await client.subscribe("1", POINTS_CHANGED, {"id": member_id})
        yield client


async def test_a_member_sees_its_balance_change_after_a_purchase(
    harness: Harness, url: str
) -> None:
    member_id = await enroll(harness, "cust-1")
    async with member_subscribed(url, member_id, bearer("cust-1", "member")) as client:
        assert next_points(await client.receive()) == ZERO
        await purchase(harness, member_id, "HR-1", "120.00")
        assert next_points(await client.receive()) == {
            "available": 0,
            "pending": 120,
            "lifetimeEarned": 120,
        }
        await purchase(harness, member_id, "HR-2", "80.50")
        assert next_points(await client.receive()) == {
            "available": 0,
            "pending": 200,
            "lifetimeEarned": 200,
        }
        await client.complete("1")
        assert await client.silent(0.2)


async def test_a_replayed_purchase_announces_nothing(harness: Harness, url: str) -> None:
    member_id = await enroll(harness, "cust-1")
    async with member_subscribed(url, member_id, bearer("cust-1", "member")) as client:
        assert next_points(await client.receive()) == ZERO
        await purchase(harness, member_id, "HR-1", "120.00", key="k-1")
        assert next_points(await client.receive())["pending"] == 120
        await purchase(harness, member_id, "HR-1", "120.00", key="k-1")
        assert await client.silent(0.3)


async def test_only_the_changed_member_is_told(harness: Harness, url: str) -> None:
    ava = await enroll(harness, "cust-1")
    ben = await enroll(harness, "cust-2")
    async with member_subscribed(url, ava, bearer("cust-1", "member")) as client:
        assert next_points(await client.receive()) == ZERO
        await purchase(harness, ben, "HR-9", "300.00")
        assert await client.silent(0.3)


@pytest.mark.parametrize(
    "shape",
    [
        pytest.param(lambda t: {"Authorization": f"Bearer {t}"}, id="Authorization"),
        pytest.param(lambda t: {"authorization": f"Bearer {t}"}, id="authorization"),
        pytest.param(lambda t: {"headers": {"Authorization": f"Bearer {t}"}}, id="headers"),
    ],
)
async def test_the_token_may_come_in_any_usual_connection_init_shape(
    harness: Harness, url: str, shape: Any
) -> None:
    member_id = await enroll(harness, "cust-1")
    async with member_subscribed(url, member_id, shape(token("cust-1", "member"))) as client:
        assert next_points(await client.receive()) == ZERO


async def test_the_token_may_come_in_the_upgrade_header(harness: Harness, url: str) -> None:
    member_id = await enroll(harness, "cust-1")
    async with ws_client(url, token("cust-1", "member")) as client:
        assert await client.init() == {"type": "connection_ack"}
        await client.subscribe("1", POINTS_CHANGED, {"id": member_id})
        assert next_points(await client.receive()) == ZERO


async def test_staff_may_follow_any_member(harness: Harness, url: str) -> None:
    member_id = await enroll(harness, "cust-1")
    init = bearer("assoc-1", "associate")
    async with member_subscribed(url, member_id, init) as client:
        assert next_points(await client.receive()) == ZERO
        await purchase(harness, member_id, "HR-1", "50.00")
        assert next_points(await client.receive())["pending"] == 50


async def test_a_member_may_not_follow_another_member(harness: Harness, url: str) -> None:
    await enroll(harness, "cust-1")
    other = await enroll(harness, "cust-2")
    async with member_subscribed(url, other, bearer("cust-1", "member")) as client:
        assert await client.receive() == refused("1", "NOT_ALLOWED", NOT_HOUSEHOLD)
        assert await client.receive() == {"id": "1", "type": "complete"}
    assert broker(harness).subscriber_count(points_channel(local(other))) == 0


async def test_an_anonymous_subscriber_is_told_to_authenticate(harness: Harness, url: str) -> None:
    member_id = await enroll(harness, "cust-1")
    async with member_subscribed(url, member_id, {}) as client:
        assert await client.receive() == refused(
            "1", "UNAUTHENTICATED", "a bearer token is required"
        )
        assert await client.receive() == {"id": "1", "type": "complete"}


async def test_an_unknown_member_is_not_found_for_staff(harness: Harness, url: str) -> None:
    nobody = to_global_id("Member", "00000000-0000-0000-0000-000000000000")
    async with member_subscribed(url, nobody, bearer("assoc-1", "associate")) as client:
        assert await client.receive() == refused("1", "NOT_FOUND", "member not found")


async def test_a_bad_token_in_connection_init_refuses_the_connection(
    harness: Harness, url: str
) -> None:
    async with ws_client(url) as client:
        await client.send({"type": "connection_init", "payload": {"Authorization": "Bearer nope"}})
        with pytest.raises(ConnectionClosed) as closed:
            await client.receive()
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4403, "Forbidden")


async def test_an_expired_token_in_connection_init_refuses_the_connection(
    harness: Harness, url: str
) -> None:
    expired = token("cust-1", "member", ttl=-3600)
    async with ws_client(url) as client:
        await client.send(
            {"type": "connection_init", "payload": {"Authorization": f"Bearer {expired}"}}
        )
        with pytest.raises(ConnectionClosed) as closed:
            await client.receive()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


async def test_a_bad_token_in_the_upgrade_header_refuses_the_handshake(
    harness: Harness, url: str
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with ws_client(url, "not-a-jwt"):
            pass
    # Closed before it was accepted: the server answers the upgrade with 403.
    assert refused.value.response.status_code == 403


async def test_completing_or_leaving_unsubscribes(harness: Harness, url: str) -> None:
    member_id = await enroll(harness, "cust-1")
    channel = points_channel(local(member_id))
    async with member_subscribed(url, member_id, bearer("cust-1", "member")) as client:
        assert next_points(await client.receive()) == ZERO
        assert broker(harness).subscriber_count(channel) == 1
        await client.complete("1")  # the server stops; it sends nothing back for this
        await wait_until(lambda: broker(harness).subscriber_count(channel) == 0)
    async with member_subscribed(url, member_id, bearer("cust-1", "member")) as client:
        assert next_points(await client.receive()) == ZERO
        assert broker(harness).subscriber_count(channel) == 1
    await wait_until(lambda: broker(harness).subscriber_count(channel) == 0)


def broker(h: Harness) -> InProcessBroker:
    found = h.gateway.services.broker
    assert isinstance(found, InProcessBroker)
    return found


def local(member_id: str) -> str:
    found = local_id(member_id, "Member")
    assert found is not None
    return found


async def wait_until(condition: Any, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition never held")


# --- two replicas through Redis -----------------------------------------------------------
@pytest.fixture
async def replicas(
    settings: Settings, fakes: Fakes, clock: Clock
) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """Two gateways on one database and one Redis: A (served) and B (an ASGI client)."""
    if not REDIS_URL:
        pytest.skip("set PATRON_TEST_REDIS_URL to run the two-replica test (needs Redis)")
    shared = settings.model_copy(update={"redis_url": REDIS_URL})
    http = fakes.http_client()
    a = create_app(shared, http=http, clock=clock)
    b = create_app(shared, http=http, clock=clock)
    async with a.router.lifespan_context(a), b.router.lifespan_context(b):
        transport = httpx.ASGITransport(app=b)
        async with httpx.AsyncClient(transport=transport, base_url="http://b.test") as client:
            yield a, client
        await assert_ledger_balances(b.state.gateway.engine)
    await http.aclose()


async def test_a_change_on_one_replica_reaches_a_subscriber_of_the_other(
    replicas: tuple[Any, httpx.AsyncClient], fakes: Fakes, clock: Clock
) -> None:
    a, b_client = replicas
    assert isinstance(a.state.gateway.services.broker, RedisBroker)
    b = Harness(b_client, b_client, fakes, clock, SqlCounter())  # enroll/purchase use only .gql
    member_id = await enroll(b, "cust-1")
    async with (
        serving(a) as a_url,
        member_subscribed(a_url, member_id, bearer("cust-1", "member")) as client,
    ):
        assert next_points(await client.receive()) == ZERO
        await purchase(b, member_id, "HR-1", "120.00")
        assert next_points(await client.receive()) == {
            "available": 0,
            "pending": 120,
            "lifetimeEarned": 120,
        }
