"""The access check of a single member, shared by `member`, `node`, `memberByCard`, the
`pointsChanged` subscription and federation's `_entities`, so that every way to reach a
member says no alike."""

from __future__ import annotations

from typing import Any

from strawberry.types import Info

from loyalty.models import Member as DomainMember
from resolvers.errors import not_allowed, not_found, unauthenticated
from resolvers.members import Member, readable_member


async def visible_member(info: Info[Any, Any], member_id: str | None) -> Member:
    """The member behind a local id, if the viewer may read it; else a GraphQL error."""
    if not info.context.viewer.is_authenticated:
        raise unauthenticated()
    member = await info.context.loaders.member_by_id.load(member_id) if member_id else None
    return await _readable(info, member)


async def visible_member_by_commerce_id(info: Info[Any, Any], commerce_id: str | None) -> Member:
    """The member behind a commerce customer id, under the same rules as `visible_member`."""
    if not info.context.viewer.is_authenticated:
        raise unauthenticated()
    loader = info.context.loaders.member_by_commerce_id
    member = await loader.load(commerce_id) if commerce_id else None
    return await _readable(info, member)


async def _readable(info: Info[Any, Any], member: DomainMember | None) -> Member:
    """A member who does not exist is NOT_FOUND for staff, and for anyone else the same
    NOT_ALLOWED as another member's: a member cannot probe which ids exist."""
    if member is None:
        if not info.context.viewer.reads_any_member:
            raise not_allowed("a member may read only itself and its household")
        raise not_found("member")
    if not await readable_member(info, member):
        raise not_allowed("a member may read only itself and its household")
    return Member.of(member)
