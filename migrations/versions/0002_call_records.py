"""call_records: one row per call, opened at the start and closed at the end

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "call_records",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("call_id", sa.Text(), nullable=False),
        sa.Column("caller", sa.String(255), nullable=False),
        sa.Column("callee", sa.String(255), nullable=True),
        sa.Column("dialed", sa.Text(), nullable=False),
        sa.Column("decision", sa.String(32), nullable=False),
        sa.Column("site", sa.String(16), nullable=True),
        sa.Column("customer", sa.String(64), nullable=True),
        sa.Column("start", sa.Double(), nullable=False),
        sa.Column("answer", sa.Double(), nullable=True),
        sa.Column("end", sa.Double(), nullable=True),
        sa.Column("disposition", sa.String(32), nullable=True),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("cause", sa.Text(), nullable=True),
        sa.Column("hangup_side", sa.String(16), nullable=True),
        sa.Column("codec", sa.String(32), nullable=True),
        sa.Column("emergency", sa.Boolean(), nullable=False),
        sa.Column("billable", sa.Boolean(), nullable=False),
        sa.Column("rtcp_loss", sa.Double(), nullable=True),
        sa.Column("rtcp_jitter_ms", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_records")),
    )
    op.create_index("ix_call_records_start", "call_records", ["start"])
    op.create_index("ix_call_records_open", "call_records", ["end"])


def downgrade() -> None:
    op.drop_index("ix_call_records_open", table_name="call_records")
    op.drop_index("ix_call_records_start", table_name="call_records")
    op.drop_table("call_records")
