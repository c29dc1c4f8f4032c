"""The loyalty store on SQLAlchemy Core: batched reads for the DataLoaders and one database
transaction per unit of work for the services (`loyalty.store.LoyaltyStore`)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, case, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import Select

from adapters.db import reads
from adapters.db import tables as t
from adapters.db.connections import Connector, SharedConnection
from adapters.db.engine import WRITE_OPTION
from adapters.db.outages import outages_as_unavailable
from loyalty.ledger import member_account
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
from loyalty.ports import PostedTransaction, PostingEvents
from loyalty.segments import Activity, Insights, Segment
from loyalty.store import (
    ConcurrentWrite,
    MemberPage,
    MemberSearch,
    NewOffer,
    NewPurchase,
    NewTransaction,
    PurchaseRecord,
    SpendRow,
    StoredResult,
    Wallet,
    WalletReading,
)
from loyalty.upstreams import TrackEvent

# Points uses: the transactions in which a member spends its points (segments' P feature).
POINTS_USE_KINDS = (
    TransactionKind.REDEEM.value,
    TransactionKind.DONATION.value,
    TransactionKind.GIFT_SENT.value,
)


def _member(row: Any) -> Member:
    return Member(
        id=row.id,
        commerce_customer_id=row.commerce_customer_id,
        cdp_user_id=row.cdp_user_id,
        email=row.email,
        enrolled_at=row.enrolled_at,
        first_name=row.first_name,
        last_name=row.last_name,
        referred_by_id=row.referred_by_id,
    )


def _transaction(row: Any) -> Transaction:
    return Transaction(
        id=row.id,
        member_id=row.member_id,
        kind=TransactionKind(row.kind),
        points=row.points,
        status=TransactionStatus(row.status),
        occurred_at=row.occurred_at,
        available_at=row.available_at,
        description=row.description,
        order_id=row.order_id,
        channel=Channel(row.channel) if row.channel else None,
        store_id=row.store_id,
        actor=row.actor,
        extra=dict(row.extra or {}),
    )


def _active_members() -> Select[Any]:
    return select(t.members).where(t.members.c.forgotten_at.is_(None))


class SqlReader:
    """Batched reads: each method is one query whatever the number of keys. Connections
    come from `connector`: the engine (one per read), or a request's `SharedConnection`."""

    def __init__(self, connector: Connector) -> None:
        self.connector = connector

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection]:
        with outages_as_unavailable():
            async with self.connector.connect() as conn:
                yield conn

    async def _all(self, statement: Any, parameters: Mapping[str, Any] | None = None) -> list[Any]:
        async with self._connection() as conn:
            return list((await conn.execute(statement, parameters)).all())

    async def members_by_ids(self, ids: Sequence[str]) -> list[Member]:
        rows = await self._all(reads.MEMBERS_BY_IDS, {"ids": list(ids)})
        return [_member(r) for r in rows]

    async def members_by_commerce_ids(self, ids: Sequence[str]) -> list[Member]:
        rows = await self._all(reads.MEMBERS_BY_COMMERCE_IDS, {"ids": list(ids)})
        return [_member(r) for r in rows]

    async def search_members(self, query: MemberSearch) -> MemberPage:
        statement = _active_members()
        if query.search:
            pattern = f"%{query.search.strip().lower()}%"
            c = t.members.c
            full_name = func.coalesce(c.first_name, "") + " " + func.coalesce(c.last_name, "")
            statement = statement.where(
                or_(
                    func.lower(c.email).like(pattern),
                    func.lower(c.first_name).like(pattern),
                    func.lower(c.last_name).like(pattern),
                    func.lower(full_name).like(pattern),
                    func.lower(c.commerce_customer_id).like(pattern),
                    func.lower(c.cdp_user_id).like(pattern),
                )
            )  # fmt: skip
        if query.member_ids is not None:
            statement = statement.where(t.members.c.id.in_(query.member_ids))
        if query.segment is not None:
            ms = t.member_segments
            in_segment = select(ms.c.member_id).where(ms.c.segment == query.segment.value)
            statement = statement.where(t.members.c.id.in_(in_segment))
        offset = int(query.after) + 1 if query.after is not None else 0
        async with self._connection() as conn:
            total = (
                await conn.execute(select(func.count()).select_from(statement.subquery()))
            ).scalar_one()
            rows = (
                await conn.execute(
                    statement.order_by(t.members.c.enrolled_at, t.members.c.id)
                    .offset(offset)
                    .limit(query.limit + 1)
                )
            ).all()
        members = [_member(r) for r in rows[: query.limit]]
        return MemberPage(members, int(total), len(rows) > query.limit)

    async def wallets(
        self, holders: Sequence[str], now: datetime, *, history: bool
    ) -> dict[str, WalletReading]:
        """Per wallet holder, its points as reads show them; with `history`, what first-in
        first-out expiry needs too. Two or three statements on one connection, plus one
        with `history`."""
        prefixes = {h: member_account(h, "") for h in dict.fromkeys(holders)}
        available = sorted(f"{w}available" for w in prefixes.values())
        codes = sorted({*available, *(f"{w}pending" for w in prefixes.values())})
        credits: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
        debits: dict[str, int] = defaultdict(int)
        async with self._connection() as conn:
            balances = dict((await conn.execute(reads.ACCOUNT_BALANCES, {"codes": codes})).all())
            due_earns = await _due_pending_by_earn(conn, codes, now)
            if history:
                moves = await conn.execute(reads.WALLET_MOVES, {"available": available})
                for to, from_, occurred_at, amount in moves.all():
                    if to in available:
                        credits[to].append((occurred_at, int(amount)))
                    if from_ in available:
                        debits[from_] += int(amount)
        due: dict[str, int] = defaultdict(int)
        for code, _, available_at, amount in due_earns:
            due[code] += amount
            # A due pending earn counts as available from the day its window passed.
            credits[code.removesuffix("pending") + "available"].append((available_at, amount))
        return {
            holder: WalletReading(
                available=int(balances.get(f"{w}available", 0)) + due[f"{w}pending"],
                pending=int(balances.get(f"{w}pending", 0)) - due[f"{w}pending"],
                credits=tuple(credits.get(f"{w}available", ())) if history else (),
                debits=debits.get(f"{w}available", 0),
            )
            for holder, w in prefixes.items()
        }

    async def lifetime_earned(self, member_ids: Sequence[str]) -> dict[str, int]:
        rows = await self._all(reads.LIFETIME_EARNED, {"ids": list(member_ids)})
        return {member_id: int(points or 0) for member_id, points in rows}

    async def wallets_with_due_pending(self, now: datetime) -> list[str]:
        a, tx, p = t.ledger_accounts, t.ledger_transactions, t.ledger_postings
        rows = await self._all(
            select(a.c.code)
            .distinct()
            .select_from(p.join(tx, tx.c.id == p.c.transaction_id))
            .join(a, a.c.id == p.c.destination_id)
            .where(
                a.c.kind == AccountKind.WALLET_PENDING.value,
                tx.c.status == TransactionStatus.PENDING.value,
                tx.c.kind == TransactionKind.EARN.value,
                tx.c.available_at <= now,
            )
            .order_by(a.c.code)
        )
        return [r.code for r in rows]

    async def wallets_with_available(self) -> list[str]:
        a = t.ledger_accounts
        rows = await self._all(
            select(a.c.code)
            .where(a.c.kind == AccountKind.WALLET_AVAILABLE.value, a.c.balance > 0)
            .order_by(a.c.code)
        )
        return [r.code for r in rows]

    async def transactions(
        self, member_ids: Sequence[str], *, limit: int, before_id: int | None
    ) -> dict[str, list[Transaction]]:
        tx = t.ledger_transactions
        rank = func.row_number().over(partition_by=tx.c.member_id, order_by=tx.c.id.desc())
        inner = select(tx, rank.label("rank")).where(tx.c.member_id.in_(member_ids))
        if before_id is not None:
            inner = inner.where(tx.c.id < before_id)
        ranked = inner.subquery()
        rows = await self._all(
            select(ranked).where(ranked.c.rank <= limit).order_by(ranked.c.id.desc())
        )
        result: dict[str, list[Transaction]] = defaultdict(list)
        for row in rows:
            result[row.member_id].append(_transaction(row))
        return result

    async def transactions_by_ids(self, ids: Sequence[int]) -> list[Transaction]:
        tx = t.ledger_transactions
        return [_transaction(r) for r in await self._all(select(tx).where(tx.c.id.in_(ids)))]

    async def qualifying_spend_minor(
        self, member_ids: Sequence[str], since: datetime, until: datetime
    ) -> dict[str, int]:
        rows = await self._all(
            reads.QUALIFYING_SPEND, {"ids": list(member_ids), "since": since, "until": until}
        )
        return {m: int(v or 0) for m, v in rows}

    async def tier_assignments(self, member_ids: Sequence[str]) -> dict[str, TierAssignment]:
        rows = await self._all(reads.ACTIVE_TIER_ASSIGNMENTS, {"ids": list(member_ids)})
        return {r.member_id: _assignment(r) for r in rows}  # the latest wins

    async def held_tiers(self, member_ids: Sequence[str]) -> dict[str, HeldTier]:
        rows = await self._all(reads.HELD_TIERS, {"ids": list(member_ids)})
        return {r.member_id: _held_tier(r) for r in rows}

    async def held_tiers_due(self, now: datetime) -> list[str]:
        mt = t.member_tiers
        rows = await self._all(
            select(mt.c.member_id).where(mt.c.valid_until <= now).order_by(mt.c.member_id)
        )
        return [r.member_id for r in rows]

    async def top_spenders(self, since: datetime, until: datetime, limit: int) -> list[SpendRow]:
        pu = t.purchases
        net = func.sum(pu.c.program_amount_minor - pu.c.returned_program_amount_minor)
        rows = await self._all(
            select(pu.c.member_id, net.label("spend"), func.count().label("orders"))
            .join(t.members, t.members.c.id == pu.c.member_id)
            .where(pu.c.occurred_at >= since, pu.c.occurred_at < until)
            .where(t.members.c.forgotten_at.is_(None))
            .group_by(pu.c.member_id)
            .order_by(net.desc(), pu.c.member_id)
            .limit(limit)
        )
        return [SpendRow(r.member_id, int(r.spend or 0), int(r.orders)) for r in rows]

    async def segment_activity(
        self, member_ids: Sequence[str] | None, since: datetime, until: datetime
    ) -> dict[str, Activity]:
        pu, tx, m = t.purchases, t.ledger_transactions, t.members
        net = pu.c.program_amount_minor - pu.c.returned_program_amount_minor
        kept = net > 0  # an order returned in full is no purchase
        in_window = pu.c.occurred_at >= since
        bought = (
            select(
                pu.c.member_id,
                func.max(case((kept, pu.c.occurred_at))).label("last_at"),
                func.sum(case((kept, 1), else_=0)).label("purchases"),
                func.sum(case((and_(kept, in_window), 1), else_=0)).label("in_window"),
                func.sum(case((in_window, net), else_=0)).label("spend"),
            )
            .where(pu.c.occurred_at <= until)
            .group_by(pu.c.member_id)
        )
        uses = (
            select(tx.c.member_id, func.count().label("uses"))
            .where(tx.c.kind.in_(POINTS_USE_KINDS))
            .where(tx.c.status != TransactionStatus.REVERSED.value)
            .where(tx.c.occurred_at >= since, tx.c.occurred_at <= until)
            .group_by(tx.c.member_id)
        )
        members = select(m.c.id, m.c.enrolled_at).where(m.c.forgotten_at.is_(None))
        if member_ids is not None:
            bought = bought.where(pu.c.member_id.in_(member_ids))
            uses = uses.where(tx.c.member_id.in_(member_ids))
            members = members.where(m.c.id.in_(member_ids))
        b, u, mm = bought.subquery(), uses.subquery(), members.subquery()
        rows = await self._all(
            select(mm.c.id, mm.c.enrolled_at, b.c.last_at, b.c.purchases, b.c.in_window)
            .add_columns(b.c.spend, u.c.uses)
            .select_from(mm.outerjoin(b, b.c.member_id == mm.c.id))
            .outerjoin(u, u.c.member_id == mm.c.id)
        )
        return {
            r.id: Activity(
                enrolled_at=r.enrolled_at,
                last_purchase_at=r.last_at,
                purchases=int(r.purchases or 0),
                purchases_window=int(r.in_window or 0),
                spend_window_minor=int(r.spend or 0),
                points_uses_window=int(r.uses or 0),
            )
            for r in rows
        }

    async def member_insights(self, member_ids: Sequence[str]) -> dict[str, Insights]:
        ms = t.member_segments
        rows = await self._all(select(ms).where(ms.c.member_id.in_(member_ids)))
        return {
            r.member_id: Insights(
                member_id=r.member_id,
                segment=Segment(r.segment),
                recency_days=r.recency_days,
                frequency_12m=int(r.frequency_12m),
                spend_12m_minor=int(r.spend_12m_minor),
                engagement_score=float(r.engagement_score),
                churn_risk=float(r.churn_risk),
                computed_at=r.computed_at,
            )
            for r in rows
        }

    async def households_of_members(self, member_ids: Sequence[str]) -> dict[str, Household]:
        rows = await self._all(reads.HOUSEHOLDS_OF_MEMBERS, {"ids": list(member_ids)})
        wanted = set(member_ids)
        return {m: h for h in _grouped_households(rows) for m in h.member_ids if m in wanted}

    async def households_by_ids(self, ids: Sequence[str]) -> list[Household]:
        return _grouped_households(await self._all(reads.HOUSEHOLDS_BY_IDS, {"ids": list(ids)}))

    async def household_invitations_of_members(
        self, member_ids: Sequence[str], now: datetime
    ) -> dict[str, list[HouseholdInvitation]]:
        return await self._pending_invitations(
            reads.HOUSEHOLD_INVITATIONS_OF_MEMBERS, member_ids, now, "member_id"
        )

    async def household_invitations_of_households(
        self, household_ids: Sequence[str], now: datetime
    ) -> dict[str, list[HouseholdInvitation]]:
        return await self._pending_invitations(
            reads.HOUSEHOLD_INVITATIONS_OF_HOUSEHOLDS, household_ids, now, "household_id"
        )

    async def _pending_invitations(
        self, statement: Select[Any], ids: Sequence[str], now: datetime, by: str
    ) -> dict[str, list[HouseholdInvitation]]:
        """The invitations a read of `reads` found, grouped by the column `by` (its order
        kept: newest first), with an empty list for each id that has none."""
        rows = await self._all(statement, {"ids": list(ids), "now": now})
        found: dict[str, list[HouseholdInvitation]] = {i: [] for i in ids}
        for row in rows:
            found[getattr(row, by)].append(_invitation(row))
        return found

    async def offers_for_members(
        self, member_ids: Sequence[str], now: datetime
    ) -> dict[str, list[Offer]]:
        rows = await self._all(reads.OFFERS_FOR_MEMBERS, {"ids": list(member_ids), "now": now})
        return _usable_offers(rows, member_ids, now)

    async def members_after(self, after_id: str | None, limit: int) -> list[Member]:
        statement = _active_members()
        if after_id is not None:
            statement = statement.where(t.members.c.id > after_id)
        rows = await self._all(statement.order_by(t.members.c.id).limit(limit))
        return [_member(r) for r in rows]


