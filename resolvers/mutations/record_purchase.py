from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from loyalty.access import Capability, store_scope
from loyalty.card import member_id_from_card
from loyalty.errors import DomainError, UserErrorCode
from loyalty.ledger import Purchase, parse_money
from resolvers.errors import UserError
from resolvers.money import MoneyInput
from resolvers.mutations.common import member_local_id, points_payload
from resolvers.mutations.payloads import PointsPayload
from resolvers.points import Channel


@strawberry.input
class RecordPurchaseInput:
    member_id: strawberry.ID | None = None
    card_code: str | None = None
    order_id: str
    total: MoneyInput
    channel: Channel  # type: ignore[valid-type]
    store_id: str | None = strawberry.field(
        default=None,
        description="Where the purchase was made. An associate records for its own store only "
        "(its token's `store`), which this defaults to.",
    )
    idempotency_key: str


async def record_purchase(info: Info[Any, Any], input: RecordPurchaseInput) -> PointsPayload:
    """POS, associate app or a service: points for a purchase, by member id or card code
    (`RecordsPurchases`: associates for their own store only)."""
    services = info.context.services
    try:
        if (input.member_id is None) == (input.card_code is None):
            raise DomainError(
                UserErrorCode.INVALID_INPUT,
                "give exactly one of memberId and cardCode",
                ("memberId",),
            )
        if input.card_code is not None:
            found = member_id_from_card(input.card_code, services.card_secret)
            if found is None:
                raise DomainError(UserErrorCode.NOT_FOUND, "unknown card", ("cardCode",))
            member_id = found
        else:
            assert input.member_id is not None
            member_id = member_local_id(input.member_id, "memberId")
        result = await services.ledger.record_purchase(
            Purchase(
                order_id=input.order_id,
                total=parse_money(str(input.total.amount), input.total.currency_code),
                channel=input.channel,
                member_id=member_id,
                store_id=store_scope(
                    info.context.viewer, Capability.RECORD_PURCHASES, input.store_id
                ).store_id,
            ),
            input.idempotency_key,
        )
    except DomainError as error:
        if input.card_code is not None and error.field == ("memberId",):
            error.field = ("cardCode",)  # the caller sent a card, not a member id
        return PointsPayload(user_errors=[UserError.of(error)])
    return await points_payload(info, result)
