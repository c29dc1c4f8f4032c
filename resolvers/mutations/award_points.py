from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from loyalty.access import Capability, store_scope
from loyalty.errors import DomainError
from resolvers.errors import UserError
from resolvers.mutations.common import member_local_id, points_payload
from resolvers.mutations.payloads import PointsPayload


@strawberry.input
class AwardPointsInput:
    member_id: strawberry.ID
    points: int
    reason: str
    idempotency_key: str
    store_id: str | None = strawberry.field(
        default=None,
        description="Where the award is made: an associate's own store (its token's `store`), "
        "which it defaults to.",
    )


async def award_points(info: Info[Any, Any], input: AwardPointsInput) -> PointsPayload:
    """Associate discretion, bounded per award and per associate per day; the token's
    subject and store are recorded with the reason (`AwardsPoints`: associates for their
    own store only)."""
    viewer = info.context.viewer
    try:
        member_id = member_local_id(input.member_id, "memberId")
        assert viewer.sub is not None
        result = await info.context.services.ledger.award(
            member_id,
            input.points,
            input.reason,
            input.idempotency_key,
            associate=viewer.sub,
            store_id=store_scope(viewer, Capability.AWARD_POINTS, input.store_id).store_id,
        )
    except DomainError as error:
        return PointsPayload(user_errors=[UserError.of(error)])
    return await points_payload(info, result)