def _usable_offers(
    rows: Sequence[Any], member_ids: Sequence[str], now: datetime
) -> dict[str, list[Offer]]:
    own_keys = {(row.member_id, row.key) for row in rows if row.member_id is not None}
    result: dict[str, list[Offer]] = {m: [] for m in member_ids}
    for row in rows:
        if row.member_id is None:
            offer = _offer(row)
            for member_id in member_ids:
                if (member_id, row.key) not in own_keys:
                    result[member_id].append(offer)
        elif (
            row.member_id in result
            and row.active
            and row.redeemed_at is None
            and (row.valid_from is None or row.valid_from <= now)
            and (row.valid_until is None or row.valid_until > now)
        ):
            result[row.member_id].append(_offer(row))
    return result


async def _due_pending_by_earn(
    conn: AsyncConnection, codes: Sequence[str], now: datetime
) -> list[tuple[str, int, datetime, int]]:
    """(pending account, earn id, available at, points still pending) of the earns whose
    return window has passed but that the job has not moved to available yet: what reads
    show as available already."""
    earns = (await conn.execute(reads.DUE_PENDING_EARNS, {"codes": codes, "now": now})).all()
    if not earns:
        return []
    clawed = dict(
        (await conn.execute(reads.CLAWED_FROM_PENDING, {"earns": [e.id for e in earns]})).all()
    )
    return [
        (code, earn_id, available_at, int(amount) - int(clawed.get(earn_id) or 0))
        for code, earn_id, available_at, amount in earns
    ]


