"""Erasure and export on SQLAlchemy Core (`loyalty.privacy.PrivacyStore`).

An erasure session is a ledger session (`SqlLedgerSession`: one database transaction, with
its row locks and retry semantics) plus the statements that remove personal data. Queued
CDP deletion requests are `job_state` rows named `cdp-deletion:<member uuid>` whose value is
`{"cdp_user_id", "queued_at", "attempts", "last_error"}`; the row is deleted once the CDP
accepted the request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapters.db import tables as t
from adapters.db.store import SqlLedgerSession, SqlLoyaltyStore, _member, _transaction
from loyalty.models import Member, Transaction, TransactionKind
from loyalty.privacy import DELETION_JOB_PREFIX, GIFT_LINK_KEYS, MemberRecords, QueuedDeletion

GIFT_KINDS = (TransactionKind.GIFT_SENT.value, TransactionKind.GIFT_RECEIVED.value)
# Columns of `members` an erasure keeps: the uuid, the enrolment date and the erasure date.
KEPT_MEMBER_COLUMNS = frozenset({"id", "enrolled_at", "forgotten_at"})


class SqlErasureSession(SqlLedgerSession):
    """`loyalty.privacy.ErasureSession`: one write transaction."""

    async def member_for_erasure(self, member_id: str) -> Member | None:
        m = t.members
        row = await self._one(
            select(m).where(m.c.id == member_id, m.c.forgotten_at.is_(None)).with_for_update()
        )
        return _member(row) if row else None

    async def linked_transactions(self, member_id: str) -> list[Transaction]:
        tx = t.ledger_transactions
        gift_links = [tx.c.extra[key].as_string() == member_id for key in GIFT_LINK_KEYS]
        gifts = and_(tx.c.kind.in_(GIFT_KINDS), or_(*gift_links))
        statement = select(tx).where(or_(tx.c.member_id == member_id, gifts)).order_by(tx.c.id)
        rows = (await self.conn.execute(statement)).all()
        return [_transaction(r) for r in rows]

    async def redact_transaction(
        self, transaction_id: int, *, description: str | None, actor: str | None,
        extra: Mapping[str, Any],
    ) -> None:  # fmt: skip
        tx = t.ledger_transactions
        await self.conn.execute(
            update(tx)
            .where(tx.c.id == transaction_id)
            .values(description=description, actor=actor, extra=dict(extra))
        )

    async def erase_member(self, member_id: str, at: datetime) -> None:
        m = t.members
        # Every other nullable column is personal (identifiers, contact, names, referrer),
        # including any a later migration adds.
        cleared: dict[str, Any] = {
            c.name: None for c in m.c if c.nullable and c.name not in KEPT_MEMBER_COLUMNS
        }
        await self.conn.execute(
            update(m).where(m.c.id == member_id).values(**cleared, forgotten_at=at)
        )

    async def delete_offers(self, member_id: str) -> int:
        o = t.offers
        result = await self.conn.execute(delete(o).where(o.c.member_id == member_id))
        return int(result.rowcount)

    async def delete_outbox(self, cdp_user_id: str) -> int:
        ob = t.outbox
        result = await self.conn.execute(delete(ob).where(ob.c.user_id == cdp_user_id))
        return int(result.rowcount)

    async def forget_results(self, member_id: str) -> int:
        ik = t.idempotency_keys
        result = await self.conn.execute(
            delete(ik).where(ik.c.result["member_id"].as_string() == member_id)
        )
        return int(result.rowcount)

    async def drop_insights(self, member_id: str) -> None:
        ms = t.member_segments
        await self.conn.execute(delete(ms).where(ms.c.member_id == member_id))

    async def redact_tier_assignments(self, member_id: str, reason: str) -> None:
        ta = t.tier_assignments
        await self.conn.execute(update(ta).where(ta.c.member_id == member_id).values(reason=reason))

    async def dissolve_household(self, household_id: str) -> None:
        h, hm, a = t.households, t.household_members, t.ledger_accounts
        await self.drop_household_invitations(household_id)
        await self.conn.execute(delete(hm).where(hm.c.household_id == household_id))
        referenced = exists().where(a.c.household_id == household_id)
        await self.conn.execute(delete(h).where(h.c.id == household_id, ~referenced))

    async def delete_household_invitations(self, member_id: str) -> int:
        hi = t.household_invitations
        result = await self.conn.execute(
            delete(hi).where(or_(hi.c.member_id == member_id, hi.c.invited_by_id == member_id))
        )
        return int(result.rowcount)

    async def queue_deletion(self, deletion: QueuedDeletion) -> None:
        await self.conn.execute(
            t.job_state.insert().values(
                name=f"{DELETION_JOB_PREFIX}{deletion.member_id}",
                value=_deletion_value(deletion),
                updated_at=deletion.queued_at,
            )
        )


def _deletion_value(deletion: QueuedDeletion) -> dict[str, Any]:
    return {
        "cdp_user_id": deletion.cdp_user_id,
        "queued_at": deletion.queued_at.isoformat(),
        "attempts": deletion.attempts,
        "last_error": deletion.last_error,
    }


def _deletion(name: str, value: Mapping[str, Any]) -> QueuedDeletion:
    return QueuedDeletion(
        member_id=name.removeprefix(DELETION_JOB_PREFIX),
        cdp_user_id=str(value["cdp_user_id"]),
        queued_at=datetime.fromisoformat(str(value["queued_at"])),
        attempts=int(value.get("attempts") or 0),
        last_error=value.get("last_error"),
    )


class SqlPrivacyStore:
    """`loyalty.privacy.PrivacyStore` on one SQLAlchemy engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._ledger = SqlLoyaltyStore(engine)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[SqlErasureSession]:
        async with self._ledger.session() as ledger:
            yield SqlErasureSession(ledger.conn)

    async def records(self, member_id: str) -> MemberRecords | None:
        async with self.engine.connect() as conn:
            m = t.members
            member = (
                await conn.execute(select(m).where(m.c.id == member_id, m.c.forgotten_at.is_(None)))
            ).first()
            if member is None:
                return None

            async def rows(statement: Any) -> list[dict[str, Any]]:
                return [dict(r._mapping) for r in (await conn.execute(statement)).all()]

            async def one(table: Any) -> dict[str, Any] | None:
                found = await rows(select(table).where(table.c.member_id == member_id))
                return found[0] if found else None

            ta, pu, o, a = t.tier_assignments, t.purchases, t.offers, t.ledger_accounts
            hi = t.household_invitations
            return MemberRecords(
                member=dict(member._mapping),
                household=await _household(conn, member_id),
                accounts=await rows(select(a).where(a.c.member_id == member_id).order_by(a.c.code)),
                tier_assignments=await rows(
                    select(ta)
                    .where(ta.c.member_id == member_id)
                    .order_by(ta.c.assigned_at, ta.c.id)
                ),
                held_tier=await one(t.member_tiers),
                insights=await one(t.member_segments),
                purchases=await rows(
                    select(pu)
                    .where(pu.c.member_id == member_id)
                    .order_by(pu.c.occurred_at, pu.c.order_id)
                ),
                transactions=await _transactions(conn, member_id),
                offers=await rows(
                    select(o).where(o.c.member_id == member_id).order_by(o.c.created_at, o.c.id)
                ),
                outbox=await rows(
                    select(t.outbox)
                    .where(t.outbox.c.user_id == member.cdp_user_id)
                    .order_by(t.outbox.c.id)
                ),
                household_invitations=await rows(
                    select(hi)
                    .where(or_(hi.c.member_id == member_id, hi.c.invited_by_id == member_id))
                    .order_by(hi.c.created_at, hi.c.household_id, hi.c.member_id)
                ),
            )

    async def queued_deletions(self) -> list[QueuedDeletion]:
        js = t.job_state
        async with self.engine.connect() as conn:
            found = (
                await conn.execute(
                    select(js.c.name, js.c.value).where(js.c.name.like(f"{DELETION_JOB_PREFIX}%"))
                )
            ).all()
        return sorted(
            (_deletion(name, value) for name, value in found),
            key=lambda d: (d.queued_at, d.member_id),
        )

    async def deletion_sent(self, member_id: str) -> None:
        js = t.job_state
        async with self._ledger.session() as session:
            await session.conn.execute(
                delete(js).where(js.c.name == f"{DELETION_JOB_PREFIX}{member_id}")
            )

    async def deletion_failed(self, member_id: str, error: str, at: datetime) -> None:
        js = t.job_state
        name = f"{DELETION_JOB_PREFIX}{member_id}"
        async with self._ledger.session() as session:
            row = (
                await session.conn.execute(
                    select(js.c.value).where(js.c.name == name).with_for_update()
                )
            ).first()
            if row is None:  # sent meanwhile by another process
                return
            queued = _deletion(name, row.value)
            value = _deletion_value(
                QueuedDeletion(
                    queued.member_id,
                    queued.cdp_user_id,
                    queued.queued_at,
                    attempts=queued.attempts + 1,
                    last_error=error[:2000],
                )
            )
            await session.conn.execute(
                update(js).where(js.c.name == name).values(value=value, updated_at=at)
            )


