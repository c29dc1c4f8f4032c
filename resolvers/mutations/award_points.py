from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from loyalty.access import Role
from loyalty.errors import DomainError
from resolvers.errors import UserError
from resolvers.mutations.common import member_local_id, points_payload, require_role
from resolvers.mutations.payloads import PointsPayload


@strawberry.input
class AwardPointsInput:
    member_id: strawberry.ID
    points: int
    reason: str
    idempotency_key: str


async def award_points(info: Info[Any, Any], input: AwardPointsInput) -> PointsPayload:
    """Associate discretion, bounded per award and per associate per day; the token's
    subject and store are recorded with the reason."""
    viewer = info.context.viewer
    try:
        require_role(info, Role.ASSOCIATE)
        member_id = member_local_id(input.member_id, "memberId")
        assert viewer.sub is not None
        result = await info.context.services.ledger.award(
            member_id,
            input.points,
            input.reason,
            input.idempotency_key,
            associate=viewer.sub,
            store_id=viewer.store,
        )
    except DomainError as error:
        return PointsPayload(user_errors=[UserError.of(error)])
    return await points_payload(info, result)
