"""call queues: call_records.queue_outcome, queue_wait (how a queue call ended and how long
it waited) and queue_agents (agents' logins with their codes)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch mode: SQLite rebuilds the table, PostgreSQL gets a plain ALTER TABLE
    with op.batch_alter_table("call_records") as batch:
        batch.add_column(sa.Column("queue_outcome", sa.String(16), nullable=True))
        batch.add_column(sa.Column("queue_wait", sa.Double(), nullable=True))
    op.create_table(
        "queue_agents",
        sa.Column("customer", sa.String(64), nullable=False),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("agent", sa.String(32), nullable=False),
        sa.Column("logged_in", sa.Boolean(), nullable=False),
        sa.Column("changed_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("customer", "queue", "agent"),
    )


def downgrade() -> None:
    op.drop_table("queue_agents")
    with op.batch_alter_table("call_records") as batch:
        batch.drop_column("queue_wait")
        batch.drop_column("queue_outcome")
