"""``VerificationStore`` in a SQLite file (stdlib sqlite3): the queue survives restarts and crashes.

One table, one row per person. ``due_at`` is set exactly when the person is claimable (pending, or a
retrying error), so claiming is one indexed range scan. Times are stored as UTC epoch seconds.
Several processes may share the file (WAL mode; claims run in ``BEGIN IMMEDIATE`` transactions, so two
workers never lease the same person).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from central_hub.nid.store import Claim, Outcome, Status, Subject, VerificationState, next_state

SCHEMA = """
CREATE TABLE IF NOT EXISTS nid_verification (
    person_id       TEXT PRIMARY KEY,
    nid             TEXT NOT NULL,
    name            TEXT NOT NULL,
    date_of_birth   TEXT NOT NULL,
    father_name     TEXT,
    mother_name     TEXT,
    status          TEXT NOT NULL,
    version         INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    mismatch_fields TEXT NOT NULL DEFAULT '',
    retrying        INTEGER NOT NULL DEFAULT 0,
    due_at          REAL,
    lease_until     REAL,
    error           TEXT,
    checked_at      REAL,
    seq             INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS nid_verification_due ON nid_verification (due_at, seq) WHERE due_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS nid_verification_seq ON nid_verification (seq);
"""

_COLUMNS = ("person_id, nid, name, date_of_birth, father_name, mother_name, status, version, attempts, "
            "mismatch_fields, retrying, due_at, error, checked_at")  # fmt: skip


def _ts(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


class SqliteVerificationStore:
    """Implements ``VerificationStore``. Thread-safe (one connection behind a lock)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a recorded verdict must survive a power cut
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def enqueue(self, subject: Subject, now: datetime) -> bool:
        with self._tx() as db:
            row = db.execute(
                "SELECT nid, name, date_of_birth, father_name, mother_name, version FROM nid_verification"
                " WHERE person_id = ?",
                (subject.person_id,),
            ).fetchone()
            details = (subject.nid, subject.name, subject.date_of_birth.isoformat(), subject.father_name,
                       subject.mother_name)  # fmt: skip
            if row is not None and tuple(row[:5]) == details:
                return False
            version = row[5] + 1 if row else 1
            seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM nid_verification").fetchone()[0]
            db.execute(
                "INSERT OR REPLACE INTO nid_verification (person_id, nid, name, date_of_birth, father_name,"
                " mother_name, status, version, attempts, mismatch_fields, retrying, due_at, lease_until, error,"
                " checked_at, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, '', 0, ?, NULL, NULL, NULL, ?)",
                (subject.person_id, *details, Status.PENDING.value, version, _ts(now), seq),
            )
            return True

    def claim(self, limit: int, now: datetime, lease: timedelta) -> list[Claim]:
        t = _ts(now)
        with self._tx() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM nid_verification WHERE due_at IS NOT NULL AND due_at <= ?"
                " AND (lease_until IS NULL OR lease_until <= ?) ORDER BY due_at, seq LIMIT ?",
                (t, t, limit),
            ).fetchall()
            db.executemany(
                "UPDATE nid_verification SET lease_until = ? WHERE person_id = ?",
                [(_ts(now + lease), row[0]) for row in rows],
            )
        return [Claim(_state(row).subject, row[7], row[8]) for row in rows]

    def record(self, claim: Claim, outcome: Outcome, now: datetime) -> VerificationState | None:
        with self._tx() as db:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM nid_verification WHERE person_id = ?", (claim.subject.person_id,)
            ).fetchone()
            if row is None or row[7] != claim.version:
                return None
            new = next_state(_state(row), claim, outcome, now)
            db.execute(
                "UPDATE nid_verification SET status = ?, attempts = ?, mismatch_fields = ?, retrying = ?,"
                " due_at = ?, lease_until = NULL, error = ?, checked_at = ? WHERE person_id = ?",
                (new.status.value, new.attempts, ",".join(new.mismatch_fields), int(new.retrying),
                 _ts(new.next_attempt_at), new.error, _ts(new.checked_at), new.person_id),
            )  # fmt: skip
            return new

    def get(self, person_id: str) -> VerificationState | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM nid_verification WHERE person_id = ?", (person_id,)
            ).fetchone()
        return _state(row) if row else None

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT status, COUNT(*), SUM(retrying) FROM nid_verification GROUP BY status"
            ).fetchall()
        result = dict.fromkeys([s.value for s in Status], 0)
        result["retrying"] = 0
        for status, count, retrying in rows:
            result[status] = count
            result["retrying"] += retrying or 0
        return result


def _state(row: tuple[Any, ...]) -> VerificationState:
    (person_id, nid, name, dob, father, mother, status, version, attempts, mismatch, retrying, due_at, error,
     checked_at) = row  # fmt: skip
    return VerificationState(
        subject=Subject(person_id, nid, name, date.fromisoformat(dob), father, mother),
        status=Status(status),
        version=version,
        attempts=attempts,
        mismatch_fields=tuple(f for f in mismatch.split(",") if f),
        retrying=bool(retrying),
        next_attempt_at=_dt(due_at),
        error=error,
        checked_at=_dt(checked_at),
    )
