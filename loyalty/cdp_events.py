"""What Segment webhook events do (the CDP webhook's domain logic).

Accepted as a newsletter subscription, for the member whose CDP user id is the event's
`userId`:
- a `track` event named exactly `Newsletter Subscribed`;
- an `identify` whose traits set `newsletter_subscriber` to `true` (the boolean).
Either grants the member's newsletter promo code once (`OfferService.grant_newsletter`);
later subscriptions, and events of non-members, are `ignored`.

Another `identify` (a birthday, a name) is `ignored`: the gateway reads profiles from the CDP
when it needs them (the birthday job reads the `birthday` trait), so nothing is stored.

A `delete` event (the user asks to be forgotten) erases the member behind its `userId` with
the erasure service (`PrivacyService.forget_cdp_user`, what `forgetMember` does): `forgotten`,
or `ignored` (`not_a_member`: unknown or already forgotten), or `rejected` with the rule that
refused it (`NOT_ALLOWED`: the owner of a household with other members; staff must act, a
retry would not change it). Without an erasure service it is only `accepted`.

Each event is handled once: its `messageId` is looked up in the delivery log (source `cdp`)
first and recorded after the work, as the commerce webhook does; the grant itself is once per
member whatever the deliveries (a unique offer row), so a redelivery slipping between the two
is harmless.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from loyalty.commerce_events import DeliveryLog
from loyalty.errors import DomainError
from loyalty.offer_service import OfferService
from loyalty.privacy import Erasure

# Erase the member behind a CDP user id: the erasure, or None when there is no such member.
Forget = Callable[[str], Awaitable[Erasure | None]]

DELIVERY_SOURCE = "cdp"  # `webhook_deliveries.source`
NEWSLETTER_EVENT = "Newsletter Subscribed"
NEWSLETTER_TRAIT = "newsletter_subscriber"


@dataclass(frozen=True, slots=True)
class CdpEvent:
    """A Segment event: `type` is track, identify, delete, page, ..."""

    message_id: str
    type: str
    user_id: str | None = None
    event: str | None = None
    traits: Mapping[str, Any] = field(default_factory=dict)


class Status(enum.StrEnum):
    GRANTED = "granted"  # an offer was created
    FORGOTTEN = "forgotten"  # the member was erased (a `delete` event)
    REJECTED = "rejected"  # a rule refused it (the reason is its code); a retry would too
    IGNORED = "ignored"  # nothing to do (the reason says why)
    DUPLICATE = "duplicate"  # this messageId was handled before
    ACCEPTED = "accepted"  # taken, not acted on (a deletion request with no erasure service)


@dataclass(frozen=True, slots=True)
class Outcome:
    status: Status
    reason: str | None = None
    member_id: str | None = None
    message: str | None = None


def subscribes_to_newsletter(event: CdpEvent) -> bool:
    if event.type == "track":
        return event.event == NEWSLETTER_EVENT
    if event.type == "identify":
        return event.traits.get(NEWSLETTER_TRAIT) is True
    return False


class CdpEvents:
    def __init__(
        self,
        offers: OfferService,
        deliveries: DeliveryLog,
        clock: Callable[[], datetime],
        forget: Forget | None = None,
    ) -> None:
        self.offers = offers
        self.deliveries = deliveries
        self.clock = clock
        self.forget = forget

    async def handle(self, event: CdpEvent) -> Outcome:
        if event.type == "delete" and self.forget is None:
            return Outcome(Status.ACCEPTED, reason="erasure_not_automated")
        if await self.deliveries.seen(DELIVERY_SOURCE, [event.message_id]):
            return Outcome(Status.DUPLICATE)
        if event.type == "delete":
            outcome = await self._delete(event)
        elif subscribes_to_newsletter(event):
            if event.user_id:
                status, member_id = await self.offers.grant_newsletter(event.user_id)
            else:
                status, member_id = "not_a_member", None
            outcome = (
                Outcome(Status.GRANTED, member_id=member_id)
                if status == "granted"
                else Outcome(Status.IGNORED, reason=status, member_id=member_id)
            )
        elif event.type == "identify":
            outcome = Outcome(Status.IGNORED, reason="traits_read_from_cdp")
        else:
            outcome = Outcome(Status.IGNORED, reason="unhandled_event")
        entry = (DELIVERY_SOURCE, event.message_id)
        if entry not in await self.deliveries.record([entry], self.clock()):
            return Outcome(Status.DUPLICATE)
        return outcome

    async def _delete(self, event: CdpEvent) -> Outcome:
        assert self.forget is not None
        if not event.user_id:
            return Outcome(Status.IGNORED, reason="not_a_member")
        try:
            erasure = await self.forget(event.user_id)
        except DomainError as error:
            return Outcome(Status.REJECTED, reason=error.code.value, message=error.message)
        if erasure is None:
            return Outcome(Status.IGNORED, reason="not_a_member")
        return Outcome(Status.FORGOTTEN, member_id=erasure.member_id)
