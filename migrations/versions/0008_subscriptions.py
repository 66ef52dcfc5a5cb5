"""subscriptions: RFC 6665 subscriptions (dialog, presence, message-summary) kept across restarts

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("package", sa.String(32), nullable=False),
        sa.Column("resource", sa.String(255), nullable=False),
        sa.Column("watcher", sa.String(255), nullable=False),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("call_id", sa.Text(), nullable=False),
        sa.Column("local_tag", sa.String(128), nullable=False),
        sa.Column("remote_tag", sa.String(255), nullable=False),
        sa.Column("local_uri", sa.Text(), nullable=False),
        sa.Column("remote_uri", sa.Text(), nullable=False),
        sa.Column("remote_target", sa.Text(), nullable=False),
        sa.Column("route_set", sa.Text(), nullable=False),
        sa.Column("local_seq", sa.BigInteger(), nullable=True),
        sa.Column("remote_seq", sa.BigInteger(), nullable=True),
        sa.Column("transport", sa.String(8), nullable=False),
        sa.Column("peer_host", sa.String(255), nullable=False),
        sa.Column("peer_port", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriptions")),
    )
    op.create_index("ix_subscriptions_expires_at", "subscriptions", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_subscriptions_expires_at", table_name="subscriptions")
    op.drop_table("subscriptions")
