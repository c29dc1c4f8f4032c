"""createHousehold, addHouseholdMember, removeHouseholdMember."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from loyalty.access import Role
from loyalty.errors import DomainError, UserErrorCode
from resolvers.errors import UserError
from resolvers.households import Household
from resolvers.mutations.common import member_local_id, require_self_or
from resolvers.mutations.payloads import HouseholdPayload
from resolvers.node import local_id

STAFF = (Role.SERVICE, Role.ASSOCIATE)


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
    """A member creates its own household; staff and services for anyone."""
    try:
        owner = member_local_id(input.owner_id, "ownerId")
        await require_self_or(info, owner, *STAFF)
        household_id = await info.context.services.households.create(owner)
    except DomainError as error:
        return HouseholdPayload(user_errors=[UserError.of(error)])
    return await _payload(info, household_id)


async def add_household_member(
    info: Info[Any, Any], input: AddHouseholdMemberInput
) -> HouseholdPayload:
    """The owner (or staff) adds a member; its available points join the shared wallet."""
    try:
        household_id = await _owned_household(info, input.household_id)
        member = member_local_id(input.member_id, "memberId")
        await info.context.services.households.add(household_id, member)
    except DomainError as error:
        return HouseholdPayload(user_errors=[UserError.of(error)])
    return await _payload(info, household_id)


async def remove_household_member(
    info: Info[Any, Any], input: RemoveHouseholdMemberInput
) -> HouseholdPayload:
    """The owner (or staff) removes a member, or a member leaves; it takes nothing with it."""
    try:
        member = member_local_id(input.member_id, "memberId")
        household_id = _household_local_id(input.household_id)
        try:
            await require_self_or(info, member, *STAFF)
        except DomainError:
            household_id = await _owned_household(info, input.household_id)
        await info.context.services.households.remove(household_id, member)
    except DomainError as error:
        return HouseholdPayload(user_errors=[UserError.of(error)])
    return await _payload(info, household_id)


def _household_local_id(global_id: str) -> str:
    household_id = local_id(global_id, "Household")
    if household_id is None:
        raise DomainError(UserErrorCode.NOT_FOUND, "no such household", ("householdId",))
    return household_id


async def _owned_household(info: Info[Any, Any], global_id: str) -> str:
    """The household's id, if the caller is its owner or staff."""
    household_id = _household_local_id(global_id)
    if info.context.viewer.has(*STAFF):
        return household_id
    household = await info.context.loaders.household_by_id.load(household_id)
    if household is None:
        raise DomainError(UserErrorCode.NOT_FOUND, "no such household", ("householdId",))
    await require_self_or(info, household.owner_id)
    return household_id


async def _payload(info: Info[Any, Any], household_id: str) -> HouseholdPayload:
    loaders = info.context.loaders
    loaders.household_by_id.clear(household_id)
    household = await loaders.household_by_id.load(household_id)
    return HouseholdPayload(household=Household.of(household) if household else None)
