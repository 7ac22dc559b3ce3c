"""The storage interfaces the engines need. The in-memory stores (``memory.py``) implement them for the
simulation; the hub's SQLAlchemy store and the node's SQLCipher store implement the same methods, so the
seeded simulation can run against every backend.

Transactions: ``transaction()`` is a context manager; everything done inside commits together or not at
all. The hub engine calls every write method inside one; a hub store must also serialise writers there
(one writer at a time), because ``hub_seq`` positions are handed out from ``last_hub_seq()`` and a reader
must never see seq N+1 committed before N.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from .model import Change, ChangeResult, Conflict, LogEntry, RecordState


@dataclass(frozen=True)
class NodeRecord:
    node_id: str
    public_key: bytes
    scopes: frozenset[str]  # union ids this node may write and pulls
    last_seq: int = 0
    revoked: bool = False
    label: str = ""


@dataclass(frozen=True)
class StoredBatch:
    batch_id: str
    node_id: str
    digest: str
    response: dict[str, Any]


class HubStore(Protocol):
    def transaction(self) -> AbstractContextManager[None]: ...

    def get_node(self, node_id: str) -> NodeRecord | None: ...

    def set_node_last_seq(self, node_id: str, seq: int) -> None: ...

    def get_batch(self, batch_id: str) -> StoredBatch | None: ...

    def save_batch(self, batch: StoredBatch) -> None: ...

    def get_change_results(self, node_id: str, first: int, last: int) -> dict[int, ChangeResult]: ...

    def save_change_results(
        self,
        node_id: str,
        results: list[ChangeResult],
        digests: Mapping[int, str] | None = None,
        *,
        batch_id: str | None = None,
    ) -> None:
        """``digests``: node_seq -> ``wire.change_digest`` of the change accepted under that seq.
        ``batch_id``: the batch whose answer, saved by ``save_batch`` in the same transaction, holds these
        results; a store may keep a reference to it rather than a second copy."""
        ...

    def get_change_digests(self, node_id: str, first: int, last: int) -> dict[int, str]:
        """Stored digests for seqs first..last; a seq stored without one is simply absent."""
        ...

    def load_records(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], RecordState]: ...

    def save_records(self, records: list[RecordState]) -> None: ...

    def last_hub_seq(self) -> int: ...

    def append_log(self, entries: list[LogEntry]) -> None: ...

    def read_log(self, after: int, scopes: frozenset[str] | None, limit: int) -> list[LogEntry]: ...

    def log_entries(self, seqs: Iterable[int]) -> dict[int, LogEntry]: ...

    def add_conflicts(self, conflicts: list[Conflict]) -> None: ...

    def get_conflict(self, conflict_id: str) -> Conflict | None: ...

    def save_conflict(self, conflict: Conflict) -> None: ...

    def list_conflicts(self, status: str | None = None) -> list[Conflict]: ...


@dataclass
class FieldMeta:
    """A node's bookkeeping for one field of one local record."""

    base_rev: int = 0  # hub revision the local value derives from (the base of the next edit)
    shadow_value: Any = None  # the hub's value as last pulled
    shadow_rev: int = 0  # its revision (0: never pulled)
    pending: int = 0  # unacknowledged local changes touching this field


@dataclass
class LocalRecord:
    entity: str
    entity_id: str
    scope: str
    values: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, FieldMeta] = field(default_factory=dict)

    @property
    def deleted(self) -> bool:
        from .entities import DELETED

        return bool(self.values.get(DELETED))


@dataclass(frozen=True)
class PendingBatch:
    batch_id: str
    first_seq: int
    last_seq: int
    envelope: bytes


class ReplicaStore(Protocol):
    def transaction(self) -> AbstractContextManager[None]: ...

    def get_local(self, entity: str, entity_id: str) -> LocalRecord | None: ...

    def put_local(self, record: LocalRecord) -> None: ...

    def last_seq(self) -> int: ...

    def append_outbox(self, change: Change) -> None: ...

    def outbox(self, after_seq: int, limit: int) -> list[Change]: ...

    def acked_through(self) -> int: ...

    def save_acks(self, results: list[ChangeResult]) -> None: ...

    def get_pending_batch(self) -> PendingBatch | None: ...

    def set_pending_batch(self, batch: PendingBatch | None) -> None: ...

    def get_cursor(self) -> str | None: ...

    def set_cursor(self, cursor: str) -> None: ...

    def get_hlc(self) -> int: ...

    def set_hlc(self, value: int) -> None: ...
