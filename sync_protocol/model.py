"""The protocol's values: changes, batches, per-change results, hub log entries, conflicts.

All are plain immutable data. The ones the hub makes per change (changes, results, log entries, field
and record states) are frozen ``msgspec.Struct``s rather than frozen dataclasses: the same fields,
equality and immutability, made in a tenth of the time, which at 500 changes a batch is a tenth of a
push. JSON field values are whatever the entity's validation produced
(strings, numbers, booleans, null, lists); the protocol never interprets them beyond equality.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import msgspec

from .entities import SCHEMA_VERSION

PROTOCOL_VERSION = 1


class Op(StrEnum):
    UPSERT = "upsert"
    DELETE = "delete"


class Outcome(StrEnum):
    APPLIED = "applied"  # every field written; nothing else had touched the record since its base
    MERGED = "merged"  # accepted; merged with concurrent edits of other fields, or already equal
    CONFLICT = "conflict"  # at least one field queued for central staff; other fields may be written
    REJECTED = "rejected"  # nothing written; ``reason`` says why


class Change(msgspec.Struct, frozen=True):
    """One record edit made on one node: identity ``(node_id, node_seq)``, gapless per node."""

    node_id: str
    node_seq: int
    hlc: int
    entity: str
    entity_id: str
    scope: str  # union id the record belongs to; the hub checks the node may write it
    op: str
    fields: Mapping[str, Any]
    base: Mapping[str, int]  # per changed field: hub revision (hub_seq) the edit was based on; 0 = none
    actor: str = ""  # operator who made the edit (shown to central staff in the conflict view)


@dataclass(frozen=True, slots=True)
class Batch:
    """Consecutive changes of one node: ``changes[i].node_seq == first_seq + i``."""

    node_id: str
    batch_id: str
    changes: tuple[Change, ...]
    protocol_version: int = PROTOCOL_VERSION
    schema_version: int = SCHEMA_VERSION

    @property
    def first_seq(self) -> int:
        return self.changes[0].node_seq

    @property
    def last_seq(self) -> int:
        return self.changes[-1].node_seq


class ChangeResult(msgspec.Struct, frozen=True):
    node_seq: int
    outcome: str
    hub_seq: int | None = None  # log position of what was written, if anything
    conflict_ids: tuple[str, ...] = ()
    reason: str | None = None
    errors: Mapping[str, list[str]] | None = None  # field-level reasons for a rejection
    written: tuple[str, ...] | None = None  # fields written; None means every field of the change
    # Fields the hub already held with the same value, and the revision of that value: lets the node
    # keep showing what the operator entered (it IS the hub's value) instead of an older pulled one.
    unchanged: Mapping[str, int] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"seq": self.node_seq, "result": str(self.outcome)}
        if self.hub_seq is not None:
            out["hub_seq"] = self.hub_seq
        if self.conflict_ids:
            out["conflict_ids"] = list(self.conflict_ids)
        if self.reason is not None:
            out["reason"] = self.reason
        if self.errors:
            out["errors"] = {k: list(v) for k, v in self.errors.items()}
        if self.written is not None:
            out["written"] = list(self.written)
        if self.unchanged:
            out["unchanged"] = dict(self.unchanged)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ChangeResult:
        written = data.get("written")
        return cls(
            node_seq=int(data["seq"]),
            outcome=str(data["result"]),
            hub_seq=data.get("hub_seq"),
            conflict_ids=tuple(data.get("conflict_ids", ())),
            reason=data.get("reason"),
            errors=data.get("errors"),
            written=tuple(written) if written is not None else None,
            unchanged=dict(data["unchanged"]) if data.get("unchanged") else None,
        )


@dataclass(frozen=True, slots=True)
class PushResponse:
    node_id: str
    batch_id: str
    results: tuple[ChangeResult, ...]

    @property
    def acked_through(self) -> int:
        return self.results[-1].node_seq if self.results else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id,
            "batch_id": self.batch_id,
            "acked_through": self.acked_through,
            "results": [r.to_json() for r in self.results],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PushResponse:
        return cls(
            node_id=str(data["node_id"]),
            batch_id=str(data["batch_id"]),
            results=tuple(ChangeResult.from_json(r) for r in data["results"]),
        )


class LogEntry(msgspec.Struct, frozen=True):
    """One accepted write in the hub's ordered log, as a node pulls it."""

    hub_seq: int
    entity: str
    entity_id: str
    scope: str
    fields: Mapping[str, Any]
    origin: str  # node id, or "hub" for staff resolutions and hub-derived values
    origin_seq: int | None = None
    hlc: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "hub_seq": self.hub_seq,
            "entity": self.entity,
            "entity_id": self.entity_id,
            "scope": self.scope,
            "fields": dict(self.fields),
            "origin": self.origin,
            "origin_seq": self.origin_seq,
            "hlc": self.hlc,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LogEntry:
        return cls(
            hub_seq=int(data["hub_seq"]),
            entity=str(data["entity"]),
            entity_id=str(data["entity_id"]),
            scope=str(data["scope"]),
            fields=dict(data["fields"]),
            origin=str(data["origin"]),
            origin_seq=data.get("origin_seq"),
            hlc=int(data.get("hlc", 0)),
        )


