"""call_records.queue_outcome, queue_wait: how a call queue's call ended and how long it waited

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


def downgrade() -> None:
    with op.batch_alter_table("call_records") as batch:
        batch.drop_column("queue_wait")
        batch.drop_column("queue_outcome")
