"""emergency_locations: self-declared locations of nomadic devices

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "emergency_locations",
        sa.Column("aor", sa.String(255), nullable=False),
        sa.Column("street", sa.Text(), nullable=False),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("postal_code", sa.String(16), nullable=False),
        sa.Column("city", sa.Text(), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("extra", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("aor", name=op.f("pk_emergency_locations")),
    )


def downgrade() -> None:
    op.drop_table("emergency_locations")
