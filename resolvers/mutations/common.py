"""What every mutation resolver shares: resolving ids and building a `PointsPayload` from a
ledger result. Who may call a mutation is its permission's business
(`resolvers/permissions.py`), declared on the `Mutation` root."""

from __future__ import annotations

from typing import Any

from strawberry.types import Info

from loyalty.errors import DomainError, UserErrorCode
from loyalty.ledger import PointsResult
from resolvers.members import Member
from resolvers.mutations.payloads import PointsPayload
from resolvers.node import local_id
from resolvers.points import PointsTransaction


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
