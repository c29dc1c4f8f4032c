"""The Mutation root: one module per mutation."""

from __future__ import annotations

import strawberry

from resolvers.mutations.enroll_member import enroll_member
from resolvers.mutations.payloads import EnrollMemberPayload, PointsPayload
from resolvers.mutations.record_purchase import record_purchase


@strawberry.type
class Mutation:
    enroll_member: EnrollMemberPayload = strawberry.mutation(resolver=enroll_member)
    record_purchase: PointsPayload = strawberry.mutation(
        resolver=record_purchase,
        description="POS, associate app or a service: points for a purchase, found by member id "
        "or card code.",
    )
