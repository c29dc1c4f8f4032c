"""What every mutation resolver shares: refusing callers without the role, resolving ids,
and building a `PointsPayload` from a ledger result."""

from __future__ import annotations

from typing import Any

from strawberry.types import Info

from loyalty.access import Role
from loyalty.errors import DomainError, UserErrorCode
from loyalty.ledger import PointsResult
from resolvers.members import Member
from resolvers.mutations.payloads import PointsPayload
from resolvers.node import local_id
from resolvers.points import PointsTransaction


def require_role(info: Info[Any, Any], *roles: Role) -> None:
    """Refuse (as a NOT_ALLOWED user error) a caller that has none of `roles` (or admin)."""
    viewer = info.context.viewer
    if not viewer.is_authenticated:
        raise DomainError(UserErrorCode.NOT_ALLOWED, "a bearer token is required")
    if not viewer.has(*roles):
        names = ", ".join(r.value for r in roles)
        raise DomainError(UserErrorCode.NOT_ALLOWED, f"this needs one of the roles: {names}")


async def require_self_or(info: Info[Any, Any], member_id: str, *roles: Role) -> None:
    """A member acts only for itself; callers with one of `roles` (or admin) for anyone."""
    viewer = info.context.viewer
    if not viewer.is_authenticated:
        raise DomainError(UserErrorCode.NOT_ALLOWED, "a bearer token is required")
    if viewer.has(*roles):
        return
    if Role.MEMBER in viewer.roles:
        member = await info.context.loaders.member_by_id.load(member_id)
        if member is not None and member.commerce_customer_id == viewer.sub:
            return
    raise DomainError(UserErrorCode.NOT_ALLOWED, "a member may act only for itself")


def member_local_id(global_id: str, field: str) -> str:
    member_id = local_id(global_id, "Member")
    if member_id is None:
        raise DomainError(UserErrorCode.NOT_FOUND, "no such member", (field,))
    return member_id


async def points_payload(info: Info[Any, Any], result: PointsResult) -> PointsPayload:
    loaders = info.context.loaders
    member = await loaders.member_by_id.load(result.member_id)
    txn = (
        await loaders.transaction_by_id.load(result.transaction_id)
        if result.transaction_id is not None
        else None
    )
    now = info.context.services.clock()
    return PointsPayload(
        transaction=PointsTransaction.of(txn, now) if txn else None,
        member=Member.of(member) if member else None,
    )
