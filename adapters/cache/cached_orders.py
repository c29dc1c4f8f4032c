"""`CommercePort` with a customer's order history cached briefly; carts never.

A storefront shows the member view on every page, and its `orders` cost one commerce call
each time although order history changes only when the customer orders or returns
something. So `orders(customer_id, limit, offset)` is cached per page, under a key holding
the customer id, the limit and the offset (`commerce:orders:<customer>:<limit>:<offset>`),
so one customer's pages are never served to another. The rules are `adapters.cache.swr`'s,
except that an entry past its fresh TTL is not served while commerce answers (order history
is never served stale, only when commerce fails: stale-if-error). The fresh TTL is short
(`PATRON_ORDERS_CACHE_TTL`, 60 s by default), and the cache is invalidated per customer when
one of its orders is recorded or returned (`orders_changed`, the domain's
`OrderHistoryEvents`), which marks every page of that customer at once.

Active carts (a customer adds to it between two pages), single orders and the backfill's
query are passed through unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from adapters.cache.store import CacheStore
from adapters.cache.swr import CacheObserver, SwrCache
from loyalty.money import Money
from loyalty.ports import CommercePort
from loyalty.upstreams import Cart, Order, OrderPage

__all__ = ["CachedOrders", "OrdersQuery", "orders_key", "orders_marker"]


class OrdersQuery(NamedTuple):
    customer_id: str
    limit: int
    offset: int


def orders_key(query: OrdersQuery) -> str:
    """Unambiguous: the limit and the offset, last, are digits only."""
    return f"commerce:orders:{query.customer_id}:{query.limit}:{query.offset}"


def orders_marker(customer_id: str) -> str:
    return f"commerce:invalidated:{customer_id}"


def _customer(query: OrdersQuery) -> str:
    return query.customer_id


def _encode_order(order: Order) -> dict[str, Any]:
    return {
        "id": order.id,
        "customer_id": order.customer_id,
        "total": [str(order.total.amount), order.total.currency],
        "created_at": order.created_at.isoformat(),
        "state": order.state,
        "order_number": order.order_number,
        "customer_email": order.customer_email,
        "payment_state": order.payment_state,
    }


def _decode_order(doc: Any) -> Order:
    amount, currency = doc["total"]
    return Order(
        id=doc["id"],
        customer_id=doc["customer_id"],
        total=Money(Decimal(amount), currency),  # exactly as fetched, digits and all
        created_at=datetime.fromisoformat(doc["created_at"]),
        state=doc["state"],
        order_number=doc["order_number"],
        customer_email=doc["customer_email"],
        payment_state=doc["payment_state"],
    )


def _encode_page(page: OrderPage) -> dict[str, Any]:
    return {
        "orders": [_encode_order(o) for o in page.orders],
        "total": page.total,
        "offset": page.offset,
    }


def _decode_page(doc: Any) -> OrderPage:
    return OrderPage(
        orders=tuple(_decode_order(o) for o in doc["orders"]),
        total=int(doc["total"]),
        offset=int(doc["offset"]),
    )


class CachedOrders:
    """`CommercePort` whose `orders` pages are cached per customer; everything else is the
    inner port's. Also the `OrderHistoryEvents` that invalidate them."""

    def __init__(
        self,
        inner: CommercePort,
        store: CacheStore,
        fresh_ttl: float,
        stale_ttl: float,
        *,
        clock: Callable[[], float] = time.time,
        observer: CacheObserver | None = None,
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.cache: SwrCache[OrdersQuery, OrderPage] = SwrCache(
            store,
            name=inner.name,
            key=orders_key,
            scope=_customer,
            marker=orders_marker,
            encode=_encode_page,
            decode=_decode_page,
            fresh_ttl=fresh_ttl,
            stale_ttl=stale_ttl,
            clock=clock,
            observer=observer,
            serve_stale=False,
        )

    async def orders(self, customer_id: str, *, limit: int = 10, offset: int = 0) -> OrderPage:
        query = OrdersQuery(customer_id, limit, offset)
        page = (await self.cache.get_many([query], self._fetch))[query]
        if page is None:  # never cached by this class (a page is never "not found")
            return await self.inner.orders(customer_id, limit=limit, offset=offset)
        return page

    async def orders_changed(self, customer_ids: Sequence[str]) -> None:
        """Their order history changed (an order recorded or returned): every cached page of
        these customers is dropped, on every replica sharing the store."""
        await self.cache.invalidate([c for c in customer_ids if c])

    # --- passed through ---------------------------------------------------------------------
    async def active_cart(self, customer_id: str) -> Cart | None:
        return await self.inner.active_cart(customer_id)

    async def active_carts(self, customer_ids: Sequence[str]) -> Mapping[str, Cart | None]:
        return await self.inner.active_carts(customer_ids)

    async def order(self, order_id: str) -> Order | None:
        return await self.inner.order(order_id)

    async def orders_created_since(
        self, since: datetime, *, limit: int = 100, offset: int = 0
    ) -> OrderPage:
        return await self.inner.orders_created_since(since, limit=limit, offset=offset)

    async def _fetch(self, queries: Sequence[OrdersQuery]) -> dict[OrdersQuery, OrderPage]:
        """One page per query (the cache asks for one at a time)."""
        return {
            q: await self.inner.orders(q.customer_id, limit=q.limit, offset=q.offset)
            for q in queries
        }
