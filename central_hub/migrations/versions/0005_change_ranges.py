"""The push path writes fewer rows: change results and digests kept per batch (one row per push) instead
of one row per change, and a person's searchable values kept in its ``records`` row, read through the view
``person_view`` that replaces the table of that name.

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
        sa.Column("results", sa.Text),
        sa.Column("digests", sa.Text, nullable=False),
        sa.Column("batch_id", sa.String(64)),
    )
    op.create_index("ix_change_ranges_node_last", "change_ranges", ["node_id", "last_seq"])

    with op.batch_alter_table("records") as batch:
        batch.add_column(sa.Column("household_id", sa.String(64)))
        batch.add_column(sa.Column("nid", sa.String(32)))
        batch.add_column(sa.Column("full_name_en", sa.String(200)))
        batch.add_column(sa.Column("full_name_bn", sa.String(200)))
        batch.add_column(sa.Column("deleted", sa.Boolean))
    op.execute(
        "UPDATE records SET household_id = pv.household_id, nid = pv.nid, full_name_en = pv.full_name_en, "
        "full_name_bn = pv.full_name_bn, deleted = pv.deleted FROM person_view AS pv "
        "WHERE records.entity = 'person' AND pv.id = records.entity_id"
    )
    op.create_index("ix_records_nid", "records", ["nid"])
    op.drop_index("ix_person_view_nid", table_name="person_view")
    op.drop_table("person_view")
    op.execute(PERSON_VIEW_SQL)


# A snapshot, like every revision: the view as this revision creates it.
PERSON_VIEW_SQL = (
    "CREATE VIEW person_view AS SELECT entity_id AS id, scope, household_id, nid, full_name_en, full_name_bn, "
    "deleted FROM records WHERE entity = 'person'"
)


def downgrade() -> None:
    op.execute("DROP VIEW person_view")
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
    op.execute(
        "INSERT INTO person_view (id, scope, household_id, nid, full_name_en, full_name_bn, deleted) "
        "SELECT entity_id, scope, household_id, nid, full_name_en, full_name_bn, COALESCE(deleted, false) "
        "FROM records WHERE entity = 'person'"
    )
    op.drop_index("ix_records_nid", table_name="records")
    with op.batch_alter_table("records") as batch:
        for name in ("deleted", "full_name_bn", "full_name_en", "nid", "household_id"):
            batch.drop_column(name)
    op.drop_index("ix_change_ranges_node_last", table_name="change_ranges")
    op.drop_table("change_ranges")
