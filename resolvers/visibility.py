"""The access check of a single member, for the resolvers that find members themselves
rather than behind a root field's permission: the `pointsChanged` subscription at every
event (its `FollowsMember` permission checks it when it starts) and federation's
`_entities`, which answers each representation on its own. The same rules
(`resolvers/permissions.py`) and the same answers as `member(id:)`: every way to reach a
member says no alike, and a member who does not exist is NOT_FOUND for a role that reads
any member and, to anyone else, the same NOT_ALLOWED as another member's."""

from __future__ import annotations

from typing import Any

from strawberry.types import Info

from loyalty import access
from loyalty.access import Access
from loyalty.models import Member as DomainMember
from resolvers.errors import not_found
from resolvers.loaders import Loaders
from resolvers.members import Member
from resolvers.permissions import (
    BEARER_REQUIRED,
    NOT_YOURS,
    Refused,
    access_to_member,
    access_to_member_id,
)


async def visible_member(info: Info[Any, Any], member_id: str | None) -> Member:
    """The member behind a local id, if the viewer may read it; else a GraphQL error:
    `UNAUTHENTICATED`, `NOT_ALLOWED` or `NOT_FOUND`."""
    _unless_allowed(await access_to_member_id(info, member_id))
    loaders: Loaders = info.context.loaders
    return _found(await loaders.member_by_id.load(member_id) if member_id else None)


async def visible_member_by_commerce_id(info: Info[Any, Any], commerce_id: str | None) -> Member:
    """The member behind a commerce customer id, under the same rules as `visible_member`."""
    viewer = info.context.viewer
    if not viewer.is_authenticated:
        _unless_allowed(Access.UNAUTHENTICATED)
    loaders: Loaders = info.context.loaders
    member = await loaders.member_by_commerce_id.load(commerce_id) if commerce_id else None
    if member is None:
        _unless_allowed(access.unknown_target_access(viewer))
    else:
        _unless_allowed(await access_to_member(info, member))
    return _found(member)


def _unless_allowed(answer: Access) -> None:
    if answer is Access.UNAUTHENTICATED:
        raise Refused(answer, BEARER_REQUIRED)
    if answer is not Access.ALLOWED:
        raise Refused(answer, NOT_YOURS)


def _found(member: DomainMember | None) -> Member:
    if member is None:
        raise not_found("member")
    return Member.of(member)
