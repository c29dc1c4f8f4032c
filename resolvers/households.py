from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.types import Info

from loyalty.models import Household as DomainHousehold
from loyalty.models import HouseholdInvitation as DomainInvitation
from resolvers.node import Node, to_global_id
from resolvers.permissions import ReadsHousehold

if TYPE_CHECKING:
    from resolvers.members import Member


@strawberry.type
class Household(Node):
    # Every field: `ReadsHousehold` (its members, or a role that reads any member).
    id: strawberry.ID = strawberry.field(permission_classes=[ReadsHousehold])
    _household: strawberry.Private[DomainHousehold]

    @strawberry.field(permission_classes=[ReadsHousehold])
    async def owner(
        self, info: Info[Any, Any]
    ) -> Annotated[Member, strawberry.lazy("resolvers.members")]:
        from resolvers.members import Member

        member = await info.context.loaders.member_by_id.load(self._household.owner_id)
        return Member.of(member)

    @strawberry.field(permission_classes=[ReadsHousehold])
    async def members(
        self, info: Info[Any, Any]
    ) -> list[Annotated[Member, strawberry.lazy("resolvers.members")]]:
        from resolvers.members import Member

        found = await info.context.loaders.member_by_id.load_many(list(self._household.member_ids))
        return [Member.of(m) for m in found if m is not None]

    @strawberry.field(
        permission_classes=[ReadsHousehold],
        description="Points all members of the household can spend together.",
    )
    async def pooled_points(self, info: Info[Any, Any]) -> int:
        balance = await info.context.loaders.balance_by_member_id.load(self._household.owner_id)
        return int(balance.available)

    @classmethod
    def of(cls, household: DomainHousehold) -> Household:
        return cls(id=to_global_id("Household", household.id), _household=household)


@strawberry.type(
    description="A household's owner invited a member to join it: the member joins only when "
    "it accepts (addHouseholdMember naming itself) before expiresAt. Only ids: neither side "
    "sees the other's personal data through it."
)
class HouseholdInvitation:
    household_id: strawberry.ID = strawberry.field(description="The household (a Household id).")
    member_id: strawberry.ID = strawberry.field(description="The invited member (a Member id).")
    expires_at: datetime

    @classmethod
    def of(cls, invitation: DomainInvitation) -> HouseholdInvitation:
        return cls(
            household_id=to_global_id("Household", invitation.household_id),
            member_id=to_global_id("Member", invitation.member_id),
            expires_at=invitation.expires_at,
        )
