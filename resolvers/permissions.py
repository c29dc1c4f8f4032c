"""The strawberry permissions of the schema: one small class per rule of `loyalty.access`.

Every field that reads personal data or changes anything declares one (README, Security:
authorization; `tests/graphql/test_authorization.py` fails on a field without a rule):

- query fields: `permission_classes=[ReadsMember]`. A refusal is a GraphQL error at the
  field's path, the field null, with `extensions.code` `UNAUTHENTICATED` (no token) or
  `NOT_ALLOWED` (a token without the right);
- mutations: `extensions=[refusals_as_user_errors(RecordsPurchases())]`: the same
  permissions, but a refusal is the payload's `userErrors` (`NOT_ALLOWED`), as the API
  promises for mutations.

A permission's `has_permission` returns True or raises `Refused` (which says why). Those
that need data (ownership) read it through the request's DataLoaders, so a list of members
costs no query per member: staff and services are decided by their roles alone, a member
reading itself by its token, and a member reading its household by one load of its own
household per request.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from graphql import GraphQLError
from strawberry.extensions.field_extension import AsyncExtensionResolver
from strawberry.permission import BasePermission, PermissionExtension
from strawberry.types import Info
from strawberry.types.field import StrawberryField

from loyalty import access
from loyalty.access import Access, Capability, Circle, Viewer
from loyalty.card import member_id_from_card
from loyalty.errors import UserErrorCode
from loyalty.models import Household as DomainHousehold
from loyalty.models import Member as DomainMember
from resolvers.errors import UserError
from resolvers.loaders import Loaders
from resolvers.node import from_global_id, local_id, serial_number

BEARER_REQUIRED = "a bearer token is required"
NOT_YOURS = "a member may read only itself and its household"
ACTS_FOR_ITSELF = "a member may act only for itself"


class Refused(GraphQLError):
    """A permission said no: `extensions.code` is `UNAUTHENTICATED` or `NOT_ALLOWED`;
    `field` names the input field a mutation's user error is about."""

    def __init__(self, answer: Access, message: str, field: str | None = None) -> None:
        super().__init__(message, extensions={"code": answer.value})
        self.answer = answer
        self.field = field


class Rule(BasePermission):
    """A permission that says why it refuses: `access` answers with a rule of
    `loyalty.access`; a refusal raises `Refused` with `refusal` as its message."""

    refusal: ClassVar[str] = "not allowed"
    refusal_field: ClassVar[str | None] = None

    async def has_permission(self, source: Any, info: Info[Any, Any], **kwargs: Any) -> bool:
        answer = await self.access(source, info, **kwargs)
        if answer is Access.ALLOWED:
            return True
        if answer is Access.UNAUTHENTICATED:
            raise Refused(answer, BEARER_REQUIRED)
        raise Refused(answer, self.refusal, self.refusal_field)

    @abc.abstractmethod
    async def access(self, source: Any, info: Info[Any, Any], **kwargs: Any) -> Access:
        """The rule's answer for this field, its parent object (`source`) and arguments."""


class CapabilityRule(Rule):
    """Allowed to the roles that hold `capability` (`loyalty.access.GRANTS`)."""

    capability: ClassVar[Capability]

    async def access(self, source: Any, info: Info[Any, Any], **kwargs: Any) -> Access:
        return access.capability(info.context.viewer, self.capability)


# --- ownership, through the request's loaders --------------------------------------------
async def viewer_circle(info: Info[Any, Any]) -> Circle:
    """The viewer's own member and household (`loyalty.access.Circle`): two loads, cached
    for the whole request (the ones `me { household }` makes anyway). The household is
    primed as every one of its members' household, which the balance and tier loaders ask
    for: reading the household's members then costs no query of its own."""
    viewer = info.context.viewer
    if not viewer.is_member:
        return Circle()
    loaders: Loaders = info.context.loaders
    own = await loaders.member_by_commerce_id.load(viewer.sub)
    if own is None:
        return Circle()
    household = await loaders.household_by_member_id.load(own.id)
    if household is None:
        return Circle.of(own.id, None, ())
    for member_id in household.member_ids:
        loaders.household_by_member_id.prime(member_id, household)
    return Circle.of(own.id, household.id, household.member_ids)


