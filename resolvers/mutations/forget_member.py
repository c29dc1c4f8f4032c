"""forgetMember: erase a member's personal data in one step (`loyalty.privacy`)."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from loyalty.errors import DomainError
from resolvers.errors import UserError
from resolvers.mutations.common import member_local_id
from resolvers.mutations.payloads import ForgetMemberPayload
from resolvers.node import to_global_id


@strawberry.input
class ForgetMemberInput:
    member_id: strawberry.ID


async def forget_member(info: Info[Any, Any], input: ForgetMemberInput) -> ForgetMemberPayload:
    """Admins, back-office services (`service`) and the member itself. The CDP is asked to
    delete the user after commit; if it is down, the request stays queued and the erasure
    stands. A member already forgotten is NOT_FOUND (`ForgetsMember` says who may)."""
    try:
        member_id = member_local_id(input.member_id, "memberId")
        erasure = await info.context.services.privacy.forget(member_id)
    except DomainError as error:
        return ForgetMemberPayload(user_errors=[UserError.of(error)])
    info.context.loaders.member_by_id.clear(erasure.member_id)
    return ForgetMemberPayload(forgotten_member_id=to_global_id("Member", erasure.member_id))
