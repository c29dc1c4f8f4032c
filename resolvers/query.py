"""The Query root: thin resolvers, arguments in, a loader or service call, a type out."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from loyalty.card import member_id_from_card
from loyalty.money import Money as DomainMoney
from loyalty.segments import Segment
from loyalty.store import MemberSearch
from resolvers.errors import not_found, refusal
from resolvers.households import Household
from resolvers.members import Member, RfmSegment
from resolvers.money import Money
from resolvers.node import Node, from_global_id, local_id, serial_number
from resolvers.permissions import (
    Authenticated,
    ExportsMembers,
    ReadsMemberByCard,
    ReadsMemberById,
    ReadsNode,
    ReadsTopCustomers,
    SearchesMembers,
)
from resolvers.points import PageInfo, PointsTransaction
from resolvers.privacy import member_export
from resolvers.selections import selects
from resolvers.staff import (
    CustomerSpend,
    MemberConnection,
    MemberEdge,
    offset_cursor,
    parse_offset_cursor,
)
from resolvers.tiers import Program, program_for_viewer

MAX_MEMBERS_PAGE = 100
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


@strawberry.type
class Query:
    @strawberry.field(permission_classes=[ReadsNode])
    async def node(self, info: Info[Any, Any], id: strawberry.ID) -> Node | None:
        loaders = info.context.loaders
        type_name, local = from_global_id(id) or ("", "")
        if type_name == "Member":
            member = await loaders.member_by_id.load(local)
            if member is not None:
                return Member.of(member)
        if type_name == "Household":
            household = await loaders.household_by_id.load(local)
            if household is not None:
                return Household.of(household)
        serial = serial_number(local) if type_name == "PointsTransaction" else None
        if serial is not None:
            txn = await loaders.transaction_by_id.load(serial)
            if txn is not None and txn.member_id is not None:
                return PointsTransaction.of(txn, info.context.services.clock())
        raise not_found("node")

    @strawberry.field(
        permission_classes=[Authenticated],
        description="The member behind the bearer token (role member).",
    )
    async def me(self, info: Info[Any, Any]) -> Member | None:
        viewer = info.context.viewer
        if not viewer.is_member:
            return None
        loaders = info.context.loaders
        if selects(info, "cart"):
            # The cart is keyed by the token's subject (the member's commerce id): ask
            # commerce now, while the database finds the member, not after it.
            loaders.cart_by_customer_id.prefetch(viewer.sub)
        member = await loaders.member_by_commerce_id.load(viewer.sub)
        return Member.of(member) if member else None

    @strawberry.field(
        permission_classes=[ReadsMemberById],
        description="Staff (associate, marketer, admin) and service callers; a member may read "
        "only itself and its household.",
    )
    async def member(self, info: Info[Any, Any], id: strawberry.ID) -> Member | None:
        return await _existing_member(info, local_id(id, "Member"), "member")

    @strawberry.field(
        permission_classes=[ReadsMemberByCard],
        description="POS and associate app: resolve the code read from a member's QR card.",
    )
    async def member_by_card(self, info: Info[Any, Any], code: str) -> Member | None:
        member_id = member_id_from_card(code, info.context.services.card_secret)
        return await _existing_member(info, member_id, "card")

    @strawberry.field(
        permission_classes=[SearchesMembers],
        description="Staff search: by name, email or external id; filter by tier or RFM segment.",
    )
    async def members(
        self,
        info: Info[Any, Any],
        search: str | None = None,
        tier_key: str | None = None,
        segment: RfmSegment | None = None,
        first: int = 20,
        after: str | None = None,
    ) -> MemberConnection:
        if first < 0 or first > MAX_MEMBERS_PAGE:
            raise refusal("INVALID_INPUT", f"first must be between 0 and {MAX_MEMBERS_PAGE}")
        offset = parse_offset_cursor(after) if after else -1
        if offset is None:
            raise refusal("INVALID_INPUT", "after is not a cursor of this connection")
        services = info.context.services
        member_ids: list[str] | None = None
        if tier_key is not None:
            if services.program.tier(tier_key) is None:
                raise refusal("INVALID_INPUT", f"no tier {tier_key!r} in this program")
            member_ids = await _members_in_tier(info, search, tier_key)
        page = await services.store.reader.search_members(
            MemberSearch(
                search=search,
                member_ids=member_ids,
                limit=first,
                after=str(offset) if offset >= 0 else None,
                segment=Segment(segment.value) if segment is not None else None,
            )
        )
        loader = info.context.loaders.member_by_id
        start = offset + 1
        edges = []
        for i, member in enumerate(page.members):
            loader.prime(member.id, member)
            edges.append(MemberEdge(node=Member.of(member), cursor=offset_cursor(start + i)))
        return MemberConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=page.has_next, end_cursor=edges[-1].cursor if edges else None
            ),
            total_count=page.total,
        )

    @strawberry.field(
        description="The running loyalty program: public tiers for everyone, hidden tiers for "
        "staff and for the members who hold one."
    )
    async def program(self, info: Info[Any, Any]) -> Program:
        return await program_for_viewer(info)

    @strawberry.field(
        permission_classes=[ReadsTopCustomers],
        description="Marketers: the members with the highest purchase amount in a calendar month "
        "(YYYY-MM), in the program currency.",
    )
    async def top_customers(
        self, info: Info[Any, Any], month: str, first: int = 10
    ) -> list[CustomerSpend]:
        match = _MONTH.match(month)
        if match is None:
            raise refusal("INVALID_INPUT", "month must be YYYY-MM")
        if first < 1 or first > MAX_MEMBERS_PAGE:
            raise refusal("INVALID_INPUT", f"first must be between 1 and {MAX_MEMBERS_PAGE}")
        services = info.context.services
        zone = services.program.zone
        year, mon = int(match[1]), int(match[2])
        since = datetime(year, mon, 1, tzinfo=zone)
        until = datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=zone)
        rows = await services.store.reader.top_spenders(since, until, first)
        members = await info.context.loaders.member_by_id.load_many([r.member_id for r in rows])
        currency = services.program.currency
        return [
            CustomerSpend(
                member=Member.of(m),
                spend=Money.of(DomainMoney.from_minor(r.spend_minor, currency)),
                orders=r.orders,
            )
            for r, m in zip(rows, members, strict=True)
            if m is not None
        ]

    member_export: JSON | None = strawberry.field(
        resolver=member_export,
        permission_classes=[ExportsMembers],
        description="Admins: everything held about a member (GDPR access request), as JSON.",
    )


async def _existing_member(info: Info[Any, Any], member_id: str | None, what: str) -> Member:
    """The member behind a local id (its permission has allowed it): NOT_FOUND when there
    is none, which only a role that reads any member gets this far to be told."""
    member = await info.context.loaders.member_by_id.load(member_id) if member_id else None
    if member is None:
        raise not_found(what)
    return Member.of(member)


async def _members_in_tier(info: Info[Any, Any], search: str | None, tier_key: str) -> list[str]:
    services = info.context.services
    everyone = await services.store.reader.search_members(
        MemberSearch(search=search, limit=100_000)
    )
    ids = [m.id for m in everyone.members]
    statuses = await info.context.loaders.tier_status_by_member_id.load_many(ids)
    return [i for i, s in zip(ids, statuses, strict=True) if s.current.key == tier_key]