def _grouped_households(rows: Sequence[Any]) -> list[Household]:
    """Households from rows of (id, owner_id, created_at, member_id), one per member."""
    grouped: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        grouped[row.id].append(row)
    return [
        Household(
            id=hid,
            owner_id=group[0].owner_id,
            # The owner first, then by the date they joined.
            member_ids=tuple(
                r.member_id for r in sorted(group, key=lambda r: r.member_id != r.owner_id)
            ),
            created_at=group[0].created_at,
        )
        for hid, group in grouped.items()
    ]


def _invitation(row: Any) -> HouseholdInvitation:
    return HouseholdInvitation(
        household_id=row.household_id,
        member_id=row.member_id,
        invited_by_id=row.invited_by_id,
        created_at=row.created_at,
        expires_at=row.expires_at,
    )


def _held_tier(row: Any) -> HeldTier:
    return HeldTier(
        member_id=row.member_id,
        tier_key=row.tier_key,
        period_start=row.period_start,
        valid_until=row.valid_until,
    )


def _assignment(row: Any) -> TierAssignment:
    return TierAssignment(
        member_id=row.member_id,
        tier_key=row.tier_key,
        reason=row.reason,
        assigned_by=row.assigned_by,
        assigned_at=row.assigned_at,
    )


def _offer(row: Any) -> Offer:
    from decimal import Decimal

    return Offer(
        id=row.id,
        key=row.key,
        kind=OfferKind(row.kind),
        title=row.title,
        code=row.code,
        discount_percent=Decimal(row.discount_percent) if row.discount_percent else None,
        bonus_points=row.bonus_points,
        bonus_multiplier=Decimal(row.bonus_multiplier) if row.bonus_multiplier else None,
        valid_until=row.valid_until,
        member_id=row.member_id,
        tier_key=row.tier_key,
    )


