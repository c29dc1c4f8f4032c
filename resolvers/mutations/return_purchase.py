from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from loyalty.errors import DomainError
from loyalty.ledger import parse_money
from resolvers.errors import UserError
from resolvers.money import MoneyInput
from resolvers.mutations.common import points_payload
from resolvers.mutations.payloads import PointsPayload


@strawberry.input
class ReturnPurchaseInput:
    order_id: str
    amount: MoneyInput | None = strawberry.field(
        default=None, description="The amount returned; all that is left of the order if null."
    )
    idempotency_key: str


async def return_purchase(info: Info[Any, Any], input: ReturnPurchaseInput) -> PointsPayload:
    """Claw back the points of a returned purchase (all or part), pending points first."""
    try:
        amount = (
            parse_money(str(input.amount.amount), input.amount.currency_code, "amount")
            if input.amount
            else None
        )
        result = await info.context.services.ledger.return_purchase(
            input.order_id, amount, input.idempotency_key
        )
    except DomainError as error:
        return PointsPayload(user_errors=[UserError.of(error)])
    return await points_payload(info, result)
