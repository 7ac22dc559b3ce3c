"""``VerificationStore`` in the hub's own database (SQLite or PostgreSQL, through ``SqlHubStore``), and the
two links between the queue and the hub's records:

- ``scan_hub_log`` (the enqueue side): reads the hub log after a stored cursor and (re-)queues every person
  whose NID, names, birth date or parents' names were written there. Queue rows and cursor move in one
  transaction, and the log is the durable record of every accepted push and staff resolution, so nothing is
  lost if the process dies between ingest and enqueue, and the push path does no extra work. Starting from
  cursor 0 is the backfill.
- ``publish`` (the result side): ``record`` writes the queue row and, in the same transaction, the person's
  hub-owned fields through ``HubEngine`` (so they enter the hub log and reach nodes by pull). Saving and
  publishing a result therefore commit together or not at all.

Every write goes through ``SqlHubStore.transaction()``, the hub's serialised writer transaction: claims and
records are short, and serialising them with pushes is what keeps ``hub_seq`` gapless when a result is
published.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, case, func, insert, select, update

from central_hub import schema as hub_tables
from central_hub.nid.hub_bridge import VERIFICATION_FIELDS, subject_from_person
from central_hub.nid.hub_schema import nid_verification as q
from central_hub.nid.store import Claim, Outcome, Status, Subject, VerificationState, next_state
from central_hub.store import SqlHubStore
from sync_protocol.entities import DELETED

#: the settings key holding the last hub_seq the enqueue scan has read
SCAN_CURSOR_KEY = "nid_scan_cursor"

Publish = Callable[[VerificationState], None]


def _ms(value: datetime | None) -> int | None:
    return None if value is None else round(value.timestamp() * 1000)


def _dt(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value / 1000, UTC)


class SqlVerificationStore:
    """Implements ``VerificationStore`` on the hub database. Thread-safe (each call is its own transaction,
    or joins the caller's). ``publish`` runs inside ``record``'s transaction for every recorded state."""

    def __init__(self, hub_store: SqlHubStore, publish: Publish | None = None) -> None:
        self.hub_store = hub_store
        self.publish = publish

    # ---- VerificationStore -------------------------------------------------------------------------

    def enqueue(self, subject: Subject, now: datetime) -> bool:
        with self.hub_store.transaction():
            return self._enqueue_tx(subject, now)

    def _enqueue_tx(self, subject: Subject, now: datetime) -> bool:
        conn = self.hub_store._writer()
        row = conn.execute(
            select(q.c.nid, q.c.name, q.c.date_of_birth, q.c.father_name, q.c.mother_name, q.c.version).where(
                q.c.person_id == subject.person_id
            )
        ).first()
        details = (subject.nid, subject.name, subject.date_of_birth.isoformat(), subject.father_name,
                   subject.mother_name)  # fmt: skip
        if row is not None and tuple(row[:5]) == details:
            return False
        seq = int(conn.execute(select(func.coalesce(func.max(q.c.seq), 0) + 1)).scalar_one())
        values: dict[str, Any] = {
            "nid": subject.nid,
            "name": subject.name,
            "date_of_birth": details[2],
            "father_name": subject.father_name,
            "mother_name": subject.mother_name,
            "status": Status.PENDING.value,
            "version": row.version + 1 if row is not None else 1,
            "attempts": 0,
            "mismatch_fields": "",
            "retrying": False,
            "due_at": _ms(now),
            "lease_until": None,
            "error": None,
            "checked_at": None,
            "seq": seq,
        }
        if row is None:
            conn.execute(insert(q).values(person_id=subject.person_id, **values))
        else:
            conn.execute(update(q).where(q.c.person_id == subject.person_id).values(**values))
        return True

    def _enqueue_many_tx(self, subjects: list[Subject], now: datetime) -> int:
        """``enqueue`` for many persons with a handful of statements (the scan holds the writer lock)."""
        if not subjects:
            return 0
        conn = self.hub_store._writer()
        current: dict[str, Any] = {}
        ids = [s.person_id for s in subjects]
        for i in range(0, len(ids), 500):
            for found in conn.execute(
                select(q.c.person_id, q.c.nid, q.c.name, q.c.date_of_birth, q.c.father_name, q.c.mother_name,
                       q.c.version).where(q.c.person_id.in_(ids[i : i + 500]))
            ):  # fmt: skip
                current[found.person_id] = found
        seq = int(conn.execute(select(func.coalesce(func.max(q.c.seq), 0))).scalar_one())
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        for subject in subjects:
            row = current.get(subject.person_id)
            dob = subject.date_of_birth.isoformat()
            details = (subject.nid, subject.name, dob, subject.father_name, subject.mother_name)
            if row is not None and tuple(row[1:6]) == details:
                continue
            seq += 1
            values = {
                "nid": subject.nid, "name": subject.name, "date_of_birth": dob, "father_name": subject.father_name,
                "mother_name": subject.mother_name, "status": Status.PENDING.value,
                "version": row.version + 1 if row is not None else 1, "attempts": 0, "mismatch_fields": "",
                "retrying": False, "due_at": _ms(now), "lease_until": None, "error": None, "checked_at": None,
                "seq": seq,
            }  # fmt: skip
            if row is None:
                inserts.append({"person_id": subject.person_id, **values})
            else:
                updates.append({"b_person_id": subject.person_id, **{f"b_{k}": v for k, v in values.items()}})
        if inserts:
            conn.execute(insert(q), inserts)
        if updates:
            names = [k[2:] for k in updates[0] if k != "b_person_id"]
            stmt = update(q).where(q.c.person_id == bindparam("b_person_id"))
            conn.execute(stmt.values({k: bindparam(f"b_{k}") for k in names}), updates)
        return len(inserts) + len(updates)

    def claim(self, limit: int, now: datetime, lease: timedelta) -> list[Claim]:
        t = _ms(now)
        with self.hub_store.transaction():
            conn = self.hub_store._writer()
            rows = conn.execute(
                select(q)
                .where(q.c.due_at.is_not(None), q.c.due_at <= t, (q.c.lease_until.is_(None)) | (q.c.lease_until <= t))
                .order_by(q.c.due_at, q.c.seq)
                .limit(limit)
            ).all()
            if rows:
                conn.execute(
                    update(q).where(q.c.person_id.in_([r.person_id for r in rows])).values(lease_until=_ms(now + lease))
                )
        return [Claim(_state(r).subject, int(r.version), int(r.attempts)) for r in rows]

    def record(self, claim: Claim, outcome: Outcome, now: datetime) -> VerificationState | None:
        with self.hub_store.transaction():
            conn = self.hub_store._writer()
            row = conn.execute(select(q).where(q.c.person_id == claim.subject.person_id)).first()
            if row is None or int(row.version) != claim.version:
                return None
            new = next_state(_state(row), claim, outcome, now)
            conn.execute(
                update(q)
                .where(q.c.person_id == new.person_id)
                .values(
                    status=new.status.value,
                    attempts=new.attempts,
                    mismatch_fields=",".join(new.mismatch_fields),
                    retrying=new.retrying,
                    due_at=_ms(new.next_attempt_at),
                    lease_until=None,
                    error=new.error,
                    checked_at=_ms(new.checked_at),
                )
            )
            if self.publish is not None:
                self.publish(new)  # same transaction: the result and its log entry commit together
            return new

    def get(self, person_id: str) -> VerificationState | None:
        with self.hub_store._conn() as conn:
            row = conn.execute(select(q).where(q.c.person_id == person_id)).first()
        return _state(row) if row is not None else None

    def counts(self) -> dict[str, int]:
        with self.hub_store._conn() as conn:
            rows = conn.execute(
                select(q.c.status, func.count(), func.sum(case((q.c.retrying, 1), else_=0))).group_by(q.c.status)
            ).all()
        result = dict.fromkeys([s.value for s in Status], 0)
        result["retrying"] = 0
        for status, count, retrying in rows:
            result[status] = int(count)
            result["retrying"] += int(retrying or 0)
        return result

    def retry_service_errors(self, now: datetime) -> int:
        """Make final errors that came from the service side (refused key, answers we could not read,
        refused requests) due again; details that can never verify (``invalid_request``) stay until
        someone corrects the record. Run at start-up: a fixed API key then re-checks everyone it failed."""
        with self.hub_store.transaction():
            result = self.hub_store._writer().execute(
                update(q)
                .where(q.c.status == Status.ERROR.value, q.c.retrying.is_(False), ~q.c.error.like("invalid_request%"))
                .values(retrying=True, due_at=_ms(now), lease_until=None)
            )
            return int(result.rowcount or 0)

    # ---- for the staff dashboard ---------------------------------------------------------------------

    def counts_by_union(self, unions: frozenset[str] | None) -> dict[str, dict[str, int]]:
        """``{union_id: {status: n}}`` (the union is the person record's scope); ``unions=None``: all."""
        pv = hub_tables.person_view.c
        query = (
            select(pv.scope, q.c.status, func.count())
            .select_from(q.join(hub_tables.person_view, pv.id == q.c.person_id))
            .group_by(pv.scope, q.c.status)
        )
        if unions is not None:
            if not unions:
                return {}
            query = query.where(pv.scope.in_(sorted(unions)))
        out: dict[str, dict[str, int]] = {}
        with self.hub_store._conn() as conn:
            for scope, status, count in conn.execute(query):
                out.setdefault(scope, dict.fromkeys([s.value for s in Status], 0))[status] = int(count)
        return out

    def recent(
        self, statuses: tuple[Status, ...], unions: frozenset[str] | None, limit: int = 20
    ) -> list[tuple[VerificationState, str]]:
        """The latest answers with one of ``statuses`` (newest first), each with its union."""
        pv = hub_tables.person_view.c
        query = (
            select(q, pv.scope)
            .select_from(q.join(hub_tables.person_view, pv.id == q.c.person_id))
            .where(q.c.status.in_([s.value for s in statuses]), q.c.checked_at.is_not(None))
            .order_by(q.c.checked_at.desc())
            .limit(limit)
        )
        if unions is not None:
            if not unions:
                return []
            query = query.where(pv.scope.in_(sorted(unions)))
        with self.hub_store._conn() as conn:
            return [(_state(r), r.scope) for r in conn.execute(query)]

    def last_checked(self, statuses: tuple[Status, ...]) -> datetime | None:
        with self.hub_store._conn() as conn:
            value = conn.execute(
                select(func.max(q.c.checked_at)).where(q.c.status.in_([s.value for s in statuses]))
            ).scalar()
        return _dt(value)

    # ---- enqueue from the hub log --------------------------------------------------------------------

    def scan_cursor(self) -> int:
        return int(self.hub_store.get_setting(SCAN_CURSOR_KEY) or 0)

    def scan_hub_log(self, now: datetime, limit: int = 1000) -> int:
        """Queue persons whose verified details were written since the last scan (at most ``limit`` log
        entries per call). Returns how many persons became pending. Idempotent: a subject whose details did
        not change is left as it is.

        Reading the log and the records happens outside the writer transaction, so pushes wait only for
        the enqueue itself. Writers commit in ``hub_seq`` order, so the rows read are a gapless prefix;
        a record changed after it was read has a newer log entry, which the next scan takes."""
        log = hub_tables.hub_log.c
        cursor = self.scan_cursor()
        with self.hub_store._conn() as conn:
            rows = conn.execute(
                select(log.hub_seq, log.entity, log.entity_id, log.fields)
                .where(log.hub_seq > cursor)
                .order_by(log.hub_seq)
                .limit(limit)
            ).all()
        if not rows:
            return 0
        touched = {
            r.entity_id for r in rows if r.entity == "person" and VERIFICATION_FIELDS & json.loads(r.fields).keys()
        }
        subjects = []
        records = self.hub_store.load_records([("person", pid) for pid in touched])
        for (_, person_id), record in sorted(records.items()):
            values = record.values()
            if values.get(DELETED):
                continue
            subject = subject_from_person(person_id, values)
            if subject is not None:
                subjects.append(subject)
        with self.hub_store.transaction():
            if self.scan_cursor() != cursor:
                return 0  # another hub process scanned these entries meanwhile
            queued = self._enqueue_many_tx(subjects, now)
            self.hub_store._upsert(
                hub_tables.settings, [{"key": SCAN_CURSOR_KEY, "value": str(rows[-1].hub_seq)}], ["key"]
            )
            return queued

    def scan_until_done(self, now: datetime, limit: int = 1000) -> int:
        queued = 0
        while True:
            before = self.scan_cursor()
            queued += self.scan_hub_log(now, limit)
            if self.scan_cursor() == before:
                return queued


def _state(row: Any) -> VerificationState:
    return VerificationState(
        subject=Subject(
            row.person_id, row.nid, row.name, date.fromisoformat(row.date_of_birth), row.father_name, row.mother_name
        ),
        status=Status(row.status),
        version=int(row.version),
        attempts=int(row.attempts),
        mismatch_fields=tuple(f for f in row.mismatch_fields.split(",") if f),
        retrying=bool(row.retrying),
        next_attempt_at=_dt(row.due_at),
        error=row.error,
        checked_at=_dt(row.checked_at),
    )
