"""What an operator can do, shared by the UI and the JSON API: validated writes (each with its outbox
change in one transaction, through ``ReplicaEngine.write``), reads, search and duplicate checks."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Mapping, Sequence
from functools import wraps
from typing import Any, TypeVar

from sync_protocol import validation as v
from sync_protocol.entities import ENTITIES
from sync_protocol.ids import uuid7

from .errors import NotFoundError, PossibleDuplicateError, ValidationFailed
from .node import Node
from .replica_store import BOOL_FIELDS, JSON_FIELDS

PAGE = 50


def _utc_iso() -> str:
    # Milliseconds: events of one grievance are ordered by this time first, then by id.
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def derive_grievance_state(status: str | None, tier: str | None, events: list[dict[str, Any]]) -> tuple[str, str]:
    """Status and tier of a grievance: its initial values with its events applied in time order.

    Events are append-only and never conflict, so every office derives the same state from the same
    events, whatever order they arrived in."""
    state, level = status or "received", tier or "union"
    for e in sorted(events, key=lambda e: (str(e.get("occurred_at") or ""), str(e["id"]))):
        kind = e.get("type")
        if kind == "comment" and state == "received":
            state = "under_review"
        elif kind == "escalate":
            state = "escalated"
            tiers = v.GRIEVANCE_TIERS
            level = e.get("tier") or tiers[min(tiers.index(level) + 1 if level in tiers else 1, len(tiers) - 1)]
        elif kind == "resolve":
            state = "resolved"
        elif kind == "reject":
            state = "rejected"
        elif kind == "reopen":
            state = "under_review"
        elif kind == "close":
            state = "closed"
    return state, level


F = TypeVar("F", bound=Callable[..., Any])


def _serialised(method: F) -> F:
    """Run under the database lock: the node shares one connection between threads, and a reader must
    not see another thread's uncommitted transaction on it."""

    @wraps(method)
    def wrapper(self: Registry, *args: Any, **kwargs: Any) -> Any:
        database, _, _ = self.node.require()
        with database.lock:
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


