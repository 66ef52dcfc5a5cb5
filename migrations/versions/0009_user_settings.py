"""user_settings: per-user forwarding, DND, privacy, call waiting, personal ringing, and
when the user last read its missed calls (issue 15)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_settings",
        sa.Column("customer", sa.String(64), nullable=False),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("forward_always", sa.String(64), nullable=True),
        sa.Column("forward_busy", sa.String(64), nullable=True),
        sa.Column("forward_no_answer", sa.String(64), nullable=True),
        sa.Column("forward_no_answer_seconds", sa.Double(), nullable=True),
        sa.Column("forward_unreachable", sa.String(64), nullable=True),
        sa.Column("dnd", sa.Boolean(), nullable=False),
        sa.Column("clir", sa.Boolean(), nullable=False),
        sa.Column("reject_anonymous", sa.Boolean(), nullable=False),
        sa.Column("call_waiting", sa.Boolean(), nullable=False),
        sa.Column("simultaneous", sa.Text(), nullable=False),
        sa.Column("sequential", sa.Text(), nullable=False),
        sa.Column("missed_read_at", sa.Double(), nullable=True),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("customer", "number", name=op.f("pk_user_settings")),
    )


def downgrade() -> None:
    op.drop_table("user_settings")
