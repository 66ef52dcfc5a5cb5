"""voicemail: mailboxes (PIN hash, greetings, e-mail) and messages (with their e-mail outbox)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "voicemail_mailboxes",
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("pin_hash", sa.String(255), nullable=False),
        sa.Column("greeting_unavailable", sa.Boolean(), nullable=False),
        sa.Column("greeting_busy", sa.Boolean(), nullable=False),
        sa.Column("greeting_name", sa.Boolean(), nullable=False),
        sa.Column("email", sa.String(255), nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("owner", name=op.f("pk_voicemail_mailboxes")),
    )
    op.create_table(
        "voicemail_messages",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("mailbox", sa.String(128), nullable=False),
        sa.Column("caller", sa.String(64), nullable=False),
        sa.Column("caller_name", sa.String(255), nullable=True),
        sa.Column("received_at", sa.Double(), nullable=False),
        sa.Column("duration", sa.Double(), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("heard", sa.Boolean(), nullable=False),
        sa.Column("audio", sa.String(255), nullable=False),
        sa.Column("emailed", sa.Boolean(), nullable=False),
        sa.Column("email_attempts", sa.Integer(), nullable=False),
        sa.Column("email_next_at", sa.Double(), nullable=True),
        sa.Column("email_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_voicemail_messages")),
    )
    op.create_index("ix_voicemail_messages_mailbox", "voicemail_messages", ["mailbox"])


def downgrade() -> None:
    op.drop_index("ix_voicemail_messages_mailbox", table_name="voicemail_messages")
    op.drop_table("voicemail_messages")
    op.drop_table("voicemail_mailboxes")
