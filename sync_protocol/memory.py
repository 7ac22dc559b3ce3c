"""In-memory ``HubStore`` and ``ReplicaStore``, for the simulation and the property tests.

Transactions keep an undo journal, so an exception inside ``transaction()`` (including a simulated
crash) leaves the store exactly as it was; ``crash_hook`` lets the simulation crash just before or just
after a commit.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from .model import Change, ChangeResult, Conflict, LogEntry, RecordState
from .store import FieldMeta, LocalRecord, NodeRecord, PendingBatch, StoredBatch

CrashHook = Callable[[str], None]  # called with "before_commit" / "after_commit"; may raise


class _Journaled:
    def __init__(self) -> None:
        self._undo: list[Callable[[], None]] | None = None
        self.crash_hook: CrashHook | None = None
        self.commits = 0

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self._undo is not None:  # nested: part of the outer transaction
            yield
            return
        self._undo = []
        try:
            yield
            if self.crash_hook:
                self.crash_hook("before_commit")
        except BaseException:
            for undo in reversed(self._undo):
                undo()
            self._undo = None
            raise
        self._undo = None
        self.commits += 1
        if self.crash_hook:
            self.crash_hook("after_commit")

    def _set(self, table: dict[Any, Any], key: Any, value: Any) -> None:
        if self._undo is None:
            raise RuntimeError("write outside a transaction")
        if key in table:
            old = table[key]
            self._undo.append(lambda: table.__setitem__(key, old))
        else:
            self._undo.append(lambda: table.pop(key, None))
        table[key] = value

    def _append(self, seq: list[Any], items: list[Any]) -> None:
        if self._undo is None:
            raise RuntimeError("write outside a transaction")
        n = len(seq)
        self._undo.append(lambda: seq.__delitem__(slice(n, None)))
        seq.extend(items)


_SCALARS = (str, int, float, bool, type(None))


def _copy_value(value: Any) -> Any:
    return value if isinstance(value, _SCALARS) else copy.deepcopy(value)


def _copy_local(rec: LocalRecord) -> LocalRecord:
    """As isolated as ``copy.deepcopy`` (callers mutate what they get), but without its generic
    machinery, which dominated the simulation's run time: only non-scalar values are deep-copied."""
    return LocalRecord(
        rec.entity,
        rec.entity_id,
        rec.scope,
        {k: _copy_value(v) for k, v in rec.values.items()},
        {k: FieldMeta(m.base_rev, _copy_value(m.shadow_value), m.shadow_rev, m.pending) for k, m in rec.meta.items()},
    )


