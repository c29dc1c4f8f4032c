from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from loyalty.errors import DomainError
from resolvers.errors import UserError
from resolvers.mutations.common import member_local_id, points_payload
from resolvers.mutations.payloads import PointsPayload


@strawberry.input
class GiftPointsInput:
    from_member_id: strawberry.ID
    to_member_id: strawberry.ID
    points: int
    message: str | None = None
    idempotency_key: str


async def gift_points(info: Info[Any, Any], input: GiftPointsInput) -> PointsPayload:
    """Points from one member to another, atomically; the payload shows the sender's side."""
    try:
        sender = member_local_id(input.from_member_id, "fromMemberId")
        receiver = member_local_id(input.to_member_id, "toMemberId")
        result = await info.context.services.ledger.gift(
            sender,
            receiver,
            input.points,
            input.message,
            input.idempotency_key,
            actor=info.context.viewer.sub,
        )
    except DomainError as error:
        return PointsPayload(user_errors=[UserError.of(error)])
    return await points_payload(info, result)
