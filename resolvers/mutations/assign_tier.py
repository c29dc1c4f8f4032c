from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from loyalty.errors import DomainError
from resolvers.errors import UserError
from resolvers.members import Member
from resolvers.mutations.common import member_local_id
from resolvers.mutations.payloads import MemberPayload


@strawberry.input
class AssignTierInput:
    member_id: strawberry.ID
    tier_key: str
    reason: str


async def assign_tier(info: Info[Any, Any], input: AssignTierInput) -> MemberPayload:
    """Associates and admins put a member in a tier (an invitation to a hidden tier, or a
    public tier as a floor until the next review); the token's subject and the reason are
    recorded (`AssignsTiers`: marketers and services may not, a tier changes what a member
    earns and pays)."""
    viewer = info.context.viewer
    try:
        member_id = member_local_id(input.member_id, "memberId")
        assert viewer.sub is not None
        await info.context.services.tiers.assign(
            member_id, input.tier_key, input.reason, by=viewer.sub
        )
    except DomainError as error:
        return MemberPayload(user_errors=[UserError.of(error)])
    member = await info.context.loaders.member_by_id.load(member_id)
    return MemberPayload(member=Member.of(member) if member else None)
