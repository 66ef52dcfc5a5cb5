"""call queues: queue_callbacks (callers who hung up to be called back, keeping their
place: a restart keeps the promise)

Revision ID: 0015
Revises: 0012
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "queue_callbacks",
        sa.Column("customer", sa.String(64), nullable=False),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("call_id", sa.String(255), nullable=False),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("entered_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("customer", "queue", "call_id"),
    )


def downgrade() -> None:
    op.drop_table("queue_callbacks")
