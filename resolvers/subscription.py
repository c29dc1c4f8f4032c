"""The Subscription root: live balances over `graphql-transport-ws`.

A WebSocket connection keeps one context (and so one set of DataLoaders) for its whole
life, while a subscription runs for minutes or hours: a cached read would be stale at the
second event. So the `FollowsMember` permission checks access with a fresh set of loaders,
every event reads through a fresh set too, and the access check is made again with it (a
member who left a household stops receiving its owner's balance).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import strawberry
from strawberry.types import Info

from loyalty.ports import points_channel
from resolvers.loaders import Loaders
from resolvers.node import local_id
from resolvers.permissions import FollowsMember, refusals_in_stream
from resolvers.points import PointsBalance
from resolvers.visibility import visible_member


@strawberry.type
class Subscription:
    @strawberry.subscription(
        extensions=[refusals_in_stream(FollowsMember())],
        description="Live balance changes for one member (associate app, mobile app), across "
        "all gateway replicas. The current balance comes first, then one per change.",
    )
    async def points_changed(
        self, info: Info[Any, Any], member_id: strawberry.ID
    ) -> AsyncGenerator[PointsBalance, None]:
        # FollowsMember allowed it with fresh loaders; NOT_FOUND for an unknown member.
        local = local_id(member_id, "Member")
        await visible_member(info, local)
        assert local is not None  # visible_member refuses an id that is not a member's
        loaders = info.context.loaders
        # Subscribed before the first read (these loaders hold no balance yet), so a change
        # between the two is not lost.
        async with info.context.services.broker.subscribe(points_channel(local)) as changes:
            yield await _balance(loaders, local)
            async for _ in changes:
                yield await _balance(await _checked(info, local), local)


async def _checked(info: Info[Any, Any], member_id: str) -> Loaders:
    """The access rules of `member(id)` (a GraphQL error when they say no), checked with
    loaders that have cached nothing yet; returns those loaders for the read that follows."""
    loaders = Loaders.build(info.context.services)
    info.context.loaders = loaders
    await visible_member(info, member_id)
    return loaders


async def _balance(loaders: Loaders, member_id: str) -> PointsBalance:
    return PointsBalance.of(await loaders.balance_by_member_id.load(member_id))
