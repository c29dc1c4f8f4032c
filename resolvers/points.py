from __future__ import annotations

import base64
import binascii
from datetime import datetime

import strawberry

from loyalty.models import Balance, Transaction, TransactionStatus
from loyalty.models import Channel as DomainChannel
from loyalty.models import TransactionKind as DomainKind
from resolvers.node import Node, serial_number, to_global_id

PointsTransactionKind = strawberry.enum(DomainKind, name="PointsTransactionKind")
Channel = strawberry.enum(DomainChannel, name="Channel")


@strawberry.type
class ExpiringPoints:
    points: int
    expires_at: datetime


@strawberry.type
class PointsBalance:
    available: int = strawberry.field(description="Points the member can spend now.")
    pending: int = strawberry.field(
        description="Earned but not yet spendable (inside the return window)."
    )
    lifetime_earned: int
    expiring_next: ExpiringPoints | None = strawberry.field(
        description="The next batch of points to expire, if any."
    )

    @classmethod
    def of(cls, balance: Balance) -> PointsBalance:
        expiring = balance.expiring_next
        return cls(
            available=balance.available,
            pending=balance.pending,
            lifetime_earned=balance.lifetime_earned,
            expiring_next=(
                ExpiringPoints(points=expiring.points, expires_at=expiring.expires_at)
                if expiring
                else None
            ),
        )


@strawberry.type
class PointsTransaction(Node):
    id: strawberry.ID
    kind: PointsTransactionKind  # type: ignore[valid-type]
    points: int = strawberry.field(description="Signed: positive credits, negative debits.")
    status: str = strawberry.field(description="PENDING | POSTED | REVERSED")
    occurred_at: datetime
    description: str | None
    order_id: str | None
    channel: Channel | None  # type: ignore[valid-type]
    available_at: datetime | None = strawberry.field(
        description="When pending points become spendable."
    )

    @classmethod
    def of(cls, txn: Transaction, now: datetime) -> PointsTransaction:
        status = txn.status
        if (
            status is TransactionStatus.PENDING
            and txn.available_at is not None
            and txn.available_at <= now
        ):
            status = TransactionStatus.POSTED  # matured: lazily shown as posted
        return cls(
            id=to_global_id("PointsTransaction", txn.id),
            kind=txn.kind,
            points=txn.points,
            status=status.value,
            occurred_at=txn.occurred_at,
            description=txn.description,
            order_id=txn.order_id,
            channel=txn.channel,
            available_at=txn.available_at,
        )


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class PointsTransactionEdge:
    node: PointsTransaction
    cursor: str


@strawberry.type
class PointsTransactionConnection:
    edges: list[PointsTransactionEdge]
    page_info: PageInfo


def transaction_cursor(transaction_id: int) -> str:
    return base64.urlsafe_b64encode(f"tx:{transaction_id}".encode()).decode()


def parse_transaction_cursor(cursor: str) -> int | None:
    try:
        raw = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    prefix, _, value = raw.partition(":")
    return serial_number(value) if prefix == "tx" else None
