"""The domain's own records: members, ledger transactions, balances, households, offers."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any


class Channel(enum.StrEnum):
    WEB = "WEB"
    APP = "APP"
    POS = "POS"
    ASSOCIATE = "ASSOCIATE"
    SYSTEM = "SYSTEM"


class TransactionKind(enum.StrEnum):
    EARN = "EARN"
    REDEEM = "REDEEM"
    GIFT_SENT = "GIFT_SENT"
    GIFT_RECEIVED = "GIFT_RECEIVED"
    DONATION = "DONATION"
    AWARD = "AWARD"
    BONUS = "BONUS"
    REFERRAL = "REFERRAL"
    RETURN = "RETURN"
    EXPIRY = "EXPIRY"
    ADJUSTMENT = "ADJUSTMENT"


class TransactionStatus(enum.StrEnum):
    PENDING = "PENDING"
    POSTED = "POSTED"
    REVERSED = "REVERSED"


class AccountKind(enum.StrEnum):
    ISSUANCE = "issuance"
    REDEMPTION = "redemption"
    EXPIRY = "expiry"
    CHARITY = "charity"
    WALLET_PENDING = "wallet_pending"
    WALLET_AVAILABLE = "wallet_available"
    CLEARING = "clearing"


class OfferKind(enum.StrEnum):
    PROMO_CODE = "PROMO_CODE"
    BIRTHDAY = "BIRTHDAY"
    TIER_DISCOUNT = "TIER_DISCOUNT"
    BONUS_POINTS = "BONUS_POINTS"
    REFERRAL = "REFERRAL"
    NEWSLETTER = "NEWSLETTER"


@dataclass(frozen=True, slots=True)
class Member:
    id: str
    commerce_customer_id: str
    cdp_user_id: str
    email: str | None
    enrolled_at: datetime
    first_name: str | None = None
    last_name: str | None = None
    referred_by_id: str | None = None


@dataclass(frozen=True, slots=True)
class Transaction:
    id: int
    member_id: str | None
    kind: TransactionKind
    points: int
    status: TransactionStatus
    occurred_at: datetime
    available_at: datetime | None = None
    description: str | None = None
    order_id: str | None = None
    channel: Channel | None = None
    store_id: str | None = None
    actor: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Posting:
    """`amount` points move from the account `source` to the account `destination`."""

    source: str
    destination: str
    amount: int


@dataclass(frozen=True, slots=True)
class ExpiringPoints:
    points: int
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Balance:
    available: int
    pending: int
    lifetime_earned: int
    expiring_next: ExpiringPoints | None = None


@dataclass(frozen=True, slots=True)
class Household:
    id: str
    owner_id: str
    member_ids: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class HouseholdInvitation:
    """The owner of `household_id` (`invited_by_id`) invites `member_id` to join it. The
    member joins only if it accepts before `expires_at` (README, Households)."""

    household_id: str
    member_id: str
    invited_by_id: str
    created_at: datetime
    expires_at: datetime

    def pending(self, now: datetime) -> bool:
        return now < self.expires_at


@dataclass(frozen=True, slots=True)
class TierAssignment:
    member_id: str
    tier_key: str
    reason: str
    assigned_by: str
    assigned_at: datetime


@dataclass(frozen=True, slots=True)
class HeldTier:
    """The public tier a member holds until `valid_until` (`loyalty.tiers`): earned by the
    spend of the period that began at `period_start`, or assigned by staff."""

    member_id: str
    tier_key: str
    period_start: datetime
    valid_until: datetime


@dataclass(frozen=True, slots=True)
class Offer:
    id: str
    key: str
    kind: OfferKind
    title: str
    code: str | None = None
    discount_percent: Decimal | None = None
    bonus_points: int | None = None
    bonus_multiplier: Decimal | None = None
    valid_until: datetime | None = None
    member_id: str | None = None
    tier_key: str | None = None

    @property
    def content_key(self) -> str:
        """The CMS delivery key of this offer's banner and copy: `offers/<key>`, except that
        every birthday offer (key `birthday-<year>`) shares one banner, `offers/birthday`."""
        if self.kind is OfferKind.BIRTHDAY:
            return "offers/birthday"
        return f"offers/{self.key}"
