"""household invitations: a member joins a household only by accepting its owner's invitation

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 12:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "household_invitations",
        sa.Column("household_id", sa.String(length=36), nullable=False),
        sa.Column("member_id", sa.String(length=36), nullable=False),
        sa.Column("invited_by_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["households.id"],
            name=op.f("fk_household_invitations_household_id_households"),
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_household_invitations_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["invited_by_id"],
            ["members.id"],
            name=op.f("fk_household_invitations_invited_by_id_members"),
        ),
        sa.PrimaryKeyConstraint("household_id", "member_id", name=op.f("pk_household_invitations")),
    )
    with op.batch_alter_table("household_invitations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_household_invitations_member_id"), ["member_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_household_invitations_invited_by_id"), ["invited_by_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("household_invitations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_household_invitations_invited_by_id"))
        batch_op.drop_index(batch_op.f("ix_household_invitations_member_id"))
    op.drop_table("household_invitations")