async def access_to_member(info: Info[Any, Any], member: DomainMember) -> Access:
    viewer = info.context.viewer
    needs_circle = access.member_needs_circle(viewer, member.commerce_customer_id)
    circle = await viewer_circle(info) if needs_circle else Circle()
    return access.member_access(viewer, member.id, member.commerce_customer_id, circle)


async def access_to_member_id(info: Info[Any, Any], member_id: str | None) -> Access:
    """`access_to_member` of the member with this local id; one that does not exist is
    refused like a member that is not the viewer's (`access.unknown_target_access`)."""
    viewer = info.context.viewer
    if not viewer.is_authenticated:
        return Access.UNAUTHENTICATED
    member = await info.context.loaders.member_by_id.load(member_id) if member_id else None
    if member is None:
        return access.unknown_target_access(viewer)
    return await access_to_member(info, member)


async def access_to_household(info: Info[Any, Any], household: DomainHousehold) -> Access:
    viewer = info.context.viewer
    needs_circle = viewer.is_member and not viewer.reads_any_member
    circle = await viewer_circle(info) if needs_circle else Circle()
    return access.household_access(viewer, household.id, circle)


def _member_of(source: Any) -> DomainMember:
    """The domain member behind a `Member` object (fails closed on anything else)."""
    member = getattr(source, "_member", None)
    if not isinstance(member, DomainMember):
        raise TypeError(f"{type(source).__name__} is not a Member")
    return member


def _household_of(source: Any) -> DomainHousehold:
    household = getattr(source, "_household", None)
    if not isinstance(household, DomainHousehold):
        raise TypeError(f"{type(source).__name__} is not a Household")
    return household


# --- query fields --------------------------------------------------------------------------
class Authenticated(Rule):
    """Any bearer token (`me`: null for a token that is no member's)."""

    async def access(self, source: Any, info: Info[Any, Any], **kwargs: Any) -> Access:
        return access.decide(info.context.viewer, True)


class ReadsMember(Rule):
    """Every field of `Member`: the member itself, a member of its household, or a role
    that reads any member (associate, marketer, service, admin)."""

    refusal = NOT_YOURS

    async def access(self, source: Any, info: Info[Any, Any], **kwargs: Any) -> Access:
        return await access_to_member(info, _member_of(source))


class ReadsHousehold(Rule):
    """Every field of `Household`: its members, or a role that reads any member."""

    refusal = "a member may read only its own household"

    async def access(self, source: Any, info: Info[Any, Any], **kwargs: Any) -> Access:
        return await access_to_household(info, _household_of(source))


class ReadsHouseholdInvitations(Rule):
    """`Member.householdInvitations` and `Member.sentHouseholdInvitations`: the member itself
    (not its household's other members: whether to join another household, and whom to
    invite, is its own business), and admins."""

    refusal = "a member's household invitations are for itself only"

    async def access(self, source: Any, info: Info[Any, Any], **kwargs: Any) -> Access:
        member = _member_of(source)
        return access.invitations_access(info.context.viewer, member.commerce_customer_id)


class ReadsInsights(CapabilityRule):
    """`Member.insights`: associates, marketers, admins (not the member, not services)."""

    capability = Capability.READ_INSIGHTS
    refusal = "insights are for staff only"


class ReadsMemberById(Rule):
    """`member(id:)`: `ReadsMember` of the member the id names; an unknown id is refused
    alike to those who may not read any member."""

    refusal = NOT_YOURS

    async def access(self, source: Any, info: Info[Any, Any], **kwargs: Any) -> Access:
        return await access_to_member_id(info, local_id(kwargs["id"], "Member"))