class Registry:
    def __init__(self, node: Node) -> None:
        self.node = node

    # ---- low level ----------------------------------------------------------------------------------

    def _row(self, entity: str, entity_id: str) -> dict[str, Any] | None:
        database, _, _ = self.node.require()
        cur = database.conn.execute(f'SELECT * FROM "{entity}" WHERE id = ? AND _deleted = 0', (entity_id,))
        row = cur.fetchone()
        if row is None:
            return None
        return self._record(entity, dict(zip([d[0] for d in cur.description], row, strict=True)))

    @staticmethod
    def _record(entity: str, data: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"id": data["id"]}
        for name in sorted(ENTITIES[entity].all_fields):
            value = data.get(name)
            if value is not None and name in BOOL_FIELDS:
                value = bool(value)
            elif value is not None and name in JSON_FIELDS:
                value = json.loads(value)
            out[name] = value
        if data.get("_extra"):
            out.update(json.loads(data["_extra"]))
        out["scope"] = data["scope"]  # the union the record belongs to (its sync scope)
        return out

    def _current(self, entity: str, entity_id: str) -> dict[str, Any]:
        rec = self._row(entity, entity_id)
        if rec is None:
            raise NotFoundError(f"{entity} {entity_id} not found")
        return rec

    def _write(self, entity: str, entity_id: str, scope: str, values: Mapping[str, Any], actor: str) -> None:
        _, _, engine = self.node.require()
        engine.write(entity, entity_id, scope, values, actor=actor)

    def _clean(
        self, entity: str, data: Mapping[str, Any], current: Mapping[str, Any] | None, lang: str, prefix: str = ""
    ) -> tuple[dict[str, Any], dict[str, list[str]]]:
        values, errors = v.clean(entity, data, current, lang)
        return values, {f"{prefix}{k}": msgs for k, msgs in errors.items()}

    def _must_exist(self, entity: str, entity_id: Any, field: str, lang: str, errors: dict[str, list[str]]) -> None:
        if entity_id and self._row(entity, str(entity_id)) is None:
            errors.setdefault(field, []).append(v.translate(v.MSG_NOT_FOUND, lang))

    # ---- households and persons ---------------------------------------------------------------------

    @_serialised
    def create_household(
        self,
        data: Mapping[str, Any],
        members: Sequence[Mapping[str, Any]] = (),
        *,
        actor: str,
        lang: str = "en",
        confirm_duplicates: bool = False,
    ) -> dict[str, Any]:
        database, _, _ = self.node.require()
        hh_data = dict(data)
        hh_data.setdefault("union_id", self.node.union_id)
        hh_values, errors = self._clean("household", hh_data, None, lang)
        hh_id = uuid7()
        people: list[tuple[str, dict[str, Any]]] = []
        for i, member in enumerate(members):
            m = {**member, "household_id": hh_id}
            values, merrs = self._clean("person", m, None, lang, prefix=f"members.{i}.")
            errors.update(merrs)
            people.append((uuid7(), values))
        if errors:
            raise ValidationFailed(errors)
        if not confirm_duplicates:
            found = {f"members.{i}": d for i, (_, vals) in enumerate(people) if (d := self.find_duplicates(vals))}
            if found:
                raise PossibleDuplicateError(found)
        scope = str(hh_values["union_id"])
        heads = [pid for pid, vals in people if vals.get("relation_to_head") == "head"]
        if people and not heads:
            people[0][1]["relation_to_head"] = "head"
            heads = [people[0][0]]
        if heads:
            hh_values["head_person_id"] = heads[0]
        with database.transaction():
            self._write("household", hh_id, scope, hh_values, actor)
            for pid, vals in people:
                vals.setdefault("life_status", "alive")
                self._write("person", pid, scope, vals, actor)
        out = self._current("household", hh_id)
        out["members"] = [self._current("person", pid) for pid, _ in people]
        return out

    @_serialised
    def update_household(self, hh_id: str, data: Mapping[str, Any], *, actor: str, lang: str = "en") -> dict[str, Any]:
        database, _, _ = self.node.require()
        current = self._current("household", hh_id)
        if "union_id" in data and str(data["union_id"]) != current["scope"]:
            # A household's union is its sync scope; moving it is a migration, not an edit.
            raise ValidationFailed({"union_id": [v.translate(v.MSG_INVALID, lang)]})
        values, errors = self._clean("household", data, current, lang)
        self._must_exist("person", values.get("head_person_id"), "head_person_id", lang, errors)
        if errors:
            raise ValidationFailed(errors)
        with database.transaction():
            self._write("household", hh_id, current["scope"], values, actor)
        return self._current("household", hh_id)

    @_serialised
    def get_household(self, hh_id: str) -> dict[str, Any]:
        out = self._current("household", hh_id)
        out["members"] = self.household_members(hh_id)
        return out

    @_serialised
    def household_members(self, hh_id: str) -> list[dict[str, Any]]:
        database, _, _ = self.node.require()
        cur = database.conn.execute(
            "SELECT * FROM person WHERE household_id = ? AND _deleted = 0 ORDER BY id", (hh_id,)
        )
        names = [d[0] for d in cur.description]
        return [self._record("person", dict(zip(names, r, strict=True))) for r in cur.fetchall()]

    @_serialised
    def create_person(
        self, data: Mapping[str, Any], *, actor: str, lang: str = "en", confirm_duplicates: bool = False
    ) -> dict[str, Any]:
        database, _, _ = self.node.require()
        values, errors = self._clean("person", data, None, lang)
        household = self._row("household", str(values.get("household_id") or "")) if values else None
        if values and household is None:
            errors.setdefault("household_id", []).append(v.translate(v.MSG_NOT_FOUND, lang))
        if errors:
            raise ValidationFailed(errors)
        assert household is not None
        if not confirm_duplicates and (found := self.find_duplicates(values)):
            raise PossibleDuplicateError({"person": found})
        values.setdefault("life_status", "alive")
        pid = uuid7()
        with database.transaction():
            self._write("person", pid, household["union_id"], values, actor)
        return self._current("person", pid)

    @_serialised
    def update_person(self, pid: str, data: Mapping[str, Any], *, actor: str, lang: str = "en") -> dict[str, Any]:
        database, _, _ = self.node.require()
        current = self._current("person", pid)
        values, errors = self._clean("person", data, current, lang)
        if "household_id" in values and values["household_id"] != current["household_id"]:
            hh = self._row("household", str(values["household_id"]))
            if hh is None or hh["union_id"] != current["scope"]:
                errors.setdefault("household_id", []).append(v.translate(v.MSG_NOT_FOUND, lang))
        if errors:
            raise ValidationFailed(errors)
        with database.transaction():
            self._write("person", pid, current["scope"], values, actor)
        return self._current("person", pid)

    @_serialised
    def get_person(self, pid: str) -> dict[str, Any]:
        return self._current("person", pid)

    @_serialised
    def persons_needing_correction(self, limit: int = 200) -> list[dict[str, Any]]:
        """Persons the hub's NID check could not confirm (mismatch or not found), for the office to correct."""
        database, _, _ = self.node.require()
        cur = database.conn.execute(
            "SELECT * FROM person WHERE _deleted = 0 AND nid_status IN ('mismatch', 'not_found')"
            " ORDER BY nid_checked_at DESC, id LIMIT ?",
            (limit,),
        )
        names = [d[0] for d in cur.description]
        return [self._record("person", dict(zip(names, r, strict=True))) for r in cur.fetchall()]

    @_serialised
    def find_duplicates(self, values: Mapping[str, Any], exclude_id: str | None = None) -> list[dict[str, Any]]:
        """Persons on this node with the same NID, or the same normalised name and date of birth."""
        database, _, _ = self.node.require()
        clauses, params = [], []
        if values.get("nid"):
            clauses.append("nid = ?")
            params.append(values["nid"])
        dob = values.get("date_of_birth")
        for field, key in (("full_name_en", "name_key_en"), ("full_name_bn", "name_key_bn")):
            name = v.normalize_name(values.get(field) or "")
            if name and dob:
                clauses.append(f"({key} = ? AND date_of_birth = ?)")
                params += [name, dob]
        if not clauses:
            return []
        cur = database.conn.execute(
            f"SELECT * FROM person WHERE _deleted = 0 AND ({' OR '.join(clauses)}) LIMIT 10", params
        )
        names = [d[0] for d in cur.description]
        rows = [self._record("person", dict(zip(names, r, strict=True))) for r in cur.fetchall()]
        return [r for r in rows if r["id"] != exclude_id]

    @_serialised
    def search_persons(self, q: str, limit: int = 20) -> list[dict[str, Any]]:
        """Full-text search over names (Bangla and English), NID, birth registration number and mobile."""
        database, _, _ = self.node.require()
        text = v.ascii_digits(q)
        mobile = v.normalize_mobile(text)
        if mobile:
            text = mobile
        # Split on spaces and punctuation only: Bangla vowel signs are not "\w" but belong to the word.
        terms = [t for t in re.split(r"[\s\"'()*:^.,;/\\+\-]+", text) if t]
        if not terms:
            return []
        match = " ".join('"' + t.replace('"', "") + '"*' for t in terms)
        cur = database.conn.execute(
            "SELECT p.* FROM person_fts JOIN person p ON p.rowid = person_fts.rowid"
            " WHERE person_fts MATCH ? AND p._deleted = 0 ORDER BY rank LIMIT ?",
            (match, limit),
        )
        names = [d[0] for d in cur.description]
        return [self._record("person", dict(zip(names, r, strict=True))) for r in cur.fetchall()]

    # ---- enrolments ---------------------------------------------------------------------------------

    @_serialised
    def create_enrolment(self, data: Mapping[str, Any], *, actor: str, lang: str = "en") -> dict[str, Any]:
        database, _, _ = self.node.require()
        payload = dict(data)
        payload.setdefault("status", "applied")
        payload.setdefault("applied_on", dt.date.today().isoformat())
        values, errors = self._clean("enrolment", payload, None, lang)
        person = self._row("person", str(values.get("person_id"))) if values else None
        if values and person is None:
            errors.setdefault("person_id", []).append(v.translate(v.MSG_NOT_FOUND, lang))
        if errors:
            raise ValidationFailed(errors)
        assert person is not None
        eid = uuid7()
        with database.transaction():
            self._write("enrolment", eid, person["scope"], values, actor)
        return self._current("enrolment", eid)

    @_serialised
    def update_enrolment(self, eid: str, data: Mapping[str, Any], *, actor: str, lang: str = "en") -> dict[str, Any]:
        database, _, _ = self.node.require()
        current = self._current("enrolment", eid)
        if "person_id" in data and data["person_id"] != current["person_id"]:
            raise ValidationFailed({"person_id": [v.translate(v.MSG_INVALID, lang)]})
        values, errors = self._clean("enrolment", data, current, lang)
        if errors:
            raise ValidationFailed(errors)
        if "status" in values and values["status"] != current["status"] and "status_changed_on" not in values:
            values["status_changed_on"] = dt.date.today().isoformat()
        with database.transaction():
            self._write("enrolment", eid, current["scope"], values, actor)
        return self._current("enrolment", eid)

    @_serialised
    def get_enrolment(self, eid: str) -> dict[str, Any]:
        return self._current("enrolment", eid)

    @_serialised
    def person_enrolments(self, pid: str) -> list[dict[str, Any]]:
        database, _, _ = self.node.require()
        cur = database.conn.execute("SELECT * FROM enrolment WHERE person_id = ? AND _deleted = 0 ORDER BY id", (pid,))
        names = [d[0] for d in cur.description]
        return [self._record("enrolment", dict(zip(names, r, strict=True))) for r in cur.fetchall()]

    # ---- grievances ---------------------------------------------------------------------------------

    def _next_tracking_number(self) -> str:
        """Unique without a network: this node's id tail as prefix, plus a per-node sequence that is
        incremented in the same transaction as the grievance it numbers."""
        database, _, _ = self.node.require()
        (seq,) = database.conn.execute("SELECT value FROM node_config WHERE key = 'grievance_seq'").fetchone()
        seq = int(seq) + 1
        database.conn.execute("UPDATE node_config SET value = ? WHERE key = 'grievance_seq'", (seq,))
        prefix = self.node.node_id.replace("-", "")[-8:].upper()
        return f"G-{self.node.union_id}-{prefix}-{seq:05d}"

    @_serialised
    def create_grievance(self, data: Mapping[str, Any], *, actor: str, lang: str = "en") -> dict[str, Any]:
        database, _, _ = self.node.require()
        payload = {k: val for k, val in data.items() if k not in ("tracking_number", "status")}
        payload.setdefault("tier", "union")
        payload["status"] = "received"
        if not payload.get("due_on"):
            payload["due_on"] = (dt.date.today() + dt.timedelta(days=30)).isoformat()
        values, errors = self._clean("grievance", payload, None, lang)
        scope = self.node.union_id
        if values.get("complainant_person_id"):
            person = self._row("person", str(values["complainant_person_id"]))
            if person is None:
                errors.setdefault("complainant_person_id", []).append(v.translate(v.MSG_NOT_FOUND, lang))
            else:
                scope = person["scope"]
        if errors:
            raise ValidationFailed(errors)
        gid = uuid7()
        with database.transaction():
            values["tracking_number"] = self._next_tracking_number()
            self._write("grievance", gid, scope, values, actor)
        return self.get_grievance(gid)

    @_serialised
    def add_grievance_event(self, gid: str, data: Mapping[str, Any], *, actor: str, lang: str = "en") -> dict[str, Any]:
        database, _, _ = self.node.require()
        grievance = self.get_grievance(gid)
        payload = {k: val for k, val in data.items() if k in ("type", "note", "tier")}
        when = _utc_iso()
        latest = max((str(e.get("occurred_at") or "") for e in grievance["events"]), default="")
        if when <= latest:  # same millisecond, or a clock that went back: keep this node's events in order
            last = dt.datetime.fromisoformat(latest.replace("Z", "+00:00")) + dt.timedelta(milliseconds=1)
            when = last.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        payload.update(grievance_id=gid, actor=actor, occurred_at=when)
        values, errors = self._clean("grievance_event", payload, None, lang)
        if errors:
            raise ValidationFailed(errors)
        with database.transaction():
            self._write("grievance_event", uuid7(), grievance["scope"], values, actor)
        return self.get_grievance(gid)

    @_serialised
    def get_grievance(self, gid: str) -> dict[str, Any]:
        database, _, _ = self.node.require()
        out = self._current("grievance", gid)
        cur = database.conn.execute(
            "SELECT * FROM grievance_event WHERE grievance_id = ? AND _deleted = 0 ORDER BY occurred_at, id", (gid,)
        )
        names = [d[0] for d in cur.description]
        out["events"] = [self._record("grievance_event", dict(zip(names, r, strict=True))) for r in cur.fetchall()]
        out["status"], out["tier"] = derive_grievance_state(out["status"], out["tier"], out["events"])
        return out

    # ---- lists --------------------------------------------------------------------------------------

    @_serialised
    def list(
        self, entity: str, *, after: str | None = None, limit: int = PAGE, filters: Mapping[str, str] | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page in id order (ids are time-sortable) and the cursor of the next page, or None."""
        database, _, _ = self.node.require()
        limit = max(1, min(int(limit), 500))
        clauses, params = ["_deleted = 0"], []
        if after:
            clauses.append("id > ?")
            params.append(after)
        for name, value in (filters or {}).items():
            if name in ENTITIES[entity].all_fields:
                clauses.append(f'"{name}" = ?')
                params.append(value)
        cur = database.conn.execute(
            f'SELECT * FROM "{entity}" WHERE {" AND ".join(clauses)} ORDER BY id LIMIT ?', [*params, limit + 1]
        )
        names = [d[0] for d in cur.description]
        rows = [self._record(entity, dict(zip(names, r, strict=True))) for r in cur.fetchall()]
        more = len(rows) > limit
        rows = rows[:limit]
        if entity == "grievance":
            rows = [self.get_grievance(r["id"]) for r in rows]
        return rows, (rows[-1]["id"] if more else None)

    # ---- sync status --------------------------------------------------------------------------------

    @_serialised
    def sync_status(self) -> dict[str, Any]:
        _, store, _ = self.node.require()
        pending = store.last_seq() - store.acked_through()
        return {
            "node_id": self.node.node_id,
            "union_id": self.node.union_id,
            "hub_url": self.node.hub_url,
            "enrolled": bool(self.node.config.get("enrolled")),
            "pending_changes": pending,
            "last_sync_at": store.get_state("last_sync_at"),
            "last_error": store.get_state("last_error"),
        }
