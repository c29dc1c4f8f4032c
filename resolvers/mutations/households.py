"""createHousehold, addHouseholdMember, removeHouseholdMember."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from loyalty.access import Access, HouseholdJoin
from loyalty.errors import DomainError, UserErrorCode
from loyalty.households import no_invitation
from resolvers.errors import UserError
from resolvers.households import Household, HouseholdInvitation
from resolvers.mutations.common import member_local_id
from resolvers.mutations.payloads import HouseholdPayload
from resolvers.node import local_id
from resolvers.permissions import access_to_household, household_join


@strawberry.input
class CreateHouseholdInput:
    owner_id: strawberry.ID


@strawberry.input
class AddHouseholdMemberInput:
    household_id: strawberry.ID
    member_id: strawberry.ID


@strawberry.input
class RemoveHouseholdMemberInput:
    household_id: strawberry.ID
    member_id: strawberry.ID


async def create_household(info: Info[Any, Any], input: CreateHouseholdInput) -> HouseholdPayload:
    """A member creates its own household; staff and services for anyone
    (`CreatesHousehold`)."""
    try:
        owner = member_local_id(input.owner_id, "ownerId")
        household_id = await info.context.services.households.create(owner)
    except DomainError as error:
        return HouseholdPayload(user_errors=[UserError.of(error)])
    return await _payload(info, household_id)


async def add_household_member(
    info: Info[Any, Any], input: AddHouseholdMemberInput
) -> HouseholdPayload:
    """Both members consent (`AddsHouseholdMember` decides who may call it at all):
    staff and services add the member at once; the household's owner invites it (the
    payload's `invitation`; nothing moves); the member itself accepts its invitation and
    joins, bringing its available points into the shared wallet."""
    join = await household_join(info, input)
    try:
        if join is HouseholdJoin.ADD:
            household_id = _household_local_id(input.household_id)
            member = member_local_id(input.member_id, "memberId")
            await info.context.services.households.add(household_id, member)
            return await _payload(info, household_id)
        if join is HouseholdJoin.INVITE:
            return await _invite(info, input)
        if join is HouseholdJoin.ACCEPT:
            return await _accept(info, input)
    except DomainError as error:
        return HouseholdPayload(user_errors=[UserError.of(error)])
    # Unreachable past the permission; refused rather than added if it ever is.
    refusal = DomainError(UserErrorCode.NOT_ALLOWED, "a member may act only for itself")
    return HouseholdPayload(user_errors=[UserError.of(refusal)])


async def _invite(info: Info[Any, Any], input: AddHouseholdMemberInput) -> HouseholdPayload:
    household_id = _household_local_id(input.household_id)
    member = member_local_id(input.member_id, "memberId")
    owner = await info.context.loaders.member_by_commerce_id.load(info.context.viewer.sub)
    if owner is None:
        raise DomainError(UserErrorCode.NOT_ALLOWED, "only the household's owner invites members")
    invitation = await info.context.services.households.invite(household_id, member, owner.id)
    payload = await _payload(info, household_id)
    payload.invitation = HouseholdInvitation.of(invitation)
    return payload


async def _accept(info: Info[Any, Any], input: AddHouseholdMemberInput) -> HouseholdPayload:
    # An id that names no household is answered like a household that did not invite this
    # member: a member cannot tell the two apart.
    household_id = local_id(input.household_id, "Household")
    if household_id is None:
        raise no_invitation()
    member = member_local_id(input.member_id, "memberId")
    await info.context.services.households.accept(household_id, member)
    return await _payload(info, household_id)


async def remove_household_member(
    info: Info[Any, Any], input: RemoveHouseholdMemberInput
) -> HouseholdPayload:
    """The owner (or staff) removes a member, or a member leaves; it takes nothing with it
    (`RemovesHouseholdMember`). A member who left gets `household: null`: it no longer
    reads that household. Naming a member who is only invited drops its invitation: the
    owner withdraws it, the member declines it."""
    try:
        member = member_local_id(input.member_id, "memberId")
        household_id = _household_local_id(input.household_id)
        await info.context.services.households.remove(household_id, member)
    except DomainError as error:
        return HouseholdPayload(user_errors=[UserError.of(error)])
    return await _payload(info, household_id)


def _household_local_id(global_id: str) -> str:
    household_id = local_id(global_id, "Household")
    if household_id is None:
        raise DomainError(UserErrorCode.NOT_FOUND, "no such household", ("householdId",))
    return household_id


async def _payload(info: Info[Any, Any], household_id: str) -> HouseholdPayload:
    """The household as it is now, if the caller may still read it (a member who just
    left may not). The household loaders forget what they read before the change."""
    loaders = info.context.loaders
    loaders.household_by_id.clear(household_id)
    loaders.household_by_member_id.clear_all()
    household = await loaders.household_by_id.load(household_id)
    if household is None or await access_to_household(info, household) is not Access.ALLOWED:
        return HouseholdPayload()
    return HouseholdPayload(household=Household.of(household))
