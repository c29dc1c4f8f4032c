"""The Mutation root: one module per mutation."""

from __future__ import annotations

import strawberry

from resolvers.mutations.assign_tier import assign_tier
from resolvers.mutations.award_points import award_points
from resolvers.mutations.donate_points import donate_points
from resolvers.mutations.enroll_member import enroll_member
from resolvers.mutations.forget_member import forget_member
from resolvers.mutations.gift_points import gift_points
from resolvers.mutations.households import (
    add_household_member,
    create_household,
    remove_household_member,
)
from resolvers.mutations.payloads import (
    EnrollMemberPayload,
    ForgetMemberPayload,
    HouseholdPayload,
    MemberPayload,
    PointsPayload,
)
from resolvers.mutations.record_purchase import record_purchase
from resolvers.mutations.redeem_points import redeem_points
from resolvers.mutations.return_purchase import return_purchase
from resolvers.permissions import (
    AddsHouseholdMember,
    AssignsTiers,
    AwardsPoints,
    CreatesHousehold,
    DonatesPoints,
    EnrollsMember,
    ForgetsMember,
    GiftsPoints,
    RecordsPurchases,
    RedeemsPoints,
    RemovesHouseholdMember,
    ReturnsPurchases,
    refusals_as_user_errors,
)


@strawberry.type
class Mutation:
    # Each mutation declares its permission (`resolvers/permissions.py`); a refusal is the
    # payload's `userErrors` with `NOT_ALLOWED`, and nothing is done.
    enroll_member: EnrollMemberPayload = strawberry.mutation(
        resolver=enroll_member, extensions=[refusals_as_user_errors(EnrollsMember())]
    )
    record_purchase: PointsPayload = strawberry.mutation(
        resolver=record_purchase,
        extensions=[refusals_as_user_errors(RecordsPurchases())],
        description="POS, associate app or a service: points for a purchase, found by member id "
        "or card code. An associate records for its own store only.",
    )
    return_purchase: PointsPayload = strawberry.mutation(
        resolver=return_purchase,
        extensions=[refusals_as_user_errors(ReturnsPurchases())],
        description="Claw back the points of a returned purchase (all or part).",
    )
    redeem_points: PointsPayload = strawberry.mutation(
        resolver=redeem_points, extensions=[refusals_as_user_errors(RedeemsPoints())]
    )
    gift_points: PointsPayload = strawberry.mutation(
        resolver=gift_points, extensions=[refusals_as_user_errors(GiftsPoints())]
    )
    donate_points: PointsPayload = strawberry.mutation(
        resolver=donate_points, extensions=[refusals_as_user_errors(DonatesPoints())]
    )
    award_points: PointsPayload = strawberry.mutation(
        resolver=award_points,
        extensions=[refusals_as_user_errors(AwardsPoints())],
        description="Associate discretion: bounded by the program's per-award and per-day "
        "limits, audited. An associate awards for its own store only.",
    )
    create_household: HouseholdPayload = strawberry.mutation(
        resolver=create_household, extensions=[refusals_as_user_errors(CreatesHousehold())]
    )
    add_household_member: HouseholdPayload = strawberry.mutation(
        resolver=add_household_member,
        extensions=[refusals_as_user_errors(AddsHouseholdMember())],
        description="Joining takes both members' consent. The household's owner invites the "
        "member (the payload's invitation; nothing moves until it accepts); the invited "
        "member, naming itself, accepts and joins with its available points. Staff and "
        "services add the member at once.",
    )
    remove_household_member: HouseholdPayload = strawberry.mutation(
        resolver=remove_household_member,
        extensions=[refusals_as_user_errors(RemovesHouseholdMember())],
        description="A member leaves, or the owner (or staff) removes it; it takes nothing "
        "with it. Naming a member who is only invited drops the invitation: the owner "
        "withdraws it, the member declines it.",
    )
    assign_tier: MemberPayload = strawberry.mutation(
        resolver=assign_tier,
        extensions=[refusals_as_user_errors(AssignsTiers())],
        description="Staff: put a member in a tier, e.g. an invitation to a hidden tier.",
    )
    forget_member: ForgetMemberPayload = strawberry.mutation(
        resolver=forget_member,
        extensions=[refusals_as_user_errors(ForgetsMember())],
        description="Erase a member's personal data in one step and ask the CDP to delete it; "
        "the anonymous ledger amounts stay so the books balance. Admin, service, or the member.",
    )
