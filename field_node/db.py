"""The node's SQLCipher database: opening it with the raw key, transactions, and numbered migrations.

Writes inside ``transaction()`` use plain SQL on the connection: sqlite-utils' write helpers wrap
themselves in ``with conn:``, which would commit our outer transaction half way.
"""

from __future__ import annotations

import sys
import threading
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import sqlcipher3

from .errors import WrongPasswordError


def _import_sqlite_utils() -> ModuleType:
    """sqlite-utils imports pandas and numpy whenever they are installed (they are, for the hub's record
    linkage), only to recognise their value types; that costs the node ~90 MB of resident memory for
    nothing, since it never stores such values. Hide them while sqlite-utils loads."""
    hidden = [name for name in ("pandas", "numpy") if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # makes "import pandas" raise ImportError
    try:
        import sqlite_utils
    finally:
        for name in hidden:
            if sys.modules.get(name) is None:
                del sys.modules[name]
    return sqlite_utils


if TYPE_CHECKING:
    import sqlite_utils
else:
    sqlite_utils = _import_sqlite_utils()

DB_FILE = "node.db"

Migration = Callable[[sqlite_utils.Database], None]


def _value_cols(names: list[str]) -> str:
    # No declared type: SQLite keeps each value's own type (text, integer, real), as the sync sent it.
    return ", ".join(f'"{n}"' for n in names)


# The column lists below repeat sync_protocol/entities.py on purpose: a migration is a snapshot of the
# schema at its version and must not change when entities.py gains a field (that needs a new migration;
# replica_store.py maps only columns that both the table and ENTITIES know).
def _m001_core(db: sqlite_utils.Database) -> None:
    _run_script(
        db,
        f"""
        CREATE TABLE node_config (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
        CREATE TABLE sync_state (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
        CREATE TABLE household (id TEXT PRIMARY KEY, scope TEXT NOT NULL, _deleted INTEGER NOT NULL DEFAULT 0,
            {
            _value_cols(
                [
                    "union_id",
                    "ward",
                    "village",
                    "address",
                    "head_person_id",
                    "land_decimals",
                    "house_type",
                    "monthly_income_bdt",
                    "pmt_score",
                ]
            )
        },
            _extra TEXT, created_at TEXT, updated_at TEXT);
        CREATE TABLE person (id TEXT PRIMARY KEY, scope TEXT NOT NULL, _deleted INTEGER NOT NULL DEFAULT 0,
            {
            _value_cols(
                [
                    "household_id",
                    "full_name_bn",
                    "full_name_en",
                    "sex",
                    "date_of_birth",
                    "dob_estimated",
                    "nid",
                    "brn",
                    "father_name",
                    "mother_name",
                    "spouse_name",
                    "mobile",
                    "relation_to_head",
                    "disability",
                    "occupation",
                    "marital_status",
                    "life_status",
                    "date_of_death",
                    "nid_status",
                    "nid_checked_at",
                    "nid_mismatch_fields",
                    "registry_id",
                    "duplicate_flags",
                ]
            )
        },
            name_key_bn TEXT, name_key_en TEXT, _extra TEXT, created_at TEXT, updated_at TEXT);
        CREATE INDEX person_household ON person (household_id);
        CREATE INDEX person_nid ON person (nid);
        CREATE INDEX person_brn ON person (brn);
        CREATE INDEX person_mobile ON person (mobile);
        CREATE INDEX person_name_en_dob ON person (name_key_en, date_of_birth);
        CREATE INDEX person_name_bn_dob ON person (name_key_bn, date_of_birth);
        CREATE TABLE enrolment (id TEXT PRIMARY KEY, scope TEXT NOT NULL, _deleted INTEGER NOT NULL DEFAULT 0,
            {
            _value_cols(
                [
                    "person_id",
                    "programme",
                    "status",
                    "applied_on",
                    "status_changed_on",
                    "payment_channel",
                    "account_number",
                    "benefit_amount_bdt",
                    "double_dipping_flags",
                ]
            )
        },
            _extra TEXT, created_at TEXT, updated_at TEXT);
        CREATE INDEX enrolment_person ON enrolment (person_id);
        CREATE TABLE grievance (id TEXT PRIMARY KEY, scope TEXT NOT NULL, _deleted INTEGER NOT NULL DEFAULT 0,
            {
            _value_cols(
                [
                    "tracking_number",
                    "complainant_person_id",
                    "complainant_name",
                    "complainant_mobile",
                    "programme",
                    "category",
                    "description",
                    "tier",
                    "status",
                    "due_on",
                ]
            )
        },
            _extra TEXT, created_at TEXT, updated_at TEXT);
        CREATE INDEX grievance_tracking ON grievance (tracking_number);
        CREATE TABLE grievance_event (id TEXT PRIMARY KEY, scope TEXT NOT NULL, _deleted INTEGER NOT NULL DEFAULT 0,
            {_value_cols(["grievance_id", "type", "note", "tier", "actor", "occurred_at"])},
            _extra TEXT, created_at TEXT, updated_at TEXT);
        CREATE INDEX grievance_event_grievance ON grievance_event (grievance_id);
        CREATE TABLE field_meta (entity TEXT NOT NULL, entity_id TEXT NOT NULL, field TEXT NOT NULL,
            base_rev INTEGER NOT NULL, shadow_value TEXT, shadow_rev INTEGER NOT NULL, pending INTEGER NOT NULL,
            PRIMARY KEY (entity, entity_id, field)) WITHOUT ROWID;
        CREATE TABLE outbox (node_seq INTEGER PRIMARY KEY, hlc INTEGER NOT NULL, entity TEXT NOT NULL,
            entity_id TEXT NOT NULL, scope TEXT NOT NULL, op TEXT NOT NULL, fields TEXT NOT NULL,
            base TEXT NOT NULL, actor TEXT NOT NULL);
        CREATE INDEX outbox_entity ON outbox (entity, entity_id);
        CREATE TABLE acks (node_seq INTEGER PRIMARY KEY, result TEXT NOT NULL);
        CREATE VIRTUAL TABLE person_fts USING fts5(names, numbers, tokenize='unicode61 remove_diacritics 2');
        """,
    )


def _bangla_token_chars() -> str:
    """Bangla vowel signs, virama, nukta, candrabindu...: combining marks that the unicode61 tokenizer
    would otherwise treat as separators, cutting "রহিমা" into "রহ" + "ম". Plus ZWJ/ZWNJ, used in conjuncts."""
    marks = [chr(c) for c in range(0x0980, 0x0A00) if unicodedata.category(chr(c)).startswith("M")]
    return "".join(marks) + "\u200c\u200d"


def _m002_bangla_search(db: sqlite_utils.Database) -> None:
    db.conn.execute("DROP TABLE person_fts")
    db.conn.execute(
        "CREATE VIRTUAL TABLE person_fts USING fts5(names, numbers, "
        f"tokenize = \"unicode61 remove_diacritics 2 tokenchars '{_bangla_token_chars()}'\")"
    )
    rows = db.conn.execute(
        "SELECT rowid, full_name_bn, full_name_en, father_name, mother_name, spouse_name, nid, brn, mobile"
        " FROM person WHERE _deleted = 0"
    ).fetchall()
    db.conn.executemany(
        "INSERT INTO person_fts (rowid, names, numbers) VALUES (?, ?, ?)",
        [(r[0], " ".join(x or "" for x in r[1:6]), " ".join(x or "" for x in r[6:9])) for r in rows],
    )


# Batches imported from other nodes' bundles, held until this node forwards them to the hub
# (store and forward); bundles.SqlForwardQueue reads and writes it.
BUNDLE_FORWARD_DDL = (
    "CREATE TABLE IF NOT EXISTS bundle_forward (batch_id TEXT PRIMARY KEY, origin TEXT NOT NULL,"
    " first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL, envelope BLOB NOT NULL,"
    " status TEXT NOT NULL, answer TEXT, imported_at TEXT NOT NULL, updated_at TEXT)"
)


def _m003_bundle_forward(db: sqlite_utils.Database) -> None:
    db.conn.execute(BUNDLE_FORWARD_DDL)


def _run_script(db: sqlite_utils.Database, script: str) -> None:
    # Statement by statement: executescript() would COMMIT the migration's transaction first.
    for statement in script.split(";"):
        if statement.strip():
            db.conn.execute(statement)


MIGRATIONS: list[Migration] = [_m001_core, _m002_bangla_search, _m003_bundle_forward]


class NodeDatabase:
    """One connection shared by the process's threads; a re-entrant lock serialises its use."""

    def __init__(self, path: Path, key: bytes) -> None:
        self.path = Path(path)
        conn = sqlcipher3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        conn.execute(f"PRAGMA key = \"x'{key.hex()}'\"")
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlcipher3.DatabaseError as exc:
            conn.close()
            raise WrongPasswordError("the database key does not open this database") from exc
        conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL in WAL mode survives a killed process; only a power cut may lose the last commits.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA busy_timeout = 5000")
        self.conn = conn
        self.db = sqlite_utils.Database(conn)
        self.lock = threading.RLock()
        self._depth = 0

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything inside commits together or not at all; nested calls join the outer one."""
        with self.lock:
            if self._depth == 0:
                self.conn.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if self._depth == 0:
                    self.conn.execute("ROLLBACK")
                raise
            self._depth -= 1
            if self._depth == 0:
                self.conn.execute("COMMIT")

    def migrate(self) -> int:
        """Apply the migrations not applied yet, each in its own transaction; returns the version."""
        with self.lock:
            self.conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)")
            row = self.conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
            current = int(row[0] or 0)
            for version, migration in enumerate(MIGRATIONS, start=1):
                if version <= current:
                    continue
                with self.transaction():
                    migration(self.db)
                    self.conn.execute("INSERT INTO schema_migrations (version) VALUES (?)", (version,))
                current = version
            return current

    def close(self) -> None:
        with self.lock:
            self.conn.close()
