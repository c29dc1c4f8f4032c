from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.types import Info

from loyalty.models import Household as DomainHousehold
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
