"""member segments: each member's RFM segment, engagement score and churn risk

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 12:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "member_segments",
        sa.Column("member_id", sa.String(length=36), nullable=False),
        sa.Column("segment", sa.String(length=16), nullable=False),
        sa.Column("recency_days", sa.Integer(), nullable=True),
        sa.Column("frequency_12m", sa.Integer(), nullable=False),
        sa.Column("spend_12m_minor", sa.BigInteger(), nullable=False),
        sa.Column("engagement_score", sa.Float(), nullable=False),
        sa.Column("churn_risk", sa.Float(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_member_segments_member_id_members")
        ),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_member_segments")),
    )
    with op.batch_alter_table("member_segments", schema=None) as batch_op:
        batch_op.create_index("ix_member_segments_segment", ["segment"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("member_segments", schema=None) as batch_op:
        batch_op.drop_index("ix_member_segments_segment")
    op.drop_table("member_segments")
