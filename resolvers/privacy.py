"""memberExport: everything held about a member, as JSON (admins only: `ExportsMembers`,
declared on the field in `resolvers/query.py`)."""

from __future__ import annotations

from typing import Any, cast

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from resolvers.errors import not_found
from resolvers.node import local_id


async def member_export(info: Info[Any, Any], id: strawberry.ID) -> JSON | None:
    """The member record, household, tiers, purchases, transactions with their postings,
    offers, queued CDP events and the CDP profile (an `error` entry when the CDP fails)."""
    member_id = local_id(id, "Member")
    export = await info.context.services.privacy.export(member_id) if member_id else None
    if export is None:
        raise not_found("member")
    return cast(JSON, export)
