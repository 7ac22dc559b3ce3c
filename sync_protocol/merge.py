"""The apply rule, as pure functions (DESIGN section 4). No I/O: the hub engine feeds records in.

Per field of an incoming change from node N, with the hub's current state of that field:

* the field has not been written since the revision N based its edit on -> **apply**;
  "since" also forgives N's own earlier writes: consecutive edits of one node never conflict with
  each other, because the hub remembers (``FieldState.seen``) the revision N last reconciled with;
* it was written since, by someone else, but to the same value -> **unchanged** (nothing to do);
* it was written since, by someone else, to another value -> **conflict**: the hub keeps its value and
  queues base / hub / incoming for central staff.

Disjoint fields of one record merge automatically because the rule is per field. A delete is a write of
the pseudo-field ``_deleted``: deleting a record someone changed since the base, or changing a record
someone deleted, is a conflict. Append-only entities never conflict: a new id is applied, a known id
with identical content is a no-op. Hub-owned fields are written only by the hub.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any

import msgspec

from .entities import DELETED, ENTITIES, HUB_ORIGIN
from .model import Change, FieldState, LayeredFields, Op, Outcome, RecordState, UniformFields, layered

Validator = Callable[[str, Mapping[str, Any], Mapping[str, Any] | None], Mapping[str, list[str]]]
"""``validator(entity, fields, current_values_or_None) -> {field: [messages]}``; empty means valid."""


class FieldDecision(StrEnum):
    APPLY = "apply"
    UNCHANGED = "unchanged"
    CONFLICT = "conflict"


class ConflictSpec(msgspec.Struct, frozen=True):
    field: str
    base_rev: int
    hub: FieldState | None
    incoming_value: Any
    incoming_fields: Mapping[str, Any] | None = None


class MergeResult(msgspec.Struct, frozen=True):
    outcome: Outcome
    state: RecordState | None  # the record after the change (None when nothing changed)
    written: dict[str, Any] = msgspec.field(default_factory=dict)  # what enters the hub log
    conflicts: tuple[ConflictSpec, ...] = ()
    reason: str | None = None
    errors: Mapping[str, list[str]] | None = None
    all_written: bool = False
    unchanged: dict[str, int] = msgspec.field(default_factory=dict)  # fields already equal -> their revision


def effective_base(change_base: Mapping[str, int], name: str, fs: FieldState, node_id: str) -> int:
    return max(int(change_base.get(name, 0)), int(fs.seen.get(node_id, 0)))


def same_value(a: Any, b: Any) -> bool:
    """JSON equality that keeps types apart: ``True`` is not ``1`` and ``1`` is not ``1.0``, because the
    wire round-trips them as different values and a registry must not treat a changed type as no change."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def decide_field(fs: FieldState | None, incoming: Any, base_rev: int, node_id: str) -> FieldDecision:
    """The per-field rule on its own."""
    if fs is None:
        return FieldDecision.APPLY
    if fs.rev <= max(base_rev, int(fs.seen.get(node_id, 0))):
        return FieldDecision.UNCHANGED if same_value(fs.value, incoming) else FieldDecision.APPLY
    if same_value(fs.value, incoming):
        return FieldDecision.UNCHANGED
    return FieldDecision.CONFLICT


def _reject(reason: str, errors: Mapping[str, list[str]] | None = None) -> MergeResult:
    return MergeResult(Outcome.REJECTED, None, reason=reason, errors=errors)


def check_change(change: Change, current: RecordState | None) -> MergeResult | None:
    """Structural checks shared by every entity; a result means the change is rejected."""
    spec = ENTITIES.get(change.entity)
    if spec is None:
        return _reject(f"unknown entity {change.entity!r}")
    if (
        change.op == Op.UPSERT
        and change.fields
        and change.fields.keys() <= spec.fields
        and (current is None or current.scope == change.scope)
    ):
        return None  # the usual upsert: only fields a node may write, into the record's own union
    names = set(change.fields)
    unknown = sorted(names - spec.all_fields - {DELETED})
    if unknown:
        return _reject("unknown field(s)", {f: [f"{change.entity} has no field {f!r}"] for f in unknown})
    owned = sorted(names & spec.hub_owned)
    if owned:
        return _reject(
            "hub-owned field(s) are written only by the hub",
            {f: ["this field is set by the central hub only"] for f in owned},
        )
    if change.op == Op.DELETE:
        if spec.append_only:
            return _reject(f"{change.entity} records are append-only and cannot be deleted")
        if names - {DELETED} or change.fields.get(DELETED, True) is not True:
            return _reject("a delete carries no field values")
    elif change.op == Op.UPSERT:
        if DELETED in names:
            return _reject("_deleted is written by delete changes only", {DELETED: ["not writable"]})
        if not names:
            return _reject("an upsert must change at least one field")
    else:
        return _reject(f"unknown op {change.op!r}")
    if current is not None and current.scope != change.scope:
        return _reject(
            f"record belongs to union {current.scope}, change claims union {change.scope}",
            {"union_id": [f"record belongs to union {current.scope}"]},
        )
    return None


