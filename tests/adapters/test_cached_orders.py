"""The order history cache (`CachedOrders`), in process and in Redis when
`PATRON_TEST_REDIS_URL` is set: pages cached per customer, limit and offset; never served
past the fresh TTL while commerce answers, but served stale when it fails; dropped per
customer; carts never cached."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from adapters.cache.cached_orders import CachedOrders, OrdersQuery, orders_key
from adapters.cache.store import CacheStore, MemoryCacheStore
from loyalty.errors import UpstreamUnavailable
from loyalty.money import Money
from loyalty.upstreams import Cart, Order, OrderPage
from tests.adapters.conftest import Now

CREATED = datetime(2026, 11, 20, 9, 30, 15, 250000, tzinfo=UTC)


def an_order(customer_id: str, n: int, total: Money) -> Order:
    return Order(
        id=f"{customer_id}-order-{n}",
        customer_id=customer_id,
        total=total,
        created_at=CREATED + timedelta(hours=n),
        state="Confirmed",
        order_number=f"N-{n}",
        customer_email=f"{customer_id}@example.com",
        payment_state="Paid" if n % 2 else None,
    )


class FakeOrders:
    """A `CommercePort` that records its calls."""

    name = "commerce"

    def __init__(self) -> None:
        self.orders_of: dict[str, list[Order]] = {}
        self.calls: list[tuple[str, ...]] = []
        self.down = False

    def add(self, customer_id: str, total: Money) -> Order:
        orders = self.orders_of.setdefault(customer_id, [])
        order = an_order(customer_id, len(orders) + 1, total)
        orders.insert(0, order)  # newest first
        return order

    async def active_cart(self, customer_id: str) -> Cart | None:
        return (await self.active_carts([customer_id]))[customer_id]

    async def active_carts(self, customer_ids: Sequence[str]) -> Mapping[str, Cart | None]:
        self.calls.append(("carts", *customer_ids))
        return {c: Cart(f"cart-{c}", c, Money.of("1.00", "CAD"), ()) for c in customer_ids}

    async def orders(self, customer_id: str, *, limit: int = 10, offset: int = 0) -> OrderPage:
        self.calls.append(("orders", customer_id, str(limit), str(offset)))
        if self.down:
            raise UpstreamUnavailable("commerce", "HTTP 503")
        orders = self.orders_of.get(customer_id, [])
        return OrderPage(tuple(orders[offset : offset + limit]), len(orders), offset)

    async def order(self, order_id: str) -> Order | None:
        self.calls.append(("order", order_id))
        return None

    async def orders_created_since(
        self, since: datetime, *, limit: int = 100, offset: int = 0
    ) -> OrderPage:
        self.calls.append(("since", since.isoformat()))
        return OrderPage((), 0, offset)


def commerce_with_orders() -> FakeOrders:
    commerce = FakeOrders()
    commerce.add("ann", Money.of("330.00", "CAD"))
    commerce.add("ann", Money(Decimal("12000"), "JPY"))
    commerce.add("ann", Money(Decimal("1.500"), "BHD"))
    commerce.add("bob", Money.of("99.99", "EUR"))
    return commerce


async def test_a_page_is_cached_exactly_and_per_customer(store: CacheStore) -> None:
    commerce, now = commerce_with_orders(), Now()
    cached = CachedOrders(commerce, store, 60, 3600, clock=now)
    ann = await cached.orders("ann", limit=3)
    bob = await cached.orders("bob", limit=3)
    now.t += 47
    assert await cached.orders("ann", limit=3) == ann == await commerce.orders("ann", limit=3)
    assert await cached.orders("bob", limit=3) == bob == await commerce.orders("bob", limit=3)
    assert [o.customer_id for o in ann.orders] == ["ann", "ann", "ann"]
    assert [str(o.total.amount) for o in ann.orders] == ["1.500", "12000", "330.00"]
    assert [o.customer_id for o in bob.orders] == ["bob"]
    # Another limit or offset is another page; the fake was called once per page only.
    assert (await cached.orders("ann", limit=1)).orders == ann.orders[:1]
    assert (await cached.orders("ann", limit=2, offset=1)).orders == ann.orders[1:]
    assert commerce.calls == [
        ("orders", "ann", "3", "0"),
        ("orders", "bob", "3", "0"),
        ("orders", "ann", "3", "0"),  # the test's own comparisons with the fake
        ("orders", "bob", "3", "0"),
        ("orders", "ann", "1", "0"),
        ("orders", "ann", "2", "1"),
    ]


async def test_orders_changed_drops_every_page_of_that_customer_only(
    store: CacheStore,
) -> None:
    commerce, now = commerce_with_orders(), Now()
    cached = CachedOrders(commerce, store, 60, 3600, clock=now)
    await cached.orders("ann", limit=3)
    await cached.orders("ann", limit=10)
    await cached.orders("bob", limit=3)
    commerce.calls.clear()
    now.t += 1
    commerce.add("ann", Money.of("5.00", "CAD"))
    await cached.orders_changed(["ann"])
    await cached.orders_changed(["ann", ""])  # idempotent; an empty id is no customer
    now.t += 1
    assert len((await cached.orders("ann", limit=3)).orders) == 3
    assert (await cached.orders("ann", limit=10)).total == 4
    assert (await cached.orders("ann", limit=10)).orders[0].total == Money.of("5.00", "CAD")
    assert (await cached.orders("bob", limit=3)).total == 1
    assert commerce.calls == [("orders", "ann", "3", "0"), ("orders", "ann", "10", "0")]


async def test_never_stale_while_commerce_answers_stale_when_it_fails(
    store: CacheStore,
) -> None:
    commerce, now = commerce_with_orders(), Now()
    cached = CachedOrders(commerce, store, 60, 3600, clock=now)
    first = await cached.orders("ann", limit=3)
    now.t += 60  # past the fresh TTL: a miss, fetched before answering
    commerce.add("ann", Money.of("5.00", "CAD"))
    second = await cached.orders("ann", limit=3)
    assert second.total == 4 and second != first
    commerce.down = True
    now.t += 3000  # commerce down: the last page is served, however old, up to the stale TTL
    assert await cached.orders("ann", limit=3) == second
    now.t += 600
    with pytest.raises(UpstreamUnavailable):
        await cached.orders("ann", limit=3)
    # Never cached at all: commerce's failure is the answer.
    with pytest.raises(UpstreamUnavailable):
        await cached.orders("bob", limit=3)


async def test_ttl_zero_calls_each_time_and_carts_are_never_cached() -> None:
    commerce = commerce_with_orders()
    off = CachedOrders(commerce, MemoryCacheStore(), 0, 3600)
    await off.orders("ann", limit=3)
    await off.orders("ann", limit=3)
    cached = CachedOrders(commerce, MemoryCacheStore(), 60, 3600)
    await cached.active_carts(["ann", "bob"])
    await cached.active_carts(["ann", "bob"])
    await cached.active_cart("ann")
    await cached.order("ann-order-1")
    await cached.orders_created_since(CREATED)
    assert commerce.calls == [
        ("orders", "ann", "3", "0"),
        ("orders", "ann", "3", "0"),
        ("carts", "ann", "bob"),
        ("carts", "ann", "bob"),
        ("carts", "ann"),
        ("order", "ann-order-1"),
        ("since", CREATED.isoformat()),
    ]


def test_keys_never_mix_customers() -> None:
    # Customer ids may contain ":" and digits: the limit and the offset come last, so every
    # (customer, limit, offset) has a key of its own.
    customers = ["a", "a:1", "a:1:0", "1", "1:0", "a:10"]
    queries = [OrdersQuery(c, n, o) for c in customers for n in (0, 1, 10) for o in (0, 1, 10)]
    assert len({orders_key(q) for q in queries}) == len(queries) == 54
    assert orders_key(OrdersQuery("cust-1", 10, 0)) == "commerce:orders:cust-1:10:0"
