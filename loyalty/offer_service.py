"""Offers that the program grants: birthday rewards, the newsletter promo code, referral
points on a referee's first purchase and bonus-point offers at purchase.

- Birthdays (`OfferService.grant_birthdays`, the `birthdays` job): members are read in pages
  (`LoyaltyReader.members_after`) and their CDP profiles in one fan-out per page (bounded
  concurrency in the adapter). A member whose `birthday` trait (YYYY-MM-DD) falls today in the
  program's time zone, or in the `window_days` before today (a job that missed days catches
  up), gets once per year, in one unit of work under the idempotency key
  `birthday:<member id>:<year>`: a BIRTHDAY offer (key `birthday-<year>`, its own code
  `BDAY-XXXXXX`, the program's birthday discount, valid 30 days; content `offers/birthday`)
  and the program's `birthday_bonus_points` as a BONUS transaction, available at once.
  29 February birthdays are celebrated on 28 February in other years. A CDP failure stops the
  run: the pages before it are granted (and stay granted), the rest waits for the next run.
- Newsletter (`OfferService.grant_newsletter`, from the CDP webhook): one NEWSLETTER offer per
  member (key `newsletter`, code `NEWS-XXXXXX`, the program's newsletter discount, no expiry);
  the unique (key, member) row makes it once, whatever the deliveries.
- Purchases (`purchase_rewards`, called by `LedgerService.record_purchase` in its unit of
  work, only for a purchase that earns):
  * bonus-point offers (`loyalty.offers.purchase_points`, the rule `Cart.pointsPreview` uses
    too): the offers' bonus is one BONUS transaction, pending through the return window like
    the earn it comes with. Every bonus-point offer is single-use per member: a member's own
    offer is marked redeemed; a program-wide one gets a redeemed copy for that member (which
    hides it from the member from then on);
  * referral: a referee's first purchase that earns credits `referee_points` to the referee
    and `referrer_points` to the referrer as REFERRAL transactions, available at once. Once:
    only when the referee has no earlier purchase that earned, and a marker
    (`referral:<referee id>` among the idempotency keys) is stored in the same transaction.
"""

from __future__ import annotations

import calendar
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from loyalty.errors import DomainError, UpstreamError, UserErrorCode
from loyalty.idempotency import input_hash
from loyalty.models import Member, OfferKind, Transaction, TransactionKind, TransactionStatus
from loyalty.offers import purchase_points
from loyalty.ports import ProfilePort
from loyalty.program import Program, Tier
from loyalty.store import LedgerSession, LoyaltyStore, NewOffer
from loyalty.unit_of_work import run_once

if TYPE_CHECKING:
    from loyalty.ledger import LedgerService, Purchase

BIRTHDAY_VALID_DAYS = 30
BIRTHDAY_TRAIT = "birthday"
BIRTHDAY_CODE_PREFIX = "BDAY"
NEWSLETTER_KEY = "newsletter"
NEWSLETTER_CODE_PREFIX = "NEWS"
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud at a till
CODE_LENGTH = 6
MAX_CODE_ATTEMPTS = 10
DEFAULT_PAGE_SIZE = 100
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def random_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


# --- birthdays --------------------------------------------------------------------------
def parse_birthday(value: Any) -> date | None:
    """A `birthday` trait as a date (YYYY-MM-DD only), or None."""
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value.strip()):
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        return None


def birthday_in(year: int, birthday: date) -> date:
    """The day a birthday is celebrated in `year`: 29 February is 28 February in other years."""
    if birthday.month == 2 and birthday.day == 29 and not calendar.isleap(year):
        return date(year, 2, 28)
    return birthday.replace(year=year)


def birthday_due(birthday: date, today: date, window_days: int = 0) -> date | None:
    """The day of the birthday to reward: the birthday on `today` or in the `window_days`
    days before it (a job that missed a day catches up), or None."""
    for back in range(window_days + 1):
        day = today - timedelta(days=back)
        if birthday.year <= day.year and birthday_in(day.year, birthday) == day:
            return day
    return None


@dataclass(slots=True)
class BirthdayReport:
    members: int = 0  # members whose profiles were read
    granted: int = 0  # rewarded by this run
    already_granted: int = 0  # birthday due, but rewarded before (an earlier run)
    error: str | None = None  # why the run stopped early (a CDP failure), or None

    def summary(self) -> str:
        text = (
            f"{self.granted} birthday rewards granted "
            f"({self.already_granted} already granted, {self.members} members checked)"
        )
        return f"{text}; stopped: {self.error}" if self.error else text


