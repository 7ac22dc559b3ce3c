"""The hub's database store: ``sync_protocol.store.HubStore`` over SQLAlchemy Core (SQLite or PostgreSQL),
plus what the hub application keeps beside the protocol (nodes, enrolment tokens, staff, sessions,
login failures, the access log, materialised person/household views).

Transactions: ``transaction()`` is one database transaction on a connection bound to the calling
thread; nested calls join it. Writers are serialised (SQLite ``BEGIN IMMEDIATE``, PostgreSQL
``pg_advisory_xact_lock``) because the engine hands out ``hub_seq`` from ``last_hub_seq()``: two
concurrent writers would otherwise pick the same number, and a reader could see N+1 committed before N.
Reads outside a transaction use a short-lived connection of their own.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import itertools
import json
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy import Connection, Table, and_, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.exc import IntegrityError

from sync_protocol.entities import DELETED
from sync_protocol.model import (
    ChangeResult,
    Conflict,
    FieldState,
    LayeredFields,
    LogEntry,
    RecordState,
    UniformFields,
)
from sync_protocol.store import NodeRecord, StoredBatch

from . import db
from . import schema as t
from .errors import StoreError

# Arbitrary constant shared by every hub process on one PostgreSQL database: the writer lock's key.
PG_WRITER_LOCK = 0x4E5350_4855  # "NSP" "HU"
_CHUNK = 500


# One encoder, built once: json.dumps with options builds a new one per call, several times per change.
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_encode = msgspec.json.Encoder().encode
_MSGSPEC_DECODE = msgspec.json.Decoder().decode


def _hot_dumps(value: Any) -> str:
    """``_dumps`` for the push path (log values, record states, change results), in C: the same JSON
    values, read back with ``json.loads``. Only protocol values go through it, and those never hold NaN
    (the wire refuses it), which msgspec would write as null."""
    return _encode(value).decode("utf-8")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def iso(when: dt.datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


@dataclass(frozen=True)
class StaffRecord:
    username: str
    password_hash: str
    role: str
    scope_level: str
    scope_id: str | None
    active: bool = True


@dataclass(frozen=True)
class EnrolmentToken:
    scopes: frozenset[str]
    union_id: str | None
    upazila_id: str | None
    expires_at: str
    used_at: str | None


@dataclass(frozen=True)
class NodeInfo:
    node: NodeRecord
    union_id: str | None
    upazila_id: str | None
    enrolled_at: str


class SqlHubStore:
    """One hub database. Implements ``sync_protocol.store.HubStore``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = db.make_engine(url)
        self.dialect = self.engine.dialect.name
        self._local = threading.local()
        self._bulk_sql: dict[tuple[str, bool, int], str] = {}
        # Bound parameters per statement: SQLite's default limit since 3.32.
        self._max_params = 32_766
        self._mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"  # for SQL straight on the driver

    # ---- lifecycle ------------------------------------------------------------------------------

    def migrate(self) -> None:
        db.upgrade(self.engine)

    def check_schema(self) -> None:
        """Refuse to run on a database ``init`` has not brought up to date."""
        current = db.current_revision(self.engine)
        if current != db.head_revision():
            raise StoreError(
                f"database schema is at {current or 'nothing'}, this hub needs {db.head_revision()}: "
                "run `central-hub init --db URL` first"
            )

    def close(self) -> None:
        self.engine.dispose()

    # ---- transactions -------------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if getattr(self._local, "conn", None) is not None:
            yield  # nested: part of the outer transaction
            return
        with self.engine.connect() as conn:
            conn.execution_options(hub_write=True)
            with conn.begin():
                if self.dialect == "postgresql":
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_WRITER_LOCK})")
                self._local.conn = conn
                self._local.logged = {}
                try:
                    yield
                finally:
                    self._local.conn = None
                    self._local.logged = None

    @contextmanager
    def _conn(self) -> Iterator[Connection]:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            yield conn
            return
        with self.engine.connect() as fresh:
            yield fresh

    def _writer(self) -> Connection:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            raise RuntimeError("write outside a transaction")
        return conn

    def _upsert(self, table: Table, rows: list[dict[str, Any]], keys: list[str]) -> None:
        if not rows:
            return
        ins = (pg_dialect.insert if self.dialect == "postgresql" else sqlite_dialect.insert)(table)
        others = [c.name for c in table.columns if c.name not in keys]
        stmt = ins.on_conflict_do_update(index_elements=keys, set_={c: ins.excluded[c] for c in others})
        self._writer().execute(stmt, rows)

    def _bulk(self, table: Table, rows: list[tuple[Any, ...]], keys: list[str] | None = None) -> None:
        """Insert ``rows`` (tuples in the table's column order) straight on the driver, for the per-batch
        hot path, where SQLAlchemy's per-row parameter processing cost more than the database work. On
        SQLite one multi-row ``INSERT ... VALUES`` (about a third less per row than an ``executemany``);
        on PostgreSQL psycopg's pipelined ``executemany``, which measured faster there than one long
        statement. With ``keys`` existing rows are replaced (the same SQL on SQLite and PostgreSQL)."""
        if not rows:
            return
        writer = self._writer()
        if self.dialect == "postgresql":
            # psycopg's executemany pipelines the rows; one long statement measured slower there.
            writer.exec_driver_sql(self._bulk_statement(table, keys, 1), rows)
            return
        # SQLite applies the rows of one statement in order, so a key twice ends as its last row, as with
        # executemany.
        per = max(1, self._max_params // len(table.columns))
        for i in range(0, len(rows), per):
            chunk = rows[i : i + per]
            params = tuple(itertools.chain.from_iterable(chunk))
            writer.exec_driver_sql(self._bulk_statement(table, keys, len(chunk)), params)

    def _bulk_statement(self, table: Table, keys: list[str] | None, count: int) -> str:
        sql = self._bulk_sql.get((table.name, bool(keys), count))
        if sql is None:
            cols = [c.name for c in table.columns]
            one = f"({', '.join([self._mark] * len(cols))})"
            sql = f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES {', '.join([one] * count)}"
            if keys:
                updates = ", ".join(f"{c} = excluded.{c}" for c in cols if c not in keys)
                sql += f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"
            if len(self._bulk_sql) > 256:
                self._bulk_sql.clear()
            self._bulk_sql[(table.name, bool(keys), count)] = sql
        return sql

    # ---- HubStore: nodes and batches ----------------------------------------------------------------

    # The statements every push makes go straight to the driver: through SQLAlchemy Core they cost about
    # half a millisecond a push, which is a microsecond per change of a 500-change batch.

    def _driver_sql(self, sql: str) -> str:
        return sql if self._mark == "?" else sql.replace("?", self._mark)

    @staticmethod
    def _node(row: Any) -> NodeRecord:
        return NodeRecord(
            node_id=row.node_id,
            public_key=bytes(row.public_key),
            scopes=frozenset(json.loads(row.scopes)),
            last_seq=int(row.last_seq),
            revoked=bool(row.revoked),
            label=row.label,
        )

    def get_node(self, node_id: str) -> NodeRecord | None:
        sql = self._driver_sql(
            "SELECT node_id, public_key, scopes, last_seq, revoked, label FROM nodes WHERE node_id = ?"
        )
        with self._conn() as conn:
            row = conn.exec_driver_sql(sql, (node_id,)).first()
        return self._node(row) if row else None

    def set_node_last_seq(self, node_id: str, seq: int) -> None:
        self._writer().exec_driver_sql(
            self._driver_sql("UPDATE nodes SET last_seq = ? WHERE node_id = ?"), (seq, node_id)
        )

    def get_batch(self, batch_id: str) -> StoredBatch | None:
        sql = self._driver_sql("SELECT batch_id, node_id, digest, response FROM batches WHERE batch_id = ?")
        with self._conn() as conn:
            row = conn.exec_driver_sql(sql, (batch_id,)).first()
        if row is None:
            return None
        return StoredBatch(row.batch_id, row.node_id, row.digest, json.loads(row.response))

    def save_batch(self, batch: StoredBatch) -> None:
        self._bulk(t.batches, [(batch.batch_id, batch.node_id, batch.digest, _hot_dumps(batch.response))], ["batch_id"])

    def _stored_results(self, node_id: str, first: int, last: int) -> dict[int, tuple[dict[str, Any], str | None]]:
        """seq -> (result JSON, digest or None) for seqs first..last: rows of ``change_results`` (before
        0005), then the ``change_ranges`` rows in the order written, a later one winning for a seq."""
        out: dict[int, tuple[dict[str, Any], str | None]] = {}
        c, r = t.change_results.c, t.change_ranges.c
        with self._conn() as conn:
            for row in conn.execute(
                select(c.node_seq, c.result, c.digest).where(
                    c.node_id == node_id, c.node_seq >= first, c.node_seq <= last
                )
            ):
                out[int(row.node_seq)] = (json.loads(row.result), row.digest)
            for span in conn.execute(
                select(r.first_seq, r.last_seq, r.results, r.digests, r.batch_id)
                .where(r.node_id == node_id, r.last_seq >= first, r.first_seq <= last)
                .order_by(r.id)
            ):
                if span.results is not None:
                    results = json.loads(span.results)
                else:
                    stored = self.get_batch(span.batch_id)
                    if stored is None:
                        raise StoreError(f"results of node {node_id} point at batch {span.batch_id}, which is missing")
                    # The batch's answer also lists the seqs it had before (resent ones): keep this row's.
                    results = [x for x in stored.response["results"] if span.first_seq <= x["seq"] <= span.last_seq]
                for result, digest in zip(results, json.loads(span.digests), strict=True):
                    seq = int(result["seq"])
                    if first <= seq <= last:
                        out[seq] = (result, digest)
        return out

    def get_change_results(self, node_id: str, first: int, last: int) -> dict[int, ChangeResult]:
        stored = self._stored_results(node_id, first, last)
        return {seq: ChangeResult.from_json(result) for seq, (result, _) in sorted(stored.items())}

    def save_change_results(
        self,
        node_id: str,
        results: list[ChangeResult],
        digests: Mapping[int, str] | None = None,
        *,
        batch_id: str | None = None,
    ) -> None:
        if not results:
            return
        digests = digests or {}
        seqs = [r.node_seq for r in results]
        self._writer().exec_driver_sql(
            self._driver_sql(
                "INSERT INTO change_ranges (node_id, first_seq, last_seq, results, digests, batch_id) "
                "VALUES (?, ?, ?, ?, ?, ?)"
            ),
            (
                node_id,
                min(seqs),
                max(seqs),
                None if batch_id else _hot_dumps([r.to_json() for r in results]),
                _hot_dumps([digests.get(seq) for seq in seqs]),
                batch_id,
            ),
        )

    def get_change_digests(self, node_id: str, first: int, last: int) -> dict[int, str]:
        stored = self._stored_results(node_id, first, last)
        return {seq: digest for seq, (_, digest) in sorted(stored.items()) if digest is not None}

    # ---- HubStore: records --------------------------------------------------------------------------

    def load_records(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], RecordState]:
        by_entity: dict[str, list[str]] = {}
        for entity, entity_id in keys:
            by_entity.setdefault(entity, []).append(entity_id)
        out: dict[tuple[str, str], RecordState] = {}
        parsed: dict[tuple[str, str], tuple[str, list[_Group] | dict[str, FieldState]]] = {}
        mark = self._mark
        with self._conn() as conn:
            for entity, ids in by_entity.items():
                for chunk in _chunks(sorted(set(ids))):
                    # Straight on the driver: a batch looks up 500 ids, and SQLAlchemy rebuilt the IN list's
                    # SQL on every call.
                    sql = (
                        f"SELECT entity_id, scope, state FROM records WHERE entity = {mark} "
                        f"AND entity_id IN ({', '.join([mark] * len(chunk))})"
                    )
                    for entity_id, scope, state in conn.exec_driver_sql(sql, (entity, *chunk)):
                        parsed[(entity, entity_id)] = (scope, _parse_state(state))
            # States that point at the log entries holding their values (see ``_encode_state``).
            refs = {g[0] for _, groups in parsed.values() if isinstance(groups, list) for g in groups if g[3] is None}
            entries = self.log_entries(refs) if refs else {}
        for (entity, entity_id), (scope, groups) in parsed.items():
            fields = groups if isinstance(groups, dict) else _build_fields(entity, entity_id, groups, entries)
            out[(entity, entity_id)] = RecordState(entity, entity_id, scope, fields)
        return out

    def save_records(self, records: list[RecordState]) -> None:
        rows: list[tuple[Any, ...]] = []
        households: list[tuple[Any, ...]] = []
        encode = self._encode_state
        for r in records:
            if r.entity == "person":
                values = r.fields.plain if isinstance(r.fields, UniformFields) else r.values()
                get = values.get
                hh, nid, en, bn = get("household_id"), get("nid"), get("full_name_en"), get("full_name_bn")
                rows.append(
                    (
                        "person",
                        r.entity_id,
                        r.scope,
                        encode(r.fields),
                        hh if type(hh) is str and len(hh) <= 200 else _text(hh),
                        nid if type(nid) is str and len(nid) <= 200 else _text(nid),
                        en if type(en) is str and len(en) <= 200 else _text(en),
                        bn if type(bn) is str and len(bn) <= 200 else _text(bn),
                        bool(get(DELETED)),
                    )
                )
                continue
            rows.append((r.entity, r.entity_id, r.scope, encode(r.fields), None, None, None, None, None))
            if r.entity == "household":
                values = r.values()
                households.append((r.entity_id, r.scope, _text(values.get("village")), bool(values.get(DELETED))))
        self._bulk(t.records, rows, ["entity", "entity_id"])
        self._bulk(t.household_view, households, ["id"])

    # ---- HubStore: the ordered log ------------------------------------------------------------------

    def last_hub_seq(self) -> int:
        with self._conn() as conn:
            value = conn.exec_driver_sql("SELECT MAX(hub_seq) FROM hub_log").scalar()
        return int(value or 0)

    def append_log(self, entries: list[LogEntry]) -> None:
        logged: dict[int, tuple[Mapping[str, Any], int]] | None = getattr(self._local, "logged", None)
        if logged is not None:
            for e in entries:
                logged[id(e.fields)] = (e.fields, e.hub_seq)
        self._bulk(
            t.hub_log,
            [
                (e.hub_seq, e.entity, e.entity_id, e.scope, _hot_dumps(e.fields), e.origin, e.origin_seq, e.hlc)
                for e in entries
            ],
        )

    # ---- record states as stored ----------------------------------------------------------------------

    def _encode_state(self, fields: Mapping[str, FieldState]) -> str:
        """A record's state as a JSON list of groups ``[rev, origin, seen, {field: value}]``: fields that
        share revision, origin and ``seen`` share a group, and ``seen`` is null when it is just
        ``{origin: rev}``. A group may leave its values out, ``[rev, origin, seen]``: they are then those
        of log entry ``rev``, less the fields the other groups hold. A record made by one write is just
        such a pointer, and one edited since is the pointer plus a group per edit; the log is append-only
        and never compacted. (Before 0005 states were ``{field: {"v", "r", "o", "s"}}``; both are read.)"""
        if isinstance(fields, UniformFields):
            pointer = self._pointer(fields, {})
            if pointer:
                return pointer
            return f"[[{fields.rev},{_json_text(fields.origin)},null,{_hot_dumps(fields.plain)}]]"
        groups: dict[tuple[int, str, tuple[tuple[str, int], ...]], dict[str, Any]] = {}
        head = ""
        items: Iterable[tuple[str, FieldState]] = fields.items()
        if isinstance(fields, LayeredFields):
            under, over = fields.under, fields.over
            head = self._pointer(under, over)
            if not head:
                rest = {name: value for name, value in under.plain.items() if name not in over}
                if rest:
                    groups[(under.rev, under.origin, ((under.origin, under.rev),))] = rest
            items = over.items()
        for name, fs in items:
            seen = tuple(sorted(fs.seen.items()))
            groups.setdefault((fs.rev, fs.origin, seen), {})[name] = fs.value
        body = _hot_dumps(
            [
                [rev, origin, None if seen == ((origin, rev),) else dict(seen), values]
                for (rev, origin, seen), values in groups.items()
            ]
        )
        if not head:
            return body
        return f"[{head[1:-1]},{body[1:]}" if groups else head

    def _pointer(self, under: UniformFields, over: Mapping[str, FieldState]) -> str:
        """``[[rev, origin, null]]`` when ``under`` holds exactly the fields of log entry ``rev`` that
        ``over`` leaves alone, which the store knows of an entry it read or wrote in this transaction."""
        if isinstance(under, _LogBacked):
            if not under.entry_names <= under.plain.keys() | over.keys():
                return ""
        else:
            logged = getattr(self._local, "logged", None) or {}
            held = logged.get(id(under.plain))
            if held is None or held[0] is not under.plain or held[1] != under.rev:
                return ""
        return f"[[{under.rev},{_json_text(under.origin)},null]]"

    @staticmethod
    def _entry(r: Any) -> LogEntry:
        return LogEntry(
            hub_seq=int(r.hub_seq),
            entity=r.entity,
            entity_id=r.entity_id,
            scope=r.scope,
            fields=json.loads(r.fields),
            origin=r.origin,
            origin_seq=int(r.origin_seq) if r.origin_seq is not None else None,
            hlc=int(r.hlc),
        )

    def read_log(self, after: int, scopes: frozenset[str] | None, limit: int) -> list[LogEntry]:
        c = t.hub_log.c
        query = select(t.hub_log).where(c.hub_seq > after)
        if scopes is not None:
            if not scopes:
                return []
            query = query.where(c.scope.in_(sorted(scopes)))
        with self._conn() as conn:
            rows = conn.execute(query.order_by(c.hub_seq).limit(limit)).all()
        return [self._entry(r) for r in rows]

    def log_entries(self, seqs: Iterable[int]) -> dict[int, LogEntry]:
        wanted = sorted(set(seqs))
        out: dict[int, LogEntry] = {}
        mark = self._mark
        decode = _MSGSPEC_DECODE
        with self._conn() as conn:
            for chunk in _chunks(wanted):
                # Straight on the driver: an update batch reads the entries of 500 records' states.
                sql = (
                    "SELECT hub_seq, entity, entity_id, scope, fields, origin, origin_seq, hlc FROM hub_log "
                    f"WHERE hub_seq IN ({', '.join([mark] * len(chunk))})"
                )
                rows = conn.exec_driver_sql(sql, tuple(chunk))
                for seq, entity, entity_id, scope, fields, origin, origin_seq, hlc in rows:
                    out[int(seq)] = LogEntry(
                        int(seq),
                        entity,
                        entity_id,
                        scope,
                        decode(fields),
                        origin,
                        int(origin_seq) if origin_seq is not None else None,
                        int(hlc),
                    )
        return out

    # ---- HubStore: conflicts ------------------------------------------------------------------------

    @staticmethod
    def _conflict_row(c: Conflict) -> dict[str, Any]:
        return {
            "id": c.id,
            "status": str(c.status),
            "scope": c.scope,
            "entity": c.entity,
            "entity_id": c.entity_id,
            "node_id": c.node_id,
            "created_at": c.created_at,
            "data": _dumps(c.to_json()),
        }

    def add_conflicts(self, conflicts: list[Conflict]) -> None:
        if conflicts:
            self._writer().execute(insert(t.conflicts), [self._conflict_row(c) for c in conflicts])

    def get_conflict(self, conflict_id: str) -> Conflict | None:
        with self._conn() as conn:
            data = conn.execute(select(t.conflicts.c.data).where(t.conflicts.c.id == conflict_id)).scalar()
        return Conflict.from_json(json.loads(data)) if data else None

    def save_conflict(self, conflict: Conflict) -> None:
        self._upsert(t.conflicts, [self._conflict_row(conflict)], ["id"])

    def list_conflicts(self, status: str | None = None) -> list[Conflict]:
        query = select(t.conflicts.c.data).order_by(t.conflicts.c.id)
        if status is not None:
            query = query.where(t.conflicts.c.status == status)
        with self._conn() as conn:
            return [Conflict.from_json(json.loads(d)) for d in conn.execute(query).scalars()]

    def conflict_page(
        self,
        *,
        status: str | None,
        unions: frozenset[str] | None,
        entity: str | None = None,
        union: str | None = None,
        created_before: str | None = None,
        after_id: str | None = None,
        limit: int = 50,
    ) -> list[Conflict]:
        """Conflicts for the staff queue, oldest first (ids are time-sortable UUIDv7), filtered by the
        staff member's unions (``None``: all) and the queue's filters."""
        c = t.conflicts.c
        query = select(c.data).order_by(c.id).limit(limit)
        if status:
            query = query.where(c.status == status)
        if unions is not None:
            if not unions:
                return []
            query = query.where(c.scope.in_(sorted(unions)))
        if entity:
            query = query.where(c.entity == entity)
        if union:
            query = query.where(c.scope == union)
        if created_before:
            query = query.where(c.created_at < created_before)
        if after_id:
            query = query.where(c.id > after_id)
        with self._conn() as conn:
            return [Conflict.from_json(json.loads(d)) for d in conn.execute(query).scalars()]

    def conflict_unions(self, status: str | None, unions: frozenset[str] | None) -> list[str]:
        """Unions that hold conflicts (of ``status``) inside ``unions``: the queue's union filter offers
        these rather than all 4,540 unions."""
        c = t.conflicts.c
        query = select(c.scope).distinct()
        if status:
            query = query.where(c.status == status)
        if unions is not None:
            if not unions:
                return []
            query = query.where(c.scope.in_(sorted(unions)))
        with self._conn() as conn:
            return sorted(conn.execute(query).scalars())

    # ---- records for the staff API ------------------------------------------------------------------

    def get_record(self, entity: str, entity_id: str) -> RecordState | None:
        return self.load_records([(entity, entity_id)]).get((entity, entity_id))

    def person_ids_by_nid(self, nid: str, unions: frozenset[str] | None, limit: int = 50) -> list[str]:
        c = t.person_view.c
        query = select(c.id).where(c.nid == nid, c.deleted.is_(False)).order_by(c.id).limit(limit)
        if unions is not None:
            if not unions:
                return []
            query = query.where(c.scope.in_(sorted(unions)))
        with self._conn() as conn:
            return list(conn.execute(query).scalars())

    # ---- nodes and enrolment ------------------------------------------------------------------------

    def add_token(
        self, token: str, scopes: frozenset[str], union_id: str | None, upazila_id: str | None, expires_at: str
    ) -> None:
        with self.transaction():
            self._writer().execute(
                insert(t.enrolment_tokens).values(
                    token_hash=token_hash(token),
                    scopes=_dumps(sorted(scopes)),
                    union_id=union_id,
                    upazila_id=upazila_id,
                    created_at=iso(utc_now()),
                    expires_at=expires_at,
                )
            )

    def get_token(self, token: str) -> EnrolmentToken | None:
        with self._conn() as conn:
            row = conn.execute(
                select(t.enrolment_tokens).where(t.enrolment_tokens.c.token_hash == token_hash(token))
            ).first()
        if row is None:
            return None
        return EnrolmentToken(
            frozenset(json.loads(row.scopes)), row.union_id, row.upazila_id, row.expires_at, row.used_at
        )

    def use_token(self, token: str, node_id: str) -> bool:
        """Mark a token used by ``node_id``; False if it was used (or vanished) meanwhile."""
        c = t.enrolment_tokens.c
        res = self._writer().execute(
            update(t.enrolment_tokens)
            .where(c.token_hash == token_hash(token), c.used_at.is_(None))
            .values(used_at=iso(utc_now()), node_id=node_id)
        )
        return res.rowcount == 1

    def add_node(self, node: NodeRecord, *, union_id: str | None = None, upazila_id: str | None = None) -> None:
        with self.transaction():
            try:
                self._writer().execute(
                    insert(t.nodes).values(
                        node_id=node.node_id,
                        public_key=node.public_key,
                        scopes=_dumps(sorted(node.scopes)),
                        last_seq=node.last_seq,
                        revoked=node.revoked,
                        label=node.label,
                        union_id=union_id,
                        upazila_id=upazila_id,
                        enrolled_at=iso(utc_now()),
                    )
                )
            except IntegrityError as exc:
                raise StoreError(f"node {node.node_id} is already enrolled") from exc

    def set_node_revoked(self, node_id: str, revoked: bool = True) -> bool:
        with self.transaction():
            res = self._writer().execute(update(t.nodes).where(t.nodes.c.node_id == node_id).values(revoked=revoked))
        return res.rowcount == 1

    def list_nodes(self) -> list[NodeInfo]:
        with self._conn() as conn:
            rows = conn.execute(select(t.nodes).order_by(t.nodes.c.enrolled_at)).all()
        return [NodeInfo(self._node(r), r.union_id, r.upazila_id, r.enrolled_at) for r in rows]

    def node_labels(self, node_ids: Iterable[str]) -> dict[str, str]:
        ids = sorted(set(node_ids))
        if not ids:
            return {}
        with self._conn() as conn:
            rows = conn.execute(select(t.nodes.c.node_id, t.nodes.c.label).where(t.nodes.c.node_id.in_(ids))).all()
        return {r.node_id: r.label for r in rows}

    # ---- settings -----------------------------------------------------------------------------------

    def get_setting(self, key: str) -> str | None:
        with self._conn() as conn:
            value = conn.execute(select(t.settings.c.value).where(t.settings.c.key == key)).scalar()
        return str(value) if value is not None else None

    def set_setting(self, key: str, value: str) -> None:
        with self.transaction():
            self._upsert(t.settings, [{"key": key, "value": value}], ["key"])

    # ---- staff, sessions, throttling ----------------------------------------------------------------

    def put_staff(self, staff: StaffRecord) -> None:
        with self.transaction():
            self._upsert(
                t.staff,
                [
                    {
                        "username": staff.username,
                        "password_hash": staff.password_hash,
                        "role": staff.role,
                        "scope_level": staff.scope_level,
                        "scope_id": staff.scope_id,
                        "active": staff.active,
                        "created_at": iso(utc_now()),
                    }
                ],
                ["username"],
            )

    def get_staff(self, username: str) -> StaffRecord | None:
        with self._conn() as conn:
            r = conn.execute(select(t.staff).where(t.staff.c.username == username)).first()
        if r is None:
            return None
        return StaffRecord(r.username, r.password_hash, r.role, r.scope_level, r.scope_id, bool(r.active))

    def list_staff(self) -> list[StaffRecord]:
        with self._conn() as conn:
            rows = conn.execute(select(t.staff).order_by(t.staff.c.username)).all()
        return [
            StaffRecord(r.username, r.password_hash, r.role, r.scope_level, r.scope_id, bool(r.active)) for r in rows
        ]

    def add_session(self, token: str, username: str, expires_at: str) -> None:
        with self.transaction():
            self._writer().execute(
                insert(t.staff_sessions).values(
                    token_hash=token_hash(token), username=username, created_at=iso(utc_now()), expires_at=expires_at
                )
            )

    def session_user(self, token: str, now: str) -> str | None:
        c = t.staff_sessions.c
        with self._conn() as conn:
            return conn.execute(
                select(c.username).where(c.token_hash == token_hash(token), c.expires_at > now)
            ).scalar()

    def drop_session(self, token: str) -> None:
        with self.transaction():
            self._writer().execute(delete(t.staff_sessions).where(t.staff_sessions.c.token_hash == token_hash(token)))

    def record_login_failure(self, username: str, at: int) -> None:
        with self.transaction():
            self._writer().execute(insert(t.login_failures).values(username=username, at=at))

    def login_failures_since(self, username: str, since: int) -> int:
        c = t.login_failures.c
        with self._conn() as conn:
            return int(conn.execute(select(func.count()).where(c.username == username, c.at >= since)).scalar() or 0)

    def clear_login_failures(self, username: str) -> None:
        with self.transaction():
            self._writer().execute(delete(t.login_failures).where(t.login_failures.c.username == username))

    # ---- the service access log ---------------------------------------------------------------------

    def log_access(self, row: dict[str, Any]) -> None:
        # Not through transaction(): the access log must not wait for (or serialise with) sync writers.
        with self.engine.begin() as conn:
            conn.execute(insert(t.access_log).values(**row))

    def access_page(
        self,
        *,
        before_id: int | None = None,
        actor: str | None = None,
        path_prefix: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        c = t.access_log.c
        query = select(t.access_log).order_by(c.id.desc()).limit(limit)
        conds = []
        if before_id is not None:
            conds.append(c.id < before_id)
        if actor:
            conds.append(or_(c.actor == actor, c.actor.like(f"%:{actor}")))
        if path_prefix:
            conds.append(c.path.like(f"{path_prefix}%"))
        if conds:
            query = query.where(and_(*conds))
        with self._conn() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]


