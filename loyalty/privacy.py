"""Erasure and export of a member's personal data (GDPR articles 17 and 15).

Erasure (`PrivacyService.forget`) happens in one database transaction:

- the member row loses its identifiers and personal data (commerce customer id, CDP user id,
  email, names, referrer) and gets `forgotten_at`; the row itself stays, so the ledger's
  references to its uuid still resolve (a bare uuid is not personal data once nothing links
  it to a person). Every read filters forgotten members out, so `member`, `memberByCard`,
  `me`, searches and `topCustomers` no longer see it, and the commerce customer id may enrol
  again as a new member;
- its ledger transactions keep kind, points, status, dates, order id, channel and store but
  lose their descriptions (free text: redemption reasons, gift messages, award reasons);
  the other side of its gifts loses the message too; an `actor` that is one of its
  identifiers (a member acting for itself) is cleared; `extra` loses free-text keys and any
  string that contains one of its identifiers, email or names;
- its own wallet is closed: the points left in it (available and still pending) are
  forfeited to `program:forfeited` by one transaction, so no job ever moves points in an
  anonymous wallet again. Every posting stays (the ledger is append-only) and the books
  still balance;
- its personal offers (promo codes), its materialized insights and held tier, its queued
  CDP events (outbox rows, sent or not: they carry the CDP user id) and the stored results
  of its idempotent operations are deleted; the reasons of its staff tier assignments are
  redacted, who assigned which tier and when is kept for audit;
- a household member leaves its household (taking nothing with it, as when leaving); an
  owner alone in its household dissolves it (and its pending invitations go with it); an
  owner with other members is refused (`NOT_ALLOWED`): the household lives as long as its
  owner and its shared wallet is the owner's, so staff remove the other members first. The
  owner's household is locked before its members are counted, so a member accepting an
  invitation at the same moment either joins first (and the erasure is refused) or finds
  the household gone;
- its household invitations are deleted, those it received and those it sent;
- a CDP deletion request is queued in the same transaction (a `job_state` row
  `cdp-deletion:<member uuid>`), then sent after commit. If the CDP is down the erasure
  stands and the row stays queued: `patron jobs run cdp-deletions` (cron) sends what is
  queued and deletes each row once the CDP accepted it.

Forgetting a member that is already forgotten (or unknown) is `NOT_FOUND`.

Export (`PrivacyService.export`) gathers every row the database holds about a member and its
CDP profile into one JSON-able document; a failing CDP becomes an error entry in it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Protocol

from loyalty.errors import DomainError, UpstreamError, UserErrorCode
from loyalty.ledger import member_account
from loyalty.models import (
    AccountKind,
    Channel,
    Household,
    Member,
    Posting,
    Transaction,
    TransactionKind,
    TransactionStatus,
)
from loyalty.money import Money
from loyalty.ports import OrderHistoryEvents, ProfilePort
from loyalty.program import Program
from loyalty.store import ConcurrentWrite, LedgerSession, NewTransaction

log = logging.getLogger("patron.privacy")

FORFEITED = "program:forfeited"  # where the points of an erased member's wallet go
REDACTED = "[erased]"
DELETION_JOB_PREFIX = "cdp-deletion:"  # `job_state` rows of queued CDP deletion requests
EXPORT_FORMAT = "patron-member-export/1"
# Keys of a transaction's `extra` that hold free text written by or about a person.
FREE_TEXT_KEYS = frozenset({"message", "gift_message", "reason", "note", "comment"})
# Keys of `extra` that link a transaction to the other member of a gift.
GIFT_LINK_KEYS = ("to_member_id", "from_member_id")
MAX_ATTEMPTS = 8
_END_OF_TIME = datetime(9999, 12, 31, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Erasure:
    """What `forget` did: the member (its uuid), the CDP user asked to delete, the points
    forfeited from its wallet, and whether the CDP has accepted the deletion request yet."""

    member_id: str
    cdp_user_id: str
    forfeited_points: int
    deletion_sent: bool = False


@dataclass(frozen=True, slots=True)
class QueuedDeletion:
    member_id: str
    cdp_user_id: str
    queued_at: datetime
    attempts: int = 0
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class MemberRecords:
    """Every row the database holds about a member, as column -> value mappings.

    `transactions` are the member's own, each with a `postings` list of
    `{"source": code, "destination": code, "amount": points}`; `household` has the
    household's columns plus `joined_at` and `member_ids` (the owner first);
    `household_invitations` are those it received and those it sent."""

    member: Mapping[str, Any]
    household: Mapping[str, Any] | None = None
    accounts: Sequence[Mapping[str, Any]] = ()
    tier_assignments: Sequence[Mapping[str, Any]] = ()
    held_tier: Mapping[str, Any] | None = None
    insights: Mapping[str, Any] | None = None
    purchases: Sequence[Mapping[str, Any]] = ()
    transactions: Sequence[Mapping[str, Any]] = ()
    offers: Sequence[Mapping[str, Any]] = ()
    outbox: Sequence[Mapping[str, Any]] = ()
    household_invitations: Sequence[Mapping[str, Any]] = ()


class ErasureSession(LedgerSession, Protocol):
    """A ledger session (one database transaction) that can also erase personal data."""

    async def member_for_erasure(self, member_id: str) -> Member | None:
        """The member if it is not forgotten, locked for the rest of the transaction."""
        ...

    async def linked_transactions(self, member_id: str) -> list[Transaction]:
        """The member's transactions and the other side of its gifts (`extra` links)."""
        ...

    async def redact_transaction(
        self, transaction_id: int, *, description: str | None, actor: str | None,
        extra: Mapping[str, Any],
    ) -> None: ...  # fmt: skip

    async def erase_member(self, member_id: str, at: datetime) -> None:
        """Null the member's identifiers, personal data and referrer; set `forgotten_at`."""
        ...

    async def delete_offers(self, member_id: str) -> int: ...

    async def delete_outbox(self, cdp_user_id: str) -> int:
        """Delete the CDP events queued for this user, sent or not."""
        ...

    async def forget_results(self, member_id: str) -> int:
        """Delete the stored results of idempotent operations that name this member."""
        ...

    async def drop_insights(self, member_id: str) -> None: ...

    async def redact_tier_assignments(self, member_id: str, reason: str) -> None: ...

    async def dissolve_household(self, household_id: str) -> None:
        """Delete a household whose last member (its owner) is being forgotten, and its
        invitations."""
        ...

    async def delete_household_invitations(self, member_id: str) -> int:
        """Delete the household invitations the member received or sent."""
        ...

    async def queue_deletion(self, deletion: QueuedDeletion) -> None: ...