async def _household(conn: AsyncConnection, member_id: str) -> dict[str, Any] | None:
    h, hm = t.households, t.household_members
    mine = (
        await conn.execute(
            select(h, hm.c.joined_at)
            .join(hm, hm.c.household_id == h.c.id)
            .where(hm.c.member_id == member_id)
        )
    ).first()
    if mine is None:
        return None
    everyone = (
        await conn.execute(
            select(hm.c.member_id)
            .where(hm.c.household_id == mine.id)
            .order_by(hm.c.member_id != mine.owner_id, hm.c.joined_at, hm.c.member_id)
        )
    ).all()
    return {**dict(mine._mapping), "member_ids": [r.member_id for r in everyone]}


async def _transactions(conn: AsyncConnection, member_id: str) -> list[dict[str, Any]]:
    """The member's transactions, and the unattributed system ones (maturations) that
    move points in its own accounts; each with its postings."""
    tx, p, a = t.ledger_transactions, t.ledger_postings, t.ledger_accounts
    source, destination = a.alias("source"), a.alias("destination")
    own_accounts = select(a.c.id).where(a.c.member_id == member_id)
    touching = select(p.c.transaction_id).where(
        or_(p.c.source_id.in_(own_accounts), p.c.destination_id.in_(own_accounts))
    )
    system = and_(tx.c.member_id.is_(None), tx.c.id.in_(touching))
    statement = select(tx).where(or_(tx.c.member_id == member_id, system)).order_by(tx.c.id)
    found = [dict(r._mapping) for r in (await conn.execute(statement)).all()]
    postings = (
        await conn.execute(
            select(p.c.transaction_id, source.c.code, destination.c.code, p.c.amount)
            .join(source, source.c.id == p.c.source_id)
            .join(destination, destination.c.id == p.c.destination_id)
            .where(p.c.transaction_id.in_([row["id"] for row in found]))
            .order_by(p.c.id)
        )
    ).all()
    by_transaction: dict[int, list[dict[str, Any]]] = {}
    for transaction_id, from_code, to_code, amount in postings:
        by_transaction.setdefault(transaction_id, []).append(
            {"source": from_code, "destination": to_code, "amount": int(amount)}
        )
    return [{**row, "postings": by_transaction.get(row["id"], [])} for row in found]
