"""site_pool_usage and rated_calls: the live minute pool of each site, counted once per record

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "site_pool_usage",
        sa.Column("customer", sa.String(64), nullable=False),
        sa.Column("site", sa.String(16), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("used_seconds", sa.BigInteger(), nullable=False),
        sa.Column("pool_seconds", sa.BigInteger(), nullable=False),
        sa.Column("alerted", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("customer", "site", "month", name=op.f("pk_site_pool_usage")),
    )
    op.create_table(
        "rated_calls",
        sa.Column("record_id", sa.String(64), nullable=False),
        sa.Column("customer", sa.String(64), nullable=False),
        sa.Column("site", sa.String(16), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("rate_class", sa.String(16), nullable=False),
        sa.Column("zone", sa.String(64), nullable=False),
        sa.Column("seconds", sa.Integer(), nullable=False),
        sa.Column("drawn_seconds", sa.Integer(), nullable=False),
        sa.Column("charged_seconds", sa.Integer(), nullable=False),
        sa.Column("amount", sa.String(32), nullable=False),
        sa.Column("rated_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("record_id", name=op.f("pk_rated_calls")),
    )
    op.create_index("ix_rated_calls_site_month", "rated_calls", ["customer", "site", "month"])


def downgrade() -> None:
    op.drop_index("ix_rated_calls_site_month", table_name="rated_calls")
    op.drop_table("rated_calls")
    op.drop_table("site_pool_usage")
