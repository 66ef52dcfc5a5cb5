"""call_records.transferred_to: the number a transfer connected the remaining party to

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch mode: SQLite rebuilds the table, PostgreSQL gets a plain ALTER TABLE
    with op.batch_alter_table("call_records") as batch:
        batch.add_column(sa.Column("transferred_to", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("call_records") as batch:
        batch.drop_column("transferred_to")
