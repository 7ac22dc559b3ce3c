"""The NID verification queue's table in the hub database (same SQLAlchemy metadata as ``central_hub.schema``,
which imports this module so migrations and the metadata comparison see it).

One row per person. ``due_at`` is set exactly when the person is claimable (pending, or a retrying error).
Times are UTC epoch milliseconds (integers compare the same way on SQLite and PostgreSQL).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, String, Table, Text

from central_hub.schema import metadata

nid_verification = Table(
    "nid_verification",
    metadata,
    Column("person_id", String(64), primary_key=True),
    Column("nid", String(32), nullable=False),
    Column("name", Text, nullable=False),
    Column("date_of_birth", String(10), nullable=False),
    Column("father_name", Text),
    Column("mother_name", Text),
    Column("status", String(16), nullable=False),
    Column("version", Integer, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("mismatch_fields", Text, nullable=False),  # comma-separated
    Column("retrying", Boolean, nullable=False),
    Column("due_at", BigInteger),
    Column("lease_until", BigInteger),
    Column("error", Text),
    Column("checked_at", BigInteger),
    Column("seq", BigInteger, nullable=False),  # enqueue order: ties between equal due times
    Index("ix_nid_verification_due", "due_at", "seq"),
    Index("ix_nid_verification_status", "status", "checked_at"),
    Index("ix_nid_verification_seq", "seq"),
)
