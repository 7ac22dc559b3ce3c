"""Seeded, deterministic, single-process simulation of one hub and many field nodes (DESIGN section 4).

Everything random comes from one ``random.Random(seed)``: record and batch ids, node clocks (skewed by up
to +-24 h, with occasional backward jumps), which node does what, and every fault on the simulated
network between a node and the hub. Messages are the real bytes: signed batch envelopes one way, the
hub's ``PushResponse`` / ``PullPage`` JSON (through ``json.dumps``/``json.loads``) the other way.

Faults: dropped requests and responses, duplicated requests, delayed requests delivered after newer ones
(an old push envelope arriving late), partitions lasting many rounds, and crashes at commit boundaries
of every store (``crash_hook``: "before_commit" rolls the transaction back, "after_commit" keeps it but
the caller never learns). A crashed node restarts as a new ``ReplicaEngine`` over the same store; a
crashed hub as a new ``HubEngine`` over the same store.

After the faulty phase the network heals, every node syncs until nothing moves, central staff resolve
every open conflict, every node syncs again, and the run checks:

* every node shows exactly the hub's values for every record in its unions (``_deleted`` included);
* no change is lost or applied twice: the hub holds exactly one result per change a node ever made,
  its ``last_seq`` per node equals the node's outbox, and the log holds each accepted change once;
* cursors and hybrid-logical-clock stamps of a node never go backwards, across restarts too;
* the hub's records, log, per-change results and conflict queue equal those of an independent oracle
  that replays the hub's order of accepted changes with per-field write histories and base revisions.

A failed check raises ``SimulationFailure`` (an ``AssertionError``) naming the seed and the command
that replays it. Run ``python -m sync_protocol.simulation --help``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import click

from . import wire
from .entities import DELETED, ENTITIES, HUB_ORIGIN
from .errors import SyncProtocolError
from .hlc import HybridLogicalClock
from .hub import HubEngine, decode_cursor
from .ids import uuid7
from .memory import MemoryHubStore, MemoryReplicaStore
from .model import Batch, Change, Conflict, ConflictStatus, Op, Outcome, PullPage, PushResponse
from .replica import ReplicaEngine
from .signing import Signer
from .store import HubStore, NodeRecord, ReplicaStore
from .validation import validate_change

Key = tuple[str, str]

EPOCH_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: simulated time starts here
DAY_MS = 24 * 3600 * 1000
BIG = 10**9


class Crash(BaseException):
    """A simulated process crash at a commit boundary. BaseException so no ``except Exception`` in a
    store or engine can swallow it, as nothing can swallow a power cut."""

    def __init__(self, phase: str, where: str) -> None:
        super().__init__(f"crash {phase} in {where}")
        self.phase = phase
        self.where = where


class SimulationFailure(AssertionError):
    """A broken invariant; the message names the seed and the replay command."""


# ---- the world the operators type into ---------------------------------------------------------------

# Small pools so that two offices often type the same value (an equal-value edit is a no-op, not a
# conflict) and often different ones (a true conflict). Every value passes the shared field validation
# (``sync_protocol.validation``) the real hub runs, alone and in any combination: no 17-digit NIDs (whose
# year must match the birth date) and no deaths (which need a date of death), so no change is rejected.
POOLS: dict[str, dict[str, list[Any]]] = {
    "household": {
        "ward": ["1", "2", "3", "7"],
        "village": ["Subil", "Gunaighar", "এলাহাবাদ"],
        "address": ["Bari 12, Uttar Para", "Bari 3, Dokkhin Para", "House 7, Bazar Road"],
        "land_decimals": [0, 5, 12.5, 33],
        "house_type": ["kutcha", "semi_pucca", "pucca"],
        "monthly_income_bdt": [4500, 8000, 12000],
        "pmt_score": [18.5, 22.0, 31.25],
    },
    "person": {
        "full_name_bn": ["রহিমা খাতুন", "করিম মিয়া", "ফাতেমা বেগম", "আব্দুল হক"],
        "full_name_en": ["Rahima Khatun", "Karim Mia", "Fatema Begum", "Abdul Hoque"],
        "sex": ["female", "male"],
        "date_of_birth": ["1958-03-14", "1987-11-02", "2001-06-30"],
        "dob_estimated": [True, False],
        "nid": ["1987654321", "4512345678901", None],
        "father_name": ["Jalal Uddin", "মতিন মিয়া"],
        "mother_name": ["Amena Begum", "সুফিয়া খাতুন"],
        "mobile": ["01711000001", "01811000002", "01911000003", None],
        "relation_to_head": ["head", "spouse", "son", "daughter"],
        "disability": [None, True, False],
        "occupation": ["farmer", "day_labourer", "housewife", "student"],
        "marital_status": ["married", "widowed", "never_married"],
        "life_status": ["alive", "migrated"],
    },
    "enrolment": {
        "programme": ["OAA", "WA", "DA"],
        "status": ["applied", "approved", "active", "suspended"],
        "applied_on": ["2026-01-05", "2026-02-11"],
        "status_changed_on": ["2026-03-01", "2026-04-15"],
        "payment_channel": ["bkash", "nagad", "bank"],
        "account_number": ["01711000001", "01811000002", "1234567890"],
        "benefit_amount_bdt": [500, 600, 850],
    },
    "grievance": {
        "tracking_number": ["G-0001", "G-0002"],
        "complainant_name": ["Rahima Khatun", "করিম মিয়া"],
        "complainant_mobile": ["01711000001", "01911000003"],
        "programme": ["OAA", "WA"],
        "category": ["payment_delay", "payment_amount", "exclusion"],
        "description": ["Allowance not received for 2 months", "ভাতা পাইনি"],
        "tier": ["union", "upazila"],
        "status": ["received", "under_review", "escalated"],
        "due_on": ["2026-05-01", "2026-06-01"],
    },
    "grievance_event": {
        "type": ["comment", "escalate", "resolve"],
        "note": ["called the complainant", "forwarded to upazila", "বকেয়া পরিশোধ"],
        "tier": ["union", "upazila"],
        "actor": ["uno", "udc_operator"],
        "occurred_at": ["2026-04-01T10:00:00Z", "2026-04-02T12:30:00Z"],
    },
}
# Fields a new record always carries (the validation's required fields, a name for a person).
ON_CREATE = {
    "person": ("sex", "date_of_birth", "full_name_bn"),
    "enrolment": ("programme", "status"),
    "grievance": ("category", "description", "complainant_name"),
    "grievance_event": ("type",),
}
EDITABLE = ("household", "person", "enrolment", "grievance")
PARENT = {"person": ("household", "household_id"), "enrolment": ("person", "person_id")}
HUB_FIELDS = {"person": {"nid_status": ["verified", "mismatch", "not_found"], "registry_id": ["R-1", "R-2"]}}


# ---- report and options ------------------------------------------------------------------------------


@dataclass
class SimReport:
    seed: int
    nodes: int
    ops: int
    changes: int = 0  # changes the nodes made (outbox entries)
    hub_log: int = 0  # entries in the hub log at the end
    conflicts: int = 0
    resolutions: int = 0
    pushes: int = 0
    pulls: int = 0
    drops: int = 0  # messages lost (request or response), partitions included
    dups: int = 0
    delays: int = 0
    crashes: int = 0
    gaps: int = 0  # SequenceGapError refusals the nodes handled
    commits: int = 0  # commit boundaries seen
    faulty_commits: int = 0  # of which in the faulty phase (the crash sweep's k ranges over these)
    fingerprint: str = ""  # sha256 of the hub log: equal seeds must give equal fingerprints
    seconds: float = 0.0


@dataclass
class SimOptions:
    unions: int = 4
    upazila: bool = True  # one node whose scope is every union
    drop: float = 0.2  # per message (a request, or its response)
    dup: float = 0.1  # a request delivered twice
    delay: float = 0.1  # a push held back and delivered some rounds later
    crash: float = 0.01  # per commit boundary, per phase
    crash_at: tuple[int, str] | None = None  # crash exactly at commit boundary k, "before"/"after" (sweep)
    partition: float = 0.03  # per op: a node loses the network for many rounds
    hub_ops: bool = True  # staff resolve conflicts and the hub writes hub-owned fields during the run
    validate: bool = True  # the hub validates changes with sync_protocol.validation, as the real hub does
    # For node stores that cannot tell a field set to null (or ``_deleted: False``) from a field never
    # set, as business-table columns cannot: compare replicas with those treated as absent. The memory
    # store can, so by default nothing is excluded from the comparison.
    null_is_absent: bool = False

    def cli_flags(self) -> str:
        out = []
        default = SimOptions()
        for name, flag in (("drop", "--drop"), ("dup", "--dup"), ("delay", "--delay"), ("crash", "--crash")):
            if getattr(self, name) != getattr(default, name):
                out.append(f"{flag} {getattr(self, name)}")
        if self.unions != default.unions:
            out.append(f"--unions {self.unions}")
        return (" " + " ".join(out)) if out else ""

    def python_only(self) -> dict[str, Any]:
        """Non-default options the CLI has no flag for (the crash sweep's ``crash_at``, ...)."""
        default = SimOptions()
        names = ("crash_at", "partition", "upazila", "hub_ops", "validate", "null_is_absent")
        return {n: getattr(self, n) for n in names if getattr(self, n) != getattr(default, n)}


HubStoreFactory = Callable[[], HubStore]
ReplicaStoreFactory = Callable[[str], ReplicaStore]
Enrol = Callable[[HubStore, NodeRecord], None]


def _memory_enrol(store: HubStore, node: NodeRecord) -> None:
    store.add_node(node)  # type: ignore[attr-defined]


# ---- the independent oracle --------------------------------------------------------------------------


@dataclass
class _OField:
    value: Any
    rev: int
    origin: str
    seen: dict[str, int]


@dataclass
class _OResult:
    hub_seq: int | None
    written: dict[str, Any]
    conflict_fields: tuple[str, ...] = ()
    rejected: bool = False


class Oracle:
    """The conflict and merge rule re-derived from its statement, not from ``merge.py``: replays the hub's
    order of accepted changes keeping, per field, the history of writes (revision, origin) and, per node,
    the revision it last reconciled with. A field of a change from node N with base revision b conflicts
    iff some origin other than N wrote the field after max(b, reconciled_N) and the current value differs
    from the incoming one."""

    def __init__(self) -> None:
        self.records: dict[Key, dict[str, _OField]] = {}
        self.history: dict[Key, dict[str, list[tuple[int, str]]]] = {}
        self.scope: dict[Key, str] = {}
        self.seq = 0
        self.log: dict[int, tuple[Key, dict[str, Any], str, int | None]] = {}
        self.last: dict[str, int] = {}
        self.results: dict[tuple[str, int], _OResult] = {}
        self.changes: dict[tuple[str, int], Change] = {}
        self.conflicts: dict[tuple[str, int, str], dict[str, Any]] = {}

    # -- pushes
    def push(self, batch: Batch) -> bool:
        """Replay one batch the hub committed; False when the hub should have refused it (a gap)."""
        last = self.last.get(batch.node_id, 0)
        if batch.first_seq > last + 1:
            return False
        for change in batch.changes:
            if change.node_seq > last:
                self.changes[(change.node_id, change.node_seq)] = change
                self.results[(change.node_id, change.node_seq)] = self._change(change)
        self.last[batch.node_id] = max(last, batch.last_seq)
        return True

    def _later_by_other(self, key: Key, name: str, change: Change) -> bool:
        rec = self.records[key]
        fs = rec.get(name)
        floor = max(int(change.base.get(name, 0)), fs.seen.get(change.node_id, 0) if fs else 0)
        return any(rev > floor and origin != change.node_id for rev, origin in self.history[key].get(name, ()))

    def _commit(
        self, key: Key, scope: str, writes: dict[str, Any], origin: str, origin_seq: int | None, keep_seen: bool
    ) -> int:
        self.seq += 1
        rec = self.records.setdefault(key, {})
        hist = self.history.setdefault(key, {})
        self.scope.setdefault(key, scope)
        for name, value in writes.items():
            old = rec.get(name)
            seen = dict(old.seen) if old else {}
            if not keep_seen:
                seen[origin] = self.seq
            rec[name] = _OField(value, self.seq, origin, seen)
            hist.setdefault(name, []).append((self.seq, origin))
        self.log[self.seq] = (key, dict(writes), origin, origin_seq)
        return self.seq

    def _reconcile(self, key: Key, name: str, node: str) -> None:
        fs = self.records[key][name]
        fs.seen[node] = max(fs.seen.get(node, 0), fs.rev)

    def _conflict(
        self,
        change: Change,
        name: str,
        hub: _OField | None,
        hub_rev: int,
        incoming: Any,
        incoming_fields: dict[str, Any] | None = None,
    ) -> None:
        base_rev = int(change.base.get(name, 0))
        entry = self.log.get(base_rev)
        if name == DELETED:
            base_value: Any = bool(entry[1].get(DELETED, False)) if entry else False
        else:
            base_value = entry[1].get(name) if entry else None
        self.conflicts[(change.node_id, change.node_seq, name)] = {
            "entity": change.entity,
            "entity_id": change.entity_id,
            "scope": change.scope,
            "base_rev": base_rev,
            "base_value": base_value,
            "hub_value": hub.value if hub else False,
            "hub_rev": hub_rev,
            "hub_origin": hub.origin if hub else "",
            "incoming_value": incoming,
            "incoming_fields": incoming_fields,
            "status": ConflictStatus.OPEN.value,
        }

    def _change(self, c: Change) -> _OResult:
        key = (c.entity, c.entity_id)
        rec = self.records.get(key)
        node = c.node_id
        if rec is not None and self.scope[key] != c.scope:
            return _OResult(None, {}, rejected=True)
        if ENTITIES[c.entity].append_only:
            if rec is None:
                return _OResult(self._commit(key, c.scope, dict(c.fields), node, c.node_seq, False), dict(c.fields))
            same = {k: f.value for k, f in rec.items()} == dict(c.fields)
            return _OResult(None, {}, rejected=not same)
        if c.op == Op.DELETE:
            if rec is None:
                return _OResult(self._commit(key, c.scope, {DELETED: True}, node, c.node_seq, False), {DELETED: True})
            tomb = rec.get(DELETED)
            if tomb is not None and tomb.value:
                return _OResult(None, {})
            changed = [n for n in rec if n != DELETED and self._later_by_other(key, n, c)]
            if changed:
                self._conflict(c, DELETED, tomb, tomb.rev if tomb else max(rec[n].rev for n in changed), True)
                return _OResult(None, {}, (DELETED,))
            return _OResult(self._commit(key, c.scope, {DELETED: True}, node, c.node_seq, False), {DELETED: True})
        writes: dict[str, Any] = {}
        conflicts: list[str] = []
        if rec is not None:
            tomb = rec.get(DELETED)
            if tomb is not None and tomb.value:
                if self._later_by_other(key, DELETED, c):
                    self._conflict(c, DELETED, tomb, tomb.rev, False, dict(c.fields))
                    return _OResult(None, {}, (DELETED,))
                writes[DELETED] = False
        for name in sorted(c.fields):
            incoming = c.fields[name]
            fs = rec.get(name) if rec is not None else None
            if fs is None:
                writes[name] = incoming
            elif self._later_by_other(key, name, c):
                if fs.value == incoming:
                    self._reconcile(key, name, node)
                else:
                    conflicts.append(name)
                    self._conflict(c, name, fs, fs.rev, incoming)
            elif fs.value != incoming:
                writes[name] = incoming
            else:
                self._reconcile(key, name, node)
        hub_seq = self._commit(key, c.scope, writes, node, c.node_seq, False) if writes else None
        return _OResult(hub_seq, writes, tuple(conflicts))

    # -- hub-side writes
    def hub_write(self, entity: str, entity_id: str, values: dict[str, Any]) -> None:
        key = (entity, entity_id)
        self._commit(key, self.scope[key], dict(values), HUB_ORIGIN, None, True)

    def resolve(self, ckey: tuple[str, int, str], choice: str, value: Any) -> None:
        conflict = self.conflicts[ckey]
        name = ckey[2]
        key = (conflict["entity"], conflict["entity_id"])
        fs = self.records[key].get(name)
        current = fs.value if fs else None
        if name == DELETED:
            current = bool(current)
        if choice == "hub":
            values = {name: current}
        elif choice == "incoming":
            values = {name: conflict["incoming_value"]}
            if name == DELETED and conflict["incoming_value"] is False and conflict["incoming_fields"]:
                values.update(conflict["incoming_fields"])
        else:
            values = {name: value}
        self.hub_write(key[0], key[1], values)
        conflict["status"] = ConflictStatus.RESOLVED.value


# ---- the simulation ----------------------------------------------------------------------------------


@dataclass
class _Node:
    node_id: str
    scopes: tuple[str, ...]
    signer: Signer
    store: ReplicaStore
    engine: ReplicaEngine
    offset_ms: int
    known: list[Key] = field(default_factory=list)
    known_set: set[Key] = field(default_factory=set)
    partitioned_until: int = -1
    cursor_seen: int = 0


@dataclass
class _Delayed:
    due: int
    node: _Node
    envelope: bytes


class Simulation:
    def __init__(
        self,
        seed: int,
        nodes: int = 10,
        ops: int = 300,
        *,
        options: SimOptions | None = None,
        hub_store_factory: HubStoreFactory = MemoryHubStore,
        replica_store_factory: ReplicaStoreFactory = lambda _node_id: MemoryReplicaStore(),
        enrol: Enrol = _memory_enrol,
        hub_engine_cls: type[HubEngine] | None = None,
    ) -> None:
        self.seed = seed
        self.n_nodes = nodes
        self.n_ops = ops
        self.opt = options or SimOptions()
        self.rng = random.Random(seed)
        self.now_ms = EPOCH_MS
        self.step = 0
        self.faults = False  # enrolment is setup, not part of the faulty phase
        self.report = SimReport(seed, nodes, ops)
        self.oracle = Oracle()
        self.batches: dict[bytes, Batch] = {}
        self.answers: dict[bytes, dict[str, Any]] = {}  # first answer per envelope: replays must repeat it
        self.delayed: list[_Delayed] = []
        self.replica_store_factory = replica_store_factory
        self.hub_engine_cls = hub_engine_cls or HubEngine
        self.hub_store = hub_store_factory()
        self._hook(self.hub_store, "hub")
        self.hub = self._new_hub()
        self.unions = [str(u) for u in range(1, self.opt.unions + 1)]
        self.nodes: list[_Node] = []
        for i in range(nodes):
            node_id = f"node-{i:02d}"
            if self.opt.upazila and i == nodes - 1 and nodes > 1:
                scopes = tuple(self.unions)
            else:
                scopes = (self.unions[i % len(self.unions)],)
            signer = Signer(self.rng.randbytes(32))
            enrol(self.hub_store, NodeRecord(node_id, signer.public_bytes, frozenset(scopes), label=node_id))
            store = replica_store_factory(node_id)
            self._hook(store, node_id)
            offset = self.rng.randint(-DAY_MS, DAY_MS)
            node = _Node(node_id, scopes, signer, store, None, offset)  # type: ignore[arg-type]
            node.engine = self._new_engine(node)
            self.nodes.append(node)

    # -- plumbing
    def _new_hub(self) -> HubEngine:
        return self.hub_engine_cls(
            self.hub_store,
            validator=validate_change if self.opt.validate else None,
            clock=HybridLogicalClock(now_ms=lambda: self.now_ms),
            new_id=lambda: uuid7(unix_ms=self.now_ms, rand=self.rng.randbytes),
            now_iso=self._now_iso,
        )

    def _now_iso(self) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.now_ms // 1000))

    def _new_engine(self, node: _Node) -> ReplicaEngine:
        return ReplicaEngine(
            node.store,
            node.node_id,
            signer=node.signer,
            clock=HybridLogicalClock(now_ms=lambda: self.now_ms + node.offset_ms),
            new_id=lambda: uuid7(unix_ms=self.now_ms + node.offset_ms, rand=self.rng.randbytes),
        )

    def _hook(self, store: Any, where: str) -> None:
        if not hasattr(store, "crash_hook"):
            return

        def hook(phase: str) -> None:
            if phase == "before_commit":
                self.report.commits += 1
                self.report.faulty_commits += self.faults
            if not self.faults:
                return
            # Always draw, so a sweep run follows the crash-free run exactly up to its crash.
            draw = self.rng.random()
            if self.opt.crash_at is not None:
                k, when = self.opt.crash_at
                hit = self.report.faulty_commits == k and phase.startswith(when)
            else:
                hit = draw < self.opt.crash
            if hit:
                self.report.crashes += 1
                raise Crash(phase, where)

        store.crash_hook = hook

    def fail(self, message: str) -> SimulationFailure:
        replay = f"python -m sync_protocol.simulation --seed {self.seed} --nodes {self.n_nodes} --ops {self.n_ops}"
        text = f"simulation seed {self.seed} failed: {message}\nreplay with: {replay}{self.opt.cli_flags()}"
        extra = self.opt.python_only()
        custom = self.hub_engine_cls is not HubEngine or not isinstance(self.hub_store, MemoryHubStore)
        if extra or custom:
            changed = {k: v for k, v in vars(self.opt).items() if v != getattr(SimOptions(), k)}
            args = "".join(f", {k}={v!r}" for k, v in changed.items())
            text += f"\n  (in Python: sync_protocol.simulation.run({self.seed}, {self.n_nodes}, {self.n_ops}{args}"
            text += ", with the same store factories and hub engine)" if custom else ")"
        return SimulationFailure(text)

    def check(self, ok: bool, message: str) -> None:
        if not ok:
            raise self.fail(message)

    def _lost(self, node: _Node) -> bool:
        """Is this message lost in transit?"""
        if node.partitioned_until > self.step:
            self.report.drops += 1
            return True
        if self.faults and self.rng.random() < self.opt.drop:
            self.report.drops += 1
            return True
        return False

    @contextmanager
    def _node_process(self, node: _Node) -> Iterator[None]:
        """Run node code; a crash restarts the node process: same store, fresh engine state."""
        try:
            yield
        except Crash:
            node.engine = self._new_engine(node)

    def _learn(self, node: _Node, key: Key) -> None:
        if key not in node.known_set:
            node.known_set.add(key)
            node.known.append(key)

    # -- the hub's side of the wire
    def _hub_push(self, envelope: bytes) -> dict[str, Any] | None:
        """Deliver one envelope to the hub; the JSON answer, or None when the hub crashed."""
        batch = self.batches.get(envelope)
        try:
            response = self.hub.push(envelope)
        except Crash as crash:
            self.hub = self._new_hub()
            if crash.phase == "after_commit":
                self._oracle_push(envelope, batch)
            return None
        except SyncProtocolError as exc:
            return {"error": exc.to_json()}
        self._oracle_push(envelope, batch)
        answer: dict[str, Any] = json.loads(json.dumps(response.to_json()))
        first = self.answers.setdefault(envelope, answer)
        if first != answer:
            raise self.fail(f"the hub answered the same envelope twice differently: {first} then {answer}")
        return answer

    def _oracle_push(self, envelope: bytes, batch: Batch | None) -> None:
        if batch is None:
            raise self.fail("the hub accepted an envelope no node built")
        if not self.oracle.push(batch):
            raise self.fail(f"the hub accepted batch {batch.batch_id} that leaves a sequence gap")

    def _hub_call(self, fn: Callable[[], Any]) -> tuple[bool, Any]:
        """A staff action at the hub: (committed, result); a crash restarts the hub engine."""
        try:
            return True, fn()
        except Crash as crash:
            self.hub = self._new_hub()
            return crash.phase == "after_commit", None

    # -- node operations
    def _push(self, node: _Node) -> bool:
        """One push exchange; True when the node had something to send."""
        self.report.pushes += 1
        built = None
        with self._node_process(node):
            built = node.engine.next_envelope(max_changes=self.rng.choice((5, 20, 100)))
        if built is None:
            return False
        pending, batch = built
        if batch is not None:
            self.batches[pending.envelope] = batch
        elif pending.envelope not in self.batches:
            # Built before a crash that hid it from us: the hub will verify the same bytes.
            self.batches[pending.envelope] = wire.decode_batch(pending.envelope, node.signer.public_bytes)
        envelope = pending.envelope
        if self._lost(node):
            return True
        if self.faults and self.rng.random() < self.opt.delay:
            self.report.delays += 1
            self.delayed.append(_Delayed(self.step + self.rng.randint(1, 40), node, envelope))
            return True
        copies = 2 if self.faults and self.rng.random() < self.opt.dup else 1
        if copies == 2:
            self.report.dups += 1
        for _ in range(copies):
            answer = self._hub_push(envelope)
            if answer is not None and not self._lost(node):
                self._receive_push_answer(node, answer)
        return True

    def _receive_push_answer(self, node: _Node, answer: dict[str, Any]) -> None:
        error = answer.get("error")
        if error is not None:
            if error.get("code") == "sequence_gap":
                self.report.gaps += 1
                with self._node_process(node):
                    node.engine.discard_pending_batch(int(error["resend_from"]))
                return
            raise self.fail(f"hub refused a push of {node.node_id}: {error}")
        response = PushResponse.from_json(answer)
        for result in response.results:
            if result.outcome == Outcome.REJECTED:
                raise self.fail(f"hub rejected a change of {node.node_id}: {result}")
        with self._node_process(node):
            node.engine.ack(response)

    def _pull(self, node: _Node) -> int:
        """One pull exchange; the number of entries applied."""
        self.report.pulls += 1
        if self._lost(node):
            return 0
        copies = 2 if self.faults and self.rng.random() < self.opt.dup else 1
        if copies == 2:
            self.report.dups += 1
        applied = 0
        limit = self.rng.choice((3, 25, 500))
        for _ in range(copies):
            cursor = node.store.get_cursor()
            try:
                page = self.hub.pull(node.node_id, cursor, limit)
            except SyncProtocolError as exc:
                raise self.fail(f"hub refused a pull of {node.node_id}: {exc.to_json()}") from exc
            if self._lost(node):
                continue
            page = PullPage.from_json(json.loads(json.dumps(page.to_json())))
            with self._node_process(node):
                applied += node.engine.apply_pull(page)
                for entry in page.entries:
                    self._learn(node, (entry.entity, entry.entity_id))
            self._observe_cursor(node)
        return applied

    def _observe_cursor(self, node: _Node) -> None:
        value = decode_cursor(node.store.get_cursor())
        if value < node.cursor_seen:
            raise self.fail(f"cursor of {node.node_id} went back from {node.cursor_seen} to {value}")
        node.cursor_seen = value

    def _write(self, node: _Node, entity: str, entity_id: str, scope: str, values: dict[str, Any], op: str) -> None:
        with self._node_process(node):
            with node.store.transaction():
                # The business row would be written here, in the same transaction.
                node.engine.write(entity, entity_id, scope, values, op=op, actor=f"{node.node_id}-operator")
            self._learn(node, (entity, entity_id))

    def _new_record_id(self, node: _Node) -> str:
        return uuid7(unix_ms=self.now_ms + node.offset_ms, rand=self.rng.randbytes)

    def _pick_known(self, node: _Node, entities: tuple[str, ...]) -> tuple[Key, Any] | None:
        if not node.known:
            return None
        for _ in range(4):
            key = node.known[self.rng.randrange(len(node.known))]
            if key[0] not in entities:
                continue
            rec = node.store.get_local(*key)
            if rec is not None and rec.values and not rec.deleted:
                return key, rec
        return None

    def _create(self, node: _Node) -> None:
        entity = self.rng.choice(("household", "household", "person", "person", "enrolment", "grievance"))
        scope = self.rng.choice(node.scopes)
        pool = POOLS[entity]
        values = {name: self.rng.choice(choices) for name, choices in pool.items() if self.rng.random() < 0.8}
        for name in ON_CREATE.get(entity, ()):
            values.setdefault(name, pool[name][0])
        if entity == "household":
            values["union_id"] = scope
        parent = PARENT.get(entity)
        if parent is not None:
            found = self._pick_known(node, (parent[0],))
            if found is None:
                return
            (_, parent_id), rec = found
            scope = rec.scope
            values[parent[1]] = parent_id
        self._write(node, entity, self._new_record_id(node), scope, values, Op.UPSERT)

    def _edit(self, node: _Node) -> None:
        found = self._pick_known(node, EDITABLE)
        if found is None:
            return
        (entity, entity_id), rec = found
        pool = POOLS[entity]
        names = self.rng.sample(sorted(pool), k=min(len(pool), self.rng.choice((1, 1, 2, 3))))
        values = {name: self.rng.choice(pool[name]) for name in names}
        self._write(node, entity, entity_id, rec.scope, values, Op.UPSERT)

    def _delete(self, node: _Node) -> None:
        found = self._pick_known(node, EDITABLE)
        if found is not None:
            (entity, entity_id), rec = found
            self._write(node, entity, entity_id, rec.scope, {}, Op.DELETE)

    def _event(self, node: _Node) -> None:
        found = self._pick_known(node, ("grievance",))
        if found is None:
            return
        (_, grievance_id), rec = found
        values = {name: self.rng.choice(choices) for name, choices in POOLS["grievance_event"].items()}
        values["grievance_id"] = grievance_id
        self._write(node, "grievance_event", self._new_record_id(node), rec.scope, values, Op.UPSERT)

    def _partition(self) -> None:
        node = self.rng.choice(self.nodes)
        if node.partitioned_until > self.step:
            node.partitioned_until = self.step  # the link comes back early
        else:
            node.partitioned_until = self.step + self.rng.randint(10, 80)

    def _clock_jump(self) -> None:
        node = self.rng.choice(self.nodes)
        # Someone sets the laptop's clock back (or the RTC battery died); stay within +-24 h of true time.
        node.offset_ms = max(-DAY_MS, node.offset_ms - self.rng.randint(60_000, 6 * 3600 * 1000))

    def _hub_staff(self) -> None:
        if self.rng.random() < 0.5:
            open_ = self.hub_store.list_conflicts(ConflictStatus.OPEN)
            if open_:
                self._resolve(open_[self.rng.randrange(len(open_))])
            return
        persons = [k for k in self.oracle.records if k[0] == "person"]
        if persons:
            entity, entity_id = persons[self.rng.randrange(len(persons))]
            name = self.rng.choice(sorted(HUB_FIELDS["person"]))
            values = {name: self.rng.choice(HUB_FIELDS["person"][name])}
            committed, _ = self._hub_call(lambda: self.hub.hub_write(entity, entity_id, values))
            if committed:
                self.oracle.hub_write(entity, entity_id, values)

    def _resolve(self, conflict: Conflict) -> None:
        choice = self.rng.choice(("hub", "incoming", "value"))
        value: Any = None
        if choice == "value":
            if conflict.field == DELETED:
                value = self.rng.choice((True, False))
            else:
                value = self.rng.choice(POOLS[conflict.entity][conflict.field])
        committed, _ = self._hub_call(
            lambda: self.hub.resolve(conflict.id, choice, value=value, note="sim", actor="central-staff")
        )
        if committed:
            self.report.resolutions += 1
            ckey = (conflict.node_id, conflict.node_seq, conflict.field)
            self.check(ckey in self.oracle.conflicts, f"hub queued conflict {ckey}, which the oracle does not expect")
            self.oracle.resolve((conflict.node_id, conflict.node_seq, conflict.field), choice, value)

    def _deliver_delayed(self, everything: bool = False) -> None:
        due = [d for d in self.delayed if everything or (d.due <= self.step and d.node.partitioned_until <= self.step)]
        if not due:
            return
        self.delayed = [d for d in self.delayed if d not in due]
        for d in due:
            answer = self._hub_push(d.envelope)
            # The node gave up waiting long ago; a late answer still reaches it sometimes.
            if answer is not None and self.rng.random() < 0.5 and not self._lost(d.node):
                self._receive_push_answer(d.node, answer)

    # -- phases
    def run(self) -> SimReport:
        started = time.perf_counter()
        rng = self.rng
        ops = (
            (self._create, 20),
            (self._edit, 30),
            (self._delete, 1),
            (self._event, 4),
            (self._push, 22),
            (self._pull, 18),
        )
        actions = [a for a, _ in ops]
        weights = [w for _, w in ops]
        self.faults = True
        for step in range(self.n_ops):
            self.step = step
            self.now_ms += rng.randint(1_000, 90_000)
            self._deliver_delayed()
            r = rng.random()
            if r < self.opt.partition:
                self._partition()
            elif r < self.opt.partition + 0.01:
                self._clock_jump()
            elif self.opt.hub_ops and r < self.opt.partition + 0.05:
                self._hub_staff()
            else:
                action = rng.choices(actions, weights)[0]
                action(rng.choice(self.nodes))
        self.heal()
        self.sync_all()
        for conflict in self.hub_store.list_conflicts(ConflictStatus.OPEN):
            self._resolve(conflict)
        self.sync_all()
        self.verify()
        self.report.seconds = time.perf_counter() - started
        return self.report

    def heal(self) -> None:
        self.faults = False
        self.step = self.n_ops
        for node in self.nodes:
            node.partitioned_until = -1
        self._deliver_delayed(everything=True)

    def sync_all(self, max_rounds: int = 200) -> None:
        """Push and pull every node until a whole round moves nothing."""
        for _ in range(max_rounds):
            moved = 0
            for node in self.nodes:
                for _ in range(BIG):
                    if not self._push(node):
                        break
                    moved += 1
                    if moved > 100_000:
                        raise self.fail(f"{node.node_id} keeps pushing without its outbox draining")
                for _ in range(100_000):
                    before = node.cursor_seen
                    got = self._pull(node)
                    moved += got
                    if got == 0 and node.cursor_seen == before:
                        break
                else:
                    raise self.fail(f"{node.node_id} keeps pulling without reaching the end of the log")
            if not moved:
                return
        raise self.fail(f"the system did not become quiescent within {max_rounds} sync rounds")

    # -- the checks
    def _hub_log(self) -> list[Any]:
        out: list[Any] = []
        while True:
            page = self.hub_store.read_log(len(out), None, 5000)
            out.extend(page)
            if len(page) < 5000:
                return out

    def verify(self) -> None:
        log = self._hub_log()
        self.report.hub_log = len(log)
        self.report.fingerprint = hashlib.sha256(
            json.dumps([e.to_json() for e in log], sort_keys=True).encode()
        ).hexdigest()[:16]
        self.check([e.hub_seq for e in log] == list(range(1, len(log) + 1)), "hub log has gaps or is out of order")
        keys = list(dict.fromkeys((e.entity, e.entity_id) for e in log))
        hub_records = self.hub_store.load_records(keys)

        # zero double-applied: one log entry per (origin, origin_seq)
        seen_origin: dict[tuple[str, int], int] = {}
        for e in log:
            if e.origin != HUB_ORIGIN:
                assert e.origin_seq is not None
                prior = seen_origin.setdefault((e.origin, e.origin_seq), e.hub_seq)
                self.check(prior == e.hub_seq, f"change {e.origin}#{e.origin_seq} is in the log twice")

        conflicts = self.hub_store.list_conflicts()
        self.report.conflicts = len(conflicts)
        for node in self.nodes:
            self._verify_node(node, log, hub_records)
        self._verify_oracle(log, hub_records, conflicts)

    def _verify_node(self, node: _Node, log: list[Any], hub_records: dict[Key, Any]) -> None:
        nid = node.node_id
        outbox = node.store.outbox(0, BIG)
        self.report.changes += len(outbox)
        if [c.node_seq for c in outbox] != list(range(1, len(outbox) + 1)):
            raise self.fail(f"outbox of {nid} has gaps")
        for a, b in itertools.pairwise(outbox):
            if a.hlc >= b.hlc:
                raise self.fail(f"HLC of {nid} went backwards: #{a.node_seq} {a.hlc}, #{b.node_seq} {b.hlc}")
        hub_node = self.hub_store.get_node(nid)
        assert hub_node is not None
        if hub_node.last_seq != len(outbox):
            raise self.fail(f"hub last_seq of {nid} is {hub_node.last_seq}, its outbox holds {len(outbox)}")
        if node.store.acked_through() != len(outbox) or node.store.get_pending_batch() is not None:
            raise self.fail(f"{nid} has unacknowledged changes or a pending batch after the final sync")
        results = self.hub_store.get_change_results(nid, 1, len(outbox))
        if sorted(results) != list(range(1, len(outbox) + 1)):
            raise self.fail(f"hub lacks results for some changes of {nid}")
        for change in outbox:
            got = self.oracle.changes.get((nid, change.node_seq))
            if got != change:
                raise self.fail(f"hub received {got} as {nid}#{change.node_seq}, the node made {change}")
            result = results[change.node_seq]
            if result.hub_seq is not None:
                entry = log[result.hub_seq - 1]
                written = set(change.fields) if result.written is None else set(result.written)
                if entry.origin != nid or entry.origin_seq != change.node_seq or not written <= set(entry.fields):
                    raise self.fail(f"log entry {result.hub_seq} does not carry {nid}#{change.node_seq}")
        in_scope = max((e.hub_seq for e in log if e.scope in node.scopes), default=0)
        if decode_cursor(node.store.get_cursor()) < in_scope:
            raise self.fail(f"{nid} did not pull its whole scope")
        for key, rec in hub_records.items():
            if rec.scope not in node.scopes:
                continue
            local = node.store.get_local(*key)
            if local is None:
                raise self.fail(f"{nid} lacks {key}")
            shown, hub_values = local.values, rec.values()
            if self.opt.null_is_absent:
                shown, hub_values = _without_nulls(shown), _without_nulls(hub_values)
            if shown != hub_values:
                raise self.fail(f"{nid} shows {key} as {shown}, the hub has {hub_values}")
        for key in node.known:
            local = node.store.get_local(*key)
            if local is not None and local.values and key not in hub_records:
                raise self.fail(f"{nid} shows {key}, which the hub never accepted")

    def _verify_oracle(self, log: list[Any], hub_records: dict[Key, Any], conflicts: list[Conflict]) -> None:
        o = self.oracle
        if o.seq != len(log):
            raise self.fail(f"oracle expects {o.seq} log entries, the hub has {len(log)}")
        for e in log:
            mine = o.log[e.hub_seq]
            if mine != ((e.entity, e.entity_id), dict(e.fields), e.origin, e.origin_seq):
                raise self.fail(f"log entry {e.hub_seq}: hub {e.to_json()}, oracle {mine}")
        if set(o.records) != set(hub_records):
            raise self.fail("oracle and hub hold different records")
        for key, rec in hub_records.items():
            ours = {n: (f.value, f.rev, f.origin, f.seen) for n, f in o.records[key].items()}
            theirs = {n: (f.value, f.rev, f.origin, dict(f.seen)) for n, f in rec.fields.items()}
            if ours != theirs:
                raise self.fail(f"record {key}: hub {theirs}, oracle {ours}")
        hub_conflicts = {(c.node_id, c.node_seq, c.field): c for c in conflicts}
        if set(hub_conflicts) != set(o.conflicts):
            raise self.fail(
                f"conflict queue differs: hub only {sorted(set(hub_conflicts) - set(o.conflicts))}, "
                f"oracle only {sorted(set(o.conflicts) - set(hub_conflicts))}"
            )
        for ckey, expected in o.conflicts.items():
            data = hub_conflicts[ckey].to_json()
            got = {k: data[k] for k in expected}
            if got != expected:
                raise self.fail(f"conflict {ckey}: hub {got}, oracle {expected}")
        by_id = {c.id: c for c in conflicts}
        for (nid, seq), want in o.results.items():
            res = self.hub_store.get_change_results(nid, seq, seq).get(seq)
            if res is None:
                raise self.fail(f"hub has no result for {nid}#{seq}")
            conflict_fields = tuple(by_id[i].field for i in res.conflict_ids)
            change = o.changes[(nid, seq)]
            if want.rejected:
                outcomes: set[str] = {Outcome.REJECTED}
            elif want.conflict_fields:
                outcomes = {Outcome.CONFLICT}
            else:
                outcomes = {Outcome.APPLIED, Outcome.MERGED}
            exp_written = None if want.rejected or set(want.written) >= set(change.fields) else set(want.written)
            written = None if res.written is None else set(res.written)
            if (
                res.hub_seq != want.hub_seq
                or conflict_fields != want.conflict_fields
                or res.outcome not in outcomes
                or written != exp_written
            ):
                raise self.fail(f"result of {nid}#{seq}: hub {res}, oracle {want}")


def _without_nulls(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None and not (k == DELETED and v is False)}


def run(
    seed: int,
    nodes: int = 10,
    ops: int = 300,
    *,
    hub_store_factory: HubStoreFactory = MemoryHubStore,
    replica_store_factory: ReplicaStoreFactory = lambda _node_id: MemoryReplicaStore(),
    enrol: Enrol = _memory_enrol,
    hub_engine_cls: type[HubEngine] | None = None,
    **options: Any,
) -> SimReport:
    """Run one seeded simulation and check every invariant; raises ``SimulationFailure`` on a broken one.

    ``options`` are ``SimOptions`` fields (drop, dup, delay, crash, crash_at, partition, unions, ...).
    """
    sim = Simulation(
        seed,
        nodes,
        ops,
        options=SimOptions(**options),
        hub_store_factory=hub_store_factory,
        replica_store_factory=replica_store_factory,
        enrol=enrol,
        hub_engine_cls=hub_engine_cls,
    )
    try:
        return sim.run()
    except SimulationFailure:
        raise
    except Exception as exc:  # an engine blew up: still name the seed
        raise sim.fail(f"{type(exc).__name__}: {exc}") from exc


def crash_sweep(seed: int, nodes: int = 3, ops: int = 40, **options: Any) -> int:
    """Run a small scenario once per commit boundary k and phase, crashing exactly there. Returns how
    many runs were made. Other faults stay on, so each crash lands in a realistic state."""
    base = run(seed, nodes, ops, crash=0.0, **options)
    runs = 0
    for k in range(1, base.faulty_commits + 1):
        for phase in ("before", "after"):
            rep = run(seed, nodes, ops, crash_at=(k, phase), **options)
            if rep.crashes != 1:
                raise SimulationFailure(f"seed {seed}: crash at commit {k} {phase} did not happen exactly once")
            runs += 1
    return runs


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--seeds", default=500, show_default=True, help="How many seeds to run.")
@click.option("--start-seed", default=0, show_default=True, help="First seed of the range.")
@click.option("--seed", "one_seed", type=int, default=None, help="Replay exactly this one seed.")
@click.option("--nodes", default=10, show_default=True, help="Field nodes per run.")
@click.option("--ops", default=300, show_default=True, help="Random operations per run.")
@click.option("--unions", default=4, show_default=True, help="Unions the nodes are spread over.")
@click.option("--drop", default=0.2, show_default=True, help="Probability that a message is lost.")
@click.option("--dup", default=0.1, show_default=True, help="Probability that a request arrives twice.")
@click.option("--delay", default=0.1, show_default=True, help="Probability that a push arrives late.")
@click.option("--crash", default=0.01, show_default=True, help="Crash probability per commit boundary.")
@click.option("-v", "--verbose", is_flag=True, help="Print one line per seed.")
def main(
    seeds: int,
    start_seed: int,
    one_seed: int | None,
    nodes: int,
    ops: int,
    unions: int,
    drop: float,
    dup: float,
    delay: float,
    crash: float,
    verbose: bool,
) -> None:
    """Run the seeded sync simulation and check its invariants.

    Example: python -m sync_protocol.simulation --seeds 500 --nodes 10 --ops 300
    (replay one failing seed: python -m sync_protocol.simulation --seed 1234)
    """
    chosen = [one_seed] if one_seed is not None else list(range(start_seed, start_seed + seeds))
    total = SimReport(-1, nodes, ops)
    started = time.perf_counter()
    for seed in chosen:
        try:
            rep = run(seed, nodes, ops, unions=unions, drop=drop, dup=dup, delay=delay, crash=crash)
        except SimulationFailure as exc:
            click.echo(str(exc), err=True)
            sys.exit(1)
        if verbose or one_seed is not None:
            click.echo(
                f"seed {seed}: {rep.changes} changes, {rep.conflicts} conflicts, {rep.crashes} crashes, "
                f"log {rep.hub_log}, fingerprint {rep.fingerprint}"
            )
        for name in (
            "changes",
            "hub_log",
            "conflicts",
            "resolutions",
            "pushes",
            "pulls",
            "drops",
            "dups",
            "delays",
            "crashes",
            "gaps",
            "commits",
        ):
            setattr(total, name, getattr(total, name) + getattr(rep, name))
    seconds = time.perf_counter() - started
    click.echo(
        f"OK: {len(chosen)} seeds x {nodes} nodes x {ops} ops in {seconds:.1f} s; "
        f"{total.changes} changes, {total.hub_log} hub log entries, {total.conflicts} conflicts, "
        f"{total.resolutions} resolutions; injected {total.drops} drops, {total.dups} duplicates, "
        f"{total.delays} delayed pushes, {total.crashes} crashes; {total.gaps} sequence gaps handled"
    )


if __name__ == "__main__":
    main()
