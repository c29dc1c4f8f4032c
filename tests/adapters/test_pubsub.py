"""The brokers behind live updates: fan-out to every subscriber of a channel, subscribed on
entry (nothing published afterwards is lost), unsubscribed on exit, ended on close; Redis
across two clients (as two replicas); and the notifier that never fails its caller."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from adapters.cache.pubsub import (
    MAX_QUEUED,
    BalanceNotifier,
    BrokerClosed,
    InProcessBroker,
    RedisBroker,
)
from loyalty.ports import Broker
from tests.conftest import REDIS_URL

needs_redis = pytest.mark.skipif(
    not REDIS_URL, reason="set PATRON_TEST_REDIS_URL to test the Redis broker"
)


def channel() -> str:
    return f"patron:test:{uuid.uuid4().hex}"


async def take(messages: AsyncIterator[str], n: int) -> list[str]:
    out = []
    async with asyncio.timeout(5):
        for _ in range(n):
            out.append(await anext(messages))
    return out


async def redis_client() -> Redis:
    assert REDIS_URL
    return Redis.from_url(REDIS_URL)


@pytest.fixture(params=["in-process", pytest.param("redis", marks=needs_redis)])
async def broker(request: pytest.FixtureRequest) -> AsyncIterator[Broker]:
    if request.param == "in-process":
        yield InProcessBroker()
        return
    redis = await redis_client()
    made = RedisBroker(redis)
    yield made
    await made.close()
    await redis.aclose()


async def test_every_subscriber_gets_every_message(broker: Broker) -> None:
    ch = channel()
    async with broker.subscribe(ch) as first, broker.subscribe(ch) as second:
        await broker.publish(ch, "one")
        await broker.publish(ch, "two")
        assert await take(first, 2) == ["one", "two"]
        assert await take(second, 2) == ["one", "two"]


async def test_a_subscriber_hears_only_its_channel(broker: Broker) -> None:
    mine, other = channel(), channel()
    async with broker.subscribe(mine) as messages:
        await broker.publish(other, "not for me")
        await broker.publish(mine, "for me")
        assert await take(messages, 1) == ["for me"]


async def test_leaving_the_block_unsubscribes(broker: Broker) -> None:
    ch = channel()
    async with broker.subscribe(ch) as messages:
        await broker.publish(ch, "before")
        assert await take(messages, 1) == ["before"]
    assert _subscribers(broker, ch) == 0
    async with broker.subscribe(ch) as again:
        await broker.publish(ch, "after")
        assert await take(again, 1) == ["after"]


async def test_closing_the_broker_ends_open_subscriptions(broker: Broker) -> None:
    ch = channel()
    async with broker.subscribe(ch) as messages:
        await broker.close()
        async with asyncio.timeout(5):
            assert [m async for m in messages] == []


async def test_a_slow_subscriber_keeps_the_newest_messages() -> None:
    broker = InProcessBroker()
    ch = channel()
    async with broker.subscribe(ch) as messages:
        for i in range(MAX_QUEUED + 5):
            await broker.publish(ch, str(i))
        got = await take(messages, MAX_QUEUED)
    assert got == [str(i) for i in range(5, MAX_QUEUED + 5)]


@needs_redis
async def test_a_message_crosses_two_redis_clients() -> None:
    """Two replicas: each its own Redis client and broker."""
    one, two = await redis_client(), await redis_client()
    publisher, subscriber = RedisBroker(one), RedisBroker(two)
    ch = channel()
    try:
        async with subscriber.subscribe(ch) as messages:
            assert await one.pubsub_numsub(ch) == [(ch.encode(), 1)]
            await publisher.publish(ch, "from the other replica")
            assert await take(messages, 1) == ["from the other replica"]
        assert await one.pubsub_numsub(ch) == [(ch.encode(), 0)]
    finally:
        await publisher.close()
        await subscriber.close()
        await one.aclose()
        await two.aclose()


@needs_redis
async def test_a_closed_redis_broker_refuses_new_subscriptions() -> None:
    redis = await redis_client()
    broker = RedisBroker(redis)
    await broker.close()
    with pytest.raises(BrokerClosed):
        async with broker.subscribe(channel()):
            pass
    await redis.aclose()


async def test_a_broken_redis_subscription_fails_its_subscriber() -> None:
    """The connection lost beyond redis-py's own retries: the subscriber is told, and can
    subscribe again, rather than waiting forever on a dead feed."""
    redis = _FailingRedis()
    broker = RedisBroker(redis)  # type: ignore[arg-type]
    async with broker.subscribe("ch") as messages:
        with pytest.raises(BrokerClosed, match="lost"):
            await take(messages, 1)
    assert redis.pubsubs[0].closed


# --- the notifier ---------------------------------------------------------------------
async def test_the_notifier_announces_each_member_once_on_its_channel() -> None:
    broker = InProcessBroker()
    nudges: list[str] = []
    notifier = BalanceNotifier(broker, after=[lambda: nudges.append("nudge")])
    async with (
        broker.subscribe("patron:points:m-1") as one,
        broker.subscribe("patron:points:m-2") as two,
    ):
        await notifier.balances_changed(["m-1", "m-2", "m-1"])
        assert await take(one, 1) == ["m-1"]
        assert await take(two, 1) == ["m-2"]
    assert nudges == ["nudge"]


@pytest.mark.parametrize(
    "publish",
    [
        pytest.param("raise", id="broker-raises"),
        pytest.param("hang", id="broker-hangs"),
    ],
)
async def test_the_notifier_never_fails_its_caller(
    publish: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("adapters.cache.pubsub.PUBLISH_TIMEOUT", 0.05)
    broker = InProcessBroker()
    monkeypatch.setattr(broker, "publish", _broken(publish))

    def failing_callback() -> None:
        raise RuntimeError("nudge failed")

    notifier = BalanceNotifier(broker, after=[failing_callback])
    async with asyncio.timeout(2):
        await notifier.balances_changed(["m-1"])
    assert "could not announce the balance change of m-1" in caplog.text
    assert "a balance-change callback failed" in caplog.text


def _broken(how: str) -> Callable[[str, str], Awaitable[None]]:
    async def publish(channel: str, message: str) -> None:
        if how == "raise":
            raise ConnectionError("redis is down")
        await asyncio.sleep(3600)

    return publish


def _subscribers(broker: Broker, ch: str) -> int:
    if isinstance(broker, InProcessBroker):
        return broker.subscriber_count(ch)
    assert isinstance(broker, RedisBroker)
    return broker.subscriber_count()


class _FailingPubSub:
    """A PubSub whose connection breaks after the subscription is confirmed."""

    def __init__(self) -> None:
        self.connection: Any = object()
        self.closed = False
        self._replies = [{"type": "subscribe", "channel": b"ch", "data": 1}]

    async def subscribe(self, channel: str) -> None:
        pass

    async def get_message(self, timeout: float | None = None) -> dict[str, Any] | None:  # noqa: ASYNC109
        return self._replies.pop(0) if self._replies else None

    async def listen(self) -> AsyncIterator[dict[str, Any]]:
        raise ConnectionError("Connection reset by peer")
        yield {}  # pragma: no cover

    async def unsubscribe(self, channel: str) -> None:
        raise ConnectionError("Connection reset by peer")

    async def aclose(self) -> None:
        self.closed = True


class _FailingRedis:
    def __init__(self) -> None:
        self.pubsubs: list[_FailingPubSub] = []

    def pubsub(self) -> _FailingPubSub:
        self.pubsubs.append(_FailingPubSub())
        return self.pubsubs[-1]
