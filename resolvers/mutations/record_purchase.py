from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from loyalty.access import Role
from loyalty.card import member_id_from_card
from loyalty.errors import DomainError, UserErrorCode
from loyalty.ledger import Purchase, parse_money
from resolvers.errors import UserError
from resolvers.money import MoneyInput
from resolvers.mutations.common import member_local_id, points_payload, require_role
from resolvers.mutations.payloads import PointsPayload
from resolvers.points import Channel


@strawberry.input
class RecordPurchaseInput:
    member_id: strawberry.ID | None = None
    card_code: str | None = None
    order_id: str
    total: MoneyInput
    channel: Channel  # type: ignore[valid-type]
    store_id: str | None = None
    idempotency_key: str


async def record_purchase(info: Info[Any, Any], input: RecordPurchaseInput) -> PointsPayload:
    """POS, associate app or a service: points for a purchase, by member id or card code."""
    services = info.context.services
    try:
        require_role(info, Role.SERVICE, Role.ASSOCIATE)
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
                store_id=input.store_id or info.context.viewer.store,
            ),
            input.idempotency_key,
        )
    except DomainError as error:
        if input.card_code is not None and error.field == ("memberId",):
            error.field = ("cardCode",)  # the caller sent a card, not a member id
        return PointsPayload(user_errors=[UserError.of(error)])
    return await points_payload(info, result)
