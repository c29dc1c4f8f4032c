"""The persistence port of the loyalty domain.

`LoyaltyStore.reader` answers batched reads (one query per table for any number of
members: this is what the gateway's DataLoaders call). `LoyaltyStore.session()` opens one
database transaction in which a service checks rules and writes postings; everything in it
commits together or not at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from loyalty.models import (
    AccountKind,
    Channel,
    HeldTier,
    Household,
    HouseholdInvitation,
    Member,
    Offer,
    OfferKind,
    Posting,
    TierAssignment,
    Transaction,
    TransactionKind,
    TransactionStatus,
)
from loyalty.segments import Activity, Insights, Segment
from loyalty.upstreams import TrackEvent


class ConcurrentWrite(Exception):
    """Another writer got there first (a unique key, a serialization failure). The service
    retries the whole unit of work."""


@dataclass(frozen=True, slots=True)
class MemberSearch:
    search: str | None = None
    member_ids: Sequence[str] | None = None
    limit: int = 20
    after: str | None = None
    segment: Segment | None = None  # members whose materialized RFM segment is this


@dataclass(frozen=True, slots=True)
class MemberPage:
    members: list[Member]
    total: int
    has_next: bool


@dataclass(frozen=True, slots=True)
class Wallet:
    """The accounts a member earns into and spends from: its own, or, in a household, the
    owner's (one shared wallet owned by the owner)."""

    pending: str
    available: str
    owner_member_id: str
    household_id: str | None = None


@dataclass(frozen=True, slots=True)
class NewTransaction:
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
    reverses_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def posted_as(self, transaction_id: int) -> Transaction:
        """The transaction as recorded under its new id."""
        shared = {f.name: getattr(self, f.name) for f in fields(Transaction) if f.name != "id"}
        return Transaction(id=transaction_id, **shared)


@dataclass(frozen=True, slots=True)
class NewPurchase:
    order_id: str
    member_id: str
    currency: str
    amount_minor: int
    program_amount_minor: int
    occurred_at: datetime
    channel: Channel
    store_id: str | None
    source: str


@dataclass(frozen=True, slots=True)
class NewOffer:
    """An offer to store: program-wide (`member_id` None) or a member's own."""

    id: str
    key: str
    kind: OfferKind
    title: str
    created_at: datetime
    code: str | None = None
    discount_percent: Decimal | None = None
    bonus_points: int | None = None
    bonus_multiplier: Decimal | None = None
    member_id: str | None = None
    tier_key: str | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class PurchaseRecord:
    order_id: str
    member_id: str
    currency: str
    amount_minor: int
    returned_amount_minor: int
    program_amount_minor: int
    transaction_id: int | None


@dataclass(frozen=True, slots=True)
class StoredResult:
    operation: str
    input_hash: str
    result: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SpendRow:
    member_id: str
    spend_minor: int
    orders: int


@dataclass(frozen=True, slots=True)
class WalletReading:
    """A wallet as reads show it. Earns whose return window has passed count as available
    before `patron jobs run pending` moves them. `credits` (when, points) are what entered
    the available points, a due pending earn at the date its window passed, and `debits`
    all that left them: first-in first-out expiry spends the oldest credits first. Both are
    empty unless the read asked for the history."""

    available: int
    pending: int
    credits: tuple[tuple[datetime, int], ...] = ()
    debits: int = 0


