"""What commerce order messages do to the ledger (the commerce webhook's domain logic).

- `OrderCreated`: the order of an enrolled member (not Cancelled) earns, as a WEB purchase at
  the order's `createdAt`, under the idempotency key `commerce-order:<order id>` (the key the
  backfill uses too). The ledger's one-purchase-per-order-id rule stops a second earn when the
  POS recorded the same order under another key. No upstream call on this path.
- `ReturnInfoAdded` / `ReturnInfoSet`: the returned items are priced from the order's line
  items (the message carries only line item ids and quantities, so the order is read from
  commerce) and the order's points are clawed back in proportion (`return_purchase`, key
  `commerce-return:<message id>`). When every line item of the order has now come back, the
  whole remaining order is returned (its shipping share too). Each return item is clawed back
  once: `ReturnInfoSet` repeats the order's whole return list, so return items already
  handled (by their id) are left out. A return for an order whose own `OrderCreated` has not
  arrived yet first records the purchase (same key as the webhook would use), then returns.
- Anything else is ignored.

Each message is handled once: its `id` is looked up in the delivery log first and recorded
there after the ledger work (see `CommerceEvents.handle` for why after, not with).
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from loyalty.commerce_orders import (
    CANCELLED,
    MemberDirectory,
    RecordedOrders,
    members_of,
    order_key,
    purchase_of,
    return_key,
    skip_reason,
)
from loyalty.errors import DomainError, UserErrorCode
from loyalty.ledger import PointsResult, Purchase
from loyalty.money import Money
from loyalty.upstreams import Order

# `webhook_deliveries.source` values (at most 16 characters).
MESSAGE_SOURCE = "commerce"
RETURN_ITEM_SOURCE = "commerce-return"
PURCHASE_SOURCE = "webhook"


# --- messages ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ReturnedItem:
    """A return item of an order: `quantity` of the (custom) line item `line_item_id`."""

    id: str
    line_item_id: str
    quantity: int


@dataclass(frozen=True, slots=True)
class OrderCreated:
    message_id: str
    order: Order


@dataclass(frozen=True, slots=True)
class ReturnAnnounced:
    """`ReturnInfoAdded` (one return) or `ReturnInfoSet` (the order's whole return list)."""

    message_id: str
    type: str
    order_id: str
    items: tuple[ReturnedItem, ...]
    occurred_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class OtherMessage:
    message_id: str
    type: str


CommerceMessage = OrderCreated | ReturnAnnounced | OtherMessage


# --- orders with their lines ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class OrderLine:
    id: str
    quantity: int
    total: Money


@dataclass(frozen=True, slots=True)
class OrderDetail:
    """An order with its (custom) line items and the return items it holds now."""

    order: Order
    lines: tuple[OrderLine, ...]
    returned: tuple[ReturnedItem, ...] = ()


# --- ports ------------------------------------------------------------------------------
class OrderDetails(Protocol):
    async def order_detail(self, order_id: str) -> OrderDetail | None:
        """The order with its lines, or None when commerce has no such order."""
        ...


class DeliveryLog(Protocol):
    """Which messages (and return items) were already handled: `(source, id)` entries."""

    async def seen(self, source: str, ids: Sequence[str]) -> set[str]: ...

    async def record(
        self, entries: Sequence[tuple[str, str]], at: datetime
    ) -> set[tuple[str, str]]:
        """Record the entries (in one database transaction); returns those that were new."""
        ...


class PurchaseLedger(Protocol):
    async def record_purchase(
        self, purchase: Purchase, idempotency_key: str | None
    ) -> PointsResult: ...

    async def return_purchase(
        self,
        order_id: str,
        amount: Money | None,
        idempotency_key: str | None,
        *,
        occurred_at: datetime | None = None,
        source: str = "api",
    ) -> PointsResult: ...


# --- outcomes ---------------------------------------------------------------------------
class Status(enum.StrEnum):
    RECORDED = "recorded"  # the order's purchase is in the ledger (now or before)
    RETURNED = "returned"  # points were clawed back (or nothing was left to claw back)
    IGNORED = "ignored"  # nothing to do: not a member, cancelled, another message type
    DUPLICATE = "duplicate"  # this message was already handled
    REJECTED = "rejected"  # the loyalty rules refused it (the code says why)


@dataclass(frozen=True, slots=True)
class Outcome:
    status: Status
    reason: str | None = None
    order_id: str | None = None
    member_id: str | None = None
    transaction_id: int | None = None
    message: str | None = None


# --- pricing a return -------------------------------------------------------------------
def returned_amount(
    items: Sequence[ReturnedItem], lines: Sequence[OrderLine], currency: str
) -> Money:
    """What the returned items were paid: each line's total (after its discounts) times the
    returned share of its quantity, rounded to the currency's minor unit per line."""
    by_id = {line.id: line for line in lines}
    quantities: dict[str, int] = defaultdict(int)
    for item in items:
        if item.line_item_id not in by_id:
            raise DomainError(
                UserErrorCode.INVALID_INPUT,
                f"the order has no line item {item.line_item_id!r}",
                ("returnInfo", "items", "lineItemId"),
            )
        quantities[item.line_item_id] += item.quantity
    total = Money.zero(currency)
    for line_id, quantity in quantities.items():
        line = by_id[line_id]
        if quantity > line.quantity:
            raise DomainError(
                UserErrorCode.INVALID_INPUT,
                f"{quantity} returned of line item {line_id!r}, which has {line.quantity}",
                ("returnInfo", "items", "quantity"),
            )
        share = Money(line.total.amount * Decimal(quantity) / Decimal(line.quantity), currency)
        total = total + share.rounded()
    return total


def fully_returned(lines: Sequence[OrderLine], items: Sequence[ReturnedItem]) -> bool:
    """Whether these return items (distinct by id) bring back every unit of every line."""
    if not lines:
        return False
    unique = {item.id: item for item in items}
    quantities: dict[str, int] = defaultdict(int)
    for item in unique.values():
        quantities[item.line_item_id] += item.quantity
    return all(quantities[line.id] >= line.quantity for line in lines)


def item_key(order_id: str, item_id: str) -> str:
    return f"{order_id}/{item_id}"


# --- the service ------------------------------------------------------------------------
class CommerceEvents:
    def __init__(
        self,
        ledger: PurchaseLedger,
        members: MemberDirectory,
        recorded: RecordedOrders,
        deliveries: DeliveryLog,
        orders: OrderDetails,
        clock: Callable[[], datetime],
    ) -> None:
        self.ledger = ledger
        self.members = members
        self.recorded = recorded
        self.deliveries = deliveries
        self.orders = orders
        self.clock = clock

    async def handle(self, message: CommerceMessage) -> Outcome:
        """Handle a message once per message id.

        The delivery is recorded after the ledger work committed, not in its database
        transaction: the ledger opens its own transaction per operation (`run_once`), and
        its idempotency keys (`commerce-order:<order id>`, `commerce-return:<message id>`)
        make a redelivery that slips between the two harmless: the ledger returns its first
        result and moves nothing. A crash between the two only means the next delivery of
        the message is handled (idempotently) instead of answered "duplicate"; recording the
        delivery first instead would lose the message on such a crash. Two deliveries racing
        both reach the ledger, which serializes them; the loser of the insert answers
        "duplicate".
        """
        if await self.deliveries.seen(MESSAGE_SOURCE, [message.message_id]):
            return Outcome(Status.DUPLICATE)
        extra: list[tuple[str, str]] = []
        try:
            if isinstance(message, OrderCreated):
                outcome = await self._order_created(message)
            elif isinstance(message, ReturnAnnounced):
                outcome, extra = await self._returned(message)
            else:
                outcome = Outcome(Status.IGNORED, reason="unhandled_type")
        except DomainError as error:
            outcome = Outcome(Status.REJECTED, reason=error.code.value, message=error.message)
        entry = (MESSAGE_SOURCE, message.message_id)
        inserted = await self.deliveries.record([entry, *extra], self.clock())
        if entry not in inserted:
            return Outcome(Status.DUPLICATE)
        return outcome

    async def _order_created(self, message: OrderCreated) -> Outcome:
        order = message.order
        member = None
        if order.state != CANCELLED:  # a cancelled order needs no member lookup
            member = (await members_of(self.members, [order])).get(order.customer_id or "")
        reason = skip_reason(order, member)
        if reason is not None or member is None:
            return Outcome(Status.IGNORED, reason=str(reason), order_id=order.id)
        result = await self.ledger.record_purchase(
            purchase_of(order, member.id, PURCHASE_SOURCE), order_key(order.id)
        )
        return Outcome(Status.RECORDED, None, order.id, result.member_id, result.transaction_id)

    async def _returned(self, message: ReturnAnnounced) -> tuple[Outcome, list[tuple[str, str]]]:
        order_id = message.order_id
        keys = {item.id: item_key(order_id, item.id) for item in message.items}
        handled = await self.deliveries.seen(RETURN_ITEM_SOURCE, list(keys.values()))
        new_items = [item for item in message.items if keys[item.id] not in handled]
        if not new_items:
            why = "no_return_items" if not message.items else "already_returned"
            return Outcome(Status.IGNORED, reason=why, order_id=order_id), []
        detail = await self.orders.order_detail(order_id)
        if detail is None:
            return Outcome(Status.IGNORED, reason="unknown_order", order_id=order_id), []
        if order_id not in await self.recorded.recorded_orders([order_id]):
            # Not earned yet: a non-member's order, or its OrderCreated is still on the way.
            member = (await members_of(self.members, [detail.order])).get(
                detail.order.customer_id or ""
            )
            skipped = skip_reason(detail.order, member)
            if skipped is not None or member is None:
                return Outcome(Status.IGNORED, reason=str(skipped), order_id=order_id), []
            await self.ledger.record_purchase(
                purchase_of(detail.order, member.id, PURCHASE_SOURCE), order_key(order_id)
            )
        currency = detail.order.total.currency
        amount = returned_amount(new_items, detail.lines, currency)
        whole = fully_returned(detail.lines, [*detail.returned, *message.items])
        done = [(RETURN_ITEM_SOURCE, keys[item.id]) for item in new_items]
        if not whole and amount.amount <= 0:
            return Outcome(Status.IGNORED, reason="nothing_paid_for", order_id=order_id), done
        result = await self.ledger.return_purchase(
            order_id,
            None if whole else amount,
            return_key(message.message_id),
            occurred_at=message.occurred_at,
            source=PURCHASE_SOURCE,
        )
        outcome = Outcome(Status.RETURNED, None, order_id, result.member_id, result.transaction_id)
        return outcome, done
