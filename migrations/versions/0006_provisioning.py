"""provisioning: activation codes (hashed) and generated per-device credentials (HA1s)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "activation_codes",
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("customer", sa.String(64), nullable=False),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("aor", sa.String(255), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.Column("claimed_mac", sa.String(17), nullable=True),
        sa.Column("claimed_at", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("code_hash", name=op.f("pk_activation_codes")),
    )
    op.create_table(
        "device_credentials",
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("realm", sa.String(255), nullable=False),
        sa.Column("ha1_md5", sa.String(32), nullable=False),
        sa.Column("ha1_sha256", sa.String(64), nullable=False),
        sa.Column("aor", sa.String(255), nullable=False),
        sa.Column("mac", sa.String(17), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("username", "realm", name=op.f("pk_device_credentials")),
    )
    op.create_index("ix_device_credentials_mac", "device_credentials", ["mac"])


def downgrade() -> None:
    op.drop_index("ix_device_credentials_mac", table_name="device_credentials")
    op.drop_table("device_credentials")
    op.drop_table("activation_codes")
