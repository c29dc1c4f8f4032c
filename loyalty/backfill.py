"""The backfill: retroactive points from the commerce order history (`patron backfill`).

It walks every order created since a date (midnight in the program's time zone), oldest
first, page by page. An enrolled member's order that is not Cancelled earns as a WEB
purchase at its `createdAt`, under the key `commerce-order:<order id>` that the webhook uses
too; an order already recorded by any path (webhook, POS, an earlier run) earns nothing.

Checkpoint: after each page, the job's position is saved (`job_state`, name `backfill`),
keyed by the `--since` date: `{"since", "after", "skip", "complete"}`. The position is a
keyset cursor, not an offset: the next page is `createdAt >= after`, skipping the `skip`
orders of that exact instant already seen, so it never runs into the API's offset limit
(10,000) and orders created meanwhile only ever come after it. A run with the same `--since`
resumes from the position (an interrupted run finishes; a finished run only looks at orders
created since); another `--since`, or `restart=True`, starts from the date. Any run is safe
to repeat: each order earns at most once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, tzinfo
from typing import Any, Protocol

from loyalty.commerce_orders import (
    CANCELLED,
    MemberDirectory,
    RecordedOrders,
    SkipReason,
    members_of,
    order_key,
    purchase_of,
    skip_reason,
)
from loyalty.errors import DomainError
from loyalty.ledger import PointsResult, Purchase
from loyalty.models import Member, Transaction
from loyalty.upstreams import Order, OrderPage

JOB_NAME = "backfill"
PURCHASE_SOURCE = "backfill"
MAX_PAGE_SIZE = 500  # the commerce API's largest page


class OrderSource(Protocol):
    async def orders_created_since(
        self, since: datetime, *, limit: int = 100, offset: int = 0
    ) -> OrderPage:
        """Orders created at or after `since`, oldest first."""
        ...


class TransactionReader(Protocol):
    async def transactions_by_ids(self, ids: Sequence[int]) -> list[Transaction]: ...


class PurchaseRecorder(Protocol):
    async def record_purchase(
        self, purchase: Purchase, idempotency_key: str | None
    ) -> PointsResult: ...


class Checkpoints(Protocol):
    async def load(self, name: str) -> dict[str, Any] | None: ...

    async def save(self, name: str, value: dict[str, Any], at: datetime) -> None: ...


@dataclass(frozen=True, slots=True)
class BackfillPorts:
    orders: OrderSource
    members: MemberDirectory
    recorded: RecordedOrders
    transactions: TransactionReader
    ledger: PurchaseRecorder
    checkpoints: Checkpoints


@dataclass(frozen=True, slots=True)
class Rejection:
    order_id: str
    code: str
    message: str


@dataclass(slots=True)
class BackfillReport:
    """What one run did (a resumed run counts only what it did itself)."""

    since: date
    resumed: bool = False
    pages: int = 0
    orders_seen: int = 0
    earned: int = 0
    not_a_member: int = 0
    cancelled: int = 0
    already_recorded: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    points_earned: int = 0

    @property
    def skipped(self) -> int:
        return self.not_a_member + self.cancelled + self.already_recorded + len(self.rejected)

    def summary(self) -> str:
        lines = [
            f"backfill since {self.since.isoformat()}"
            + (" (resumed from its checkpoint)" if self.resumed else ""),
            f"  orders seen     {self.orders_seen}",
            f"  earned          {self.earned}",
            f"  skipped         {self.skipped}",
            f"    not a member      {self.not_a_member}",
            f"    cancelled         {self.cancelled}",
            f"    already recorded  {self.already_recorded}",
            f"    rejected          {len(self.rejected)}",
            f"  points earned   {self.points_earned}",
        ]
        lines += [f"  rejected {r.order_id}: {r.code} {r.message}" for r in self.rejected]
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Cursor:
    """Orders created at or after `after`, less the first `skip` of them (seen already)."""

    after: datetime
    skip: int = 0

    def past(self, orders: Sequence[Order]) -> Cursor:
        """The cursor after a page of orders sorted by `createdAt`."""
        if not orders:
            return self
        last = _to_millis(orders[-1].created_at)
        at_last = sum(1 for o in orders if _to_millis(o.created_at) == last)
        if last == self.after:
            return Cursor(self.after, self.skip + len(orders))
        return Cursor(last, at_last)


class Backfill:
    def __init__(self, ports: BackfillPorts, clock: Callable[[], datetime], zone: tzinfo) -> None:
        self.ports = ports
        self.clock = clock
        self.zone = zone

    def start_of(self, since: date) -> datetime:
        """Midnight of `since` in the program's time zone."""
        return datetime.combine(since, time(0), tzinfo=self.zone)

    async def run(
        self,
        since: date,
        *,
        page_size: int = 100,
        restart: bool = False,
        progress: Callable[[BackfillReport], None] | None = None,
    ) -> BackfillReport:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"the page size must be between 1 and {MAX_PAGE_SIZE}")
        report = BackfillReport(since=since)
        cursor = Cursor(_to_millis(self.start_of(since)))
        saved = await self.ports.checkpoints.load(JOB_NAME)
        if saved is not None and saved.get("since") == since.isoformat() and not restart:
            cursor = Cursor(datetime.fromisoformat(saved["after"]), int(saved["skip"]))
            report.resumed = True
        while True:
            page = await self.ports.orders.orders_created_since(
                cursor.after, limit=page_size, offset=cursor.skip
            )
            orders = list(page.orders)
            await self._earn(orders, report)
            cursor = cursor.past(orders)
            complete = len(orders) < page_size
            await self._save(since, cursor, complete)
            report.pages += 1
            if progress is not None:
                progress(report)
            if complete:
                return report

    async def _earn(self, orders: Sequence[Order], report: BackfillReport) -> None:
        report.orders_seen += len(orders)
        members = await members_of(self.ports.members, [o for o in orders if o.state != CANCELLED])
        candidates: list[tuple[Order, Member]] = []
        for order in orders:
            member = members.get(order.customer_id or "")
            reason = skip_reason(order, member)
            if reason is SkipReason.CANCELLED:
                report.cancelled += 1
            elif reason is SkipReason.NOT_A_MEMBER or member is None:
                report.not_a_member += 1
            else:
                candidates.append((order, member))
        if not candidates:
            return
        recorded = await self.ports.recorded.recorded_orders([o.id for o, _ in candidates])
        transaction_ids: list[int] = []
        for order, member in candidates:
            if order.id in recorded:
                report.already_recorded += 1
                continue
            recorded.add(order.id)  # the same order twice in a page earns once
            try:
                result = await self.ports.ledger.record_purchase(
                    purchase_of(order, member.id, PURCHASE_SOURCE), order_key(order.id)
                )
            except DomainError as error:
                report.rejected.append(Rejection(order.id, error.code.value, error.message))
                continue
            report.earned += 1
            if result.transaction_id is not None:
                transaction_ids.append(result.transaction_id)
        if transaction_ids:
            earned = await self.ports.transactions.transactions_by_ids(transaction_ids)
            report.points_earned += sum(t.points for t in earned)

    async def _save(self, since: date, cursor: Cursor, complete: bool) -> None:
        value = {
            "since": since.isoformat(),
            "after": cursor.after.isoformat(),
            "skip": cursor.skip,
            "complete": complete,
        }
        await self.ports.checkpoints.save(JOB_NAME, value, self.clock())


def _to_millis(moment: datetime) -> datetime:
    """The instant as commercetools stores it (milliseconds), so the cursor compares equal."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