class ReadsMemberByCard(Rule):
    """`memberByCard(code:)`: `ReadsMember` of the card's member; a forged or unknown card
    is refused alike to those who may not read any member."""

    refusal = NOT_YOURS

    async def access(self, source: Any, info: Info[Any, Any], **kwargs: Any) -> Access:
        member_id = member_id_from_card(kwargs["code"], info.context.services.card_secret)
        return await access_to_member_id(info, member_id)


class ReadsNode(Rule):
    """`node(id:)`: the rule of the object the id names (a member, its household, a
    transaction of its ledger); any other or unknown id is refused alike to those who may
    not read any member."""

    refusal = NOT_YOURS

    async def access(self, source: Any, info: Info[Any, Any], **kwargs: Any) -> Access:
        viewer = info.context.viewer
        if not viewer.is_authenticated:
            return Access.UNAUTHENTICATED
        loaders: Loaders = info.context.loaders
        decoded = from_global_id(kwargs["id"])
        type_name, local = decoded if decoded else ("", "")
        if type_name == "Member":
            return await access_to_member_id(info, local)
        if type_name == "Household":
            household = await loaders.household_by_id.load(local)
            if household is not None:
                return await access_to_household(info, household)
        serial = serial_number(local) if type_name == "PointsTransaction" else None
        if serial is not None:
            txn = await loaders.transaction_by_id.load(serial)
            if txn is not None and txn.member_id is not None:
                return await access_to_member_id(info, txn.member_id)
        return access.unknown_target_access(viewer)


class FollowsMember(Rule):
    """`pointsChanged(memberId:)`: `ReadsMember` of that member, checked with fresh loaders
    (a WebSocket connection keeps one context for its whole life). The subscription checks
    again at every event."""

    refusal = NOT_YOURS

    async def access(self, source: Any, info: Info[Any, Any], **kwargs: Any) -> Access:
        info.context.loaders = Loaders.build(info.context.services)
        return await access_to_member_id(info, local_id(kwargs["member_id"], "Member"))


class SearchesMembers(CapabilityRule):
    """`members(search:, tierKey:, segment:)`: associates, marketers, admins."""

    capability = Capability.SEARCH_MEMBERS
    refusal = "member search is for staff"


class ReadsTopCustomers(CapabilityRule):
    """`topCustomers`: marketers and admins."""

    capability = Capability.READ_TOP_CUSTOMERS
    refusal = "top customers are for marketers"


class ExportsMembers(CapabilityRule):
    """`memberExport`: admins."""

    capability = Capability.EXPORT_MEMBERS
    refusal = "the member export is for admins"


# --- mutations -----------------------------------------------------------------------------
def _roles_message(capability: Capability) -> str:
    roles = [r.value for r, granted in access.GRANTS.items() if capability in granted]
    return "this needs one of the roles: " + ", ".join(r for r in roles if r != "admin")


def _decided_by_role(viewer: Viewer, wanted: Capability) -> bool:
    """Whether acting for a member is decided without loading it: no token, or a role that
    does it for anyone (the resolver then says NOT_FOUND if it does not exist)."""
    return not viewer.is_authenticated or viewer.can(wanted)


async def _commerce_id_of(info: Info[Any, Any], global_id: str) -> str | None:
    """The commerce customer id of the member a global id names, if it exists."""
    member_id = local_id(global_id, "Member")
    member = await info.context.loaders.member_by_id.load(member_id) if member_id else None
    return member.commerce_customer_id if member is not None else None


class ActsForMember(Rule):
    """A mutation for the member named by the input's `member_field`: the member itself,
    or a role holding `capability` for anyone."""

    capability: ClassVar[Capability]
    member_field: ClassVar[str] = "member_id"
    refusal = ACTS_FOR_ITSELF

    async def access(self, source: Any, info: Info[Any, Any], **kwargs: Any) -> Access:
        viewer = info.context.viewer
        if _decided_by_role(viewer, self.capability):
            return access.acts_for_member(viewer, self.capability, None)
        target = getattr(kwargs["input"], self.member_field)
        commerce_id = await _commerce_id_of(info, target)
        return access.acts_for_member(viewer, self.capability, commerce_id)


