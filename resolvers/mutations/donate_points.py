from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from loyalty.errors import DomainError
from resolvers.errors import UserError
from resolvers.mutations.common import member_local_id, points_payload
from resolvers.mutations.payloads import PointsPayload


@strawberry.input
class DonatePointsInput:
    member_id: strawberry.ID
    charity_key: str
    points: int
    idempotency_key: str


async def donate_points(info: Info[Any, Any], input: DonatePointsInput) -> PointsPayload:
    """Points to one of the program's charities, recorded with their currency value."""
    try:
        member_id = member_local_id(input.member_id, "memberId")
        result = await info.context.services.ledger.donate(
            member_id,
            input.charity_key,
            input.points,
            input.idempotency_key,
            actor=info.context.viewer.sub,
        )
    except DomainError as error:
        return PointsPayload(user_errors=[UserError.of(error)])
    return await points_payload(info, result)