class LoyaltyReader(Protocol):
    async def members_by_ids(self, ids: Sequence[str]) -> list[Member]: ...

    async def members_by_commerce_ids(self, ids: Sequence[str]) -> list[Member]: ...

    async def search_members(self, query: MemberSearch) -> MemberPage: ...

    async def wallets(
        self, holders: Sequence[str], now: datetime, *, history: bool
    ) -> dict[str, WalletReading]:
        """Per wallet holder (a member, or the owner of its household): its points as reads
        show them, and with `history` what first-in first-out expiry needs."""
        ...

    async def lifetime_earned(self, member_ids: Sequence[str]) -> dict[str, int]:
        """Per member: everything it earned, net of the points returns clawed back."""
        ...

    async def transactions(
        self, member_ids: Sequence[str], *, limit: int, before_id: int | None
    ) -> dict[str, list[Transaction]]: ...

    async def transactions_by_ids(self, ids: Sequence[int]) -> list[Transaction]: ...

    async def qualifying_spend_minor(
        self, member_ids: Sequence[str], since: datetime, until: datetime
    ) -> dict[str, int]: ...

    async def tier_assignments(self, member_ids: Sequence[str]) -> dict[str, TierAssignment]: ...

    async def held_tiers(self, member_ids: Sequence[str]) -> dict[str, HeldTier]:
        """The tier each member holds for the period (`member_tiers`), if any."""
        ...

    async def held_tiers_due(self, now: datetime) -> list[str]:
        """Members whose held tier's period has ended by `now` (the tiers job's work list)."""
        ...

    async def top_spenders(self, since: datetime, until: datetime, limit: int) -> list[SpendRow]:
        """Members by purchase amount (net of returns) in [since, until), highest first."""
        ...

    async def households_of_members(self, member_ids: Sequence[str]) -> dict[str, Household]: ...

    async def segment_activity(
        self, member_ids: Sequence[str] | None, since: datetime, until: datetime
    ) -> dict[str, Activity]:
        """The facts segments are computed from (`loyalty.segments`), purchases and points
        uses counted in [since, until]; `None`: every member not forgotten. One query."""
        ...

    async def member_insights(self, member_ids: Sequence[str]) -> dict[str, Insights]:
        """The insights `patron jobs run segments` materialized, for the members it saw."""
        ...

    async def households_by_ids(self, ids: Sequence[str]) -> list[Household]: ...

    async def household_invitations_of_members(
        self, member_ids: Sequence[str], now: datetime
    ) -> dict[str, list[HouseholdInvitation]]:
        """Per member: the invitations to join a household it has not answered and that have
        not expired by `now`, newest first."""
        ...

    async def household_invitations_of_households(
        self, household_ids: Sequence[str], now: datetime
    ) -> dict[str, list[HouseholdInvitation]]:
        """Per household: the invitations its owner sent that are unanswered and have not
        expired by `now`, newest first."""
        ...

    async def offers_for_members(
        self, member_ids: Sequence[str], now: datetime
    ) -> dict[str, list[Offer]]:
        """Per member: the offers it can use now (active, valid, not redeemed), its own and
        the program-wide ones; a member's own offer hides a program-wide one of its key."""
        ...

    async def members_after(self, after_id: str | None, limit: int) -> list[Member]:
        """Members (not forgotten) in id order after `after_id`: a job's pages."""
        ...

    async def wallets_with_due_pending(self, now: datetime) -> list[str]:
        """Pending accounts holding earns whose return window has passed."""
        ...

    async def wallets_with_available(self) -> list[str]:
        """Available accounts with a positive balance (the expiry job's work list)."""
        ...


