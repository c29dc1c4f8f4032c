"""The points ledger: earning from purchases, as balanced postings between accounts.

Accounts are named by code:
    program:issuance            where earned points come from (its balance runs negative)
    program:redemption          where redeemed points go
    program:expiry              where expired points go
    charity:<key>               where donated points go
    member:<id>:pending         points earned inside the return window
    member:<id>:available       points a member can spend
A household shares its owner's wallet: its members earn into and spend from the owner's
accounts; a member who leaves takes nothing with it.

Every transaction's postings sum to zero across accounts (each posting moves a positive
amount from one account to another), so the sum of all balances is always zero.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from loyalty.dates import add_months
from loyalty.earning import points_for, redemption_value, to_program_currency
from loyalty.errors import DomainError, UserErrorCode
from loyalty.models import (
    AccountKind,
    Channel,
    HeldTier,
    Member,
    Posting,
    TierAssignment,
    Transaction,
    TransactionKind,
    TransactionStatus,
)
from loyalty.money import InvalidMoney, Money
from loyalty.offer_service import purchase_rewards
from loyalty.ports import BalanceEvents, OrderHistoryEvents
from loyalty.program import Program
from loyalty.store import LedgerSession, LoyaltyStore, NewPurchase, NewTransaction, Wallet
from loyalty.tier_service import promote_on_purchase
from loyalty.tiers import (
    TierStatus,
    best_of,
    held_at,
    own_tier,
    qualifying_window,
    tier_status,
)
from loyalty.unit_of_work import Work, run_once
from loyalty.upstreams import TrackEvent

ISSUANCE = "program:issuance"
REDEMPTION = "program:redemption"
EXPIRY = "program:expiry"
GIFTS = "program:gifts"  # a clearing account: a gift passes through it, so it nets to zero


def member_account(member_id: str, part: str) -> str:
    return f"member:{member_id}:{part}"


def wallet_accounts(member_id: str) -> tuple[tuple[str, AccountKind], ...]:
    return (
        (member_account(member_id, "pending"), AccountKind.WALLET_PENDING),
        (member_account(member_id, "available"), AccountKind.WALLET_AVAILABLE),
    )


MAX_STORE_ID = 64  # a store's code (the associate token's `store` claim): TOR-BLOOR


def check_store_id(store_id: str | None) -> None:
    if store_id is not None and not 1 <= len(store_id) <= MAX_STORE_ID:
        raise DomainError(
            UserErrorCode.INVALID_INPUT,
            f"storeId must be 1 to {MAX_STORE_ID} characters",
            ("storeId",),
        )


@dataclass(frozen=True, slots=True)
class Purchase:
    order_id: str
    total: Money
    channel: Channel
    member_id: str
    store_id: str | None = None
    occurred_at: datetime | None = None
    source: str = "api"


@dataclass(frozen=True, slots=True)
class PointsResult:
    """What a points-moving operation returns: its transaction (None when it moved no
    points, e.g. a purchase too small to earn) and the member it concerns."""

    member_id: str
    transaction_id: int | None


MAX_POINTS = 10_000_000  # one operation never moves more: a typo, not a purchase
MAX_PURCHASE = Decimal(100_000_000)  # in the purchase's and the program's currency

EVENT_NAMES = {
    TransactionKind.EARN: "Loyalty Points Earned",
    TransactionKind.REDEEM: "Loyalty Points Redeemed",
    TransactionKind.GIFT_SENT: "Loyalty Points Gifted",
    TransactionKind.GIFT_RECEIVED: "Loyalty Points Received",
    TransactionKind.DONATION: "Loyalty Points Donated",
    TransactionKind.AWARD: "Loyalty Points Awarded",
    TransactionKind.BONUS: "Loyalty Bonus Points Earned",
    TransactionKind.REFERRAL: "Loyalty Referral Points Earned",
    TransactionKind.RETURN: "Loyalty Points Returned",
    TransactionKind.EXPIRY: "Loyalty Points Expired",
    TransactionKind.ADJUSTMENT: "Loyalty Points Adjusted",
}


def check_points(points: int, field: str = "points") -> None:
    if points <= 0:
        raise DomainError(UserErrorCode.INVALID_AMOUNT, "points must be positive", (field,))
    if points > MAX_POINTS:
        raise DomainError(
            UserErrorCode.INVALID_AMOUNT, f"points must be at most {MAX_POINTS}", (field,)
        )


class LedgerService:
    """Every way points move. Each method is one database transaction, exactly once per
    idempotency key; wallets are locked in a fixed order so concurrent moves neither
    deadlock nor drive a balance below zero."""

    def __init__(
        self,
        store: LoyaltyStore,
        program: Program,
        clock: Callable[[], datetime],
        events: BalanceEvents | None = None,
        order_history: OrderHistoryEvents | None = None,
    ) -> None:
        self.store = store
        self.program = program
        self.clock = clock
        self.events = events
        # Told after a purchase or a return committed: every way an order arrives (webhook,
        # POS, associate app, backfill) comes through here, so this is the one place to tell.
        self.order_history = order_history

    # --- earning --------------------------------------------------------------------
    async def record_purchase(
        self, purchase: Purchase, idempotency_key: str | None
    ) -> PointsResult:
        """Earn points for a purchase, once per order id whichever path it comes by."""
        order_id = purchase.order_id.strip()
        if not order_id or len(order_id) > 128:
            raise DomainError(
                UserErrorCode.INVALID_INPUT, "orderId must be 1 to 128 characters", ("orderId",)
            )
        check_store_id(purchase.store_id)
        if purchase.total.amount <= 0:
            raise DomainError(
                UserErrorCode.INVALID_AMOUNT, "a purchase total must be positive", ("total",)
            )
        if purchase.total.amount > MAX_PURCHASE:
            raise DomainError(
                UserErrorCode.INVALID_AMOUNT,
                f"a purchase total is at most {MAX_PURCHASE}",
                ("total",),
            )
        converted = to_program_currency(self.program, purchase.total)
        if converted.amount > MAX_PURCHASE:
            raise DomainError(
                UserErrorCode.INVALID_AMOUNT,
                f"a purchase total is at most {MAX_PURCHASE} {self.program.currency}",
                ("total",),
            )
        occurred_at = purchase.occurred_at or self.clock()
        customers: set[str] = set()  # whose order history changed (kept out of the result)

        async def work(session: LedgerSession) -> dict[str, Any]:
            member = await self._member(session, purchase.member_id, "memberId")
            customers.add(member.commerce_customer_id)
            prior = await session.purchase(order_id)
            if prior is not None:
                prior_member_id, prior_transaction_id = prior
                if prior_member_id != purchase.member_id:
                    raise DomainError(
                        UserErrorCode.NOT_ALLOWED,
                        "this order was already recorded for another member",
                        ("orderId",),
                    )
                return {"member_id": prior_member_id, "transaction_id": prior_transaction_id}
            status = await self._tier_before(session, purchase.member_id, occurred_at)
            points = points_for(self.program, purchase.total, status.current)
            transaction_id: int | None = None
            affected: list[str] = []
            if points > 0:
                wallet = await session.wallet(purchase.member_id)
                pending = self.program.pending_days > 0
                txn = await self._post(
                    session,
                    member,
                    NewTransaction(
                        member_id=purchase.member_id,
                        kind=TransactionKind.EARN,
                        points=points,
                        status=TransactionStatus.PENDING if pending else TransactionStatus.POSTED,
                        occurred_at=occurred_at,
                        available_at=occurred_at + timedelta(days=self.program.pending_days),
                        description=f"Purchase {order_id}",
                        order_id=order_id,
                        channel=purchase.channel,
                        store_id=purchase.store_id,
                        extra={
                            "total": purchase.total.formatted_amount(),
                            "currency": purchase.total.currency,
                            "tier": status.current.key,
                        },
                    ),
                    [Posting(ISSUANCE, wallet.pending if pending else wallet.available, points)],
                )
                transaction_id = txn.id
                affected = await session.wallet_members(purchase.member_id)
                # Bonus-point offers and a first purchase's referral (loyalty.offer_service).
                affected += await purchase_rewards(
                    self, session, member, purchase, status.current, txn
                )
            await session.add_purchase(
                NewPurchase(
                    order_id=order_id,
                    member_id=purchase.member_id,
                    currency=purchase.total.currency,
                    amount_minor=purchase.total.minor,
                    program_amount_minor=converted.minor,
                    occurred_at=occurred_at,
                    channel=purchase.channel,
                    store_id=purchase.store_id,
                    source=purchase.source,
                ),
                transaction_id,
            )
            # A purchase whose spend crosses a threshold raises the held tier at once.
            await promote_on_purchase(session, self.program, purchase.member_id, occurred_at)
            return {
                "member_id": purchase.member_id,
                "transaction_id": transaction_id,
                "affected": affected,
            }

        payload = {
            "member_id": purchase.member_id,
            "order_id": order_id,
            "amount": purchase.total.formatted_amount(),
            "currency": purchase.total.currency,
            "channel": purchase.channel.value,
            "store_id": purchase.store_id,
        }
        result = await self._run("recordPurchase", payload, idempotency_key, work)
        await self._orders_changed(customers)
        return result

    async def return_purchase(
        self,
        order_id: str,
        amount: Money | None,
        idempotency_key: str | None,
        *,
        occurred_at: datetime | None = None,
        source: str = "api",
    ) -> PointsResult:
        """Claw back a returned purchase's points in proportion to the amount returned
        (`None`: all that is left), from its pending points first, then from available
        points, never below zero. The returned amount stops counting toward tiers."""
        if amount is not None and amount.amount <= 0:
            raise DomainError(
                UserErrorCode.INVALID_AMOUNT, "a returned amount must be positive", ("amount",)
            )
        when = occurred_at or self.clock()
        customers: set[str] = set()  # whose order history changed (kept out of the result)

        async def work(session: LedgerSession) -> dict[str, Any]:
            bought = await session.purchase_for_update(order_id)
            if bought is None:
                raise DomainError(
                    UserErrorCode.NOT_FOUND, "no purchase with this order id", ("orderId",)
                )
            remaining = bought.amount_minor - bought.returned_amount_minor
            if remaining <= 0:
                raise DomainError(
                    UserErrorCode.INVALID_AMOUNT,
                    "this order was already returned in full",
                    ("amount",),
                )
            if amount is None:
                returned_minor = remaining
            else:
                if amount.currency != bought.currency:
                    raise DomainError(
                        UserErrorCode.INVALID_AMOUNT,
                        f"the order was paid in {bought.currency}, not {amount.currency}",
                        ("amount", "currencyCode"),
                    )
                returned_minor = amount.minor
                if returned_minor > remaining:
                    raise DomainError(
                        UserErrorCode.INVALID_AMOUNT,
                        "more than what is left of the order to return",
                        ("amount",),
                    )
            total_returned = bought.returned_amount_minor + returned_minor
            program_returned = bought.program_amount_minor * total_returned // bought.amount_minor
            await session.set_purchase_returned(order_id, total_returned, program_returned)
            member = await self._member(session, bought.member_id, "orderId")
            customers.add(member.commerce_customer_id)
            if bought.transaction_id is None:
                return {"member_id": member.id, "transaction_id": None, "affected": []}
            earn = await session.transaction(bought.transaction_id)
            assert earn is not None
            from_pending, clawed = await session.clawed_back(earn.id)
            target = earn.points * total_returned // bought.amount_minor
            owed = target - clawed
            if owed <= 0:
                return {"member_id": member.id, "transaction_id": None, "affected": []}
            wallet = await session.wallet(member.id)
            balances = await self._lock_and_mature(session, wallet)
            postings: list[Posting] = []
            still_pending = earn.status is TransactionStatus.PENDING
            if still_pending:
                take = min(owed, earn.points - from_pending, balances[wallet.pending])
                if take > 0:
                    postings.append(Posting(wallet.pending, ISSUANCE, take))
                    owed -= take
            take = min(owed, balances[wallet.available])
            if take > 0:
                postings.append(Posting(wallet.available, ISSUANCE, take))
                owed -= take
            if not postings:
                return {"member_id": member.id, "transaction_id": None, "affected": []}
            clawed_now = sum(p.amount for p in postings)
            full = total_returned == bought.amount_minor
            txn = await self._post(
                session,
                member,
                NewTransaction(
                    member_id=member.id,
                    kind=TransactionKind.RETURN,
                    points=-clawed_now,
                    status=TransactionStatus.POSTED,
                    occurred_at=when,
                    description=f"Return of order {order_id}",
                    order_id=order_id,
                    channel=Channel.SYSTEM,
                    reverses_id=earn.id,
                    extra={
                        "source": source,
                        "uncollected": owed,
                        "from_pending": sum(
                            p.amount for p in postings if p.source == wallet.pending
                        ),
                    },
                ),
                postings,
            )
            if full and owed == 0:
                await session.set_status(earn.id, TransactionStatus.REVERSED)
            return {
                "member_id": member.id,
                "transaction_id": txn.id,
                "affected": await session.wallet_members(member.id),
            }

        payload = {
            "order_id": order_id,
            "amount": amount.formatted_amount() if amount else None,
            "currency": amount.currency if amount else None,
        }
        result = await self._run("returnPurchase", payload, idempotency_key, work)
        await self._orders_changed(customers)
        return result

    # --- spending -------------------------------------------------------------------
    async def redeem(
        self, member_id: str, points: int, reason: str | None, idempotency_key: str | None,
        *, actor: str | None = None, channel: Channel = Channel.APP,
    ) -> PointsResult:  # fmt: skip
        check_points(points)

        async def work(session: LedgerSession) -> dict[str, Any]:
            member = await self._member(session, member_id, "memberId")
            await session.ensure_account(REDEMPTION, AccountKind.REDEMPTION)
            txn = await self._debit(
                session, member, points, REDEMPTION,
                NewTransaction(
                    member_id=member.id, kind=TransactionKind.REDEEM, points=-points,
                    status=TransactionStatus.POSTED, occurred_at=self.clock(),
                    description=reason or "Points redeemed", channel=channel, actor=actor,
                    extra={"value": redemption_value(self.program, points).formatted_amount()},
                ),
            )  # fmt: skip
            return {
                "member_id": member.id,
                "transaction_id": txn.id,
                "affected": await session.wallet_members(member.id),
            }

        payload = {"member_id": member_id, "points": points, "reason": reason}
        return await self._run("redeemPoints", payload, idempotency_key, work)

    async def gift(
        self, from_member_id: str, to_member_id: str, points: int, message: str | None,
        idempotency_key: str | None, *, actor: str | None = None,
    ) -> PointsResult:  # fmt: skip
        """Move points from one member's wallet to another's, atomically, within the
        sender's daily gifting limit. Returns the sender's side."""
        check_points(points)
        if from_member_id == to_member_id:
            raise DomainError(
                UserErrorCode.INVALID_INPUT,
                "a member cannot gift points to itself",
                ("toMemberId",),
            )

        async def work(session: LedgerSession) -> dict[str, Any]:
            sender = await self._member(session, from_member_id, "fromMemberId")
            receiver = await self._member(session, to_member_id, "toMemberId")
            source, target = await session.wallet(sender.id), await session.wallet(receiver.id)
            if source.available == target.available:
                raise DomainError(
                    UserErrorCode.NOT_ALLOWED,
                    "both members share one household wallet",
                    ("toMemberId",),
                )
            now = self.clock()
            await session.ensure_account(GIFTS, AccountKind.CLEARING)
            balances = await self._lock_and_mature(session, source, target)
            # Checked under the wallet locks, so two concurrent gifts cannot both pass.
            sent_today = await session.points_moved(
                TransactionKind.GIFT_SENT, self._day_start(now), member_id=sender.id
            )
            limit = self.program.gifting_max_points_per_day
            if sent_today + points > limit:
                raise DomainError(
                    UserErrorCode.LIMIT_EXCEEDED,
                    f"gifts are limited to {limit} points a day ({sent_today} sent today)",
                    ("points",),
                )
            if balances[source.available] < points:
                raise DomainError(
                    UserErrorCode.INSUFFICIENT_POINTS, "not enough points", ("points",)
                )
            sent = await self._post(
                session, sender,
                NewTransaction(
                    member_id=sender.id, kind=TransactionKind.GIFT_SENT, points=-points,
                    status=TransactionStatus.POSTED, occurred_at=now,
                    description=message or "Gift", actor=actor,
                    extra={"to_member_id": receiver.id},
                ),
                [Posting(source.available, GIFTS, points)],
            )  # fmt: skip
            await self._post(
                session, receiver,
                NewTransaction(
                    member_id=receiver.id, kind=TransactionKind.GIFT_RECEIVED, points=points,
                    status=TransactionStatus.POSTED, occurred_at=now,
                    description=message or "Gift", actor=actor, reverses_id=None,
                    extra={"from_member_id": sender.id, "gift_transaction_id": sent.id},
                ),
                [Posting(GIFTS, target.available, points)],
            )  # fmt: skip
            affected = [
                *await session.wallet_members(sender.id),
                *await session.wallet_members(receiver.id),
            ]
            return {"member_id": sender.id, "transaction_id": sent.id, "affected": affected}

        payload = {"from": from_member_id, "to": to_member_id, "points": points, "message": message}
        return await self._run("giftPoints", payload, idempotency_key, work)

    async def donate(
        self, member_id: str, charity_key: str, points: int, idempotency_key: str | None,
        *, actor: str | None = None,
    ) -> PointsResult:  # fmt: skip
        """Give points to a configured charity; records their currency value."""
        check_points(points)
        charity = self.program.charity(charity_key)
        if charity is None:
            raise DomainError(UserErrorCode.NOT_FOUND, "no such charity", ("charityKey",))
        value = redemption_value(self.program, points)

        async def work(session: LedgerSession) -> dict[str, Any]:
            member = await self._member(session, member_id, "memberId")
            account = charity_account(charity.key)
            await session.ensure_account(account, AccountKind.CHARITY)
            txn = await self._debit(
                session, member, points, account,
                NewTransaction(
                    member_id=member.id, kind=TransactionKind.DONATION, points=-points,
                    status=TransactionStatus.POSTED, occurred_at=self.clock(),
                    description=f"Donation to {charity.name}", actor=actor,
                    extra={
                        "charity": charity.key,
                        "amount": value.formatted_amount(),
                        "currency": value.currency,
                    },
                ),
            )  # fmt: skip
            return {
                "member_id": member.id,
                "transaction_id": txn.id,
                "affected": await session.wallet_members(member.id),
            }

        payload = {"member_id": member_id, "charity": charity_key, "points": points}
        return await self._run("donatePoints", payload, idempotency_key, work)

    async def award(
        self, member_id: str, points: int, reason: str, idempotency_key: str | None,
        *, associate: str, store_id: str | None,
    ) -> PointsResult:  # fmt: skip
        """An associate's discretionary award: bounded per award and per associate per
        day, audited with who, why and where; available at once."""
        check_points(points)
        check_store_id(store_id)
        if not reason.strip():
            raise DomainError(UserErrorCode.INVALID_INPUT, "a reason is required", ("reason",))
        limits = self.program.associate_awards
        if points > limits.max_points_per_award:
            raise DomainError(
                UserErrorCode.LIMIT_EXCEEDED,
                f"an award is limited to {limits.max_points_per_award} points",
                ("points",),
            )

        async def work(session: LedgerSession) -> dict[str, Any]:
            member = await self._member(session, member_id, "memberId")
            now = self.clock()
            await session.lock_actor(associate)
            awarded = await session.points_moved(
                TransactionKind.AWARD, self._day_start(now), actor=associate
            )
            if awarded + points > limits.max_points_per_day:
                raise DomainError(
                    UserErrorCode.LIMIT_EXCEEDED,
                    f"an associate may award {limits.max_points_per_day} points a day "
                    f"({awarded} awarded today)",
                    ("points",),
                )
            wallet = await session.wallet(member.id)
            txn = await self._post(
                session, member,
                NewTransaction(
                    member_id=member.id, kind=TransactionKind.AWARD, points=points,
                    status=TransactionStatus.POSTED, occurred_at=now, description=reason,
                    channel=Channel.ASSOCIATE, store_id=store_id, actor=associate,
                ),
                [Posting(ISSUANCE, wallet.available, points)],
            )  # fmt: skip
            return {
                "member_id": member.id,
                "transaction_id": txn.id,
                "affected": await session.wallet_members(member.id),
            }

        payload = {"member_id": member_id, "points": points, "reason": reason, "by": associate}
        return await self._run("awardPoints", payload, idempotency_key, work)

    async def bonus(
        self, member_id: str, points: int, reason: str, idempotency_key: str | None,
        *, kind: TransactionKind = TransactionKind.BONUS,
        along: Callable[[LedgerSession, Transaction], Awaitable[None]] | None = None,
    ) -> PointsResult:  # fmt: skip
        """Points the program gives (a birthday gift, a referral), available at once.
        `along` runs in the same unit of work with the posted transaction (e.g. to store the
        offer that comes with the points): both commit together or not at all."""
        check_points(points)

        async def work(session: LedgerSession) -> dict[str, Any]:
            member = await self._member(session, member_id, "memberId")
            txn = await self.credit(session, member, points, kind=kind, description=reason)
            if along is not None:
                await along(session, txn)
            return {
                "member_id": member.id,
                "transaction_id": txn.id,
                "affected": await session.wallet_members(member.id),
            }

        payload = {"member_id": member_id, "points": points, "reason": reason, "kind": kind.value}
        return await self._run("bonusPoints", payload, idempotency_key, work)

    async def credit(
        self, session: LedgerSession, member: Member, points: int, *, kind: TransactionKind,
        description: str, occurred_at: datetime | None = None,
        pending_until: datetime | None = None, order_id: str | None = None,
        channel: Channel = Channel.SYSTEM, extra: dict[str, Any] | None = None,
    ) -> Transaction:  # fmt: skip
        """Within a unit of work: points from the program into the member's wallet (its
        household's), available at once, or pending until `pending_until`."""
        wallet = await session.wallet(member.id)
        pending = pending_until is not None
        return await self._post(
            session, member,
            NewTransaction(
                member_id=member.id, kind=kind, points=points,
                status=TransactionStatus.PENDING if pending else TransactionStatus.POSTED,
                occurred_at=occurred_at or self.clock(), available_at=pending_until,
                description=description, order_id=order_id, channel=channel,
                extra=extra or {},
            ),
            [Posting(ISSUANCE, wallet.pending if pending else wallet.available, points)],
        )  # fmt: skip

    async def move_available_points(
        self, session: LedgerSession, member: Member, *, to: str, description: str
    ) -> int:
        """Within a unit of work: move all the member's own available points (its due
        pending points matured first) to another account, e.g. a household's wallet."""
        own = Wallet(
            member_account(member.id, "pending"),
            member_account(member.id, "available"),
            owner_member_id=member.id,
        )
        await session.lock_accounts([own.pending, own.available, to])
        balances = await self._lock_and_mature(session, own)
        points = balances[own.available]
        if points > 0:
            await self._post(
                session, member,
                NewTransaction(
                    member_id=member.id, kind=TransactionKind.ADJUSTMENT, points=-points,
                    status=TransactionStatus.POSTED, occurred_at=self.clock(),
                    description=description, channel=Channel.SYSTEM,
                ),
                [Posting(own.available, to, points)],
            )  # fmt: skip
        return points

    # --- jobs -----------------------------------------------------------------------
    async def mature_pending(self) -> int:
        """Move every earn whose return window has passed from pending to available
        (the job; reads already show them as available). Returns how many matured."""
        now = self.clock()
        count = 0
        for pending in await self.store.reader.wallets_with_due_pending(now):
            async with self.store.session() as session:
                own = await session.wallet_of_account(pending)
                # Into the member's wallet now: its household's if it joined one since.
                current = await session.wallet(own.owner_member_id)
                await session.lock_accounts([pending, current.available])
                count += len(await self._mature(session, pending, current.available, now))
        return count

    async def expire(self) -> int:
        """Expire posted points older than `expiry_months`, oldest first, in every wallet.
        Idempotent: running it twice expires nothing more. Returns the points expired."""
        if self.program.expiry_months <= 0:
            return 0
        await self.mature_pending()
        now = self.clock()
        total = 0
        affected: list[str] = []
        for account in await self.store.reader.wallets_with_available():
            async with self.store.session() as session:
                wallet = await session.wallet_of_account(account)
                balances = await self._lock_and_mature(session, wallet)
                credits, debits = await session.available_history(wallet.available)
                due = expired_points(credits, debits, self.program.expiry_months, now)
                due = min(due, balances[wallet.available])
                if due <= 0:
                    continue
                owner = await self._member(session, wallet.owner_member_id, "memberId")
                await session.ensure_account(EXPIRY, AccountKind.EXPIRY)
                await self._post(
                    session, owner,
                    NewTransaction(
                        member_id=owner.id, kind=TransactionKind.EXPIRY, points=-due,
                        status=TransactionStatus.POSTED, occurred_at=now,
                        description=f"Points older than {self.program.expiry_months} months",
                        channel=Channel.SYSTEM,
                    ),
                    [Posting(wallet.available, EXPIRY, due)],
                )  # fmt: skip
                total += due
                affected.extend(await session.wallet_members(owner.id))
        if affected and self.events is not None:
            await self.events.balances_changed(sorted(set(affected)))
        return total

    # --- the mechanics ----------------------------------------------------------------
    async def _run(
        self, operation: str, payload: dict[str, Any], key: str | None, work: Work
    ) -> PointsResult:
        replayed = True

        async def tracked(session: LedgerSession) -> dict[str, Any]:
            nonlocal replayed
            replayed = False
            return await work(session)

        result = await run_once(self.store, operation, payload, key, tracked)
        if not replayed and self.events is not None and result.get("affected"):
            await self.events.balances_changed(sorted(set(result["affected"])))
        return PointsResult(result["member_id"], result["transaction_id"])

    async def _orders_changed(self, customers: set[str]) -> None:
        """After the commit; empty when the work did not run (a replayed idempotency key)."""
        changed = sorted(c for c in customers if c)
        if changed and self.order_history is not None:
            await self.order_history.orders_changed(changed)

    async def _tier_before(
        self, session: LedgerSession, member_id: str, moment: datetime
    ) -> TierStatus:
        """The tier the member holds before a purchase counts, its household's best
        included."""
        since, until = qualifying_window(self.program, moment)
        currency = self.program.currency
        own: dict[str, tuple[Money, TierAssignment | None, HeldTier | None]] = {}
        for m in await session.wallet_members(member_id):
            spend = await session.qualifying_spend_minor(m, since, until)
            own[m] = (
                Money.from_minor(spend, currency),
                await session.tier_assignment(m),
                held_at(self.program, await session.held_tier(m), moment),  # loyalty.tiers
            )
        floor = best_of([own_tier(self.program, *own[m]) for m in own]) if len(own) > 1 else None
        own_spend, assignment, held = own[member_id]
        return tier_status(self.program, moment, own_spend, assignment, floor, held)

    async def _member(self, session: LedgerSession, member_id: str, field: str) -> Member:
        member = await session.member(member_id)
        if member is None:
            raise DomainError(UserErrorCode.NOT_FOUND, "no such member", (field,))
        return member

    def _day_start(self, now: datetime) -> datetime:
        local = now.astimezone(self.program.zone)
        return local.replace(hour=0, minute=0, second=0, microsecond=0)

    async def _lock_and_mature(self, session: LedgerSession, *wallets: Wallet) -> dict[str, int]:
        """Lock the wallets' accounts (one fixed order), mature their due pending points,
        and return the accounts' balances."""
        codes = [c for w in wallets for c in (w.pending, w.available)]
        await session.lock_accounts(codes)
        now = self.clock()
        for wallet in wallets:
            await self._mature(session, wallet.pending, wallet.available, now)
        return await session.lock_accounts(codes)

    async def _mature(
        self, session: LedgerSession, pending: str, available: str, now: datetime
    ) -> list[int]:
        matured: list[int] = []
        for earn_id, amount, available_at in await session.due_pending(pending, now):
            if amount > 0:
                await session.post(
                    NewTransaction(
                        member_id=None, kind=TransactionKind.ADJUSTMENT, points=0,
                        status=TransactionStatus.POSTED, occurred_at=available_at,
                        description="Return window passed", channel=Channel.SYSTEM,
                        extra={"matures": earn_id},
                    ),
                    [Posting(pending, available, amount)],
                )  # fmt: skip
            await session.set_status(earn_id, TransactionStatus.POSTED)
            matured.append(earn_id)
        return matured

    async def _debit(
        self, session: LedgerSession, member: Member, points: int, destination: str,
        txn: NewTransaction,
    ) -> Transaction:  # fmt: skip
        wallet = await session.wallet(member.id)
        balances = await self._lock_and_mature(session, wallet)
        if balances[wallet.available] < points:
            raise DomainError(
                UserErrorCode.INSUFFICIENT_POINTS,
                f"not enough points: {balances[wallet.available]} available",
                ("points",),
            )
        return await self._post(
            session, member, txn, [Posting(wallet.available, destination, points)]
        )

    async def _post(
        self, session: LedgerSession, member: Member, txn: NewTransaction, postings: list[Posting]
    ) -> Transaction:
        """Post a member-facing transaction and queue its event for the CDP (outbox)."""
        for code in {p.source for p in postings} | {p.destination for p in postings}:
            kind = _system_account_kind(code)
            if kind is not None:
                await session.ensure_account(code, kind)
        posted = await session.post(txn, postings)
        await session.add_outbox(
            [
                TrackEvent(
                    user_id=member.cdp_user_id,
                    event=EVENT_NAMES[txn.kind],
                    properties={
                        "points": txn.points,
                        "kind": txn.kind.value,
                        "status": txn.status.value,
                        "transaction_id": posted.id,
                        "order_id": txn.order_id,
                        "program": self.program.key,
                    },
                    timestamp=txn.occurred_at,
                    message_id=f"patron-{self.program.key}-txn-{posted.id}",
                )
            ]
        )
        return posted


