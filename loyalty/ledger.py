"""The points ledger: earning from purchases, as balanced postings between accounts.

Accounts are named by code:
    program:issuance            where earned points come from (its balance runs negative)
    program:redemption          where redeemed points go
    program:expiry              where expired points go
    charity:<key>               where donated points go
    member:<id>:pending         points earned inside the return window
    member:<id>:available       points a member can spend
    household:<id>:pending / household:<id>:available   a household's shared wallet

Every transaction's postings sum to zero across accounts (each posting moves a positive
amount from one account to another), so the sum of all balances is always zero.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from loyalty.earning import points_for, to_program_currency
from loyalty.errors import DomainError, UserErrorCode
from loyalty.models import AccountKind, Channel, Posting, TransactionKind, TransactionStatus
from loyalty.money import InvalidMoney, Money
from loyalty.program import Program
from loyalty.store import LedgerSession, LoyaltyStore, NewPurchase, NewTransaction
from loyalty.tiers import qualifying_window, tier_status
from loyalty.unit_of_work import run_once

ISSUANCE = "program:issuance"
REDEMPTION = "program:redemption"
EXPIRY = "program:expiry"
PROGRAM_ACCOUNTS = (
    (ISSUANCE, AccountKind.ISSUANCE),
    (REDEMPTION, AccountKind.REDEMPTION),
    (EXPIRY, AccountKind.EXPIRY),
)


def member_account(member_id: str, part: str) -> str:
    return f"member:{member_id}:{part}"


def household_account(household_id: str, part: str) -> str:
    return f"household:{household_id}:{part}"


def wallet_accounts(member_id: str) -> tuple[tuple[str, AccountKind], ...]:
    return (
        (member_account(member_id, "pending"), AccountKind.WALLET_PENDING),
        (member_account(member_id, "available"), AccountKind.WALLET_AVAILABLE),
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


class LedgerService:
    def __init__(
        self, store: LoyaltyStore, program: Program, clock: Callable[[], datetime]
    ) -> None:
        self.store = store
        self.program = program
        self.clock = clock

    async def record_purchase(
        self, purchase: Purchase, idempotency_key: str | None
    ) -> PointsResult:
        """Earn points for a purchase, once per order id whichever path it comes by."""
        order_id = purchase.order_id.strip()
        if not order_id or len(order_id) > 128:
            raise DomainError(
                UserErrorCode.INVALID_INPUT, "orderId must be 1 to 128 characters", ("orderId",)
            )
        if purchase.total.amount <= 0:
            raise DomainError(
                UserErrorCode.INVALID_AMOUNT, "a purchase total must be positive", ("total",)
            )
        converted = to_program_currency(self.program, purchase.total)
        occurred_at = purchase.occurred_at or self.clock()

        async def work(session: LedgerSession) -> dict[str, Any]:
            if await session.member(purchase.member_id) is None:
                raise DomainError(UserErrorCode.NOT_FOUND, "no such member", ("memberId",))
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
            since, until = qualifying_window(self.program, occurred_at)
            spend = await session.qualifying_spend_minor(purchase.member_id, since, until)
            status = tier_status(
                self.program,
                occurred_at,
                Money.from_minor(spend, self.program.currency),
                await session.tier_assignment(purchase.member_id),
            )
            points = points_for(self.program, converted, status.current)
            transaction_id: int | None = None
            if points > 0:
                transaction_id = await self._earn(session, purchase, order_id, points, occurred_at)
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
            return {"member_id": purchase.member_id, "transaction_id": transaction_id}

        payload = {
            "member_id": purchase.member_id,
            "order_id": order_id,
            "amount": purchase.total.formatted_amount(),
            "currency": purchase.total.currency,
            "channel": purchase.channel.value,
            "store_id": purchase.store_id,
        }
        result = await run_once(self.store, "recordPurchase", payload, idempotency_key, work)
        return PointsResult(result["member_id"], result["transaction_id"])

    async def _earn(
        self,
        session: LedgerSession,
        purchase: Purchase,
        order_id: str,
        points: int,
        occurred_at: datetime,
    ) -> int:
        wallet = await session.wallet(purchase.member_id)
        for code, kind in PROGRAM_ACCOUNTS:
            await session.ensure_account(code, kind)
        pending = self.program.pending_days > 0
        available_at = occurred_at + timedelta(days=self.program.pending_days)
        txn = await session.post(
            NewTransaction(
                member_id=purchase.member_id,
                kind=TransactionKind.EARN,
                points=points,
                status=TransactionStatus.PENDING if pending else TransactionStatus.POSTED,
                occurred_at=occurred_at,
                available_at=available_at,
                description=f"Purchase {order_id}",
                order_id=order_id,
                channel=purchase.channel,
                store_id=purchase.store_id,
                extra={
                    "total": purchase.total.formatted_amount(),
                    "currency": purchase.total.currency,
                },
            ),
            [Posting(ISSUANCE, wallet.pending if pending else wallet.available, points)],
        )
        return txn.id


def parse_money(amount: str, currency: str, field: str = "total") -> Money:
    """Money from API input, or an `INVALID_AMOUNT` user error."""
    try:
        return Money.of(amount, currency.upper())
    except InvalidMoney as exc:
        raise DomainError(UserErrorCode.INVALID_AMOUNT, str(exc), (field,)) from exc
