"""schedule_modes: the night switch, a forced mode per customer schedule (issue 12)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schedule_modes",
        sa.Column("customer", sa.String(64), nullable=False),
        sa.Column("schedule", sa.String(64), nullable=False),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("changed_at", sa.Double(), nullable=False),
        sa.Column("changed_by", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("customer", "schedule", name=op.f("pk_schedule_modes")),
    )
    op.create_index("ix_schedule_modes_changed_at", "schedule_modes", ["changed_at"])


def downgrade() -> None:
    op.drop_index("ix_schedule_modes_changed_at", table_name="schedule_modes")
    op.drop_table("schedule_modes")