def expired_points(
    credits: list[tuple[datetime, int]], debits: int, expiry_months: int, now: datetime
) -> int:
    """Points to expire now, first-in first-out: the credits older than the expiry period
    that all debits so far (spending and earlier expiries) have not used up."""
    due = sum(amount for when, amount in credits if add_months(when, expiry_months) <= now)
    return max(0, due - debits)


def next_expiry(
    credits: list[tuple[datetime, int]], debits: int, expiry_months: int
) -> tuple[int, datetime] | None:
    """The next batch to expire (points, when), with debits using the oldest credits."""
    left = debits
    batches: dict[datetime, int] = {}
    for when, amount in sorted(credits):
        used = min(left, amount)
        left -= used
        if amount - used > 0:
            expires = add_months(when, expiry_months)
            batches[expires] = batches.get(expires, 0) + amount - used
    if not batches:
        return None
    first = min(batches)
    return batches[first], first


def charity_account(key: str) -> str:
    return f"charity:{key}"


def _system_account_kind(code: str) -> AccountKind | None:
    if code.startswith("charity:"):
        return AccountKind.CHARITY
    return {
        ISSUANCE: AccountKind.ISSUANCE,
        REDEMPTION: AccountKind.REDEMPTION,
        EXPIRY: AccountKind.EXPIRY,
        GIFTS: AccountKind.CLEARING,
    }.get(code)


def parse_money(amount: str, currency: str, field: str = "total") -> Money:
    """Money from API input, or an `INVALID_AMOUNT` user error."""
    try:
        return Money.of(amount, currency.upper())
    except InvalidMoney as exc:
        raise DomainError(UserErrorCode.INVALID_AMOUNT, str(exc), (field,)) from exc