class _LogBacked(UniformFields):
    """A one-write group read from a pointer: its values are those of log entry ``rev`` (all of its
    ``entry_names`` that no other group of the record holds)."""

    __slots__ = ("entry_names",)

    def __init__(self, plain: Mapping[str, Any], rev: int, origin: str, entry_names: frozenset[str]) -> None:
        super().__init__(plain, rev, origin)
        self.entry_names = entry_names


# rev, origin, seen (None: just {origin: rev}), values (None: those of log entry rev)
_Group = tuple[int, str, dict[str, int] | None, dict[str, Any] | None]


@functools.lru_cache(maxsize=4096)
def _json_text(value: str) -> str:
    return _dumps(value)


def _parse_state(text: str) -> list[_Group] | dict[str, FieldState]:
    data = json.loads(text)
    if isinstance(data, dict):  # written before 0005
        return {k: FieldState.from_json(v) for k, v in data.items()}
    return [(int(g[0]), str(g[1]), g[2], g[3] if len(g) > 3 else None) for g in data]


def _build_fields(
    entity: str, entity_id: str, groups: list[_Group], entries: Mapping[int, LogEntry]
) -> Mapping[str, FieldState]:
    claimed = {name for g in groups if g[3] is not None for name in g[3]}
    under: UniformFields | None = None
    rest: list[_Group] = []
    for rev, origin, seen, values in groups:
        if values is None:
            entry = entries.get(rev)
            if entry is None or entry.entity_id != entity_id or under is not None or seen is not None:
                raise StoreError(f"{entity} {entity_id}: its state points at log entry {rev}, which does not fit")
            plain = {k: v for k, v in entry.fields.items() if k not in claimed}
            under = _LogBacked(plain, rev, origin, frozenset(entry.fields))
        else:
            rest.append((rev, origin, seen, values))
    if under is None:
        uniform = [g for g in rest if g[2] is None]
        if not uniform:
            return {name: fs for g in rest for name, fs in _field_states(g)}
        base = max(uniform, key=lambda g: len(g[3] or ()))
        rest.remove(base)
        under = UniformFields(base[3] or {}, base[0], base[1])
    if not rest:
        return under
    return LayeredFields(under, {name: fs for g in rest for name, fs in _field_states(g)})


def _field_states(group: _Group) -> Iterator[tuple[str, FieldState]]:
    rev, origin, seen, values = group
    seen_map = {origin: rev} if seen is None else {str(k): int(v) for k, v in seen.items()}
    for name, value in (values or {}).items():
        yield name, FieldState(value, rev, origin, dict(seen_map))


def _text(value: Any) -> str | None:
    return None if value is None else str(value)[:200]
