"""Mutation payloads: the result, or `userErrors` saying which rule refused and why."""

from __future__ import annotations

import strawberry

from resolvers.errors import UserError
from resolvers.households import Household, HouseholdInvitation
from resolvers.members import Member
from resolvers.points import PointsTransaction


@strawberry.type
class EnrollMemberPayload:
    member: Member | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class PointsPayload:
    transaction: PointsTransaction | None = None
    member: Member | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class HouseholdPayload:
    household: Household | None = None
    invitation: HouseholdInvitation | None = strawberry.field(
        default=None,
        description="Set when the owner invited a member (addHouseholdMember by the owner): "
        "the member is not in the household until it accepts the invitation.",
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class MemberPayload:
    member: Member | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ForgetMemberPayload:
    forgotten_member_id: strawberry.ID | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)
