"""Ports: what the domain needs from the outside world, as Protocols.

`adapters/` implements them (commercetools, Amplience, Segment, SQL); tests give the domain
fakes of them. A port method raises `loyalty.errors.UpstreamError` (or a subclass) when the
system behind it fails; "not found" is a value (`None`), never an error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from loyalty.models import TransactionKind
from loyalty.upstreams import Cart, ContentItem, ExternalId, Order, OrderPage, Profile, TrackEvent


class CommercePort(Protocol):
    """Carts and orders (commercetools)."""

    name: str

    async def active_cart(self, customer_id: str) -> Cart | None:
        """The customer's most recently modified active cart, or None."""
        ...

    async def active_carts(self, customer_ids: Sequence[str]) -> Mapping[str, Cart | None]:
        """Active carts of several customers in one upstream call (a key per customer id)."""
        ...

    async def orders(self, customer_id: str, *, limit: int = 10, offset: int = 0) -> OrderPage:
        """The customer's orders, newest first."""
        ...

    async def order(self, order_id: str) -> Order | None: ...

    async def orders_created_since(
        self, since: datetime, *, limit: int = 100, offset: int = 0
    ) -> OrderPage:
        """All orders created at or after `since`, oldest first (for the backfill)."""
        ...


class ContentPort(Protocol):
    """Content items (Amplience Content Delivery 2)."""

    name: str

    async def content_by_key(self, delivery_key: str) -> ContentItem | None: ...

    async def content_by_id(self, delivery_id: str) -> ContentItem | None: ...

    async def content_by_keys(
        self, delivery_keys: Sequence[str]
    ) -> Mapping[str, ContentItem | None]:
        """Several items in one batch call; a missing key maps to None."""
        ...


class ProfilePort(Protocol):
    """Profiles and events (Segment Profile, Tracking and regulations APIs)."""

    name: str

    async def profile(self, user_id: str) -> Profile | None: ...

    async def profiles(self, user_ids: Sequence[str]) -> Mapping[str, Profile | None]:
        """One profile read per user, fanned out with bounded concurrency (no batch read)."""
        ...

    async def external_ids(self, user_id: str) -> list[ExternalId]: ...

    async def track(self, events: Sequence[TrackEvent]) -> None:
        """Send track events (one batch call); `message_id` deduplicates upstream."""
        ...

    async def request_deletion(self, user_id: str) -> None:
        """Ask the CDP to delete and suppress a user (GDPR erasure)."""
        ...


class BalanceEvents(Protocol):
    """Told after a commit that moved points, so live subscribers can be updated (across
    replicas when Redis is configured)."""

    async def balances_changed(self, member_ids: Sequence[str]) -> None: ...


class OrderHistoryEvents(Protocol):
    """Told after a commit that recorded or returned a purchase (webhook, POS, associate
    app, backfill), with the commerce customer ids concerned: their order history changed,
    so whatever keeps a copy of it outside the domain (the orders cache) must drop it."""

    async def orders_changed(self, customer_ids: Sequence[str]) -> None: ...


@dataclass(frozen=True, slots=True)
class PostedTransaction:
    """A ledger transaction a commit made durable: its kind and the points it moved (the sum
    of its postings' amounts, always positive, whichever way they went)."""

    kind: TransactionKind
    points: int


class PostingEvents(Protocol):
    """Told after each commit that posted ledger transactions, whatever posted them (the
    ledger's operations, households, the jobs, an erasure's forfeit), once per commit: a
    unit of work retried after a write conflict is told once, one rolled back never. The
    store that commits tells it (`LoyaltyStore.session()`); the gateway counts them (its
    metrics). It must not fail, nor wait: it is called after the commit, on the way out."""

    def transactions_posted(self, posted: Sequence[PostedTransaction]) -> None: ...


def points_channel(member_id: str) -> str:
    """The broker channel on which a member's balance changes are announced."""
    return f"patron:points:{member_id}"


class Broker(Protocol):
    """Publish/subscribe for live updates (in process, or Redis across replicas)."""

    async def publish(self, channel: str, message: str) -> None: ...

    def subscribe(self, channel: str) -> AbstractAsyncContextManager[AsyncIterator[str]]:
        """Subscribed once entered (later messages all arrive), unsubscribed on exit; the
        iterator ends when the broker closes."""
        ...

    async def close(self) -> None: ...
