"""``sync_protocol.store.ReplicaStore`` over the node's SQLCipher database.

The store IS the business tables: ``put_local`` writes a record's values into its entity's row (and
keeps the person search index and the local-only name keys in step), ``field_meta`` holds the per-field
sync bookkeeping, ``outbox`` the changes, ``sync_state`` cursor, clock, pending batch and acks. So a
``ReplicaEngine.write`` inside ``transaction()`` writes row, index and outbox change in one commit.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

from sync_protocol.entities import DELETED, ENTITIES
from sync_protocol.model import Change, ChangeResult
from sync_protocol.store import FieldMeta, LocalRecord, PendingBatch
from sync_protocol.validation import normalize_name

from .db import NodeDatabase

BOOL_FIELDS = frozenset({"dob_estimated", "disability"})
JSON_FIELDS = frozenset({"nid_mismatch_fields", "duplicate_flags", "double_dipping_flags"})
TABLES = {name: name for name in ENTITIES}


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _to_db(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in JSON_FIELDS or isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return int(value)
    return value


def _from_db(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in BOOL_FIELDS:
        return bool(value)
    if name in JSON_FIELDS:
        return json.loads(value)
    return value


def person_search_text(values: dict[str, Any]) -> tuple[str, str]:
    names = " ".join(
        str(values.get(k) or "") for k in ("full_name_bn", "full_name_en", "father_name", "mother_name", "spouse_name")
    )
    numbers = " ".join(str(values.get(k) or "") for k in ("nid", "brn", "mobile"))
    return names, numbers


class SqlcipherReplicaStore:
    def __init__(self, database: NodeDatabase) -> None:
        self.database = database
        self.conn = database.conn
        self._node_id_value = ""
        self._columns: dict[str, list[str]] = {}
        for entity in ENTITIES:
            cols = [r[1] for r in self.conn.execute(f'PRAGMA table_info("{TABLES[entity]}")')]
            self._columns[entity] = [c for c in cols if c in ENTITIES[entity].all_fields]

    def transaction(self) -> AbstractContextManager[None]:
        return self.database.transaction()

    # ---- records ------------------------------------------------------------------------------------

    def get_local(self, entity: str, entity_id: str) -> LocalRecord | None:
        cur = self.conn.execute(f'SELECT * FROM "{TABLES[entity]}" WHERE id = ?', (entity_id,))
        row = cur.fetchone()
        if row is None:
            return None
        data = dict(zip([d[0] for d in cur.description], row, strict=True))
        values = {c: _from_db(c, data[c]) for c in self._columns[entity] if data[c] is not None}
        if data["_extra"]:
            values.update(json.loads(data["_extra"]))
        if data["_deleted"]:
            values[DELETED] = True
        meta = {
            f: FieldMeta(b, json.loads(sv) if sv is not None else None, sr, p)
            for f, b, sv, sr, p in self.conn.execute(
                "SELECT field, base_rev, shadow_value, shadow_rev, pending FROM field_meta"
                " WHERE entity = ? AND entity_id = ?",
                (entity, entity_id),
            )
        }
        return LocalRecord(entity, entity_id, str(data["scope"]), values, meta)

    def put_local(self, record: LocalRecord) -> None:
        entity, cols = record.entity, self._columns[record.entity]
        values = record.values
        extra = {k: v for k, v in values.items() if k not in cols and k != DELETED}
        row: dict[str, Any] = {c: _to_db(c, values.get(c)) for c in cols}
        row.update(
            id=record.entity_id,
            scope=record.scope,
            _deleted=1 if values.get(DELETED) else 0,
            _extra=json.dumps(extra, ensure_ascii=False) if extra else None,
            updated_at=_now(),
        )
        if entity == "person":
            row["name_key_bn"] = normalize_name(values.get("full_name_bn") or "") or None
            row["name_key_en"] = normalize_name(values.get("full_name_en") or "") or None
        names = list(row)
        quoted = ", ".join(f'"{n}"' for n in names)
        updates = ", ".join(f'"{n}" = excluded."{n}"' for n in names if n != "id")
        self.conn.execute(
            f'INSERT INTO "{TABLES[entity]}" ({quoted}, created_at) VALUES ({", ".join("?" * len(names))}, ?)'
            f" ON CONFLICT(id) DO UPDATE SET {updates}",
            [*row.values(), row["updated_at"]],
        )
        if entity == "person":
            self._index_person(record.entity_id, values)
        self.conn.execute("DELETE FROM field_meta WHERE entity = ? AND entity_id = ?", (entity, record.entity_id))
        self.conn.executemany(
            "INSERT INTO field_meta (entity, entity_id, field, base_rev, shadow_value, shadow_rev, pending)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    entity,
                    record.entity_id,
                    f,
                    m.base_rev,
                    json.dumps(m.shadow_value, ensure_ascii=False),
                    m.shadow_rev,
                    m.pending,
                )
                for f, m in record.meta.items()
            ],
        )

    def _index_person(self, person_id: str, values: dict[str, Any]) -> None:
        (rowid,) = self.conn.execute("SELECT rowid FROM person WHERE id = ?", (person_id,)).fetchone()
        self.conn.execute("DELETE FROM person_fts WHERE rowid = ?", (rowid,))
        if not values.get(DELETED):
            names, numbers = person_search_text(values)
            self.conn.execute(
                "INSERT INTO person_fts (rowid, names, numbers) VALUES (?, ?, ?)", (rowid, names, numbers)
            )

    # ---- outbox and acks ----------------------------------------------------------------------------

    def last_seq(self) -> int:
        return int(self.conn.execute("SELECT coalesce(max(node_seq), 0) FROM outbox").fetchone()[0])

    def append_outbox(self, change: Change) -> None:
        self.conn.execute(
            "INSERT INTO outbox (node_seq, hlc, entity, entity_id, scope, op, fields, base, actor)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                change.node_seq,
                change.hlc,
                change.entity,
                change.entity_id,
                change.scope,
                str(change.op),
                json.dumps(dict(change.fields), ensure_ascii=False),
                json.dumps(dict(change.base)),
                change.actor,
            ),
        )

    def outbox(self, after_seq: int, limit: int) -> list[Change]:
        return [
            Change(node_id, seq, hlc, entity, eid, scope, op, json.loads(f), json.loads(b), actor)
            for node_id, seq, hlc, entity, eid, scope, op, f, b, actor in self._outbox_rows(after_seq, limit)
        ]

    def _outbox_rows(self, after_seq: int, limit: int) -> Iterator[tuple[Any, ...]]:
        node_id = self._node_id()
        for row in self.conn.execute(
            "SELECT node_seq, hlc, entity, entity_id, scope, op, fields, base, actor FROM outbox"
            " WHERE node_seq > ? ORDER BY node_seq LIMIT ?",
            (after_seq, limit),
        ):
            yield (node_id, *row)

    def _node_id(self) -> str:
        if not self._node_id_value:
            row = self.conn.execute("SELECT value FROM node_config WHERE key = 'node_id'").fetchone()
            self._node_id_value = str(row[0]) if row else ""
        return self._node_id_value

    def acked_through(self) -> int:
        return int(self._state("acked_through") or 0)

    def save_acks(self, results: list[ChangeResult]) -> None:
        self.conn.executemany(
            "INSERT OR REPLACE INTO acks (node_seq, result) VALUES (?, ?)",
            [(r.node_seq, json.dumps(r.to_json(), ensure_ascii=False)) for r in results],
        )
        if results:
            self._set_state("acked_through", max(self.acked_through(), results[-1].node_seq))

    # ---- sync state ---------------------------------------------------------------------------------

    def _state(self, key: str) -> Any:
        row = self.conn.execute("SELECT value FROM sync_state WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _set_state(self, key: str, value: Any) -> None:
        self.conn.execute("INSERT OR REPLACE INTO sync_state (key, value) VALUES (?, ?)", (key, value))

    def get_pending_batch(self) -> PendingBatch | None:
        meta = self._state("pending_batch")
        if not meta:
            return None
        info = json.loads(meta)
        envelope = self._state("pending_envelope")
        return PendingBatch(info["batch_id"], int(info["first_seq"]), int(info["last_seq"]), bytes(envelope))

    def set_pending_batch(self, batch: PendingBatch | None) -> None:
        if batch is None:
            self.conn.execute("DELETE FROM sync_state WHERE key IN ('pending_batch', 'pending_envelope')")
            return
        info = {"batch_id": batch.batch_id, "first_seq": batch.first_seq, "last_seq": batch.last_seq}
        self._set_state("pending_batch", json.dumps(info))
        self._set_state("pending_envelope", batch.envelope)

    def get_cursor(self) -> str | None:
        value = self._state("cursor")
        return str(value) if value is not None else None

    def set_cursor(self, cursor: str) -> None:
        self._set_state("cursor", cursor)

    def get_hlc(self) -> int:
        return int(self._state("hlc") or 0)

    def set_hlc(self, value: int) -> None:
        self._set_state("hlc", value)

    # ---- node-local helpers (not part of the protocol) -------------------------------------------------

    def get_state(self, key: str) -> Any:
        return self._state(key)

    def set_state(self, key: str, value: Any) -> None:
        self._set_state(key, value)
