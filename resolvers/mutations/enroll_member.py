from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from loyalty.errors import DomainError
from loyalty.members import Enrolment
from resolvers.errors import UserError
from resolvers.members import Member
from resolvers.mutations.common import member_local_id
from resolvers.mutations.payloads import EnrollMemberPayload


@strawberry.input
class EnrollMemberInput:
    commerce_customer_id: str
    cdp_user_id: str | None = None
    email: str | None = None
    referred_by: strawberry.ID | None = None
    idempotency_key: str | None = None


async def enroll_member(info: Info[Any, Any], input: EnrollMemberInput) -> EnrollMemberPayload:
    """A member enrols itself (its token's subject); staff and services enrol anyone
    (`EnrollsMember`)."""
    try:
        referred_by = (
            member_local_id(input.referred_by, "referredBy") if input.referred_by else None
        )
        member_id = await info.context.services.members.enroll(
            Enrolment(
                commerce_customer_id=input.commerce_customer_id,
                cdp_user_id=input.cdp_user_id,
                email=input.email,
                referred_by_id=referred_by,
            ),
            input.idempotency_key,
        )
    except DomainError as error:
        return EnrollMemberPayload(user_errors=[UserError.of(error)])
    member = await info.context.loaders.member_by_id.load(member_id)
    return EnrollMemberPayload(member=Member.of(member) if member else None)
