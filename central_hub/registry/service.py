"""Registry merging inside the hub process: the log scan that matches persons at ingest, the publication
of registry ids and flags, review decisions, and the scheduled job.

Like NID verification (``central_hub.nid.sql_store``), the job reads the hub log after a saved cursor for
person and enrolment writes; each chunk is matched, indexed, published (``HubEngine.hub_write_many`` of the
hub-owned ``registry_id`` / ``duplicate_flags`` on persons and ``double_dipping_flags`` on enrolments) and
the cursor moved **in one writer transaction**: a crash loses nothing (the chunk is scanned again) and a
result is never indexed without being published. The push path does no extra work. Our own hub writes
enter the log too; entries holding only registry fields are skipped, so they do not loop. The job matches
against its own in-memory copy of the blocks and features (``index_cache.CachedSqlIndex``), kept in step
with the tables and reloaded whenever they changed under it; review pages and decisions use the tables.

Configuration: ``HUB_REGISTRY_INTERVAL_S`` (default 30; 0 = no scheduled job), ``HUB_REGISTRY_CHUNK``
(log entries per writer transaction, default 100: on a million-person SQLite registry a chunk holds the
writer lock 46-80 ms (median) and at most 0.35 s, on PostgreSQL at 110,000 persons 92 / 122 ms; see
docs/registry.md. Until session 4 PostgreSQL's default was 30, sized on a 425 ms maximum at 100 measured
before the copy was kept out of the garbage collector's passes; at 30 the job ran at 451 persons/s there,
at 100 at 1,065).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
from flask import Flask, current_app
from flask_babel import gettext as _
from sqlalchemy import delete, insert, select

from central_hub import schema as hub_tables
from central_hub.jobs import start_interval_job
from central_hub.registry import rules as dd_rules
from central_hub.registry.errors import RegistryError
from central_hub.registry.features import prepare
from central_hub.registry.hub_schema import registry_decisions as decisions_t
from central_hub.registry.hub_schema import registry_enrolments as enrol_t
from central_hub.registry.index_cache import CachedSqlIndex
from central_hub.registry.matcher import AUTO, REVIEW, Edge, Matcher, Model
from central_hub.registry.sql_index import SqlIndex, _links, _now
from central_hub.registry.wallets import accounts_of
from central_hub.store import SqlHubStore
from sync_protocol import geo
from sync_protocol.entities import DELETED
from sync_protocol.hub import HubEngine

log = logging.getLogger(__name__)

CURSOR_KEY = "registry_scan_cursor"
#: person fields the matcher reads; a log entry touching none of them does not re-match the person
MATCH_FIELDS = frozenset({"full_name_bn", "full_name_en", "sex", "date_of_birth", "nid", "brn", "father_name",
                          "mother_name", "spouse_name", "mobile", DELETED})  # fmt: skip
#: enrolment fields that change double dipping, or the account its person is matched on (wallets.py)
ENROLMENT_FIELDS = frozenset({"person_id", "programme", "status", "payment_channel", "account_number", DELETED})
DECISIONS = ("same", "different", "unmerge")
#: log entries passed over in one scan, in chunks: bounds the read when nothing in the log needs work
SKIP_LIMIT = 50
_decode_fields = msgspec.json.Decoder(dict[str, Any])


def _field_names(fields_json: str) -> Iterable[str]:
    return _decode_fields.decode(fields_json).keys()


def _district(union_id: str) -> str | None:
    """The union's district from the hub's geography index (``features._district_of`` builds its own map,
    which costs seconds on the first record of a process)."""
    try:
        return geo.union_path(union_id)[1].id
    except KeyError:
        return None


class DecisionError(RegistryError):
    """A review decision that cannot be applied; ``errors`` maps fields to messages."""

    code = "invalid_request"

    def __init__(self, message: str, errors: dict[str, list[str]]) -> None:
        super().__init__(message)
        self.errors = errors


@dataclass
class ScanReport:
    entries: int = 0
    persons: int = 0
    enrolments: int = 0
    auto_links: int = 0
    review_pairs: int = 0
    published: int = 0

    def add(self, other: ScanReport) -> None:
        for k in vars(self):
            setattr(self, k, getattr(self, k) + getattr(other, k))


@dataclass
class RegistryService:
    """Matching, publication and review decisions over one hub database."""

    hub_store: SqlHubStore
    engine: HubEngine
    model: Model | None = None
    rules: list[dd_rules.Rule] | None = None
    interval_s: float = 30.0
    chunk: int = 100
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        # Review pages and decisions read and change edges through SQL; the log scan matches against the
        # job's own copy of the blocks in memory, kept in step with the tables (index_cache.py).
        self.index = SqlIndex(self.hub_store)
        self.job_index = CachedSqlIndex(self.hub_store)
        self.matcher = Matcher(self.job_index, self.model)
        self.rules = dd_rules.load_rules() if self.rules is None else self.rules
        self._scheduler: Any = None
        self.last_run: ScanReport | None = None
        self.last_run_error: str | None = None

    # ---- the log scan ------------------------------------------------------------------------------------

    def cursor(self) -> int:
        return int(self.hub_store.get_setting(CURSOR_KEY) or 0)

    def scan_once(self) -> ScanReport:
        """Match and publish for the persons and enrolments written in the next chunk of the hub log.

        A chunk is ``chunk`` log entries that need work. Entries that need none (the job's own publications,
        NID results, grievances) are passed over while reading, up to ``SKIP_LIMIT`` chunks' worth per call:
        on a busy hub half the log is the job's own output, and a writer transaction for each hundred of those
        would cost more than the matching."""
        report = ScanReport()
        cursor = self.cursor()
        end, scanned, persons, enrolments = self._next_chunk(cursor)
        if not scanned:
            return report
        report.entries = scanned
        try:
            self._scan_chunk(cursor, end, persons, enrolments, report)
        except BaseException:
            self.job_index.invalidate()  # its copy may hold writes that were just rolled back
            raise
        self.job_index.keep_out_of_gc()  # after the commit: the chunk's own objects are gone by now
        return report

    def _next_chunk(self, cursor: int) -> tuple[int, int, set[str], set[str]]:
        """(last log position covered, entries covered, persons to match, enrolments to refresh)."""
        log_c = hub_tables.hub_log.c
        persons: set[str] = set()
        enrolments: set[str] = set()
        end, scanned, limit = cursor, 0, self.chunk * SKIP_LIMIT
        with self.hub_store._conn() as conn:
            while len(persons) + len(enrolments) < self.chunk and scanned < limit:
                window = min(max(self.chunk, 500), limit - scanned)
                rows = conn.execute(
                    select(log_c.hub_seq, log_c.entity, log_c.entity_id, log_c.fields)
                    .where(log_c.hub_seq > end).order_by(log_c.hub_seq).limit(window)
                ).all()  # fmt: skip
                for r in rows:
                    end, scanned = r.hub_seq, scanned + 1
                    if r.entity == "person":
                        if MATCH_FIELDS.isdisjoint(_field_names(r.fields)):
                            continue
                        persons.add(r.entity_id)
                    elif r.entity == "enrolment" and not ENROLMENT_FIELDS.isdisjoint(_field_names(r.fields)):
                        enrolments.add(r.entity_id)
                    if len(persons) + len(enrolments) >= self.chunk:
                        break
                if len(rows) < window:
                    break
        return end, scanned, persons, enrolments

    def _scan_chunk(self, cursor: int, end: int, persons: set[str], enrolments: set[str], report: ScanReport) -> None:
        index = self.job_index
        with self.hub_store.transaction():
            if self.cursor() != cursor:
                report.entries = 0
                return  # another hub process took this chunk
            affected = self._sync_enrolments(enrolments)
            report.enrolments = len(enrolments)
            # a changed enrolment can change the account its person is matched on (wallets.py): re-match them
            # too (a person whose features come out the same costs a lookup)
            persons = persons | affected
            # one read of the chunk's person records and of every pair already proposed for them (instead of
            # two round trips per person); pairs proposed within the chunk are added to ``known`` as we go
            ordered = sorted(persons)
            recs = self.hub_store.load_records([("person", p) for p in ordered])
            accounts = accounts_of(self.hub_store, ordered, read=recs)  # their enrolments join recs
            known: dict[str, set[str]] = {}
            for e in index.edges_of(ordered, active_only=False, evidence=False):
                known.setdefault(e.a, set()).add(e.b)
                known.setdefault(e.b, set()).add(e.a)
            for pid in ordered:
                auto, review = self._match_person(pid, affected, recs.get(("person", pid)), known, accounts)
                report.persons += 1
                report.auto_links += auto
                report.review_pairs += review
            index.flush()  # publication reads the records and edges through SQL
            report.published = self.publish(affected, recs)
            self.hub_store._upsert(hub_tables.settings, [{"key": CURSOR_KEY, "value": str(end)}], ["key"])
            index.flush()

    def scan_until_done(self) -> ScanReport:
        total = ScanReport()
        while True:
            before = self.cursor()
            total.add(self.scan_once())
            if self.cursor() == before:
                return total

    def _sync_enrolments(self, enrolment_ids: set[str]) -> set[str]:
        """Refresh the enrolment table; returns the persons whose enrolments changed (old and new owner)."""
        affected: set[str] = set()
        if not enrolment_ids:
            return affected
        conn = self.hub_store._writer()
        ids = sorted(enrolment_ids)
        old = {r.enrolment_id: r.person_id for r in conn.execute(
            select(enrol_t.c.enrolment_id, enrol_t.c.person_id).where(enrol_t.c.enrolment_id.in_(ids)))}  # fmt: skip
        affected.update(old.values())
        conn.execute(delete(enrol_t).where(enrol_t.c.enrolment_id.in_(ids)))
        rows = []
        for (_entity, eid), rec in self.hub_store.load_records([("enrolment", e) for e in ids]).items():
            values = rec.values()
            if rec.deleted or not values.get("person_id"):
                continue
            rows.append({"enrolment_id": eid, "person_id": str(values["person_id"]), "scope": rec.scope,
                         "programme": values.get("programme"), "status": values.get("status")})  # fmt: skip
            affected.add(str(values["person_id"]))
        if rows:
            conn.execute(insert(enrol_t), rows)
        return affected

    def _match_person(
        self, pid: str, affected: set[str], rec: Any, known_by_id: dict[str, set[str]], accounts: Mapping[str, str]
    ) -> tuple[int, int]:
        index = self.job_index
        if rec is None or rec.deleted:
            if index.get(pid) is not None:
                affected |= index.component(pid)
                for e in index.edges_of([pid]):
                    index.remove_edge(e.a, e.b, "record deleted")
                index.remove(pid)
            return 0, 0
        values = rec.values()
        f = prepare({**values, "id": pid, "union_id": rec.scope, "district_id": _district(rec.scope),
                     "account_number": accounts.get(pid, "")})  # fmt: skip
        affected.add(pid)
        if not index.replace(f):
            return 0, 0
        known = known_by_id.setdefault(pid, set())
        auto = review = 0
        for c in self.matcher.match_features(f):
            if c.record_id in known:
                continue  # a pair is proposed once; a reviewer's "different people" is not undone by an edit
            index.add_edge(Edge(pid, c.record_id, round(c.score, 3), c.band, self.matcher.model.version,
                                     c.evidence, 0))  # fmt: skip
            known.add(c.record_id)
            known_by_id.setdefault(c.record_id, set()).add(pid)
            affected.add(c.record_id)
            auto += c.band == AUTO
            review += c.band == REVIEW
        return auto, review

    # ---- publication -------------------------------------------------------------------------------------

    def publish(self, persons: Iterable[str], loaded: Mapping[tuple[str, str], Any] | None = None) -> int:
        """Write registry ids and flags for the clusters of ``persons`` (inside the caller's transaction).
        Only values that changed are written, so a re-scan adds nothing to the log. Set-based: the clusters,
        their enrolments, open review pairs and current values are read for all of ``persons`` at once.
        ``loaded``: records the caller already read in this transaction (they are not read again)."""
        persons = set(persons)
        if not persons:
            return 0
        indexed = self.index.existing(persons)
        comps = self.index.components(indexed)
        clusters: list[set[str]] = []
        done: set[str] = set()
        for pid in sorted(persons):
            if pid in done:
                continue
            members = comps[pid] if pid in indexed else {pid}
            done |= members
            clusters.append(members)
        everyone = sorted(set().union(*clusters))
        conn = self.hub_store._writer()
        enrol_by_person: dict[str, list[dict[str, Any]]] = {}
        for i in range(0, len(everyone), 500):
            for r in conn.execute(select(enrol_t).where(enrol_t.c.person_id.in_(everyone[i:i + 500]))):
                enrol_by_person.setdefault(r.person_id, []).append(
                    {"id": r.enrolment_id, "person_id": r.person_id, "programme": r.programme, "status": r.status})
        open_by_person: dict[str, list[Edge]] = {}
        for e in self.index.edges_of(everyone, evidence=False):
            if e.band == REVIEW and not e.confirmed_by:
                for x in {e.a, e.b}:
                    open_by_person.setdefault(x, []).append(e)
        keys = [("person", p) for p in everyone] + [
            ("enrolment", e["id"]) for p in everyone for e in enrol_by_person.get(p, [])]
        records = dict(loaded or {})
        records.update(self.hub_store.load_records([k for k in keys if k not in records]))
        writes: list[tuple[str, str, dict[str, Any]]] = []
        for members in clusters:
            self._publish_cluster(members, enrol_by_person, open_by_person, records, writes)
        # one append to the log for the whole chunk, not one per person, over the records read above
        self.engine.hub_write_many(writes, records=records)
        return len(writes)

    def _publish_cluster(self, members: set[str], enrol_by_person: dict[str, list[dict[str, Any]]],
                         open_by_person: dict[str, list[Edge]], records: dict[Any, Any],
                         writes: list[tuple[str, str, dict[str, Any]]]) -> None:
        registry_id = min(members)
        enrolments = sorted((e for p in members for e in enrol_by_person.get(p, [])), key=lambda e: e["id"])
        flags = dd_rules.flags_for(enrolments, self.rules)
        for pid in sorted(members):
            rec = records.get(("person", pid))
            if rec is None or rec.deleted:
                continue
            own = {e["id"] for e in enrolments if e["person_id"] == pid}
            dup: list[dict[str, Any]] = [
                {"type": "double_dipping", "rule": f.rule, "programmes": list(f.programmes),
                 "enrolment_ids": list(f.record_ids)}
                for f in flags if own & set(f.record_ids)
            ]  # fmt: skip
            for e in open_by_person.get(pid, []):
                other = e.b if e.a == pid else e.a
                if other not in members:
                    dup.append({"type": "possible_duplicate", "person_id": other, "score": e.score})
            self._write_if_changed(rec.values(), "person", pid, {"registry_id": registry_id,
                                                                "duplicate_flags": dup}, writes)
        for en in enrolments:
            rec = records.get(("enrolment", en["id"]))
            if rec is None or rec.deleted:
                continue
            mine = [f.as_dict() for f in flags if en["id"] in f.record_ids]
            self._write_if_changed(rec.values(), "enrolment", en["id"], {"double_dipping_flags": mine}, writes)

    @staticmethod
    def _write_if_changed(current: dict[str, Any], entity: str, entity_id: str, values: dict[str, Any],
                          writes: list[tuple[str, str, dict[str, Any]]]) -> None:
        changed = {k: v for k, v in values.items() if (current.get(k) or ([] if isinstance(v, list) else None)) != v}
        if changed:
            writes.append((entity, entity_id, changed))

    # ---- review decisions ------------------------------------------------------------------------------

    def decide(self, a: str, b: str, decision: str, actor: str, note: str = "") -> dict[str, str]:
        """Apply a reviewer's decision on two records; returns ``{person_id: registry_id}`` afterwards for
        every person whose cluster changed or was looked at. Audited and published in one transaction.

        - ``same``: the pair links (the review edge is confirmed, or a reviewer edge is added);
        - ``different``: every active edge between the two is marked removed (the pair leaves the queue);
        - ``unmerge``: ``b`` is taken out of its cluster: every active linking edge of ``b`` is removed."""
        # Messages in the reviewer's language when there is a request (the review page and the API both
        # show them); English otherwise.
        errors: dict[str, list[str]] = {}
        if decision not in DECISIONS:
            errors["decision"] = [_("must be one of same, different, unmerge")]
        if not isinstance(note, str) or len(note) > 2000:
            errors["note"] = [_("must be text of at most 2000 characters")]
        if a == b:
            errors["b"] = [_("must be another record than the first")]
        for name, rid in (("a", a), ("b", b)):
            if not isinstance(rid, str) or not rid or self.index.get(rid) is None:
                errors.setdefault(name, []).append(_("no such person in the registry"))
        if errors:
            raise DecisionError(_("invalid decision"), errors)
        with self.hub_store.transaction():
            before = self.index.component(a) | self.index.component(b)
            reason = f"{decision} by {actor}" + (f": {note}" if note else "")
            if decision == "same":
                self.index.confirm(a, b, actor)
            elif decision == "different":
                if not self.index.remove_edge(a, b, reason, actor):
                    raise DecisionError(_("nothing to decide"), {"b": [_("these two records have no open pair")]})
            else:
                removed = [e for e in self.index.edges_of([b]) if _links(e)]
                if not removed:
                    raise DecisionError(_("nothing to unmerge"), {"b": [_("this record is not linked to anyone")]})
                for e in removed:
                    self.index.remove_edge(e.a, e.b, reason, actor)
            after = self.index.component(a) | self.index.component(b)
            touched = before | after
            self.publish(touched)
            ids = {p: min(self.index.component(p)) for p in sorted(touched)}
            self.hub_store._writer().execute(insert(decisions_t).values(
                at=_now(), actor=actor, decision=decision, a=a, b=b, note=note,
                registry_ids=json.dumps(ids, sort_keys=True),
            ))  # fmt: skip
        return ids

    def decisions(self, limit: int = 100) -> list[dict[str, Any]]:
        with self.hub_store._conn() as conn:
            rows = conn.execute(select(decisions_t).order_by(decisions_t.c.id.desc()).limit(limit)).all()
        return [{"id": r.id, "at": r.at, "actor": r.actor, "decision": r.decision, "a": r.a, "b": r.b,
                 "note": r.note, "registry_ids": json.loads(r.registry_ids)} for r in rows]  # fmt: skip

    # ---- the scheduled job -------------------------------------------------------------------------------

    def run_once(self) -> ScanReport:
        with self._lock:
            try:
                report = self.scan_until_done()
            except Exception as exc:  # the scheduler must keep running; the next run starts from the cursor
                log.exception("registry matching run failed")
                self.last_run_error = type(exc).__name__
                raise
            self.last_run, self.last_run_error = report, None
            return report

    def start(self) -> None:
        if self._scheduler is not None or self.interval_s <= 0:
            return
        self._scheduler = start_interval_job(self.run_once, self.interval_s, "registry-matching", "Registry matching")

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None


def init_app(app: Flask, hub_store: SqlHubStore, engine: HubEngine) -> RegistryService:
    app.config.setdefault("HUB_REGISTRY_INTERVAL_S", float(os.environ.get("HUB_REGISTRY_INTERVAL_S", "30")))
    app.config.setdefault("HUB_REGISTRY_CHUNK", int(os.environ.get("HUB_REGISTRY_CHUNK", "100")))
    service = RegistryService(hub_store, engine, interval_s=float(app.config["HUB_REGISTRY_INTERVAL_S"]),
                              chunk=int(app.config["HUB_REGISTRY_CHUNK"]))  # fmt: skip
    app.extensions["central_hub_registry"] = service
    return service


def registry_service() -> RegistryService:
    found: RegistryService = current_app.extensions["central_hub_registry"]
    return found
