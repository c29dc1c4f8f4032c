"""The access check of a single member by id, shared by `member`, `node`, `memberByCard`
and the `pointsChanged` subscription, so that every way to reach a member says no alike."""

from __future__ import annotations

from typing import Any

from strawberry.types import Info

from resolvers.errors import not_allowed, not_found, unauthenticated
from resolvers.members import Member, readable_member


async def visible_member(info: Info[Any, Any], member_id: str | None) -> Member:
    """The member behind a local id, if the viewer may read it; else a GraphQL error."""
    viewer = info.context.viewer
    if not viewer.is_authenticated:
        raise unauthenticated()
    member = await info.context.loaders.member_by_id.load(member_id) if member_id else None
    if member is None:
        if not viewer.reads_any_member:
            raise not_allowed("a member may read only itself and its household")
        raise not_found("member")
    if not await readable_member(info, member):
        raise not_allowed("a member may read only itself and its household")
    return Member.of(member)