class MemoryHubStore(_Journaled):
    def __init__(self) -> None:
        super().__init__()
        self.nodes: dict[str, NodeRecord] = {}
        self.batches: dict[str, StoredBatch] = {}
        self.results: dict[tuple[str, int], ChangeResult] = {}
        self.digests: dict[tuple[str, int], str] = {}
        self.records: dict[tuple[str, str], RecordState] = {}
        self.log: list[LogEntry] = []
        self.conflicts: dict[str, Conflict] = {}

    def add_node(self, node: NodeRecord) -> None:
        with self.transaction():
            self._set(self.nodes, node.node_id, node)

    def get_node(self, node_id: str) -> NodeRecord | None:
        return self.nodes.get(node_id)

    def set_node_last_seq(self, node_id: str, seq: int) -> None:
        self._set(self.nodes, node_id, replace(self.nodes[node_id], last_seq=seq))

    def get_batch(self, batch_id: str) -> StoredBatch | None:
        return self.batches.get(batch_id)

    def save_batch(self, batch: StoredBatch) -> None:
        self._set(self.batches, batch.batch_id, batch)

    def get_change_results(self, node_id: str, first: int, last: int) -> dict[int, ChangeResult]:
        return {s: self.results[(node_id, s)] for s in range(first, last + 1) if (node_id, s) in self.results}

    def save_change_results(
        self,
        node_id: str,
        results: list[ChangeResult],
        digests: Mapping[int, str] | None = None,
        *,
        batch_id: str | None = None,
    ) -> None:
        for r in results:
            self._set(self.results, (node_id, r.node_seq), r)
            if digests is not None and r.node_seq in digests:
                self._set(self.digests, (node_id, r.node_seq), digests[r.node_seq])

    def get_change_digests(self, node_id: str, first: int, last: int) -> dict[int, str]:
        return {s: self.digests[(node_id, s)] for s in range(first, last + 1) if (node_id, s) in self.digests}

    def load_records(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], RecordState]:
        return {k: self.records[k] for k in keys if k in self.records}

    def save_records(self, records: list[RecordState]) -> None:
        for r in records:
            self._set(self.records, (r.entity, r.entity_id), r)

    def last_hub_seq(self) -> int:
        return self.log[-1].hub_seq if self.log else 0

    def append_log(self, entries: list[LogEntry]) -> None:
        self._append(self.log, entries)

    def read_log(self, after: int, scopes: frozenset[str] | None, limit: int) -> list[LogEntry]:
        out: list[LogEntry] = []
        # hub_seq is gapless from 1 in this store, so position = hub_seq - 1
        for entry in self.log[after:]:
            if scopes is None or entry.scope in scopes:
                out.append(entry)
                if len(out) >= limit:
                    break
        return out

    def log_entries(self, seqs: Iterable[int]) -> dict[int, LogEntry]:
        return {s: self.log[s - 1] for s in seqs if 0 < s <= len(self.log)}

    def add_conflicts(self, conflicts: list[Conflict]) -> None:
        for c in conflicts:
            self._set(self.conflicts, c.id, c)

    def get_conflict(self, conflict_id: str) -> Conflict | None:
        return self.conflicts.get(conflict_id)

    def save_conflict(self, conflict: Conflict) -> None:
        self._set(self.conflicts, conflict.id, conflict)

    def list_conflicts(self, status: str | None = None) -> list[Conflict]:
        return [c for c in self.conflicts.values() if status is None or c.status == status]


class MemoryReplicaStore(_Journaled):
    def __init__(self) -> None:
        super().__init__()
        self.records: dict[tuple[str, str], LocalRecord] = {}
        self.outbox_changes: list[Change] = []
        self.acks: dict[int, ChangeResult] = {}
        self.state: dict[str, Any] = {"acked": 0, "cursor": None, "hlc": 0, "pending": None}

    def get_local(self, entity: str, entity_id: str) -> LocalRecord | None:
        rec = self.records.get((entity, entity_id))
        return _copy_local(rec) if rec is not None else None

    def put_local(self, record: LocalRecord) -> None:
        self._set(self.records, (record.entity, record.entity_id), _copy_local(record))

    def last_seq(self) -> int:
        return self.outbox_changes[-1].node_seq if self.outbox_changes else 0

    def append_outbox(self, change: Change) -> None:
        self._append(self.outbox_changes, [change])

    def outbox(self, after_seq: int, limit: int) -> list[Change]:
        return self.outbox_changes[after_seq : after_seq + limit]

    def acked_through(self) -> int:
        return int(self.state["acked"])

    def save_acks(self, results: list[ChangeResult]) -> None:
        for r in results:
            self._set(self.acks, r.node_seq, r)
        if results:
            self._set(self.state, "acked", max(self.acked_through(), results[-1].node_seq))

    def get_pending_batch(self) -> PendingBatch | None:
        pending: PendingBatch | None = self.state["pending"]
        return pending

    def set_pending_batch(self, batch: PendingBatch | None) -> None:
        self._set(self.state, "pending", batch)

    def get_cursor(self) -> str | None:
        cursor: str | None = self.state["cursor"]
        return cursor

    def set_cursor(self, cursor: str) -> None:
        self._set(self.state, "cursor", cursor)

    def get_hlc(self) -> int:
        return int(self.state["hlc"])

    def set_hlc(self, value: int) -> None:
        self._set(self.state, "hlc", value)

    def visible(self) -> dict[tuple[str, str], dict[str, Any]]:
        """Every local record's values, as the operator would see them."""
        return {k: dict(r.values) for k, r in self.records.items()}