class EnrollsMember(Rule):
    """`enrollMember`: associates, services (and admins) enrol anyone; a member enrols
    itself (its token's subject), with no other customer's CDP user."""

    refusal = "a member may enrol only itself"
    refusal_field = "commerceCustomerId"

    async def access(self, source: Any, info: Info[Any, Any], **kwargs: Any) -> Access:
        viewer = info.context.viewer
        enrolment = kwargs["input"]
        answer = access.enrolment_access(viewer, enrolment.commerce_customer_id)
        if answer is Access.ALLOWED and not access.may_link_cdp_user(
            viewer, enrolment.commerce_customer_id, enrolment.cdp_user_id
        ):
            raise Refused(
                Access.NOT_ALLOWED,
                "only staff or a service may link a different CDP user",
                "cdpUserId",
            )
        return answer


class StoreScoped(CapabilityRule):
    """A capability that associates hold for their own store only (`access.store_scope`):
    the input's `store_id` (when the input has one) must be the token's `store`."""

    async def access(self, source: Any, info: Info[Any, Any], **kwargs: Any) -> Access:
        answer = await super().access(source, info, **kwargs)
        if answer is not Access.ALLOWED:
            return answer
        viewer = info.context.viewer
        scope = access.store_scope(viewer, self.capability, kwargs["input"].store_id)
        if scope.refusal is not None:
            raise Refused(Access.NOT_ALLOWED, scope.refusal, scope.field)
        return answer


class RecordsPurchases(StoreScoped):
    """`recordPurchase`: services, admins, and associates for their own store."""

    capability = Capability.RECORD_PURCHASES
    refusal = _roles_message(Capability.RECORD_PURCHASES)


class AwardsPoints(StoreScoped):
    """`awardPoints`: admins, and associates for their own store."""

    capability = Capability.AWARD_POINTS
    refusal = _roles_message(Capability.AWARD_POINTS)


class ReturnsPurchases(CapabilityRule):
    """`returnPurchase`: services, associates (any store: returns are taken anywhere),
    admins."""

    capability = Capability.RETURN_PURCHASES
    refusal = _roles_message(Capability.RETURN_PURCHASES)


class AssignsTiers(CapabilityRule):
    """`assignTier`: associates and admins (a tier changes what a member earns and pays)."""

    capability = Capability.ASSIGN_TIERS
    refusal = _roles_message(Capability.ASSIGN_TIERS)


class RedeemsPoints(ActsForMember):
    """`redeemPoints`: the member itself; services, associates, admins for anyone."""

    capability = Capability.REDEEM_FOR_ANY


class GiftsPoints(ActsForMember):
    """`giftPoints`: the sender itself; services and admins for anyone."""

    capability = Capability.GIFT_FOR_ANY
    member_field = "from_member_id"


class DonatesPoints(ActsForMember):
    """`donatePoints`: the member itself; services and admins for anyone."""

    capability = Capability.DONATE_FOR_ANY


class CreatesHousehold(ActsForMember):
    """`createHousehold`: the owner-to-be itself; services, associates, admins for anyone."""

    capability = Capability.MANAGE_ANY_HOUSEHOLD
    member_field = "owner_id"


class ForgetsMember(ActsForMember):
    """`forgetMember`: the member itself (GDPR self-service); services and admins."""

    capability = Capability.FORGET_ANY
    refusal = "only the member itself, an admin or a back-office service may forget a member"
    refusal_field = "memberId"


async def _household_owner_commerce_id(info: Info[Any, Any], global_id: str) -> str | None:
    household_id = local_id(global_id, "Household")
    loaders: Loaders = info.context.loaders
    household = await loaders.household_by_id.load(household_id) if household_id else None
    if household is None:
        return None
    owner = await loaders.member_by_id.load(household.owner_id)
    return owner.commerce_customer_id if owner is not None else None


