from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from loyalty.access import Role
from loyalty.errors import DomainError
from loyalty.models import Channel
from resolvers.errors import UserError
from resolvers.mutations.common import member_local_id, points_payload
from resolvers.mutations.payloads import PointsPayload


@strawberry.input
class RedeemPointsInput:
    member_id: strawberry.ID
    points: int
    reason: str | None = None
    idempotency_key: str


async def redeem_points(info: Info[Any, Any], input: RedeemPointsInput) -> PointsPayload:
    viewer = info.context.viewer
    try:
        member_id = member_local_id(input.member_id, "memberId")
        result = await info.context.services.ledger.redeem(
            member_id,
            input.points,
            input.reason,
            input.idempotency_key,
            actor=viewer.sub,
            channel=Channel.ASSOCIATE if viewer.has(Role.ASSOCIATE) else Channel.APP,
        )
    except DomainError as error:
        return PointsPayload(user_errors=[UserError.of(error)])
    return await points_payload(info, result)
