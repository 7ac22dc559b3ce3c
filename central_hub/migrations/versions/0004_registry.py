"""Registry merging at the hub (issue 7): prepared records, blocking keys, link edges, enrolments,
review decisions.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registry_records",
        sa.Column("record_id", sa.String(64), primary_key=True),
        sa.Column("features", sa.Text, nullable=False),
        sa.Column("name_key", sa.String(300)),
        sa.Column("district_id", sa.String(32)),
    )
    op.create_index("ix_registry_records_name", "registry_records", ["name_key", "district_id"])
    op.create_index("ix_registry_records_district", "registry_records", ["district_id"])
    op.create_table(
        "registry_keys",
        sa.Column("key", sa.String(300), primary_key=True),
        sa.Column("record_id", sa.String(64), primary_key=True),
    )
    op.create_index("ix_registry_keys_record", "registry_keys", ["record_id"])
    op.create_table(
        "registry_edges",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("a", sa.String(64), nullable=False),
        sa.Column("b", sa.String(64), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("band", sa.String(16), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("evidence", sa.Text, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("confirmed_by", sa.String(64)),
        sa.Column("removed_reason", sa.Text),
        sa.Column("removed_by", sa.String(64)),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("changed_at", sa.String(32)),
    )
    op.create_index("ix_registry_edges_a", "registry_edges", ["a", "active"])
    op.create_index("ix_registry_edges_b", "registry_edges", ["b", "active"])
    op.create_index("ix_registry_edges_band", "registry_edges", ["band", "active"])
    op.create_table(
        "registry_enrolments",
        sa.Column("enrolment_id", sa.String(64), primary_key=True),
        sa.Column("person_id", sa.String(64), nullable=False),
        sa.Column("programme", sa.String(16)),
        sa.Column("status", sa.String(16)),
        sa.Column("scope", sa.String(32), nullable=False),
    )
    op.create_index("ix_registry_enrolments_person", "registry_enrolments", ["person_id"])
    op.create_table(
        "registry_decisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("a", sa.String(64), nullable=False),
        sa.Column("b", sa.String(64), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("registry_ids", sa.Text, nullable=False),
    )
    op.create_index("ix_registry_decisions_a", "registry_decisions", ["a"])
    op.create_index("ix_registry_decisions_b", "registry_decisions", ["b"])


def downgrade() -> None:
    for table in ("registry_decisions", "registry_enrolments", "registry_edges", "registry_keys", "registry_records"):
        op.drop_table(table)
