"""The database schema, as SQLAlchemy Core tables. Alembic migrations mirror this file
(a test fails when they drift apart).

Money is stored as integer minor units of the program currency; points are integers.
The ledger is append-only: `ledger_postings` rows are never updated or deleted; a
correction is a reversing transaction. `ledger_accounts.balance` is a cached sum of the
account's postings, updated in the same database transaction as the postings.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

ID = String(36)  # uuid4 text: portable between SQLite and PostgreSQL


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime stored in UTC on every backend (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValueError(f"an aware datetime is required, not {value!r}")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


TS = UTCDateTime()

members = Table(
    "members",
    metadata,
    Column("id", ID, primary_key=True),
    Column("commerce_customer_id", String(128), unique=True),
    Column("cdp_user_id", String(128), unique=True),
    Column("email", String(320), index=True),
    Column("first_name", String(200)),
    Column("last_name", String(200)),
    Column("enrolled_at", TS, nullable=False),
    Column("referred_by_id", ID, ForeignKey("members.id", ondelete="SET NULL")),
    Column("forgotten_at", TS),
)

households = Table(
    "households",
    metadata,
    Column("id", ID, primary_key=True),
    Column("owner_id", ID, ForeignKey("members.id"), nullable=False, unique=True),
    Column("created_at", TS, nullable=False),
)

household_members = Table(
    "household_members",
    metadata,
    Column("household_id", ID, ForeignKey("households.id"), nullable=False, index=True),
    Column("member_id", ID, ForeignKey("members.id"), primary_key=True),
    Column("joined_at", TS, nullable=False),
)

household_invitations = Table(
    "household_invitations",
    metadata,
    # An owner's pending invitation of a member to its household (README, Households): the
    # member joins only by accepting it before `expires_at`. One per household and member
    # (a new one replaces it); deleted when accepted, withdrawn, declined, when the household
    # is dissolved, and when either member is erased.
    Column("household_id", ID, ForeignKey("households.id"), primary_key=True),
    Column("member_id", ID, ForeignKey("members.id"), primary_key=True, index=True),
    Column("invited_by_id", ID, ForeignKey("members.id"), nullable=False, index=True),
    Column("created_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
)

ledger_accounts = Table(
    "ledger_accounts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("code", String(200), nullable=False, unique=True),
    Column("kind", String(32), nullable=False),
    Column("member_id", ID, ForeignKey("members.id"), index=True),
    Column("household_id", ID, ForeignKey("households.id"), index=True),
    Column("balance", BigInteger, nullable=False, default=0),
    Column("created_at", TS, nullable=False),
)

ledger_transactions = Table(
    "ledger_transactions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("member_id", ID, ForeignKey("members.id")),
    Column("kind", String(32), nullable=False),
    # The signed effect on the member's spendable points: what the member sees listed.
    Column("points", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("occurred_at", TS, nullable=False),
    Column("available_at", TS),
    Column("description", Text),
    Column("order_id", String(128), index=True),
    Column("channel", String(16)),
    Column("store_id", String(64)),
    Column("actor", String(128)),
    Column("reverses_id", Integer, ForeignKey("ledger_transactions.id")),
    Column("extra", JSON, nullable=False, default=dict),
    Column("created_at", TS, nullable=False),
    Index("ix_ledger_transactions_member_id_desc", "member_id", "id"),
    Index("ix_ledger_transactions_status_available", "status", "available_at"),
)

ledger_postings = Table(
    "ledger_postings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "transaction_id",
        Integer,
        ForeignKey("ledger_transactions.id"),
        nullable=False,
        index=True,
    ),
    Column("source_id", Integer, ForeignKey("ledger_accounts.id"), nullable=False, index=True),
    Column("destination_id", Integer, ForeignKey("ledger_accounts.id"), nullable=False, index=True),
    Column("amount", BigInteger, nullable=False),
    CheckConstraint("amount > 0", name="amount_positive"),
    CheckConstraint("source_id <> destination_id", name="distinct_accounts"),
)

purchases = Table(
    "purchases",
    metadata,
    # One row per order, whichever path it arrived by (webhook, POS, backfill).
    Column("order_id", String(128), primary_key=True),
    Column("member_id", ID, ForeignKey("members.id"), nullable=False, index=True),
    Column("currency", String(3), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("program_amount_minor", BigInteger, nullable=False),
    Column("returned_amount_minor", BigInteger, nullable=False, default=0, server_default="0"),
    Column("returned_program_amount_minor", BigInteger, nullable=False, default=0),
    Column("occurred_at", TS, nullable=False),
    Column("channel", String(16), nullable=False),
    Column("store_id", String(64)),
    Column("transaction_id", Integer, ForeignKey("ledger_transactions.id")),
    Column("source", String(16), nullable=False),
    Index("ix_purchases_member_occurred", "member_id", "occurred_at"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("operation", String(64), nullable=False),
    Column("input_hash", String(64), nullable=False),
    Column("result", JSON, nullable=False),
    Column("created_at", TS, nullable=False),
)

tier_assignments = Table(
    "tier_assignments",
    metadata,
    Column("id", ID, primary_key=True),
    Column("member_id", ID, ForeignKey("members.id"), nullable=False, index=True),
    Column("tier_key", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("assigned_by", String(128), nullable=False),
    Column("assigned_at", TS, nullable=False),
    Column("revoked_at", TS),
)

member_tiers = Table(
    "member_tiers",
    metadata,
    # The tier each member holds until `valid_until` (the end of its qualification period):
    # raised on purchase, reviewed (at most one step down) by `patron jobs run tiers`.
    Column("member_id", ID, ForeignKey("members.id"), primary_key=True),
    Column("tier_key", String(64), nullable=False),
    Column("period_start", TS, nullable=False),
    Column("valid_until", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Index("ix_member_tiers_valid_until", "valid_until"),
)

offers = Table(
    "offers",
    metadata,
    Column("id", ID, primary_key=True),
    Column("key", String(128), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("title", String(200), nullable=False),
    Column("code", String(64)),
    Column("discount_percent", String(16)),
    Column("bonus_points", Integer),
    Column("bonus_multiplier", String(16)),
    Column("member_id", ID, ForeignKey("members.id"), index=True),
    Column("tier_key", String(64)),
    Column("valid_from", TS),
    Column("valid_until", TS),
    Column("redeemed_at", TS),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", TS, nullable=False),
    UniqueConstraint("key", "member_id", name="key_member"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("source", String(16), primary_key=True),
    Column("message_id", String(255), primary_key=True),
    Column("received_at", TS, nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    # Events for the CDP, written in the same database transaction as the postings they
    # describe and sent after commit by the outbox relay; `message_id` deduplicates upstream.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String(100), nullable=False, unique=True),
    Column("user_id", String(128), nullable=False),
    Column("event", String(100), nullable=False),
    Column("properties", JSON, nullable=False),
    Column("occurred_at", TS, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("sent_at", TS),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Index("ix_outbox_unsent", "sent_at", "id"),
)

job_state = Table(
    "job_state",
    metadata,
    # Checkpoints of resumable jobs (the backfill's position, the last run of a job).
    Column("name", String(100), primary_key=True),
    Column("value", JSON, nullable=False),
    Column("updated_at", TS, nullable=False),
)

member_segments = Table(
    "member_segments",
    metadata,
    # Each member's RFM segment and scores (`loyalty.segments`) as of `computed_at`, written
    # by `patron jobs run segments`; `members(segment:)` filters on it.
    Column("member_id", ID, ForeignKey("members.id"), primary_key=True),
    Column("segment", String(16), nullable=False),
    Column("recency_days", Integer),
    Column("frequency_12m", Integer, nullable=False),
    Column("spend_12m_minor", BigInteger, nullable=False),
    Column("engagement_score", Float, nullable=False),
    Column("churn_risk", Float, nullable=False),
    Column("computed_at", TS, nullable=False),
    Index("ix_member_segments_segment", "segment"),
)