@dataclass(frozen=True, slots=True)
class PullPage:
    entries: tuple[LogEntry, ...]
    cursor: str  # opaque; give it back to get what follows
    more: bool

    def to_json(self) -> dict[str, Any]:
        return {"entries": [e.to_json() for e in self.entries], "cursor": self.cursor, "more": self.more}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PullPage:
        return cls(
            entries=tuple(LogEntry.from_json(e) for e in data["entries"]),
            cursor=str(data["cursor"]),
            more=bool(data["more"]),
        )


class FieldState(msgspec.Struct, frozen=True):
    """The hub's knowledge of one field of one record."""

    value: Any
    rev: int  # hub_seq of the write that set it
    origin: str  # who wrote it: node id or "hub"
    # Per node: the latest revision that node's own writes to this field were reconciled with
    # (applied, or found equal). Lets consecutive edits of one node build on each other without a pull.
    seen: Mapping[str, int] = msgspec.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"v": self.value, "r": self.rev, "o": self.origin, "s": dict(self.seen)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FieldState:
        return cls(value=data["v"], rev=int(data["r"]), origin=str(data["o"]), seen=dict(data.get("s", {})))


class UniformFields(Mapping[str, FieldState]):
    """The fields of a record that one write created: every field has the same revision and origin, and
    only that origin has seen it. Most records at the hub are exactly this (a registration), and holding
    them as plain values, with a ``FieldState`` made only when one is asked for, spares the hub ten objects
    per new record on the ingest path. Reads the same as the equivalent ``dict`` of ``FieldState``."""

    __slots__ = ("origin", "plain", "rev")

    def __init__(self, plain: Mapping[str, Any], rev: int, origin: str) -> None:
        self.plain = plain
        self.rev = rev
        self.origin = origin

    def __getitem__(self, name: str) -> FieldState:
        return FieldState(self.plain[name], self.rev, self.origin, {self.origin: self.rev})

    def __iter__(self) -> Iterator[str]:
        return iter(self.plain)

    def __len__(self) -> int:
        return len(self.plain)

    def __contains__(self, name: object) -> bool:
        return name in self.plain

    def __repr__(self) -> str:
        return f"UniformFields({dict(self.plain)!r}, rev={self.rev}, origin={self.origin!r})"


