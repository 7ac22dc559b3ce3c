"""Initial hub schema.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "settings",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "nodes",
        sa.Column("node_id", sa.String(64), primary_key=True),
        sa.Column("public_key", sa.LargeBinary, nullable=False),
        sa.Column("scopes", sa.Text, nullable=False),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("revoked", sa.Boolean, nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("union_id", sa.String(32)),
        sa.Column("upazila_id", sa.String(32)),
        sa.Column("enrolled_at", sa.String(32), nullable=False),
    )
    op.create_table(
        "enrolment_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("scopes", sa.Text, nullable=False),
        sa.Column("union_id", sa.String(32)),
        sa.Column("upazila_id", sa.String(32)),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("expires_at", sa.String(32), nullable=False),
        sa.Column("used_at", sa.String(32)),
        sa.Column("node_id", sa.String(64)),
    )
    op.create_table(
        "batches",
        sa.Column("batch_id", sa.String(64), primary_key=True),
        sa.Column("node_id", sa.String(64), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("response", sa.Text, nullable=False),
    )
    op.create_table(
        "change_results",
        sa.Column("node_id", sa.String(64), primary_key=True),
        sa.Column("node_seq", sa.BigInteger, primary_key=True),
        sa.Column("result", sa.Text, nullable=False),
    )
    op.create_table(
        "records",
        sa.Column("entity", sa.String(32), primary_key=True),
        sa.Column("entity_id", sa.String(64), primary_key=True),
        sa.Column("scope", sa.String(32), nullable=False),
        sa.Column("state", sa.Text, nullable=False),
    )
    op.create_table(
        "hub_log",
        sa.Column("hub_seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("entity", sa.String(32), nullable=False),
        sa.Column("entity_id", sa.String(64), nullable=False),
        sa.Column("scope", sa.String(32), nullable=False),
        sa.Column("fields", sa.Text, nullable=False),
        sa.Column("origin", sa.String(64), nullable=False),
        sa.Column("origin_seq", sa.BigInteger),
        sa.Column("hlc", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_hub_log_scope_seq", "hub_log", ["scope", "hub_seq"])
    op.create_table(
        "conflicts",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("scope", sa.String(32), nullable=False),
        sa.Column("entity", sa.String(32), nullable=False),
        sa.Column("entity_id", sa.String(64), nullable=False),
        sa.Column("node_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
    )
    op.create_index("ix_conflicts_status_scope", "conflicts", ["status", "scope"])
    op.create_table(
        "person_view",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("scope", sa.String(32), nullable=False),
        sa.Column("household_id", sa.String(64)),
        sa.Column("nid", sa.String(32)),
        sa.Column("full_name_en", sa.String(200)),
        sa.Column("full_name_bn", sa.String(200)),
        sa.Column("deleted", sa.Boolean, nullable=False),
    )
    op.create_index("ix_person_view_nid", "person_view", ["nid"])
    op.create_table(
        "household_view",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("scope", sa.String(32), nullable=False),
        sa.Column("village", sa.String(200)),
        sa.Column("deleted", sa.Boolean, nullable=False),
    )
    op.create_table(
        "staff",
        sa.Column("username", sa.String(64), primary_key=True),
        sa.Column("password_hash", sa.String(300), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("scope_level", sa.String(16), nullable=False),
        sa.Column("scope_id", sa.String(32)),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
    )
    op.create_table(
        "staff_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("expires_at", sa.String(32), nullable=False),
    )
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_login_failures_user", "login_failures", ["username", "at"])
    op.create_table(
        "access_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("path", sa.String(300), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("outcome", sa.String(64), nullable=False),
        sa.Column("remote_addr", sa.String(64), nullable=False),
        sa.Column("duration_ms", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    for name in (
        "access_log",
        "login_failures",
        "staff_sessions",
        "staff",
        "household_view",
        "person_view",
        "conflicts",
        "hub_log",
        "records",
        "change_results",
        "batches",
        "enrolment_tokens",
        "nodes",
        "settings",
    ):
        op.drop_table(name)