def merge_change(
    change: Change,
    current: RecordState | None,
    *,
    hub_seq: int,
    validator: Validator | None = None,
) -> MergeResult:
    """Decide what ``change`` does to ``current``; writes are stamped with revision ``hub_seq``."""
    rejected = check_change(change, current)
    if rejected is not None:
        return rejected
    if validator is not None and change.op == Op.UPSERT:
        errors = validator(change.entity, change.fields, current.values() if current else None)
        if errors:
            return _reject("invalid field value(s)", errors)
    if ENTITIES[change.entity].append_only:
        return _merge_append_only(change, current, hub_seq)
    if change.op == Op.DELETE:
        return _merge_delete(change, current, hub_seq)
    if current is None:
        return _merge_create(change, hub_seq)
    return _merge_upsert(change, current, hub_seq)


def _merge_create(change: Change, hub_seq: int) -> MergeResult:
    """``_merge_upsert`` of a record the hub has never seen, which is most of what arrives: every field
    applies, as the per-field rule has nothing to compare with. Same result, a tenth of the work
    (tests/protocol/test_merge_create.py holds the two together)."""
    plain = dict(change.fields)
    state = RecordState(change.entity, change.entity_id, change.scope, UniformFields(plain, hub_seq, change.node_id))
    # ``written`` is the state's own dict: a store can tell that the record holds exactly its log entry.
    return MergeResult(Outcome.APPLIED, state, written=plain, all_written=True)


def _merge_upsert(change: Change, current: RecordState | None, hub_seq: int) -> MergeResult:
    node = change.node_id
    under: Mapping[str, FieldState] = current.fields if current else {}
    over: dict[str, FieldState] = {}  # what this change writes over ``under``
    written: dict[str, Any] = {}
    conflicts: list[ConflictSpec] = []
    unchanged: dict[str, int] = {}

    deleted = under.get(DELETED)
    if deleted is not None and deleted.value:
        if deleted.rev > effective_base(change.base, DELETED, deleted, node):
            # Update vs delete: the hub keeps the record deleted until staff decide.
            spec_c = ConflictSpec(
                DELETED, int(change.base.get(DELETED, 0)), deleted, False, incoming_fields=dict(change.fields)
            )
            return MergeResult(Outcome.CONFLICT, None, conflicts=(spec_c,))
        over[DELETED] = FieldState(False, hub_seq, node, {**deleted.seen, node: hub_seq})
        written[DELETED] = False

    for name in sorted(change.fields):
        incoming = change.fields[name]
        fs = under.get(name)
        base_rev = int(change.base.get(name, 0))
        decision = decide_field(fs, incoming, base_rev, node)
        if decision is FieldDecision.APPLY:
            seen = {**fs.seen, node: hub_seq} if fs else {node: hub_seq}
            over[name] = FieldState(incoming, hub_seq, node, seen)
            written[name] = incoming
        elif decision is FieldDecision.UNCHANGED:
            assert fs is not None
            unchanged[name] = fs.rev
            if fs.seen.get(node, 0) < fs.rev:
                over[name] = FieldState(fs.value, fs.rev, fs.origin, {**fs.seen, node: fs.rev})
        else:
            conflicts.append(ConflictSpec(name, base_rev, fs, incoming))

    state = RecordState(change.entity, change.entity_id, change.scope, layered(under, over))
    if conflicts:
        outcome = Outcome.CONFLICT
    elif unchanged or _concurrent(current, change):
        outcome = Outcome.MERGED
    else:
        outcome = Outcome.APPLIED
    return MergeResult(
        outcome,
        state,
        written=written,
        conflicts=tuple(conflicts),
        all_written=set(written) >= set(change.fields),
        unchanged=unchanged,
    )


