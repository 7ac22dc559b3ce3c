"""The hub's tables (SQLAlchemy Core). Alembic migrations in ``migrations/versions`` create exactly
these; a test compares the migrated database with this metadata so the two cannot drift apart.

Protocol values (record states, log fields, conflicts, stored answers) are kept as compact JSON text:
the engine only ever reads them whole, and text keeps SQLite and PostgreSQL identical.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

settings = Table(
    "settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

nodes = Table(
    "nodes",
    metadata,
    Column("node_id", String(64), primary_key=True),
    Column("public_key", LargeBinary, nullable=False),
    Column("scopes", Text, nullable=False),  # JSON list of union ids
    Column("last_seq", BigInteger, nullable=False, default=0),
    Column("revoked", Boolean, nullable=False, default=False),
    Column("label", String(200), nullable=False, default=""),
    Column("union_id", String(32)),
    Column("upazila_id", String(32)),
    Column("enrolled_at", String(32), nullable=False),
)

enrolment_tokens = Table(
    "enrolment_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),  # sha256 hex; the token itself is never stored
    Column("scopes", Text, nullable=False),
    Column("union_id", String(32)),
    Column("upazila_id", String(32)),
    Column("created_at", String(32), nullable=False),
    Column("expires_at", String(32), nullable=False),
    Column("used_at", String(32)),
    Column("node_id", String(64)),
)

batches = Table(
    "batches",
    metadata,
    Column("batch_id", String(64), primary_key=True),
    Column("node_id", String(64), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("response", Text, nullable=False),
)

change_results = Table(
    "change_results",
    metadata,
    Column("node_id", String(64), primary_key=True),
    Column("node_seq", BigInteger, primary_key=True),
    Column("result", Text, nullable=False),
    # wire.change_digest of the change accepted under this seq: a resend must match it (0003; rows
    # accepted before that migration have none and are not compared).
    Column("digest", String(64)),
)

# The results of one batch's new changes as one row (0005): a row per change cost the ingest path as much
# as the change itself. ``results`` is the JSON list of ``ChangeResult.to_json()``; ``digests`` the JSON list
# of their ``wire.change_digest`` (null where none), in the same order; or, when the results are those of
# one pushed batch, null and ``batch_id`` names the batch whose stored answer holds them (no second copy).
# A later row wins for a seq.
change_ranges = Table(
    "change_ranges",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("node_id", String(64), nullable=False),
    Column("first_seq", BigInteger, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("results", Text),  # null: they are in the answer of batch ``batch_id``
    Column("digests", Text, nullable=False),
    Column("batch_id", String(64)),
    Index("ix_change_ranges_node_last", "node_id", "last_seq"),
)

records = Table(
    "records",
    metadata,
    Column("entity", String(32), primary_key=True),
    Column("entity_id", String(64), primary_key=True),
    Column("scope", String(32), nullable=False),
    Column("state", Text, nullable=False),
    # A person's searchable values, beside its state in the same row (0005; before, a table of their
    # own, which cost every new person a second row and index): read through ``person_view``.
    Column("household_id", String(64)),
    Column("nid", String(32)),
    Column("full_name_en", String(200)),
    Column("full_name_bn", String(200)),
    Column("deleted", Boolean),
    Index("ix_records_nid", "nid"),
)

hub_log = Table(
    "hub_log",
    metadata,
    Column("hub_seq", BigInteger, primary_key=True, autoincrement=False),
    Column("entity", String(32), nullable=False),
    Column("entity_id", String(64), nullable=False),
    Column("scope", String(32), nullable=False),
    Column("fields", Text, nullable=False),
    Column("origin", String(64), nullable=False),
    Column("origin_seq", BigInteger),
    Column("hlc", BigInteger, nullable=False, default=0),
    Index("ix_hub_log_scope_seq", "scope", "hub_seq"),
)

conflicts = Table(
    "conflicts",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("scope", String(32), nullable=False),
    Column("entity", String(32), nullable=False),
    Column("entity_id", String(64), nullable=False),
    Column("node_id", String(64), nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("data", Text, nullable=False),
    Index("ix_conflicts_status_scope", "status", "scope"),
)

# Views of the current record state kept in step by the store's save_records, so the staff API, the NID
# and the registry jobs can find persons by NID or name without decoding every record. ``person_view``
# is an SQL view over ``records`` (0005, ``PERSON_VIEW_SQL``); described here on a MetaData of its own,
# for queries only, so the migrations-equal-metadata check does not take it for a missing table.
views = MetaData()
PERSON_VIEW_SQL = (
    "CREATE VIEW person_view AS SELECT entity_id AS id, scope, household_id, nid, full_name_en, full_name_bn, "
    "deleted FROM records WHERE entity = 'person'"
)
person_view = Table(
    "person_view",
    views,
    Column("id", String(64), primary_key=True),
    Column("scope", String(32), nullable=False),
    Column("household_id", String(64)),
    Column("nid", String(32)),
    Column("full_name_en", String(200)),
    Column("full_name_bn", String(200)),
    Column("deleted", Boolean, nullable=False, default=False),
)

household_view = Table(
    "household_view",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("scope", String(32), nullable=False),
    Column("village", String(200)),
    Column("deleted", Boolean, nullable=False, default=False),
)

staff = Table(
    "staff",
    metadata,
    Column("username", String(64), primary_key=True),
    Column("password_hash", String(300), nullable=False),
    Column("role", String(32), nullable=False),
    Column("scope_level", String(16), nullable=False),  # all / division / district / upazila / union
    Column("scope_id", String(32)),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", String(32), nullable=False),
)

staff_sessions = Table(
    "staff_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("username", String(64), nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("expires_at", String(32), nullable=False),
)

login_failures = Table(
    "login_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False),
    Column("at", BigInteger, nullable=False),  # unix seconds
    Index("ix_login_failures_user", "username", "at"),
)

access_log = Table(
    "access_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", String(32), nullable=False),
    Column("actor", String(100), nullable=False),  # "staff:<name>", "node:<id>" or "anonymous"
    Column("method", String(8), nullable=False),
    Column("path", String(300), nullable=False),
    Column("status", Integer, nullable=False),
    Column("outcome", String(64), nullable=False),  # "ok" or the error code
    Column("remote_addr", String(64), nullable=False),
    Column("duration_ms", Integer, nullable=False),
)

# Tables owned by other modules register themselves on ``metadata``; importing them here keeps the
# migrations-equal-metadata check complete whatever was imported first.
from central_hub.nid import hub_schema as _nid_hub_schema  # noqa: E402,F401
from central_hub.registry import hub_schema as _registry_hub_schema  # noqa: E402,F401
