"""The hub's side of the protocol: push, pull, staff resolution and hub-derived writes, over a
``HubStore``. No I/O of its own; ``central_hub`` wraps it in HTTP and a real database."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import gc
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from . import wire
from .entities import DELETED, ENTITIES, HUB_ORIGIN
from .errors import (
    BatchReplayMismatchError,
    ConflictAlreadyResolvedError,
    ConflictNotFoundError,
    InvalidCursorError,
    LocalWriteError,
    RevokedNodeError,
    ScopeError,
    SequenceGapError,
    SequenceReuseError,
    UnknownNodeError,
)
from .hlc import HybridLogicalClock
from .ids import uuid7
from .merge import ConflictSpec, Validator, hub_write, merge_change, resolution_fields
from .model import (
    Batch,
    Change,
    ChangeResult,
    Conflict,
    ConflictStatus,
    LogEntry,
    Outcome,
    PullPage,
    PushResponse,
    RecordState,
)
from .store import HubStore, NodeRecord, StoredBatch

CURSOR_PREFIX = "c1:"


def encode_cursor(hub_seq: int) -> str:
    return base64.urlsafe_b64encode(f"{CURSOR_PREFIX}{hub_seq}".encode()).decode("ascii").rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    if cursor in (None, ""):
        return 0
    assert cursor is not None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        if not text.startswith(CURSOR_PREFIX):
            raise ValueError(text)
        value = int(text[len(CURSOR_PREFIX) :])
        if value < 0:
            raise ValueError(text)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidCursorError("cursor is not one this hub issued; pull again without a cursor") from exc
    return value


def _utc_now_iso() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class HubEngine:
    def __init__(
        self,
        store: HubStore,
        *,
        validator: Validator | None = None,
        clock: HybridLogicalClock | None = None,
        new_id: Callable[[], str] = uuid7,
        now_iso: Callable[[], str] = _utc_now_iso,
    ) -> None:
        self.store = store
        self.validator = validator
        self.clock = clock or HybridLogicalClock()
        self.new_id = new_id
        self.now_iso = now_iso

    # ---- push ---------------------------------------------------------------------------------------

    def node_for(self, envelope: bytes) -> NodeRecord:
        header = wire.read_header(envelope)
        node = self.store.get_node(header.node_id)
        if node is None:
            raise UnknownNodeError(f"node {header.node_id!r} is not enrolled at this hub; enrol it first")
        if node.revoked:
            raise RevokedNodeError(f"node {header.node_id!r} has been revoked; ask the hub administrator")
        return node

    def push(self, envelope: bytes) -> PushResponse:
        """Verify, apply and record one batch atomically. A replay returns the stored answer."""
        # A batch allocates tens of thousands of small objects and no reference cycles: the cyclic
        # collector would walk them several times per batch and free nothing (about a tenth of a push).
        collecting = gc.isenabled()
        gc.disable()
        try:
            return self._push(envelope)
        finally:
            if collecting:
                gc.enable()

    def _push(self, envelope: bytes) -> PushResponse:
        node = self.node_for(envelope)
        batch, digests = wire.decode_batch_digests(envelope, node.public_key)
        digest = wire.digest(envelope)
        out_of_scope = sorted({c.scope for c in batch.changes} - node.scopes)
        if out_of_scope:
            raise ScopeError(
                f"node {node.node_id} may write unions {sorted(node.scopes)}, batch writes {out_of_scope}",
                unions=out_of_scope,
            )
        with self.store.transaction():
            prior = self.store.get_batch(batch.batch_id)
            if prior is not None:
                if prior.digest != digest or prior.node_id != node.node_id:
                    raise BatchReplayMismatchError(
                        f"batch {batch.batch_id} was received before with different content; a batch id is never reused"
                    )
                return PushResponse.from_json(prior.response)
            node = self.store.get_node(node.node_id) or node  # fresh last_seq inside the transaction
            last = node.last_seq
            if batch.first_seq > last + 1:
                raise SequenceGapError(
                    f"hub has changes of node {node.node_id} up to seq {last}; batch starts at "
                    f"{batch.first_seq}. Resend from {last + 1}.",
                    resend_from=last + 1,
                )
            if batch.first_seq <= last:
                self._check_resent(batch, digests, last)
            response = self._apply_batch(batch, last, digests)
            self.store.save_batch(StoredBatch(batch.batch_id, node.node_id, digest, response.to_json()))
            if batch.last_seq > last:
                self.store.set_node_last_seq(node.node_id, batch.last_seq)
        return response

    def _check_resent(self, batch: Batch, digests: tuple[str, ...], last: int) -> None:
        """Seqs the hub already holds may only come back with the very change stored under them (a resend
        after a lost answer). Anything else means the node's database went back in time and is reusing
        seqs; answering with the stored results would mark its new changes acknowledged and lose them."""
        stored = self.store.get_change_digests(batch.node_id, batch.first_seq, min(last, batch.last_seq))
        for change, digest in zip(batch.changes, digests, strict=True):
            if change.node_seq > last:
                break
            held = stored.get(change.node_seq)
            if held is not None and held != digest:
                raise SequenceReuseError(
                    f"node {batch.node_id} sent a different change under seq {change.node_seq}, which the hub "
                    f"already holds (it has this node's changes up to seq {last}). The node's database looks "
                    "restored from an older backup: its new changes reuse old numbers. Nothing was applied. "
                    "Export the node's changes and enrol it again as a new node before it syncs.",
                    seq=change.node_seq,
                    hub_last_seq=last,
                )

    def _apply_batch(self, batch: Batch, last: int, digests: tuple[str, ...]) -> PushResponse:
        earlier = self.store.get_change_results(batch.node_id, batch.first_seq, last) if batch.first_seq <= last else {}
        fresh = [c for c in batch.changes if c.node_seq > last]
        records = self.store.load_records({(c.entity, c.entity_id) for c in fresh})
        history: dict[int, LogEntry] | None = None  # base values for conflicts, read at the first one
        seq = self.store.last_hub_seq()
        results: list[ChangeResult] = []
        new_results: list[ChangeResult] = []
        log: list[LogEntry] = []
        conflicts: list[Conflict] = []
        dirty: dict[tuple[str, str], RecordState] = {}
        now = self.now_iso()
        validator = self.validator
        newest_hlc = 0
        for change in batch.changes:
            if change.node_seq <= last:
                results.append(earlier[change.node_seq])
                continue
            if change.hlc > newest_hlc:
                newest_hlc = change.hlc
            key = (change.entity, change.entity_id)
            current = dirty.get(key) or records.get(key)
            merged = merge_change(change, current, hub_seq=seq + 1, validator=validator)
            written = merged.written
            hub_seq: int | None = None
            if written:
                seq += 1
                hub_seq = seq
                log.append(
                    LogEntry(
                        seq,
                        change.entity,
                        change.entity_id,
                        change.scope,
                        written,
                        change.node_id,
                        change.node_seq,
                        change.hlc,
                    )
                )
            if merged.state is not None:
                dirty[key] = merged.state
            conflict_ids: tuple[str, ...] = ()
            if merged.conflicts:
                if history is None:
                    history = self._base_entries(fresh)
                made = [self._conflict(change, spec, history, now) for spec in merged.conflicts]
                conflicts.extend(made)
                conflict_ids = tuple(c.id for c in made)
            outcome = merged.outcome
            result = ChangeResult(
                change.node_seq,
                outcome,
                hub_seq,
                conflict_ids,
                merged.reason,
                merged.errors,
                None if merged.all_written or outcome == Outcome.REJECTED else tuple(written),
                merged.unchanged or None,
            )
            results.append(result)
            new_results.append(result)
        if newest_hlc:
            # Receiving the newest stamp once leaves the clock ahead of every stamp of the batch, which is
            # all the hub's own writes need.
            self.clock.receive(newest_hlc, strict=False)
        # The log first: a store may then keep a new record's state as a pointer to its log entry.
        if log:
            self.store.append_log(log)
        if dirty:
            self.store.save_records(list(dirty.values()))
        if conflicts:
            self.store.add_conflicts(conflicts)
        if new_results:
            kept = {c.node_seq: d for c, d in zip(batch.changes, digests, strict=True) if c.node_seq > last}
            self.store.save_change_results(batch.node_id, new_results, kept, batch_id=batch.batch_id)
        return PushResponse(batch.node_id, batch.batch_id, tuple(results))

    def _base_entries(self, changes: list[Change]) -> dict[int, LogEntry]:
        """The log entries the changes' edits were based on (all of the batch's, read once). The batch's own
        new entries are not among them: they are appended after the batch is merged."""
        revs: set[int] = set()
        for c in changes:
            if c.base:
                revs.update(rev for rev in c.base.values() if rev > 0)
        return self.store.log_entries(revs) if revs else {}

    def _conflict(self, change: Any, spec: ConflictSpec, history: Mapping[int, LogEntry], now: str) -> Conflict:
        base_entry = history.get(spec.base_rev)
        if spec.field == DELETED:
            base_value: Any = bool(base_entry.fields.get(DELETED, False)) if base_entry else False
        else:
            base_value = base_entry.fields.get(spec.field) if base_entry else None
        return Conflict(
            id=self.new_id(),
            entity=change.entity,
            entity_id=change.entity_id,
            scope=change.scope,
            field=spec.field,
            base_value=base_value,
            hub_value=spec.hub.value if spec.hub else None,
            incoming_value=spec.incoming_value,
            base_rev=spec.base_rev,
            hub_rev=spec.hub.rev if spec.hub else 0,
            node_id=change.node_id,
            node_seq=change.node_seq,
            actor=change.actor,
            hlc=change.hlc,
            created_at=now,
            hub_origin=spec.hub.origin if spec.hub else "",
            incoming_fields=spec.incoming_fields,
        )

    # ---- pull ---------------------------------------------------------------------------------------

    def pull(self, node_id: str, cursor: str | None, limit: int = 500) -> PullPage:
        node = self.store.get_node(node_id)
        if node is None:
            raise UnknownNodeError(f"node {node_id!r} is not enrolled at this hub")
        if node.revoked:
            raise RevokedNodeError(f"node {node_id!r} has been revoked")
        return self.pull_scopes(node.scopes, cursor, limit)

    def pull_scopes(self, scopes: frozenset[str] | None, cursor: str | None, limit: int = 500) -> PullPage:
        after = decode_cursor(cursor)
        limit = max(1, min(int(limit), 5000))
        entries = self.store.read_log(after, scopes, limit + 1)
        more = len(entries) > limit
        entries = entries[:limit]
        last = entries[-1].hub_seq if entries else after
        return PullPage(tuple(entries), encode_cursor(last), more)

    # ---- hub-side writes ----------------------------------------------------------------------------

    def hub_write(
        self, entity: str, entity_id: str, values: Mapping[str, Any], *, scope: str | None = None
    ) -> LogEntry:
        """Write fields as the hub (NID results, registry ids, ...). Enters the log; nodes pull it."""
        if entity not in ENTITIES:
            raise LocalWriteError(f"unknown entity {entity!r}")
        with self.store.transaction():
            return self._hub_write_tx(entity, entity_id, values, scope)

    def hub_write_many(
        self,
        writes: Sequence[tuple[str, str, Mapping[str, Any]]],
        *,
        scope: str | None = None,
        records: Mapping[tuple[str, str], RecordState] | None = None,
    ) -> list[LogEntry]:
        """``hub_write`` of many (entity, entity_id, values) in one transaction, with one read of the records
        and one append to the log: the registry job publishes thousands of ids per run. All or nothing.
        ``records``: the current states of these records, when the caller read them in the transaction
        it calls this in (nothing else can have written them since: writers are serialised)."""
        for entity, _, _ in writes:
            if entity not in ENTITIES:
                raise LocalWriteError(f"unknown entity {entity!r}")
        if not writes:
            return []
        with self.store.transaction():
            keys = {(entity, entity_id) for entity, entity_id, _ in writes}
            if records is not None and keys <= records.keys():
                current = {k: records[k] for k in keys}
            else:
                current = self.store.load_records(keys)
            seq = self.store.last_hub_seq()
            entries: list[LogEntry] = []
            for entity, entity_id, values in writes:
                key = (entity, entity_id)
                record = current.get(key)
                if record is None and scope is None:
                    raise LocalWriteError(f"{entity} {entity_id} does not exist at the hub")
                seq += 1
                state, written = hub_write(record, entity, entity_id, scope or "", values, seq)
                current[key] = state
                entries.append(
                    LogEntry(seq, entity, entity_id, state.scope, written, HUB_ORIGIN, None, self.clock.now())
                )
            self.store.save_records([current[k] for k in keys])
            self.store.append_log(entries)
        return entries

    def _hub_write_tx(self, entity: str, entity_id: str, values: Mapping[str, Any], scope: str | None) -> LogEntry:
        current = self.store.load_records([(entity, entity_id)]).get((entity, entity_id))
        if current is None and scope is None:
            raise LocalWriteError(f"{entity} {entity_id} does not exist at the hub")
        seq = self.store.last_hub_seq() + 1
        state, written = hub_write(current, entity, entity_id, scope or "", values, seq)
        entry = LogEntry(seq, entity, entity_id, state.scope, written, HUB_ORIGIN, None, self.clock.now())
        self.store.save_records([state])
        self.store.append_log([entry])
        return entry

    def resolve(
        self,
        conflict_id: str,
        choice: str,
        *,
        value: Any = None,
        note: str = "",
        actor: str = "",
    ) -> tuple[Conflict, LogEntry]:
        """Apply a staff decision as a new hub change; it reaches every node in scope by pull."""
        with self.store.transaction():
            conflict = self.store.get_conflict(conflict_id)
            if conflict is None:
                raise ConflictNotFoundError(f"no conflict {conflict_id}")
            if conflict.status != ConflictStatus.OPEN:
                raise ConflictAlreadyResolvedError(f"conflict {conflict_id} was already resolved")
            key = (conflict.entity, conflict.entity_id)
            current = self.store.load_records([key]).get(key)
            current_value = (
                current.fields[conflict.field].value if current and conflict.field in current.fields else None
            )
            if conflict.field == DELETED:
                current_value = bool(current_value)
            values = resolution_fields(
                conflict.field,
                choice,
                current_value=current_value,
                incoming_value=conflict.incoming_value,
                incoming_fields=conflict.incoming_fields,
                value=value,
            )
            if self.validator is not None and conflict.field != DELETED:
                errors = self.validator(conflict.entity, values, current.values() if current else None)
                if errors:
                    from .errors import ConflictError

                    raise ConflictError("the chosen value is not valid", errors=dict(errors))
            entry = self._hub_write_tx(conflict.entity, conflict.entity_id, values, conflict.scope)
            resolved = Conflict.from_json(
                {
                    **conflict.to_json(),
                    "status": ConflictStatus.RESOLVED.value,
                    "resolution": {
                        "choice": choice,
                        "value": values.get(conflict.field),
                        "note": note,
                        "actor": actor,
                        "hub_seq": entry.hub_seq,
                        "resolved_at": self.now_iso(),
                    },
                }
            )
            self.store.save_conflict(resolved)
        return resolved, entry