async def household_join(info: Info[Any, Any], input: Any) -> access.HouseholdJoin | None:
    """What `addHouseholdMember` does for the viewer (`access.household_join`): services,
    associates and admins add, the household's owner invites, the member itself accepts.
    Staff and anonymous callers are decided without a query; the loads are the request's,
    so the resolver asking again costs nothing."""
    viewer = info.context.viewer
    if _decided_by_role(viewer, Capability.MANAGE_ANY_HOUSEHOLD):
        return access.household_join(viewer, None, None)
    owner = await _household_owner_commerce_id(info, input.household_id)
    member = await _commerce_id_of(info, input.member_id)
    return access.household_join(viewer, owner, member)


class AddsHouseholdMember(Rule):
    """`addHouseholdMember`: services, associates, admins (they add); the household's owner
    (it invites); the member named (it accepts an invitation)."""

    refusal = ACTS_FOR_ITSELF

    async def access(self, source: Any, info: Info[Any, Any], **kwargs: Any) -> Access:
        join = await household_join(info, kwargs["input"])
        return access.decide(info.context.viewer, join is not None)


class RemovesHouseholdMember(Rule):
    """`removeHouseholdMember`: the member itself (it leaves, or declines an invitation),
    the household's owner (it removes, or withdraws an invitation); services, associates,
    admins."""

    refusal = ACTS_FOR_ITSELF

    async def access(self, source: Any, info: Info[Any, Any], **kwargs: Any) -> Access:
        viewer = info.context.viewer
        wanted = Capability.MANAGE_ANY_HOUSEHOLD
        if _decided_by_role(viewer, wanted):
            return access.acts_for_member(viewer, wanted, None)
        leaving = await _commerce_id_of(info, kwargs["input"].member_id)
        if access.acts_for_member(viewer, wanted, leaving) is Access.ALLOWED:
            return Access.ALLOWED
        owner = await _household_owner_commerce_id(info, kwargs["input"].household_id)
        return access.acts_for_member(viewer, wanted, owner)


class RefusalsAsUserErrors(PermissionExtension):
    """The permissions of a mutation whose refusal is data: the payload (the field's type)
    with one `NOT_ALLOWED` user error saying why, and nothing done."""

    def __init__(self, permissions: list[BasePermission]) -> None:
        super().__init__(permissions, use_directives=False)
        self._field: StrawberryField | None = None

    def apply(self, field: StrawberryField) -> None:
        super().apply(field)
        self._field = field

    async def resolve_async(
        self, next_: AsyncExtensionResolver, source: Any, info: Info[Any, Any], **kwargs: Any
    ) -> Any:
        try:
            return await super().resolve_async(next_, source, info, **kwargs)
        except Refused as refused:
            assert self._field is not None
            payload: Any = self._field.type
            error = UserError(
                code=UserErrorCode.NOT_ALLOWED,
                field=[refused.field] if refused.field else None,
                message=refused.message,
            )
            return payload(user_errors=[error])


def refusals_as_user_errors(*permissions: BasePermission) -> RefusalsAsUserErrors:
    return RefusalsAsUserErrors(list(permissions))


class RefusalsInStream(PermissionExtension):
    """The permissions of a subscription: a refusal is the stream's first and only event
    (`next` with the error and null data, then `complete`), as for any error of the
    subscription's resolver and as the reference `graphql-ws` server answers, rather than
    strawberry's protocol-level `error` message (meant for invalid documents)."""

    def __init__(self, permissions: list[BasePermission]) -> None:
        super().__init__(permissions, use_directives=False)

    async def resolve_async(
        self, next_: AsyncExtensionResolver, source: Any, info: Info[Any, Any], **kwargs: Any
    ) -> Any:
        try:
            return await super().resolve_async(next_, source, info, **kwargs)
        except Refused as refused:
            return _refused_stream(refused)


async def _refused_stream(refused: Refused) -> AsyncIterator[Any]:
    raise refused
    yield  # an async generator that fails at its first event


def refusals_in_stream(*permissions: BasePermission) -> RefusalsInStream:
    return RefusalsInStream(list(permissions))