# --- the service ------------------------------------------------------------------------
class OfferService:
    def __init__(
        self,
        store: LoyaltyStore,
        program: Program,
        clock: Callable[[], datetime],
        ledger: LedgerService,
        profiles: ProfilePort,
        codes: Callable[[], str] = random_code,
    ) -> None:
        self.store = store
        self.program = program
        self.clock = clock
        self.ledger = ledger
        self.profiles = profiles
        self.codes = codes

    @property
    def birthdays_on(self) -> bool:
        p = self.program
        return p.birthday_bonus_points > 0 or p.birthday_discount_percent > 0

    async def grant_birthdays(
        self, window_days: int = 0, page_size: int = DEFAULT_PAGE_SIZE
    ) -> BirthdayReport:
        """Reward every member whose birthday is due (see the module). Returns what it did;
        `report.error` says why it stopped early (what was granted stays granted, and the
        next run grants the rest, nothing twice)."""
        if window_days < 0 or page_size < 1:
            raise ValueError("window_days must be >= 0 and page_size >= 1")
        report = BirthdayReport()
        if not self.birthdays_on:
            return report
        today = self.clock().astimezone(self.program.zone).date()
        after: str | None = None
        while True:
            members = await self.store.reader.members_after(after, page_size)
            if not members:
                return report
            after = members[-1].id
            try:
                profiles = await self.profiles.profiles([m.cdp_user_id for m in members])
            except UpstreamError as exc:
                report.error = f"{exc.upstream} unavailable ({exc.message})"
                return report
            report.members += len(members)
            for member in members:
                profile = profiles.get(member.cdp_user_id)
                birthday = parse_birthday(profile.traits.get(BIRTHDAY_TRAIT)) if profile else None
                day = birthday_due(birthday, today, window_days) if birthday else None
                if day is None:
                    continue
                if await self.grant_birthday(member, day.year):
                    report.granted += 1
                else:
                    report.already_granted += 1
            if len(members) < page_size:
                return report

    async def grant_birthday(self, member: Member, year: int) -> bool:
        """The member's birthday reward of `year`, once: whether this call granted it."""
        program = self.program
        now = self.clock()
        key = f"birthday:{member.id}:{year}"
        percent = program.birthday_discount_percent
        points = program.birthday_bonus_points
        title = "Happy birthday: " + " and ".join(
            part
            for part in (
                f"{percent.normalize():f}% off" if percent > 0 else "",
                f"{points} bonus {program.points_name}" if points > 0 else "",
            )
            if part
        )
        offer = NewOffer(
            id=str(uuid.uuid4()),
            key=f"birthday-{year}",
            kind=OfferKind.BIRTHDAY,
            title=title,
            created_at=now,
            discount_percent=percent,
            member_id=member.id,
            valid_from=now,
            valid_until=now + timedelta(days=BIRTHDAY_VALID_DAYS),
        )
        # Tokens of the attempts that ran here: the result that committed is ours if its
        # token is one of them (a concurrent run's result, replayed, is not).
        ran: list[int | str] = []

        async def store_offer(session: LedgerSession) -> None:
            if percent > 0:
                code = await self._free_code(session, BIRTHDAY_CODE_PREFIX)
                await session.add_offer(replace(offer, code=code))

        try:
            if points > 0:

                async def along(session: LedgerSession, txn: Transaction) -> None:
                    ran.append(txn.id)
                    await store_offer(session)

                result = await self.ledger.bonus(
                    member.id, points, f"Birthday {year}", key, along=along
                )
                return result.transaction_id in ran

            async def work(session: LedgerSession) -> dict[str, Any]:
                token = uuid.uuid4().hex
                ran.append(token)
                await store_offer(session)
                return {"member_id": member.id, "token": token}

            payload = {"member_id": member.id, "year": year}
            done = await run_once(self.store, "birthdayOffer", payload, key, work)
            return done.get("token") in ran
        except DomainError as error:
            # Granted before under other program settings, or the member was forgotten.
            if error.code in (UserErrorCode.IDEMPOTENCY_CONFLICT, UserErrorCode.NOT_FOUND):
                return False
            raise

    async def grant_newsletter(self, cdp_user_id: str) -> tuple[str, str | None]:
        """The newsletter promo code of the member with this CDP user id, once:
        (`granted` | `already_granted` | `not_a_member` | `no_newsletter_offer`, member id)."""
        percent = self.program.newsletter_discount_percent
        if percent <= 0:
            return "no_newsletter_offer", None
        now = self.clock()

        async def work(session: LedgerSession) -> dict[str, Any]:
            found = await session.member_by_cdp_id(cdp_user_id)
            member = await session.member(found.id) if found else None  # not forgotten
            if member is None:
                return {"status": "not_a_member", "member_id": None}
            code = await self._free_code(session, NEWSLETTER_CODE_PREFIX)
            added = await session.add_offer(
                NewOffer(
                    id=str(uuid.uuid4()),
                    key=NEWSLETTER_KEY,
                    kind=OfferKind.NEWSLETTER,
                    title=f"Newsletter: {percent.normalize():f}% off",
                    created_at=now,
                    code=code,
                    discount_percent=percent,
                    member_id=member.id,
                    valid_from=now,
                )
            )
            return {"status": "granted" if added else "already_granted", "member_id": member.id}

        result = await run_once(self.store, "newsletterOffer", {}, None, work)
        return str(result["status"]), result["member_id"]

    async def _free_code(self, session: LedgerSession, prefix: str) -> str:
        for _ in range(MAX_CODE_ATTEMPTS):
            code = f"{prefix}-{self.codes()}"
            if not await session.offer_code_taken(code):
                return code
        raise RuntimeError(f"no free {prefix} promo code after {MAX_CODE_ATTEMPTS} attempts")