class SqlLedgerSession:
    """One write transaction (`loyalty.store.LedgerSession`)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.dialect = conn.dialect.name
        self._account_ids: dict[str, int] = {}
        self.posted: list[PostedTransaction] = []  # told to `PostingEvents` once committed

    async def _one(self, statement: Any) -> Any:
        return (await self.conn.execute(statement)).first()

    async def find_result(self, key: str) -> StoredResult | None:
        ik = t.idempotency_keys
        row = await self._one(select(ik).where(ik.c.key == key))
        return StoredResult(row.operation, row.input_hash, dict(row.result)) if row else None

    async def save_result(
        self, key: str, operation: str, input_hash: str, result: Mapping[str, Any]
    ) -> None:
        await self.conn.execute(
            t.idempotency_keys.insert().values(
                key=key,
                operation=operation,
                input_hash=input_hash,
                result=dict(result),
                created_at=datetime.now(UTC),
            )
        )

    async def member(self, member_id: str) -> Member | None:
        row = await self._one(_active_members().where(t.members.c.id == member_id))
        return _member(row) if row else None

    async def member_by_commerce_id(self, commerce_customer_id: str) -> Member | None:
        c = t.members.c
        row = await self._one(
            select(t.members).where(c.commerce_customer_id == commerce_customer_id)
        )
        return _member(row) if row else None

    async def member_by_cdp_id(self, cdp_user_id: str) -> Member | None:
        row = await self._one(select(t.members).where(t.members.c.cdp_user_id == cdp_user_id))
        return _member(row) if row else None

    async def add_member(self, member: Member) -> None:
        await self.conn.execute(
            t.members.insert().values(
                id=member.id,
                commerce_customer_id=member.commerce_customer_id,
                cdp_user_id=member.cdp_user_id,
                email=member.email,
                first_name=member.first_name,
                last_name=member.last_name,
                enrolled_at=member.enrolled_at,
                referred_by_id=member.referred_by_id,
            )
        )

    async def wallet(self, member_id: str) -> Wallet:
        """The member's own wallet, or, in a household, the owner's (the shared wallet)."""
        h, hm = t.households, t.household_members
        row = await self._one(
            select(h.c.id, h.c.owner_id)
            .join(hm, hm.c.household_id == h.c.id)
            .where(hm.c.member_id == member_id)
        )
        owner = row.owner_id if row is not None else member_id
        return Wallet(
            member_account(owner, "pending"),
            member_account(owner, "available"),
            owner_member_id=owner,
            household_id=row.id if row is not None else None,
        )

    async def ensure_account(
        self,
        code: str,
        kind: AccountKind,
        *,
        member_id: str | None = None,
        household_id: str | None = None,
    ) -> None:
        values = {
            "code": code,
            "kind": kind.value,
            "member_id": member_id,
            "household_id": household_id,
            "balance": 0,
            "created_at": datetime.now(UTC),
        }
        insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        await self.conn.execute(
            insert(t.ledger_accounts)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["code"])
        )

    async def _ids(self, codes: Sequence[str]) -> dict[str, int]:
        missing = [c for c in codes if c not in self._account_ids]
        if missing:
            a = t.ledger_accounts
            rows = (
                await self.conn.execute(select(a.c.code, a.c.id).where(a.c.code.in_(missing)))
            ).all()
            self._account_ids.update(dict(rows))
        unknown = [c for c in codes if c not in self._account_ids]
        if unknown:
            raise LookupError(f"no ledger account {unknown[0]!r}")
        return {c: self._account_ids[c] for c in codes}

    async def lock_accounts(self, codes: Sequence[str]) -> dict[str, int]:
        a = t.ledger_accounts
        result: dict[str, int] = {}
        for code in sorted(set(codes)):  # one fixed order: no deadlocks between lockers
            row = await self._one(
                select(a.c.id, a.c.balance).where(a.c.code == code).with_for_update()
            )
            if row is None:
                raise LookupError(f"no ledger account {code!r}")
            self._account_ids[code] = row.id
            result[code] = int(row.balance)
        return result

    async def post(self, txn: NewTransaction, postings: Sequence[Posting]) -> Transaction:
        if not postings:
            raise ValueError("a transaction needs at least one posting")
        for posting in postings:
            if posting.amount <= 0 or posting.source == posting.destination:
                raise ValueError(f"invalid posting {posting}")
        ids = await self._ids(
            sorted({p.source for p in postings} | {p.destination for p in postings})
        )
        now = datetime.now(UTC)
        tx = t.ledger_transactions
        txn_id = (
            await self.conn.execute(
                tx.insert()
                .values(
                    member_id=txn.member_id,
                    kind=txn.kind.value,
                    points=txn.points,
                    status=txn.status.value,
                    occurred_at=txn.occurred_at,
                    available_at=txn.available_at,
                    description=txn.description,
                    order_id=txn.order_id,
                    channel=txn.channel.value if txn.channel else None,
                    store_id=txn.store_id,
                    actor=txn.actor,
                    reverses_id=txn.reverses_id,
                    extra=txn.extra,
                    created_at=now,
                )
                .returning(tx.c.id)
            )
        ).scalar_one()
        await self.conn.execute(
            t.ledger_postings.insert(),
            [
                {
                    "transaction_id": txn_id,
                    "source_id": ids[p.source],
                    "destination_id": ids[p.destination],
                    "amount": p.amount,
                }
                for p in postings
            ],
        )
        deltas: dict[str, int] = defaultdict(int)
        for p in postings:
            deltas[p.source] -= p.amount
            deltas[p.destination] += p.amount
        a = t.ledger_accounts
        for code in sorted(deltas):
            # Program accounts (issuance, charities, ...) keep no cached balance: every earn
            # touches issuance, and a hot row would serialize all of them. Their balance is
            # the sum of their postings.
            if deltas[code] and code.startswith(("member:", "household:")):
                await self.conn.execute(
                    update(a).where(a.c.id == ids[code]).values(balance=a.c.balance + deltas[code])
                )
        self.posted.append(PostedTransaction(txn.kind, sum(p.amount for p in postings)))
        return txn.posted_as(txn_id)

    async def purchase(self, order_id: str) -> tuple[str, int | None] | None:
        pu = t.purchases
        row = await self._one(
            select(pu.c.member_id, pu.c.transaction_id).where(pu.c.order_id == order_id)
        )
        return (row.member_id, row.transaction_id) if row else None

    async def add_purchase(self, purchase: NewPurchase, transaction_id: int | None) -> None:
        await self.conn.execute(
            t.purchases.insert().values(
                order_id=purchase.order_id,
                member_id=purchase.member_id,
                currency=purchase.currency,
                amount_minor=purchase.amount_minor,
                program_amount_minor=purchase.program_amount_minor,
                returned_program_amount_minor=0,
                occurred_at=purchase.occurred_at,
                channel=purchase.channel.value,
                store_id=purchase.store_id,
                transaction_id=transaction_id,
                source=purchase.source,
            )
        )

    async def transaction(self, transaction_id: int) -> Transaction | None:
        tx = t.ledger_transactions
        row = await self._one(select(tx).where(tx.c.id == transaction_id))
        return _transaction(row) if row else None

    async def qualifying_spend_minor(self, member_id: str, since: datetime, until: datetime) -> int:
        pu = t.purchases
        value = (
            await self.conn.execute(
                select(
                    func.sum(pu.c.program_amount_minor - pu.c.returned_program_amount_minor)
                ).where(
                    and_(
                        pu.c.member_id == member_id,
                        pu.c.occurred_at >= since,
                        pu.c.occurred_at < until,
                    )
                )
            )
        ).scalar()
        return int(value or 0)

    async def tier_assignment(self, member_id: str) -> TierAssignment | None:
        ta = t.tier_assignments
        row = await self._one(
            select(ta)
            .where(ta.c.member_id == member_id, ta.c.revoked_at.is_(None))
            .order_by(ta.c.assigned_at.desc())
            .limit(1)
        )
        return _assignment(row) if row else None

    async def add_tier_assignment(self, assignment: TierAssignment) -> None:
        await self.revoke_tier_assignment(assignment.member_id, assignment.assigned_at)
        await self.conn.execute(
            t.tier_assignments.insert().values(
                id=str(uuid.uuid4()),
                member_id=assignment.member_id,
                tier_key=assignment.tier_key,
                reason=assignment.reason,
                assigned_by=assignment.assigned_by,
                assigned_at=assignment.assigned_at,
            )
        )

    async def revoke_tier_assignment(self, member_id: str, at: datetime) -> None:
        ta = t.tier_assignments
        await self.conn.execute(
            update(ta)
            .where(ta.c.member_id == member_id, ta.c.revoked_at.is_(None))
            .values(revoked_at=at)
        )

    async def held_tier(self, member_id: str, *, for_update: bool = False) -> HeldTier | None:
        mt = t.member_tiers
        statement = select(mt).where(mt.c.member_id == member_id)
        row = await self._one(statement.with_for_update() if for_update else statement)
        return _held_tier(row) if row else None

    async def save_held_tier(self, held: HeldTier, at: datetime) -> None:
        mt = t.member_tiers
        values = {
            "tier_key": held.tier_key,
            "period_start": held.period_start,
            "valid_until": held.valid_until,
            "updated_at": at,
        }
        changed = await self.conn.execute(
            update(mt).where(mt.c.member_id == held.member_id).values(**values)
        )
        if changed.rowcount == 0:  # a concurrent insert is a unique violation: retried
            await self.conn.execute(mt.insert().values(member_id=held.member_id, **values))

    async def drop_held_tier(self, member_id: str) -> None:
        mt = t.member_tiers
        await self.conn.execute(mt.delete().where(mt.c.member_id == member_id))

    async def add_outbox(self, events: Sequence[TrackEvent]) -> None:
        if not events:
            return
        now = datetime.now(UTC)
        await self.conn.execute(
            t.outbox.insert(),
            [
                {
                    "message_id": e.message_id,
                    "user_id": e.user_id,
                    "event": e.event,
                    "properties": e.properties,
                    "occurred_at": e.timestamp,
                    "created_at": now,
                    "attempts": 0,
                }
                for e in events
            ],
        )

    async def wallet_members(self, member_id: str) -> list[str]:
        hm = t.household_members
        mine = select(hm.c.household_id).where(hm.c.member_id == member_id).scalar_subquery()
        rows = (
            await self.conn.execute(select(hm.c.member_id).where(hm.c.household_id == mine))
        ).all()
        return sorted({member_id, *(r.member_id for r in rows)})

    async def save_insights(self, rows: Sequence[Insights]) -> None:
        ms = t.member_segments
        insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        for start in range(0, len(rows), 500):
            statement = insert(ms)
            await self.conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["member_id"],
                    set_={c.name: statement.excluded[c.name] for c in ms.c if not c.primary_key},
                ),
                [
                    {
                        "member_id": r.member_id,
                        "segment": r.segment.value,
                        "recency_days": r.recency_days,
                        "frequency_12m": r.frequency_12m,
                        "spend_12m_minor": r.spend_12m_minor,
                        "engagement_score": r.engagement_score,
                        "churn_risk": r.churn_risk,
                        "computed_at": r.computed_at,
                    }
                    for r in rows[start : start + 500]
                ],
            )
        forgotten = select(t.members.c.id).where(t.members.c.forgotten_at.is_not(None))
        await self.conn.execute(delete(ms).where(ms.c.member_id.in_(forgotten)))

    async def household(self, household_id: str) -> Household | None:
        rows = (await self.conn.execute(reads.HOUSEHOLDS_BY_IDS, {"ids": [household_id]})).all()
        found = _grouped_households(rows)
        return found[0] if found else None

    async def household_of(self, member_id: str) -> Household | None:
        rows = (await self.conn.execute(reads.HOUSEHOLDS_OF_MEMBERS, {"ids": [member_id]})).all()
        found = _grouped_households(rows)
        return found[0] if found else None

    async def add_household(self, household_id: str, owner_id: str, at: datetime) -> None:
        await self.conn.execute(
            t.households.insert().values(id=household_id, owner_id=owner_id, created_at=at)
        )
        await self.add_household_member(household_id, owner_id, at)

    async def add_household_member(self, household_id: str, member_id: str, at: datetime) -> None:
        await self.conn.execute(
            t.household_members.insert().values(
                household_id=household_id, member_id=member_id, joined_at=at
            )
        )

    async def remove_household_member(self, household_id: str, member_id: str) -> None:
        hm = t.household_members
        await self.conn.execute(
            hm.delete().where(hm.c.household_id == household_id, hm.c.member_id == member_id)
        )

    async def household_for_update(self, household_id: str) -> Household | None:
        h = t.households
        locked = await self._one(select(h.c.id).where(h.c.id == household_id).with_for_update())
        # Read after the lock: under READ COMMITTED this sees what the previous holder
        # committed (a member it added, or the household gone).
        return await self.household(household_id) if locked is not None else None

    async def household_invitations(self, household_id: str) -> list[HouseholdInvitation]:
        hi = t.household_invitations
        rows = (
            await self.conn.execute(
                select(hi).where(hi.c.household_id == household_id).order_by(hi.c.member_id)
            )
        ).all()
        return [_invitation(r) for r in rows]

    async def save_household_invitation(self, invitation: HouseholdInvitation) -> None:
        hi = t.household_invitations
        await self.drop_household_invitations(
            invitation.household_id, member_id=invitation.member_id
        )
        await self.conn.execute(
            hi.insert().values(
                household_id=invitation.household_id,
                member_id=invitation.member_id,
                invited_by_id=invitation.invited_by_id,
                created_at=invitation.created_at,
                expires_at=invitation.expires_at,
            )
        )

    async def take_household_invitation(
        self, household_id: str, member_id: str, now: datetime
    ) -> bool:
        hi = t.household_invitations
        deleted = await self.conn.execute(
            delete(hi)
            .where(hi.c.household_id == household_id, hi.c.member_id == member_id)
            .returning(hi.c.expires_at)
        )
        return any(now < expires_at for (expires_at,) in deleted.all())

    async def drop_household_invitations(
        self, household_id: str, *, member_id: str | None = None, expired_at: datetime | None = None
    ) -> int:
        hi = t.household_invitations
        statement = delete(hi).where(hi.c.household_id == household_id)
        if member_id is not None:
            statement = statement.where(hi.c.member_id == member_id)
        if expired_at is not None:
            statement = statement.where(hi.c.expires_at <= expired_at)
        return int((await self.conn.execute(statement)).rowcount)

    async def drop_expired_household_invitations(self, expired_at: datetime) -> int:
        hi = t.household_invitations
        statement = delete(hi).where(hi.c.expires_at <= expired_at)
        return int((await self.conn.execute(statement)).rowcount)

    async def wallet_of_account(self, code: str) -> Wallet:
        """The wallet a member's account belongs to (the member's own accounts)."""
        _, owner, _ = code.split(":")
        return Wallet(
            member_account(owner, "pending"),
            member_account(owner, "available"),
            owner_member_id=owner,
        )

    async def purchase_for_update(self, order_id: str) -> PurchaseRecord | None:
        pu = t.purchases
        row = await self._one(select(pu).where(pu.c.order_id == order_id).with_for_update())
        if row is None:
            return None
        return PurchaseRecord(
            order_id=row.order_id,
            member_id=row.member_id,
            currency=row.currency,
            amount_minor=int(row.amount_minor),
            returned_amount_minor=int(row.returned_amount_minor),
            program_amount_minor=int(row.program_amount_minor),
            transaction_id=row.transaction_id,
        )

    async def set_purchase_returned(
        self, order_id: str, returned_minor: int, returned_program_minor: int
    ) -> None:
        pu = t.purchases
        await self.conn.execute(
            update(pu)
            .where(pu.c.order_id == order_id)
            .values(
                returned_amount_minor=returned_minor,
                returned_program_amount_minor=returned_program_minor,
            )
        )

    async def clawed_back(self, earn_id: int) -> tuple[int, int]:
        tx, p, a = t.ledger_transactions, t.ledger_postings, t.ledger_accounts
        rows = (
            await self.conn.execute(
                select(a.c.kind, func.sum(p.c.amount))
                .select_from(p.join(tx, tx.c.id == p.c.transaction_id))
                .join(a, a.c.id == p.c.source_id)
                .where(tx.c.reverses_id == earn_id, tx.c.kind == TransactionKind.RETURN.value)
                .group_by(a.c.kind)
            )
        ).all()
        by_kind = {kind: int(amount or 0) for kind, amount in rows}
        return by_kind.get(AccountKind.WALLET_PENDING.value, 0), sum(by_kind.values())

    async def set_status(self, transaction_id: int, status: TransactionStatus) -> None:
        tx = t.ledger_transactions
        await self.conn.execute(
            update(tx).where(tx.c.id == transaction_id).values(status=status.value)
        )

    async def points_moved(
        self,
        kind: TransactionKind,
        since: datetime,
        *,
        member_id: str | None = None,
        actor: str | None = None,
    ) -> int:
        tx = t.ledger_transactions
        statement = select(func.sum(func.abs(tx.c.points))).where(
            tx.c.kind == kind.value, tx.c.occurred_at >= since
        )
        if member_id is not None:
            statement = statement.where(tx.c.member_id == member_id)
        if actor is not None:
            statement = statement.where(tx.c.actor == actor)
        return int((await self.conn.execute(statement)).scalar() or 0)

    async def lock_actor(self, actor: str) -> None:
        js = t.job_state
        name = f"lock:actor:{actor}"[:100]
        insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        await self.conn.execute(
            insert(js)
            .values(name=name, value={}, updated_at=datetime.now(UTC))
            .on_conflict_do_nothing(index_elements=["name"])
        )
        await self.conn.execute(select(js.c.name).where(js.c.name == name).with_for_update())

    async def due_pending(
        self, pending_account: str, now: datetime
    ) -> list[tuple[int, int, datetime]]:
        tx, p, a = t.ledger_transactions, t.ledger_postings, t.ledger_accounts
        rows = (
            await self.conn.execute(
                select(tx.c.id, p.c.amount, tx.c.available_at)
                .select_from(p.join(tx, tx.c.id == p.c.transaction_id))
                .join(a, a.c.id == p.c.destination_id)
                .where(
                    a.c.code == pending_account,
                    tx.c.status == TransactionStatus.PENDING.value,
                    tx.c.available_at <= now,
                )
                .order_by(tx.c.id)
            )
        ).all()
        due = []
        for earn_id, amount, available_at in rows:
            from_pending, _ = await self.clawed_back(earn_id)
            due.append((int(earn_id), int(amount) - from_pending, available_at))
        return due

    async def available_history(
        self, available_account: str
    ) -> tuple[list[tuple[datetime, int]], int]:
        tx, p, a = t.ledger_transactions, t.ledger_postings, t.ledger_accounts
        credits = (
            await self.conn.execute(
                select(tx.c.occurred_at, p.c.amount)
                .select_from(p.join(tx, tx.c.id == p.c.transaction_id))
                .join(a, a.c.id == p.c.destination_id)
                .where(a.c.code == available_account)
            )
        ).all()
        debits = (
            await self.conn.execute(
                select(func.sum(p.c.amount))
                .join(a, a.c.id == p.c.source_id)
                .where(a.c.code == available_account)
            )
        ).scalar()
        return [(when, int(amount)) for when, amount in credits], int(debits or 0)

    async def add_offer(self, offer: NewOffer) -> bool:
        insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        result = await self.conn.execute(
            insert(t.offers)
            .values(
                id=offer.id,
                key=offer.key,
                kind=offer.kind.value,
                title=offer.title,
                code=offer.code,
                discount_percent=_decimal_text(offer.discount_percent),
                bonus_points=offer.bonus_points,
                bonus_multiplier=_decimal_text(offer.bonus_multiplier),
                member_id=offer.member_id,
                tier_key=offer.tier_key,
                valid_from=offer.valid_from,
                valid_until=offer.valid_until,
                active=True,
                created_at=offer.created_at,
            )
            .on_conflict_do_nothing(index_elements=["key", "member_id"])
        )
        return bool(result.rowcount == 1)

    async def offer_code_taken(self, code: str) -> bool:
        o = t.offers
        return await self._one(select(o.c.id).where(o.c.code == code).limit(1)) is not None

    async def usable_offers(self, member_id: str, at: datetime) -> list[Offer]:
        rows = (
            await self.conn.execute(reads.OFFERS_FOR_MEMBERS, {"ids": [member_id], "now": at})
        ).all()
        return _usable_offers(rows, [member_id], at)[member_id]

    async def redeem_offer(self, offer: Offer, member_id: str, at: datetime) -> None:
        o = t.offers
        if offer.member_id == member_id:
            result = await self.conn.execute(
                update(o)
                .where(o.c.id == offer.id, o.c.redeemed_at.is_(None))
                .values(redeemed_at=at)
            )
            if result.rowcount != 1:
                raise ConcurrentWrite(f"offer {offer.id} was redeemed meanwhile")
            return
        copied = NewOffer(
            id=str(uuid.uuid4()),
            key=offer.key,
            kind=offer.kind,
            title=offer.title,
            created_at=at,
            code=offer.code,
            discount_percent=offer.discount_percent,
            bonus_points=offer.bonus_points,
            bonus_multiplier=offer.bonus_multiplier,
            member_id=member_id,
            tier_key=offer.tier_key,
            valid_until=offer.valid_until,
        )
        if not await self.add_offer(copied):
            raise ConcurrentWrite(f"offer {offer.key} was used by {member_id} meanwhile")
        await self.conn.execute(update(o).where(o.c.id == copied.id).values(redeemed_at=at))

    async def earned_purchases(self, member_id: str) -> int:
        pu = t.purchases
        statement = (
            select(func.count())
            .select_from(pu)
            .where(pu.c.member_id == member_id, pu.c.transaction_id.is_not(None))
        )
        return int((await self.conn.execute(statement)).scalar_one())


def _decimal_text(value: Decimal | None) -> str | None:
    return None if value is None else f"{value.normalize():f}"


class SqlLoyaltyStore:
    """`loyalty.store.LoyaltyStore` on one SQLAlchemy engine. `postings` is told, after each
    commit, the ledger transactions it made durable (`loyalty.ports.PostingEvents`)."""

    def __init__(self, engine: AsyncEngine, *, postings: PostingEvents | None = None) -> None:
        self.engine = engine
        self.reader = SqlReader(engine)
        self.postings = postings

    def request_reader(self) -> SqlReader:
        return SqlReader(SharedConnection(self.engine))

    @asynccontextmanager
    async def session(self) -> AsyncIterator[SqlLedgerSession]:
        try:
            with outages_as_unavailable():
                async with self.engine.connect() as conn:
                    conn = await conn.execution_options(**{WRITE_OPTION: True})
                    async with conn.begin():
                        session = SqlLedgerSession(conn)
                        yield session
            if session.posted and self.postings is not None:  # committed
                self.postings.transactions_posted(session.posted)
        except IntegrityError as exc:
            if _is_unique_violation(exc):
                raise ConcurrentWrite(str(exc.orig)) from exc
            raise
        except (OperationalError, DBAPIError) as exc:
            if _is_retryable(exc):
                raise ConcurrentWrite(str(exc.orig)) from exc
            raise


def _is_unique_violation(exc: IntegrityError) -> bool:
    text = str(exc.orig).lower()
    return "unique" in text or "duplicate key" in text


def _is_retryable(exc: DBAPIError) -> bool:
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    if code in ("40001", "40P01"):  # serialization failure, deadlock detected
        return True
    return "database is locked" in str(exc.orig).lower()
