"""A node's side of the protocol over a ``ReplicaStore``: local writes with their outbox change in one
transaction, batches to push, acknowledgements, and applying pulled pages.

Per field the node keeps the value the operator sees, the hub revision it derives from (``base_rev``,
the base of the next edit), the hub's value as last pulled (``shadow``) and how many unacknowledged
local changes touch it (``pending``). A pull never overwrites a field with a pending local change: the
hub decides it. Once nothing is pending the field shows the newest hub value the node knows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import wire
from .entities import DELETED, ENTITIES
from .errors import LocalWriteError
from .hlc import HybridLogicalClock
from .ids import uuid7
from .merge import same_value
from .model import Batch, Change, ChangeResult, Op, Outcome, PullPage, PushResponse
from .signing import Signer
from .store import FieldMeta, LocalRecord, PendingBatch, ReplicaStore


@dataclass
class AckSummary:
    acked: int = 0
    applied: int = 0
    merged: int = 0
    conflicts: int = 0
    rejected: int = 0
    rejected_changes: list[ChangeResult] = field(default_factory=list)


class ReplicaEngine:
    def __init__(
        self,
        store: ReplicaStore,
        node_id: str,
        *,
        signer: Signer | None = None,
        clock: HybridLogicalClock | None = None,
        new_id: Callable[[], str] = uuid7,
    ) -> None:
        self.store = store
        self.node_id = node_id
        self.signer = signer
        self.clock = clock or HybridLogicalClock()
        self.new_id = new_id
        self._clock_loaded = False
        self._resend_after: int | None = None

    def _load_clock(self) -> None:
        # A restarted process must not issue or store timestamps below those it stored before, even
        # when the wall clock was set back: resume from the persisted clock before using it.
        if not self._clock_loaded:
            self.clock.last = max(self.clock.last, self.store.get_hlc())
            self._clock_loaded = True

    def _tick(self) -> int:
        self._load_clock()
        ts = self.clock.now()
        self.store.set_hlc(ts)
        return ts

    # ---- local writes -------------------------------------------------------------------------------

    def write(
        self,
        entity: str,
        entity_id: str,
        scope: str,
        values: Mapping[str, Any],
        *,
        op: str = Op.UPSERT,
        actor: str = "",
    ) -> Change | None:
        """Record a local edit and its outbox change. Must run inside ``store.transaction()`` together
        with the caller's business-row write, so both commit or neither does. Returns None when the
        edit changes nothing."""
        spec = ENTITIES.get(entity)
        if spec is None:
            raise LocalWriteError(f"unknown entity {entity!r}")
        bad = sorted(set(values) - spec.fields)
        if bad:
            raise LocalWriteError(f"{entity} fields not writable on a node: {', '.join(bad)}")
        rec = self.store.get_local(entity, entity_id)
        if rec is None:
            rec = LocalRecord(entity, entity_id, scope)
        elif rec.scope != scope:
            raise LocalWriteError(f"{entity} {entity_id} belongs to union {rec.scope}, not {scope}")
        if rec.deleted:
            raise LocalWriteError(f"{entity} {entity_id} is deleted")
        if op == Op.DELETE:
            if spec.append_only:
                raise LocalWriteError(f"{entity} records cannot be deleted")
            changed: dict[str, Any] = {DELETED: True}
            base = {name: m.base_rev for name, m in rec.meta.items() if m.base_rev}
        else:
            if spec.append_only and rec.values:
                raise LocalWriteError(f"{entity} records are immutable")
            changed = {k: v for k, v in values.items() if k not in rec.values or not same_value(rec.values[k], v)}
            if not changed:
                return None
            base = {k: rec.meta[k].base_rev for k in changed if k in rec.meta and rec.meta[k].base_rev}
        seq = self.store.last_seq() + 1
        change = Change(self.node_id, seq, self._tick(), entity, entity_id, scope, op, changed, base, actor)
        for name, value in changed.items():
            rec.values[name] = value
            meta = rec.meta.setdefault(name, FieldMeta())
            meta.pending += 1
        self.store.put_local(rec)
        self.store.append_outbox(change)
        return change

    # ---- push ---------------------------------------------------------------------------------------

    def next_envelope(self, max_changes: int = 500) -> tuple[PendingBatch, Batch | None] | None:
        """The batch to send next. A batch once built is kept and re-sent byte for byte until it is
        acknowledged, so a lost answer costs one identical replay, never a second application."""
        if self.signer is None:
            raise LocalWriteError("this node has no signing key yet; enrol it at the hub first")
        with self.store.transaction():
            pending = self.store.get_pending_batch()
            if pending is not None:
                return pending, None
            after = self.store.acked_through()
            if self._resend_after is not None:
                after, self._resend_after = min(after, self._resend_after), None
            changes = self.store.outbox(after, max_changes)
            if not changes:
                return None
            batch = Batch(self.node_id, self.new_id(), tuple(changes))
            envelope = wire.encode_batch(batch, self.signer)
            pending = PendingBatch(batch.batch_id, batch.first_seq, batch.last_seq, envelope)
            self.store.set_pending_batch(pending)
        return pending, batch

    def discard_pending_batch(self, resend_from: int | None = None) -> None:
        """Forget the built batch after the hub refused it, so it is rebuilt; on a sequence gap the hub
        names the first seq it lacks (``resend_from``) and the next batch starts there."""
        with self.store.transaction():
            self.store.set_pending_batch(None)
        if resend_from is not None:
            self._resend_after = resend_from - 1

    def ack(self, response: PushResponse) -> AckSummary:
        summary = AckSummary()
        with self.store.transaction():
            done = self.store.acked_through()
            fresh = [r for r in response.results if r.node_seq > done]
            if not fresh:
                self._clear_pending_if(response.batch_id)
                return summary
            changes = {c.node_seq: c for c in self.store.outbox(done, fresh[-1].node_seq - done)}
            for result in fresh:
                change = changes.get(result.node_seq)
                if change is None:
                    continue
                self._settle(change, result)
                summary.acked += 1
                if result.outcome == Outcome.APPLIED:
                    summary.applied += 1
                elif result.outcome == Outcome.MERGED:
                    summary.merged += 1
                elif result.outcome == Outcome.CONFLICT:
                    summary.conflicts += 1
                else:
                    summary.rejected += 1
                    summary.rejected_changes.append(result)
            self.store.save_acks(fresh)
            self._clear_pending_if(response.batch_id)
        return summary

    def _clear_pending_if(self, batch_id: str) -> None:
        pending = self.store.get_pending_batch()
        if pending is not None and pending.batch_id == batch_id:
            self.store.set_pending_batch(None)

    def _settle(self, change: Change, result: ChangeResult) -> None:
        rec = self.store.get_local(change.entity, change.entity_id)
        if rec is None:
            return
        written = set(change.fields) if result.written is None else set(result.written)
        if result.outcome == Outcome.REJECTED:
            written = set()
        for name in change.fields:
            meta = rec.meta.setdefault(name, FieldMeta())
            meta.pending = max(0, meta.pending - 1)
            if meta.pending:
                continue
            if name in written and result.hub_seq is not None and result.hub_seq > meta.shadow_rev:
                # Our value is the hub's newest for this field; the pull will confirm it.
                meta.base_rev = result.hub_seq
                meta.shadow_value, meta.shadow_rev = rec.values.get(name), result.hub_seq
            elif result.unchanged and result.unchanged.get(name, 0) > meta.shadow_rev:
                # The hub already held exactly our value: show it, based on the hub's revision.
                rev = int(result.unchanged[name])
                meta.base_rev = rev
                meta.shadow_value, meta.shadow_rev = rec.values.get(name), rev
            elif change.op == Op.DELETE and result.outcome == Outcome.MERGED and not meta.shadow_rev:
                # The hub had deleted the record already and this node never pulled that delete: keep it
                # deleted here instead of bringing it back (editable) until the next pull.
                rec.values[DELETED] = True
            else:
                self._show_hub_value(rec, name, meta)
        self.store.put_local(rec)

    @staticmethod
    def _show_hub_value(rec: LocalRecord, name: str, meta: FieldMeta) -> None:
        if meta.shadow_rev:
            rec.values[name] = meta.shadow_value
        else:
            rec.values.pop(name, None)  # the hub never had this field: drop our refused value
        meta.base_rev = meta.shadow_rev

    # ---- pull ---------------------------------------------------------------------------------------

    def apply_pull(self, page: PullPage) -> int:
        """Apply one page and store its cursor in the same transaction. Returns entries applied."""
        with self.store.transaction():
            self._load_clock()
            for entry in page.entries:
                self.clock.receive(entry.hlc, strict=False)
                rec = self.store.get_local(entry.entity, entry.entity_id)
                if rec is None:
                    rec = LocalRecord(entry.entity, entry.entity_id, entry.scope)
                for name, value in entry.fields.items():
                    meta = rec.meta.setdefault(name, FieldMeta())
                    if entry.hub_seq <= meta.shadow_rev:
                        continue  # already known (e.g. our own write settled from its ack)
                    meta.shadow_value, meta.shadow_rev = value, entry.hub_seq
                    if meta.pending == 0:
                        rec.values[name] = value
                        meta.base_rev = entry.hub_seq
                self.store.put_local(rec)
            self.store.set_cursor(page.cursor)
            self.store.set_hlc(self.clock.last)
        return len(page.entries)