# --- at purchase ----------------------------------------------------------------------------
async def purchase_rewards(
    ledger: LedgerService,
    session: LedgerSession,
    member: Member,
    purchase: Purchase,
    tier: Tier,
    earn: Transaction,
) -> list[str]:
    """Within `record_purchase`'s unit of work, after the purchase's earn was posted: the
    bonus of the member's bonus-point offers and a first purchase's referral points. Returns
    the other members whose balance changed (the referrer's wallet)."""
    offers = await session.usable_offers(member.id, earn.occurred_at)
    points = purchase_points(ledger.program, purchase.total, tier, offers)
    if points.applied:
        if points.bonus > 0:
            pending = earn.status is TransactionStatus.PENDING
            await ledger.credit(
                session,
                member,
                points.bonus,
                kind=TransactionKind.BONUS,
                description=f"Bonus offers on purchase {earn.order_id}",
                occurred_at=earn.occurred_at,
                pending_until=earn.available_at if pending else None,
                order_id=earn.order_id,
                channel=purchase.channel,
                extra={"offers": [o.key for o in points.applied]},
            )
        for offer in points.applied:
            await session.redeem_offer(offer, member.id, earn.occurred_at)
    return await _referral(ledger, session, member, earn)


async def _referral(
    ledger: LedgerService, session: LedgerSession, referee: Member, earn: Transaction
) -> list[str]:
    program = ledger.program
    if referee.referred_by_id is None or (
        program.referee_points <= 0 and program.referrer_points <= 0
    ):
        return []
    marker = f"referral:{referee.id}"
    if await session.find_result(marker) is not None:
        return []
    if await session.earned_purchases(referee.id) > 0:  # this purchase is not stored yet
        return []
    referrer = await session.member(referee.referred_by_id)
    affected: list[str] = []
    if program.referee_points > 0:
        await ledger.credit(
            session,
            referee,
            program.referee_points,
            kind=TransactionKind.REFERRAL,
            description="Referral welcome: your first purchase",
            occurred_at=earn.occurred_at,
            order_id=earn.order_id,
        )
    if referrer is not None and program.referrer_points > 0:
        await ledger.credit(
            session,
            referrer,
            program.referrer_points,
            kind=TransactionKind.REFERRAL,
            description="Referral: a member you referred made a first purchase",
            occurred_at=earn.occurred_at,
            extra={"referee": referee.id},
        )
        affected = await session.wallet_members(referrer.id)
    payload = {"referee": referee.id, "referrer": referee.referred_by_id}
    await session.save_result(marker, "referral", input_hash("referral", payload), payload)
    return affected
