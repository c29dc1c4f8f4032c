"""Publish/subscribe for live updates: in process (one gateway) or through Redis (replicas).

`Broker` (the Protocol; it lives in `loyalty.ports` so that resolvers need not import
adapters) has two implementations here. A subscription is an async context manager: once
`async with broker.subscribe(ch)` has entered, every message published to `ch` afterwards
reaches it, so a subscriber may read a snapshot right after entering and miss nothing.
Leaving the block unsubscribes.

Messages are only wake-up calls (the subscriber reads the fresh state itself), so a slow
subscriber keeps the newest `MAX_QUEUED` messages and drops older ones instead of growing
without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from loyalty.ports import Broker, points_channel

__all__ = ["BalanceNotifier", "Broker", "BrokerClosed", "InProcessBroker", "RedisBroker"]

log = logging.getLogger("patron.pubsub")

MAX_QUEUED = 100
SUBSCRIBE_TIMEOUT = 5.0
PUBLISH_TIMEOUT = 1.0


class BrokerClosed(Exception):
    """The broker shut down (or lost its connection) while a subscription was open."""


class Feed:
    """The messages of one subscription, newest kept when the subscriber falls behind."""

    _END = object()

    def __init__(self, maxsize: int = MAX_QUEUED) -> None:
        self._queue: asyncio.Queue[object] = asyncio.Queue(maxsize)
        self._error: BaseException | None = None

    def put(self, message: str) -> None:
        if self._queue.full():
            self._queue.get_nowait()  # drop the oldest: only the latest state matters
        self._queue.put_nowait(message)

    def end(self, error: BaseException | None = None) -> None:
        """Stop the iteration (with `error` raised to the subscriber, if given)."""
        self._error = error
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(self._END)

    def __aiter__(self) -> Feed:
        return self

    async def __anext__(self) -> str:
        item = await self._queue.get()
        if item is self._END:
            self._queue.put_nowait(self._END)  # stay ended for any later call
            if self._error is not None:
                raise self._error
            raise StopAsyncIteration
        assert isinstance(item, str)
        return item


class InProcessBroker:
    """Fan-out within one process: every subscriber of a channel gets every message."""

    def __init__(self) -> None:
        self._feeds: dict[str, set[Feed]] = {}
        self._closed = False

    async def publish(self, channel: str, message: str) -> None:
        for feed in list(self._feeds.get(channel, ())):
            feed.put(message)

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[str]]:
        feed = Feed()
        if self._closed:
            feed.end()
        self._feeds.setdefault(channel, set()).add(feed)
        try:
            yield feed
        finally:
            feeds = self._feeds.get(channel)
            if feeds is not None:
                feeds.discard(feed)
                if not feeds:
                    del self._feeds[channel]

    def subscriber_count(self, channel: str) -> int:
        return len(self._feeds.get(channel, ()))

    async def close(self) -> None:
        self._closed = True
        for feeds in self._feeds.values():
            for feed in feeds:
                feed.end()


class RedisBroker:
    """Redis PUBLISH/SUBSCRIBE, so a change made on one replica reaches the subscribers of
    every replica. Each subscription has its own PubSub connection and a task that moves
    its messages to a `Feed`. The Redis clients belong to the caller (not closed here).
    `subscriptions`, when given, is the client subscriptions listen on: one without a read
    timeout (a quiet channel is not a failure), while `redis` publishes with one."""

    def __init__(self, redis: Redis, subscriptions: Redis | None = None) -> None:
        self.redis = redis
        self.subscriptions = subscriptions if subscriptions is not None else redis
        self._active: set[tuple[PubSub, asyncio.Task[None], Feed]] = set()
        self._closed = False

    async def publish(self, channel: str, message: str) -> None:
        await self.redis.publish(channel, message)

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[str]]:
        if self._closed:
            raise BrokerClosed("the broker is closed")
        pubsub = self.subscriptions.pubsub()
        try:
            await pubsub.subscribe(channel)
            await _confirmed(pubsub, channel)
        except BaseException:
            await _close_quietly(pubsub, channel)
            raise
        feed = Feed()
        pump = asyncio.create_task(_pump(pubsub, feed), name=f"redis-subscription {channel}")
        entry = (pubsub, pump, feed)
        self._active.add(entry)
        try:
            yield feed
        finally:
            self._active.discard(entry)
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
            await _close_quietly(pubsub, channel)

    def subscriber_count(self) -> int:
        return len(self._active)

    async def close(self) -> None:
        """End every open subscription and release its connection."""
        self._closed = True
        for pubsub, pump, feed in list(self._active):
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
            feed.end()
            await _close_quietly(pubsub, None)


async def _confirmed(pubsub: PubSub, channel: str) -> None:
    """Wait for Redis to confirm the SUBSCRIBE: only then are later messages sure to come."""
    async with asyncio.timeout(SUBSCRIBE_TIMEOUT):
        while True:
            reply = await pubsub.get_message(timeout=SUBSCRIBE_TIMEOUT)
            if reply is not None and reply["type"] == "subscribe":
                return


async def _pump(pubsub: PubSub, feed: Feed) -> None:
    try:
        async for reply in pubsub.listen():
            if reply["type"] == "message":
                feed.put(_text(reply["data"]))
    except Exception as exc:  # beyond redis-py's own reconnects: tell the subscriber
        log.warning("redis subscription lost: %s", exc)
        feed.end(BrokerClosed(f"the live update connection was lost: {exc}"))
    else:
        feed.end()


async def _close_quietly(pubsub: PubSub, channel: str | None) -> None:
    try:
        if channel is not None and pubsub.connection is not None:
            await pubsub.unsubscribe(channel)
    except Exception as exc:  # the connection may already be gone: nothing left to undo
        log.debug("unsubscribe failed: %s", exc)
    try:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
    except Exception as exc:
        log.debug("closing a pubsub failed: %s", exc)


def _text(data: Any) -> str:
    return data.decode() if isinstance(data, bytes) else str(data)


class BalanceNotifier:
    """`loyalty.ports.BalanceEvents` over a broker: announces on `patron:points:<id>`.

    Called after a commit, so it must never fail the caller: the points moved whatever
    happens here, and a lost announcement only delays a live display. `after` are callbacks
    run on every call (the outbox relay's `nudge`, so CDP events leave right away)."""

    def __init__(self, broker: Broker, *, after: Sequence[Callable[[], None]] = ()) -> None:
        self.broker = broker
        self.after = list(after)

    async def balances_changed(self, member_ids: Sequence[str]) -> None:
        for callback in self.after:
            try:
                callback()
            except Exception:
                log.exception("a balance-change callback failed")
        await asyncio.gather(*(self._announce(m) for m in dict.fromkeys(member_ids)))

    async def _announce(self, member_id: str) -> None:
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT):  # a hung Redis must not hang a reply
                await self.broker.publish(points_channel(member_id), member_id)
        except Exception as exc:
            log.warning("could not announce the balance change of %s: %r", member_id, exc)