class LedgerSession(Protocol):
    """One database transaction. Writes are visible only after it commits."""

    async def find_result(self, key: str) -> StoredResult | None: ...

    async def save_result(
        self, key: str, operation: str, input_hash: str, result: Mapping[str, Any]
    ) -> None: ...

    async def member(self, member_id: str) -> Member | None: ...

    async def member_by_commerce_id(self, commerce_customer_id: str) -> Member | None: ...

    async def member_by_cdp_id(self, cdp_user_id: str) -> Member | None: ...

    async def add_member(self, member: Member) -> None: ...

    async def wallet(self, member_id: str) -> Wallet: ...

    async def ensure_account(
        self,
        code: str,
        kind: AccountKind,
        *,
        member_id: str | None = None,
        household_id: str | None = None,
    ) -> None: ...

    async def lock_accounts(self, codes: Sequence[str]) -> dict[str, int]:
        """Lock the accounts (in a fixed order) and return their balances."""
        ...

    async def post(self, txn: NewTransaction, postings: Sequence[Posting]) -> Transaction:
        """Append a transaction and its postings and update the cached balances.
        Refuses an empty or unbalanced transaction."""
        ...

    async def purchase(self, order_id: str) -> tuple[str, int | None] | None:
        """(member id, earn transaction id) of an order already recorded, if any."""
        ...

    async def add_purchase(self, purchase: NewPurchase, transaction_id: int | None) -> None: ...

    async def transaction(self, transaction_id: int) -> Transaction | None: ...

    async def qualifying_spend_minor(
        self, member_id: str, since: datetime, until: datetime
    ) -> int: ...

    async def tier_assignment(self, member_id: str) -> TierAssignment | None: ...

    async def add_tier_assignment(self, assignment: TierAssignment) -> None:
        """Record a staff assignment and revoke the member's previous one (at its time)."""
        ...

    async def revoke_tier_assignment(self, member_id: str, at: datetime) -> None:
        """End the member's current staff assignment, if any."""
        ...

    async def held_tier(self, member_id: str, *, for_update: bool = False) -> HeldTier | None:
        """The member's held tier (`for_update`: locked for the rest of the transaction)."""
        ...

    async def save_held_tier(self, held: HeldTier, at: datetime) -> None:
        """Insert or replace the member's held tier (a `ConcurrentWrite` if another
        transaction inserted one first)."""
        ...

    async def drop_held_tier(self, member_id: str) -> None: ...

    async def add_outbox(self, events: Sequence[TrackEvent]) -> None:
        """Queue events for the CDP in this transaction (sent after commit by the relay)."""
        ...

    async def wallet_members(self, member_id: str) -> list[str]:
        """The members who share the member's wallet (its household), itself included."""
        ...

    async def wallet_of_account(self, code: str) -> Wallet: ...

    async def save_insights(self, rows: Sequence[Insights]) -> None:
        """Upsert members' materialized insights, and drop those of forgotten members."""
        ...

    async def household(self, household_id: str) -> Household | None: ...

    async def household_of(self, member_id: str) -> Household | None: ...

    async def add_household(self, household_id: str, owner_id: str, at: datetime) -> None:
        """Create a household with its owner as its first member."""
        ...

    async def add_household_member(
        self, household_id: str, member_id: str, at: datetime
    ) -> None: ...

    async def remove_household_member(self, household_id: str, member_id: str) -> None: ...

    async def household_for_update(self, household_id: str) -> Household | None:
        """The household, its row locked for the rest of the transaction: whatever changes
        who is in it (joining, leaving, inviting, dissolving) takes this lock first, so the
        member count it checks stays true until it commits."""
        ...

    async def household_invitations(self, household_id: str) -> list[HouseholdInvitation]:
        """The household's invitations, expired ones included."""
        ...

    async def save_household_invitation(self, invitation: HouseholdInvitation) -> None:
        """Store an invitation, replacing the household's earlier one to the same member."""
        ...

    async def take_household_invitation(
        self, household_id: str, member_id: str, now: datetime
    ) -> bool:
        """Delete the member's invitation to the household; whether one was pending at
        `now` (an expired one is deleted too, and is not taken). The delete is the claim: of
        two transactions taking the same invitation, one gets True."""
        ...

    async def drop_household_invitations(
        self, household_id: str, *, member_id: str | None = None, expired_at: datetime | None = None
    ) -> int:
        """Delete the household's invitations: to `member_id` only, or only those expired
        at `expired_at`, if given. How many."""
        ...

    async def drop_expired_household_invitations(self, expired_at: datetime) -> int:
        """Delete every household's invitations expired at `expired_at`. How many."""
        ...

    async def purchase_for_update(self, order_id: str) -> PurchaseRecord | None: ...

    async def set_purchase_returned(
        self, order_id: str, returned_minor: int, returned_program_minor: int
    ) -> None: ...

    async def clawed_back(self, earn_id: int) -> tuple[int, int]:
        """(points clawed back from pending, points clawed back in all) of an earn."""
        ...

    async def set_status(self, transaction_id: int, status: TransactionStatus) -> None: ...

    async def points_moved(
        self,
        kind: TransactionKind,
        since: datetime,
        *,
        member_id: str | None = None,
        actor: str | None = None,
    ) -> int:
        """Points (absolute) of `kind` since a moment, by a member or by an actor."""
        ...

    async def lock_actor(self, actor: str) -> None:
        """Serialize an actor's operations (an associate's daily award limit)."""
        ...

    async def due_pending(
        self, pending_account: str, now: datetime
    ) -> list[tuple[int, int, datetime]]:
        """(earn id, points still pending, available at) of earns whose window passed."""
        ...

    async def available_history(
        self, available_account: str
    ) -> tuple[list[tuple[datetime, int]], int]:
        """The credits (when, points) into an available account, and its total debits."""
        ...

    async def add_offer(self, offer: NewOffer) -> bool:
        """Store an offer unless one with its key exists for its member; whether it did."""
        ...

    async def offer_code_taken(self, code: str) -> bool: ...

    async def usable_offers(self, member_id: str, at: datetime) -> list[Offer]:
        """The offers the member can use at `at` (as `LoyaltyReader.offers_for_members`)."""
        ...

    async def redeem_offer(self, offer: Offer, member_id: str, at: datetime) -> None:
        """Mark an offer used by the member: its own offer is redeemed; a program-wide one
        gets a redeemed copy for the member (which hides it from the member). Raises
        `ConcurrentWrite` if another transaction used it first."""
        ...

    async def earned_purchases(self, member_id: str) -> int:
        """How many purchases of the member earned points (recorded so far)."""
        ...


class LoyaltyStore(Protocol):
    @property
    def reader(self) -> LoyaltyReader: ...

    def request_reader(self) -> LoyaltyReader:
        """A reader for one request (its loaders): reads that overlap share a connection."""
        ...

    def session(self) -> AbstractAsyncContextManager[LedgerSession]:
        """One database transaction, committed when the block ends without an error. Once
        committed, the transactions it posted are told to the store's `PostingEvents`
        (`loyalty.ports`), if it has one."""
        ...
