"""NID verification queue (issue 6).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "nid_verification",
        sa.Column("person_id", sa.String(64), primary_key=True),
        sa.Column("nid", sa.String(32), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("date_of_birth", sa.String(10), nullable=False),
        sa.Column("father_name", sa.Text),
        sa.Column("mother_name", sa.Text),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("mismatch_fields", sa.Text, nullable=False),
        sa.Column("retrying", sa.Boolean, nullable=False),
        sa.Column("due_at", sa.BigInteger),
        sa.Column("lease_until", sa.BigInteger),
        sa.Column("error", sa.Text),
        sa.Column("checked_at", sa.BigInteger),
        sa.Column("seq", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_nid_verification_due", "nid_verification", ["due_at", "seq"])
    op.create_index("ix_nid_verification_status", "nid_verification", ["status", "checked_at"])
    op.create_index("ix_nid_verification_seq", "nid_verification", ["seq"])


def downgrade() -> None:
    op.drop_table("nid_verification")