class LayeredFields(Mapping[str, FieldState]):
    """A record made by one write (``under``) of which a few fields were written since (``over``): an edit
    of two fields need not make ``FieldState`` objects of all the others. Reads the same as the ``dict``
    of ``FieldState`` it stands for."""

    __slots__ = ("over", "under")

    def __init__(self, under: UniformFields, over: Mapping[str, FieldState]) -> None:
        self.under = under
        self.over = over

    def __getitem__(self, name: str) -> FieldState:
        fs = self.over.get(name)
        return fs if fs is not None else self.under[name]

    def __iter__(self) -> Iterator[str]:
        over = self.over
        yield from over
        for name in self.under.plain:
            if name not in over:
                yield name

    def __len__(self) -> int:
        return len(self.over) + sum(1 for name in self.under.plain if name not in self.over)

    def __contains__(self, name: object) -> bool:
        return name in self.over or name in self.under.plain

    def __repr__(self) -> str:
        return f"LayeredFields({self.under!r}, {dict(self.over)!r})"


def layered(under: Mapping[str, FieldState], over: Mapping[str, FieldState]) -> Mapping[str, FieldState]:
    """``under`` with ``over`` written on top, without copying what ``over`` leaves alone when ``under`` is
    a one-write record."""
    if not over:
        return under
    if isinstance(under, UniformFields):
        return LayeredFields(under, over)
    if isinstance(under, LayeredFields):
        return LayeredFields(under.under, {**under.over, **over})
    return {**under, **over}


class RecordState(msgspec.Struct, frozen=True):
    entity: str
    entity_id: str
    scope: str
    fields: Mapping[str, FieldState]

    @property
    def deleted(self) -> bool:
        from .entities import DELETED

        fs = self.fields.get(DELETED)
        return bool(fs and fs.value)

    def values(self) -> dict[str, Any]:
        fields = self.fields
        if isinstance(fields, UniformFields):
            return dict(fields.plain)
        if isinstance(fields, LayeredFields):
            return {**fields.under.plain, **{k: v.value for k, v in fields.over.items()}}
        return {k: v.value for k, v in fields.items()}

    def to_json(self) -> dict[str, Any]:
        return {k: v.to_json() for k, v in self.fields.items()}


class ConflictStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Conflict:
    id: str
    entity: str
    entity_id: str
    scope: str
    field: str
    base_value: Any
    hub_value: Any
    incoming_value: Any
    base_rev: int
    hub_rev: int
    node_id: str
    node_seq: int
    actor: str
    hlc: int
    created_at: str  # ISO-8601 UTC, from the hub's clock
    status: str = ConflictStatus.OPEN
    hub_origin: str = ""
    # For "update vs delete": the fields the update wanted to write, applied if staff take "incoming".
    incoming_fields: Mapping[str, Any] | None = None
    resolution: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "entity": self.entity,
            "entity_id": self.entity_id,
            "scope": self.scope,
            "union_id": self.scope,
            "field": self.field,
            "base_value": self.base_value,
            "hub_value": self.hub_value,
            "incoming_value": self.incoming_value,
            "base_rev": self.base_rev,
            "hub_rev": self.hub_rev,
            "hub_origin": self.hub_origin,
            "node_id": self.node_id,
            "node_seq": self.node_seq,
            "actor": self.actor,
            "hlc": self.hlc,
            "created_at": self.created_at,
            "status": self.status,
            "incoming_fields": dict(self.incoming_fields) if self.incoming_fields is not None else None,
            "resolution": dict(self.resolution) if self.resolution is not None else None,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Conflict:
        return cls(
            id=d["id"],
            entity=d["entity"],
            entity_id=d["entity_id"],
            scope=d["scope"],
            field=d["field"],
            base_value=d["base_value"],
            hub_value=d["hub_value"],
            incoming_value=d["incoming_value"],
            base_rev=int(d["base_rev"]),
            hub_rev=int(d["hub_rev"]),
            node_id=d["node_id"],
            node_seq=int(d["node_seq"]),
            actor=d.get("actor", ""),
            hlc=int(d.get("hlc", 0)),
            created_at=d["created_at"],
            status=d.get("status", ConflictStatus.OPEN),
            hub_origin=d.get("hub_origin", ""),
            incoming_fields=d.get("incoming_fields"),
            resolution=d.get("resolution"),
        )
