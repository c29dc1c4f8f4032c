"""The access check of a single member by id, made again at every event of the
`pointsChanged` subscription (the field's `FollowsMember` permission checks it when the
subscription starts): the same rule, and the same answers, as `member(id:)`."""

from __future__ import annotations

from typing import Any

from strawberry.types import Info

from loyalty.access import Access
from loyalty.models import Member as DomainMember
from resolvers.errors import not_found
from resolvers.loaders import Loaders
from resolvers.permissions import BEARER_REQUIRED, NOT_YOURS, Refused, access_to_member_id


async def visible_member(info: Info[Any, Any], member_id: str | None) -> DomainMember:
    """The member behind a local id, if the viewer may read it; else a GraphQL error:
    `UNAUTHENTICATED`, `NOT_ALLOWED` (also for an unknown id, to a viewer who may not read
    any member), or `NOT_FOUND` (to one who may)."""
    answer = await access_to_member_id(info, member_id)
    if answer is Access.UNAUTHENTICATED:
        raise Refused(answer, BEARER_REQUIRED)
    if answer is not Access.ALLOWED:
        raise Refused(answer, NOT_YOURS)
    loaders: Loaders = info.context.loaders
    member = await loaders.member_by_id.load(member_id) if member_id else None
    if member is None:
        raise not_found("member")
    return member
