"""Change results and digests kept per batch (one row per push) instead of one row per change.

Rows of ``change_results`` written before this revision stay where they are and are still read.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
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
        "change_ranges",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("node_id", sa.String(64), nullable=False),
        sa.Column("first_seq", sa.BigInteger, nullable=False),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("results", sa.Text, nullable=False),
        sa.Column("digests", sa.Text, nullable=False),
    )
    op.create_index("ix_change_ranges_node_last", "change_ranges", ["node_id", "last_seq"])


def downgrade() -> None:
    op.drop_index("ix_change_ranges_node_last", table_name="change_ranges")
    op.drop_table("change_ranges")