class PrivacyStore(Protocol):
    def session(self) -> AbstractAsyncContextManager[ErasureSession]: ...

    async def records(self, member_id: str) -> MemberRecords | None:
        """Everything held about a member who is not forgotten, or None."""
        ...

    async def queued_deletions(self) -> list[QueuedDeletion]:
        """The CDP deletion requests not yet accepted by the CDP, oldest first."""
        ...

    async def deletion_sent(self, member_id: str) -> None: ...

    async def deletion_failed(self, member_id: str, error: str, at: datetime) -> None: ...


class PrivacyService:
    def __init__(
        self,
        store: PrivacyStore,
        cdp: ProfilePort,
        program: Program,
        clock: Callable[[], datetime],
        order_history: OrderHistoryEvents | None = None,
    ) -> None:
        self.store = store
        self.cdp = cdp
        self.program = program
        self.clock = clock
        # Told after an erasure: copies of the customer's order history kept outside the
        # domain (the orders cache, which holds its email) must go too.
        self.order_history = order_history

    # --- erasure --------------------------------------------------------------------
    async def forget(self, member_id: str) -> Erasure:
        """Erase the member's personal data in one database transaction, then ask the CDP
        to delete and suppress the user (queued durably; retried by the job if it fails)."""
        customers: list[str] = []  # the erased member's commerce id, kept out of the result
        for attempt in range(MAX_ATTEMPTS):
            try:
                async with self.store.session() as session:
                    erasure = await self._erase(session, member_id, customers)
                break
            except ConcurrentWrite:
                if attempt + 1 == MAX_ATTEMPTS:
                    raise
        if self.order_history is not None and customers:
            await self.order_history.orders_changed(customers)
        sent = await self._send(
            QueuedDeletion(erasure.member_id, erasure.cdp_user_id, self.clock())
        )
        return Erasure(erasure.member_id, erasure.cdp_user_id, erasure.forfeited_points, sent)

    async def forget_cdp_user(self, cdp_user_id: str) -> Erasure | None:
        """Forget the member behind a CDP user id (a Segment `delete` event), if any."""
        async with self.store.session() as session:
            member = await session.member_by_cdp_id(cdp_user_id)
        if member is None:
            return None
        try:
            return await self.forget(member.id)
        except DomainError as error:
            if error.code is UserErrorCode.NOT_FOUND:
                return None  # forgotten meanwhile
            raise

    async def _erase(
        self, session: ErasureSession, member_id: str, customers: list[str]
    ) -> Erasure:
        now = self.clock()
        member = await session.member_for_erasure(member_id)
        if member is None:
            raise DomainError(UserErrorCode.NOT_FOUND, "no such member", ("memberId",))
        customers[:] = [member.commerce_customer_id]
        household = await session.household_of(member.id)
        if household is not None and household.owner_id == member.id:
            # Locked, then counted again: a member accepting an invitation meanwhile has
            # either joined (counted here) or waits and then finds the household gone.
            household = await session.household_for_update(household.id)
        owns = household is not None and household.owner_id == member.id
        if owns and household is not None and len(household.member_ids) > 1:
            raise DomainError(
                UserErrorCode.NOT_ALLOWED,
                "this member owns a household with other members: remove them from the "
                "household first",
                ("memberId",),
            )
        needles = personal_strings(member)
        for txn in await session.linked_transactions(member.id):
            actor = None if txn.actor is not None and txn.actor in needles else txn.actor
            extra = scrub_json(txn.extra, needles)
            if txn.description is not None or actor != txn.actor or extra != txn.extra:
                await session.redact_transaction(txn.id, description=None, actor=actor, extra=extra)
        forfeited = await self._close_wallet(session, member.id, now)
        await _leave_household(session, household, member.id)
        await session.delete_household_invitations(member.id)
        await session.delete_offers(member.id)
        await session.delete_outbox(member.cdp_user_id)
        await session.forget_results(member.id)
        await session.drop_insights(member.id)
        await session.drop_held_tier(member.id)
        await session.redact_tier_assignments(member.id, REDACTED)
        await session.erase_member(member.id, now)
        await session.queue_deletion(QueuedDeletion(member.id, member.cdp_user_id, now))
        return Erasure(member.id, member.cdp_user_id, forfeited)

    async def _close_wallet(self, session: LedgerSession, member_id: str, now: datetime) -> int:
        """Forfeit what is left in the member's own accounts; the points of its earns still
        pending leave with them, so those earns stop being pending (no job matures them)."""
        pending, available = (
            member_account(member_id, "pending"),
            member_account(member_id, "available"),
        )
        balances = await session.lock_accounts([pending, available])
        for earn_id, _, _ in await session.due_pending(pending, _END_OF_TIME):
            await session.set_status(earn_id, TransactionStatus.POSTED)
        postings = [
            Posting(code, FORFEITED, balances[code])
            for code in (pending, available)
            if balances[code] > 0
        ]
        total = sum(p.amount for p in postings)
        if postings:
            await session.ensure_account(FORFEITED, AccountKind.EXPIRY)
            await session.post(
                NewTransaction(
                    member_id=member_id,
                    kind=TransactionKind.ADJUSTMENT,
                    points=-total,
                    status=TransactionStatus.POSTED,
                    occurred_at=now,
                    description="Points forfeited on erasure",
                    channel=Channel.SYSTEM,
                    extra={"forfeited": total},
                ),
                postings,
            )
        return total

    # --- the CDP deletion queue ----------------------------------------------------------
    async def deliver_deletions(self) -> tuple[int, int]:
        """Send every queued CDP deletion request: (sent now, still queued)."""
        sent = failed = 0
        for deletion in await self.store.queued_deletions():
            if await self._send(deletion):
                sent += 1
            else:
                failed += 1
        return sent, failed

    async def _send(self, deletion: QueuedDeletion) -> bool:
        """Ask the CDP to delete and suppress the user; on success drop the queued request,
        else record the failure and keep it for the next run. Never raises."""
        try:
            await self.cdp.request_deletion(deletion.cdp_user_id)
        except Exception as exc:
            if isinstance(exc, UpstreamError):
                log.warning("CDP deletion for member %s failed: %s", deletion.member_id, exc)
            else:  # a bug, not an outage: keep the request all the same
                log.exception("CDP deletion for member %s failed", deletion.member_id)
            await self.store.deletion_failed(
                deletion.member_id, str(exc) or type(exc).__name__, self.clock()
            )
            return False
        await self.store.deletion_sent(deletion.member_id)
        return True

    # --- export ----------------------------------------------------------------------
    async def export(self, member_id: str) -> dict[str, Any] | None:
        """Everything held about a member, as one JSON-able document; None if unknown or
        forgotten."""
        records = await self.store.records(member_id)
        if records is None:
            return None
        currency = self.program.currency
        cdp_user_id = str(records.member["cdp_user_id"])
        return {
            "format": EXPORT_FORMAT,
            "exportedAt": _json_value(self.clock()),
            "program": self.program.key,
            "member": _json_row(records.member),
            "household": _json_row(records.household) if records.household else None,
            "accounts": [_json_row(r, drop=("id", "member_id")) for r in records.accounts],
            "tierAssignments": [
                _json_row(r, drop=("member_id",)) for r in records.tier_assignments
            ],
            "heldTier": (
                _json_row(records.held_tier, drop=("member_id",)) if records.held_tier else None
            ),
            "insights": (
                _json_row(records.insights, drop=("member_id",), currency=currency)
                if records.insights
                else None
            ),
            "purchases": [
                _json_row(r, drop=("member_id",), currency=currency) for r in records.purchases
            ],
            "transactions": [_json_row(r, drop=("member_id",)) for r in records.transactions],
            "offers": [_json_row(r, drop=("member_id",)) for r in records.offers],
            "outboxEvents": [_json_row(r, drop=("user_id",)) for r in records.outbox],
            "householdInvitations": [_json_row(r) for r in records.household_invitations],
            "cdp": await self._cdp_export(cdp_user_id),
        }

    async def _cdp_export(self, user_id: str) -> dict[str, Any]:
        try:
            profile = await self.cdp.profile(user_id)
            external_ids = await self.cdp.external_ids(user_id) if profile is not None else []
        except UpstreamError as exc:
            return {
                "userId": user_id,
                "error": {"code": exc.code, "upstream": exc.upstream, "message": exc.message},
            }
        return {
            "userId": user_id,
            "profile": (
                {"traits": profile.traits, "audiences": list(profile.audiences)}
                if profile is not None
                else None
            ),
            "externalIds": [{"type": e.type, "id": e.id} for e in external_ids],
        }


