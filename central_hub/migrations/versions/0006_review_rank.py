"""Review pairs ranked by their review weight: a ``review_weight`` column on ``registry_edges`` and an
index for the queue's order.

Review pairs written before this revision get the weight back from their evidence (the same sum
``Matcher.score`` makes: the match weight, less the household evidence the gate let in, plus the household
evidence capped at 10 bits), so an older queue is ranked the same way.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

HOUSEHOLD_CAP = 10.0  # the shipped models' household_cap


def upgrade() -> None:
    with op.batch_alter_table("registry_edges") as batch:
        batch.add_column(sa.Column("review_weight", sa.Float))
    op.create_index("ix_registry_edges_queue", "registry_edges", ["band", "active", "review_weight"])
    edges = sa.table("registry_edges", sa.column("seq", sa.BigInteger), sa.column("score", sa.Float),
                     sa.column("band", sa.String), sa.column("evidence", sa.Text),
                     sa.column("review_weight", sa.Float))  # fmt: skip
    conn = op.get_bind()
    rows = conn.execute(sa.select(edges.c.seq, edges.c.score, edges.c.evidence).where(edges.c.band == "review"))
    updates = []
    for seq, score, evidence in rows:
        weight = _review_weight(float(score), evidence)
        if weight is not None:
            updates.append({"s": seq, "w": weight})
    if updates:
        conn.execute(edges.update().where(edges.c.seq == sa.bindparam("s")).values(review_weight=sa.bindparam("w")),
                     updates)  # fmt: skip


def _review_weight(score: float, evidence_json: str) -> float | None:
    try:
        ev = json.loads(evidence_json)
        if "review_weight" in ev:
            return float(ev["review_weight"])
        return round(score - float(ev["household_used"]) + min(float(ev["household_weight"]), HOUSEHOLD_CAP), 2)
    except (ValueError, KeyError, TypeError):
        return None  # a reviewer's own pair has no weights: it stays at the end of the queue


def downgrade() -> None:
    op.drop_index("ix_registry_edges_queue", "registry_edges")
    with op.batch_alter_table("registry_edges") as batch:
        batch.drop_column("review_weight")
