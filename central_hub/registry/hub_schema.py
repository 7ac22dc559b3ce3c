"""The registry's tables in the hub database (same SQLAlchemy metadata as ``central_hub.schema``, which
imports this module so migrations and the metadata comparison see it).

- ``registry_records``: one row per person, its prepared ``Features`` as JSON plus the two columns the
  term-frequency counts group by.
- ``registry_keys``: ``(key, record_id)``; the primary key starts with ``key``, so a blocking lookup is an
  index range scan.
- ``registry_edges``: link edges (score, band, model version, evidence; a review pair's review weight,
  by which the queue is ranked). Never deleted: an unmerge or a
  "different people" decision marks the edge inactive with who and why; a reviewer's "same person" sets
  ``confirmed_by``. Clusters are recomputed from the active linking edges.
- ``registry_enrolments``: enrolment id -> person, programme, status (the hub keeps records as JSON blobs;
  double dipping needs "the enrolments of these persons").
- ``registry_decisions``: the audit of every review decision (who, when, what, note).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Float, Index, Integer, String, Table, Text

from central_hub.schema import metadata

registry_records = Table(
    "registry_records",
    metadata,
    Column("record_id", String(64), primary_key=True),
    Column("features", Text, nullable=False),
    Column("name_key", String(300)),
    Column("district_id", String(32)),
    Index("ix_registry_records_name", "name_key", "district_id"),
    Index("ix_registry_records_district", "district_id"),
)

registry_keys = Table(
    "registry_keys",
    metadata,
    Column("key", String(300), primary_key=True),
    Column("record_id", String(64), primary_key=True),
    Index("ix_registry_keys_record", "record_id"),
)

registry_edges = Table(
    "registry_edges",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("a", String(64), nullable=False),
    Column("b", String(64), nullable=False),
    Column("score", Float, nullable=False),
    Column("band", String(16), nullable=False),
    Column("model_version", String(64), nullable=False),
    Column("evidence", Text, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("confirmed_by", String(64)),
    Column("removed_reason", Text),
    Column("removed_by", String(64)),
    Column("created_at", String(32), nullable=False),
    Column("changed_at", String(32)),
    # a review pair's rank in the queue (Matcher.score's review weight); null for links and older pairs
    Column("review_weight", Float),
    Index("ix_registry_edges_a", "a", "active"),
    Index("ix_registry_edges_b", "b", "active"),
    Index("ix_registry_edges_band", "band", "active"),
    Index("ix_registry_edges_queue", "band", "active", "review_weight"),
)

registry_enrolments = Table(
    "registry_enrolments",
    metadata,
    Column("enrolment_id", String(64), primary_key=True),
    Column("person_id", String(64), nullable=False),
    Column("programme", String(16)),
    Column("status", String(16)),
    Column("scope", String(32), nullable=False),
    Index("ix_registry_enrolments_person", "person_id"),
)

registry_decisions = Table(
    "registry_decisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", String(32), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("decision", String(16), nullable=False),  # same / different / unmerge
    Column("a", String(64), nullable=False),
    Column("b", String(64), nullable=False),
    Column("note", Text, nullable=False),
    Column("registry_ids", Text, nullable=False),  # JSON: {person_id: registry_id} after the decision
    Index("ix_registry_decisions_a", "a"),
    Index("ix_registry_decisions_b", "b"),
)
