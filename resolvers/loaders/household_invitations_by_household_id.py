from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from aiodataloader import DataLoader

from loyalty.models import HouseholdInvitation
from loyalty.store import LoyaltyReader


class HouseholdInvitationsByHouseholdIdLoader(DataLoader[str, list[HouseholdInvitation]]):
    """Each household's pending (unanswered, unexpired) invitations, as its owner sent them."""

    def __init__(self, reader: LoyaltyReader, clock: Callable[[], datetime]) -> None:
        super().__init__()
        self.reader = reader
        self.clock = clock

    async def batch_load_fn(self, keys: list[str]) -> list[list[HouseholdInvitation]]:
        found = await self.reader.household_invitations_of_households(keys, self.clock())
        return [found.get(k, []) for k in keys]