async def _leave_household(
    session: ErasureSession, household: Household | None, member_id: str
) -> None:
    if household is None:
        return
    if household.owner_id == member_id:  # alone in it (checked before)
        await session.dissolve_household(household.id)
    else:
        await session.remove_household_member(household.id, member_id)


def personal_strings(member: Member) -> frozenset[str]:
    """The strings that identify the member: what must not survive its erasure."""
    values = (
        member.commerce_customer_id,
        member.cdp_user_id,
        member.email,
        member.first_name,
        member.last_name,
    )
    return frozenset(v.strip() for v in values if v and len(v.strip()) >= 2)


def scrub_json(value: Any, needles: frozenset[str]) -> Any:
    """`value` without free-text keys and with every string that contains one of `needles`
    (case-insensitive) replaced by `REDACTED`; lists and objects are walked."""
    if isinstance(value, str):
        lowered = value.lower()
        return REDACTED if any(n.lower() in lowered for n in needles) else value
    if isinstance(value, Mapping):
        return {k: scrub_json(v, needles) for k, v in value.items() if k not in FREE_TEXT_KEYS}
    if isinstance(value, list):
        return [scrub_json(v, needles) for v in value]
    return value


# Columns holding integer minor units: the key they are exported under, and whether their
# currency is the program's (else the row's `currency`).
_MONEY_COLUMNS = {
    "amount_minor": ("amount", False),
    "returned_amount_minor": ("returnedAmount", False),
    "program_amount_minor": ("programAmount", True),
    "returned_program_amount_minor": ("returnedProgramAmount", True),
    "spend_12m_minor": ("spend12m", True),
}


def _json_row(
    row: Mapping[str, Any], *, drop: Sequence[str] = (), currency: str | None = None
) -> dict[str, Any]:
    """A row for the export: camelCase keys, ISO 8601 dates, money as {amount, currencyCode}."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key in drop:
            continue
        if key in _MONEY_COLUMNS and currency is not None and value is not None:
            name, in_program = _MONEY_COLUMNS[key]
            code = currency if in_program else str(row["currency"])
            money = Money.from_minor(int(value), code)
            out[name] = {"amount": money.formatted_amount(), "currencyCode": code}
            continue
        out[_camel(key)] = _json_value(value)
    return out


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, Mapping):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    return value


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)
