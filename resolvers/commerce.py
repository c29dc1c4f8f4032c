from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.types import Info

from loyalty.earning import to_program_currency
from loyalty.errors import DomainError
from loyalty.money import Money as DomainMoney
from loyalty.offers import purchase_points
from loyalty.upstreams import Cart as DomainCart
from loyalty.upstreams import Order as DomainOrder
from resolvers.money import Money


@strawberry.type
class CartLine:
    sku: str
    name: str
    quantity: int
    unit_price: Money
    total: Money
    image_url: str | None


@strawberry.type(description="The member's active cart in the commerce platform.")
class Cart:
    id: strawberry.ID
    total: Money
    line_items: list[CartLine]
    _cart: strawberry.Private[DomainCart]
    _member_id: strawberry.Private[str]

    @strawberry.field(
        description="Points this cart would earn for this member at checkout, tier multiplier "
        "and bonus offers included."
    )
    async def points_preview(self, info: Info[Any, Any]) -> int:
        services = info.context.services
        loaders = info.context.loaders
        status = await loaders.tier_status_by_member_id.load(self._member_id)
        offers = await loaders.offers_by_member_id.load(self._member_id)
        try:
            # The rule recordPurchase applies too (loyalty.offers.purchase_points).
            points = purchase_points(services.program, self._cart.total, status.current, offers)
        except DomainError:
            return 0  # a cart in a currency the program cannot convert earns nothing
        return points.total

    @strawberry.field(description="The member's tier discount applied to this cart.")
    async def tier_discount(self, info: Info[Any, Any]) -> Money | None:
        status = await info.context.loaders.tier_status_by_member_id.load(self._member_id)
        percent = status.current.discount_percent
        if not percent:
            return None
        total = self._cart.total
        return Money.of(DomainMoney(total.amount * percent / 100, total.currency).rounded())

    @classmethod
    def of(cls, cart: DomainCart, member_id: str) -> Cart:
        return cls(
            id=strawberry.ID(cart.id),
            total=Money.of(cart.total),
            line_items=[
                CartLine(
                    sku=line.sku,
                    name=line.name,
                    quantity=line.quantity,
                    unit_price=Money.of(line.unit_price),
                    total=Money.of(line.total),
                    image_url=line.image_url,
                )
                for line in cart.lines
            ],
            _cart=cart,
            _member_id=member_id,
        )


@strawberry.type
class Order:
    id: strawberry.ID
    order_number: str | None
    total: Money
    created_at: datetime
    state: str

    @classmethod
    def of(cls, order: DomainOrder) -> Order:
        return cls(
            id=strawberry.ID(order.id),
            order_number=order.order_number,
            total=Money.of(order.total),
            created_at=order.created_at,
            state=order.state,
        )


__all__ = ["Cart", "CartLine", "Order", "to_program_currency"]