def _concurrent(current: RecordState | None, change: Change) -> bool:
    """Did another origin write any field of the record after what this change was based on?"""
    if current is None:
        return False
    newest_base = max((int(v) for v in change.base.values()), default=0)
    node = change.node_id
    fields = current.fields
    if isinstance(fields, LayeredFields):
        under, over = fields.under, fields.over
        if any(name not in over for name in under.plain) and _uniform_concurrent(under, node, newest_base):
            return True
        candidates = over.values()
    elif isinstance(fields, UniformFields):
        return bool(fields.plain) and _uniform_concurrent(fields, node, newest_base)
    else:
        candidates = fields.values()
    return any(fs.origin != node and fs.rev > max(newest_base, int(fs.seen.get(node, 0))) for fs in candidates)


def _uniform_concurrent(fields: UniformFields, node: str, newest_base: int) -> bool:
    # Every field was written by ``fields.origin`` at ``fields.rev``, and only that origin has seen it.
    return fields.origin != node and fields.rev > newest_base


def _merge_delete(change: Change, current: RecordState | None, hub_seq: int) -> MergeResult:
    node = change.node_id
    if current is None:
        tomb = {DELETED: FieldState(True, hub_seq, node, {node: hub_seq})}
        state = RecordState(change.entity, change.entity_id, change.scope, tomb)
        return MergeResult(Outcome.APPLIED, state, written={DELETED: True}, all_written=True)
    deleted = current.fields.get(DELETED)
    if deleted is not None and deleted.value:
        return MergeResult(Outcome.MERGED, None)
    changed_since = sorted(
        name
        for name, fs in current.fields.items()
        if name != DELETED and fs.rev > effective_base(change.base, name, fs, node)
    )
    if changed_since:
        base_rev = int(change.base.get(DELETED, 0))
        hub_fs = deleted or FieldState(False, max(current.fields[n].rev for n in changed_since), "")
        return MergeResult(
            Outcome.CONFLICT,
            None,
            conflicts=(ConflictSpec(DELETED, base_rev, hub_fs, True),),
        )
    fields = dict(current.fields)
    seen = {**deleted.seen, node: hub_seq} if deleted else {node: hub_seq}
    fields[DELETED] = FieldState(True, hub_seq, node, seen)
    state = RecordState(change.entity, change.entity_id, change.scope, fields)
    return MergeResult(Outcome.APPLIED, state, written={DELETED: True}, all_written=True)


def _merge_append_only(change: Change, current: RecordState | None, hub_seq: int) -> MergeResult:
    node = change.node_id
    if current is None:
        fields = {k: FieldState(v, hub_seq, node, {node: hub_seq}) for k, v in change.fields.items()}
        state = RecordState(change.entity, change.entity_id, change.scope, fields)
        return MergeResult(Outcome.APPLIED, state, written=dict(change.fields), all_written=True)
    if same_value(current.values(), dict(change.fields)):
        return MergeResult(Outcome.MERGED, None)
    return _reject(f"{change.entity} {change.entity_id} already exists with other content; events are immutable")


class ResolutionChoice(StrEnum):
    HUB = "hub"
    INCOMING = "incoming"
    VALUE = "value"


def resolution_fields(
    field_name: str,
    choice: str,
    *,
    current_value: Any,
    incoming_value: Any,
    incoming_fields: Mapping[str, Any] | None = None,
    value: Any = None,
) -> dict[str, Any]:
    """The fields a staff decision writes. Even "keep the hub value" is written again, as a new hub
    change, so every node in scope pulls the decision and drops its losing local value."""
    if choice == ResolutionChoice.HUB:
        return {field_name: current_value}
    if choice == ResolutionChoice.INCOMING:
        out = {field_name: incoming_value}
        if field_name == DELETED and incoming_value is False and incoming_fields:
            out.update(incoming_fields)
        return out
    if choice == ResolutionChoice.VALUE:
        return {field_name: value}
    raise ValueError(f"choice must be one of hub, incoming, value; got {choice!r}")


def hub_write(
    current: RecordState | None,
    entity: str,
    entity_id: str,
    scope: str,
    values: Mapping[str, Any],
    hub_seq: int,
) -> tuple[RecordState, dict[str, Any]]:
    """A write by the hub itself (staff resolution, NID result, registry id): always applied."""
    fields = dict(current.fields) if current else {}
    written: dict[str, Any] = {}
    for name, value in values.items():
        fs = fields.get(name)
        fields[name] = FieldState(value, hub_seq, HUB_ORIGIN, dict(fs.seen) if fs else {})
        written[name] = value
    return RecordState(entity, entity_id, current.scope if current else scope, fields), written
