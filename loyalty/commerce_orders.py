"""Commerce orders as purchases: the rules the commerce webhook and the backfill share.

An order earns once, whichever path brings it (the `OrderCreated` webhook, the backfill, the
POS): the webhook and the backfill use one idempotency key per order (`commerce-order:<id>`)
and the ledger refuses a second purchase with the same order id whatever its key.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Protocol

from loyalty.ledger import Purchase
from loyalty.models import Channel, Member
from loyalty.upstreams import Order

ORDER_KEY_PREFIX = "commerce-order:"
RETURN_KEY_PREFIX = "commerce-return:"
CANCELLED = "Cancelled"


class SkipReason(enum.StrEnum):
    NOT_A_MEMBER = "not_a_member"
    CANCELLED = "cancelled"
    ALREADY_RECORDED = "already_recorded"


def order_key(order_id: str) -> str:
    """The idempotency key of an order's purchase, shared by the webhook and the backfill."""
    return f"{ORDER_KEY_PREFIX}{order_id}"


def return_key(message_id: str) -> str:
    """The idempotency key of a return announced by a commerce message."""
    return f"{RETURN_KEY_PREFIX}{message_id}"


def skip_reason(order: Order, member: Member | None) -> SkipReason | None:
    """Why an order earns nothing before the ledger is even asked, or None."""
    if order.state == CANCELLED:
        return SkipReason.CANCELLED
    if member is None:
        return SkipReason.NOT_A_MEMBER
    return None


def purchase_of(order: Order, member_id: str, source: str) -> Purchase:
    """The purchase an online order makes: channel WEB, at the moment the order was created."""
    return Purchase(
        order_id=order.id,
        total=order.total,
        channel=Channel.WEB,
        member_id=member_id,
        occurred_at=order.created_at,
        source=source,
    )


class MemberDirectory(Protocol):
    """Members by commerce customer id (one query for any number: `LoyaltyReader` has it)."""

    async def members_by_commerce_ids(self, ids: Sequence[str]) -> list[Member]: ...


class RecordedOrders(Protocol):
    async def recorded_orders(self, order_ids: Sequence[str]) -> set[str]:
        """The order ids among these that already have a purchase (by any path)."""
        ...


async def members_of(directory: MemberDirectory, orders: Sequence[Order]) -> dict[str, Member]:
    """The members behind these orders' customers, by commerce customer id (one read)."""
    ids = sorted({o.customer_id for o in orders if o.customer_id})
    if not ids:
        return {}
    return {m.commerce_customer_id: m for m in await directory.members_by_commerce_ids(ids)}
