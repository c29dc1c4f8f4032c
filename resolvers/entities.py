"""Federation's `_entities`: the references a router sends to Patron's entities, resolved
under exactly the access rules of `member(id)`.

A router (Apollo Router, Hive Gateway) sends one call per subgraph fetch with a list of
representations, `{"__typename": "Member", "id": "<global id>"}` or
`{"__typename": "Member", "externalIds": {"commerceCustomerId": "<id>"}}`, and forwards the
client's `Authorization`. Each one answers like `member(id)` would: the member if the
caller may read it, else null with the same error (`UNAUTHENTICATED`, `NOT_ALLOWED`,
`NOT_FOUND`) at `_entities.<index>`. So `_entities` is never a way around authorization,
whether a router or a client calls it.

All representations of a call are resolved concurrently through the request's loaders
(`MemberByIdLoader`, `MemberByCommerceIdLoader`): N references cost one query per key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from graphql import GraphQLError
from strawberry.types import Info

from resolvers.errors import refusal
from resolvers.members import Member
from resolvers.node import local_id
from resolvers.visibility import visible_member, visible_member_by_commerce_id

# A router sends one representation per distinct entity of a fetch; more than this in one
# call is refused whole (a list of members costs at most 100 per page elsewhere).
MAX_REPRESENTATIONS = 500

ENTITY_TYPES = ("Member",)


async def resolve_entities(
    info: Info[Any, Any], representations: Sequence[object]
) -> list[Member | GraphQLError]:
    """One result per representation, in order: the entity, or the error that makes its
    place null."""
    if len(representations) > MAX_REPRESENTATIONS:
        raise refusal(
            "INVALID_INPUT", f"at most {MAX_REPRESENTATIONS} representations in one _entities call"
        )
    return list(await asyncio.gather(*(_resolve_one(info, r) for r in representations)))


async def _resolve_one(info: Info[Any, Any], representation: object) -> Member | GraphQLError:
    try:
        return await resolve_member_reference(info, representation)
    except GraphQLError as error:  # this place only: the others still answer
        return error


async def resolve_member_reference(info: Info[Any, Any], representation: object) -> Member:
    """The member a representation names, if the caller may read it (`member(id)`'s rules).
    With both keys present, `id` decides: the access check is made on the member found."""
    if not isinstance(representation, Mapping) or not isinstance(
        representation.get("__typename"), str
    ):
        raise refusal("INVALID_INPUT", "a representation is an object with a __typename")
    if representation["__typename"] not in ENTITY_TYPES:
        raise refusal("INVALID_INPUT", "Member is the only entity of this subgraph")
    member_id = representation.get("id")
    if isinstance(member_id, str):
        return await visible_member(info, local_id(member_id, "Member"))
    external_ids = representation.get("externalIds")
    commerce_id = (
        external_ids.get("commerceCustomerId") if isinstance(external_ids, Mapping) else None
    )
    if isinstance(commerce_id, str):
        return await visible_member_by_commerce_id(info, commerce_id)
    raise refusal(
        "INVALID_INPUT",
        "a Member representation needs id or externalIds { commerceCustomerId }",
    )
