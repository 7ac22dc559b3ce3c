"""The registry job's identity index: ``SqlIndex`` with the blocks, features and name counts held in the hub
process's memory, and the job's writes sent to the database in bulk once per chunk.

Matching a person against the store meant about ten statements (block sizes, candidates and their
features, two name counts, the old features, the record, its keys, each edge); at a million persons that
held the job to a few hundred persons a second. Here the database stays the source of truth and the
memory a copy of it, loaded in full on first use:

- **One writer.** Only the registry job writes records and keys, always through this class, inside its
  writer transaction; review decisions change edges only.
- **A version stamp.** Every transaction that changes records or keys writes a new random stamp into
  ``settings`` (``registry_index_version``) with its rows. At the start of each writer transaction the
  copy compares the stored stamp with its own; any difference (another hub process ran the job, a
  transaction of ours rolled back after the copy took its writes, the tables were changed by hand and the
  stamp with them) and the copy is dropped and loaded again. A rolled-back stamp never matches, because
  stamps are random, not counters.
- **Bulk writes.** ``replace``/``remove``/``add_edge`` change the copy at once (later persons of the same
  chunk must see earlier ones) and queue their rows; ``flush()`` writes them with one statement per table,
  and runs before anything reads those tables through SQL (``edges_of``, ``existing``, publication).

Reads outside a writer transaction (the review pages) are not served from here: they use ``SqlIndex``.
The copy costs memory and a load: about 2.5 GB and 29 s for a million persons (docs/registry.md); a
registry that outgrows one process should be matched by district shards or a search service.
"""

from __future__ import annotations

import bisect
import gc
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import delete, insert, select

from central_hub import schema as hub_tables
from central_hub.registry.features import Features
from central_hub.registry.hub_schema import registry_edges as edges_t
from central_hub.registry.hub_schema import registry_keys as keys_t
from central_hub.registry.hub_schema import registry_records as records_t
from central_hub.registry.matcher import Edge, blocking_keys
from central_hub.registry.sql_index import SqlIndex, _parse_features, edge_row, features_json
from central_hub.store import SqlHubStore

VERSION_KEY = "registry_index_version"
FREEZE_MIN = 50_000  # records in a loaded copy from which it is kept out of the cyclic collector's passes
_IN = 500


class _Copy:
    """The index as memory holds it (mirrors ``MemoryIndex``, with blocks kept in record-id order, the
    order ``SqlIndex.candidates`` gives)."""

    def __init__(self, version: str | None) -> None:
        self.version = version
        self.records: dict[str, Features] = {}
        self.blocks: dict[str, list[str]] = defaultdict(list)
        self.names: Counter[str] = Counter()
        self.names_by_district: dict[str, Counter[str]] = defaultdict(Counter)
        self.district_size: Counter[str] = Counter()

    def add(self, f: Features, keys: Iterable[str]) -> None:
        self.records[f.record_id] = f
        for k in keys:
            bisect.insort(self.blocks[k], f.record_id)
        self._count(f, +1)

    def drop(self, f: Features) -> None:
        del self.records[f.record_id]
        for k in set(blocking_keys(f)):
            ids = self.blocks.get(k)
            if ids is not None:
                i = bisect.bisect_left(ids, f.record_id)
                if i < len(ids) and ids[i] == f.record_id:
                    del ids[i]
                if not ids:
                    del self.blocks[k]
        self._count(f, -1)

    def _count(self, f: Features, delta: int) -> None:
        if f.name_key:
            self.names[f.name_key] += delta
            if f.district_id:
                self.names_by_district[f.district_id][f.name_key] += delta
        if f.district_id:
            self.district_size[f.district_id] += delta


class CachedSqlIndex(SqlIndex):
    """``SqlIndex`` for the registry job; see the module text. Use it inside writer transactions only."""

    def __init__(self, hub_store: SqlHubStore) -> None:
        super().__init__(hub_store)
        self._copy: _Copy | None = None
        self._checked: Any = None  # the writer connection whose transaction the copy was checked in
        self._stamped: Any = None  # the writer connection whose transaction wrote a new stamp
        self._new_records: list[tuple[str, str, str | None, str | None]] = []
        self._new_keys: list[tuple[str, str]] = []
        self._gone: list[str] = []
        self._new_edges: list[dict[str, Any]] = []
        self.loads = 0  # how often the copy was (re)loaded: the bench and tests read it
        self._frozen_at = 0  # the copy's size when it was last frozen out of the garbage collector

    # ---- the copy ----------------------------------------------------------------------------------------

    def _current(self) -> _Copy:
        conn = self.hub_store._writer()
        if self._checked is not conn:
            if self._new_records or self._new_keys or self._gone or self._new_edges:
                # rows queued in a transaction that ended without flush: that transaction failed
                self._discard()
            stored = self.hub_store.get_setting(VERSION_KEY)
            if self._copy is None or self._copy.version != stored:
                self._copy = self._load(stored)
            self._checked = conn
        assert self._copy is not None
        return self._copy

    def _load(self, version: str | None) -> _Copy:
        copy = _Copy(version)
        with self.hub_store._conn() as conn:
            for record_id, text in conn.execute(select(records_t.c.record_id, records_t.c.features)):
                f = _parse_features(text)  # not through the parse cache: a million entries would churn it
                copy.records[record_id] = f
                copy._count(f, +1)
            for key, record_id in conn.execute(
                select(keys_t.c.key, keys_t.c.record_id).order_by(keys_t.c.key, keys_t.c.record_id)
            ):
                copy.blocks[key].append(record_id)
        self.loads += 1
        self._frozen_at = 0
        self._copy = copy
        self.keep_out_of_gc()
        return copy

    def keep_out_of_gc(self) -> None:
        """Keep a large copy out of Python's cyclic garbage collector: once it holds ``FREEZE_MIN`` records,
        and again each time it has grown by a tenth since (the job calls this after each chunk).

        The copy is millions of small objects that live as long as the process and hold no reference
        cycles. Left to the collector, each of its full passes walked them all: 2.1 s at a million persons,
        paid by whichever chunk of the job set it off (bench_registry_scale.py counts the passes). Frozen,
        the collector skips them; reference counting still frees them when the copy is dropped. The
        collection just before freezing walks only what was not frozen yet, so a growing registry pays for
        its growth, not for its size; the tenth bounds what a pass between two freezes walks (by half it
        was two passes of 0.5 s right after a million-person build)."""
        copy = self._copy
        if copy is None:
            return
        n = len(copy.records)
        if n >= FREEZE_MIN and n >= self._frozen_at * 1.1:
            gc.collect()
            gc.freeze()
            self._frozen_at = n

    def _discard(self) -> None:
        self._copy = None
        self._new_records.clear()
        self._new_keys.clear()
        self._gone.clear()
        self._new_edges.clear()

    def invalidate(self) -> None:
        """Forget the copy (the next writer transaction loads it again)."""
        self._discard()
        self._checked = None

    def _stamp(self) -> None:
        conn = self.hub_store._writer()
        if self._stamped is conn:
            return
        version = uuid.uuid4().hex
        self.hub_store._upsert(hub_tables.settings, [{"key": VERSION_KEY, "value": version}], ["key"])
        self._current().version = version
        self._stamped = conn

    # ---- IdentityIndex reads, from the copy --------------------------------------------------------------

    def get(self, record_id: str) -> Features | None:
        return self._current().records.get(record_id)

    def get_many(self, record_ids: Iterable[str]) -> dict[str, Features]:
        records = self._current().records
        return {r: records[r] for r in record_ids if r in records}

    def candidates(self, keys: Iterable[str], limit_per_key: int) -> Iterator[Features]:
        copy = self._current()
        seen: set[str] = set()
        for k in dict.fromkeys(keys):
            ids = copy.blocks.get(k)
            if not ids or len(ids) > limit_per_key:
                continue
            for rid in ids:
                if rid not in seen:
                    seen.add(rid)
                    yield copy.records[rid]

    def name_frequency(self, name_key: str, district_id: str | None) -> tuple[float, float | None]:
        copy = self._current()
        n = len(copy.records)
        nat = copy.names.get(name_key, 0) / n if n else 0.0
        if district_id:
            size = copy.district_size.get(district_id, 0)
            if size:
                return nat, copy.names_by_district[district_id].get(name_key, 0) / size
        return nat, None

    def district_size(self, district_id: str | None) -> int:
        return self._current().district_size.get(district_id, 0) if district_id else 0

    def size(self) -> int:
        return len(self._current().records)

    # ---- writes: the copy now, the rows at flush ---------------------------------------------------------

    def add(self, f: Features) -> None:
        if f.record_id not in self._current().records:
            self._insert(f)

    def _insert(self, f: Features) -> None:
        self._stamp()
        keys = sorted(set(blocking_keys(f)))
        self._current().add(f, keys)
        # rows as tuples in the tables' column order, for SqlHubStore._bulk
        self._new_records.append((f.record_id, features_json(f), f.name_key, f.district_id))
        self._new_keys.extend((k, f.record_id) for k in keys)

    def remove(self, record_id: str) -> None:
        copy = self._current()
        old = copy.records.get(record_id)
        if old is None:
            return
        self._stamp()
        # Rows of this record still queued are dropped; rows already in the table are deleted at flush.
        queued = [r for r in self._new_records if r[0] != record_id]
        if len(queued) != len(self._new_records):
            self._new_records[:] = queued
            self._new_keys[:] = [k for k in self._new_keys if k[1] != record_id]
        else:
            self._gone.append(record_id)
        copy.drop(old)

    def add_edge(self, edge: Edge) -> None:
        edge.seq = self._next_edge_seq()
        self._new_edges.append(edge_row(edge))

    def flush(self) -> None:
        """Write the queued rows (one statement per table and 500 ids)."""
        if not (self._new_records or self._new_keys or self._gone or self._new_edges):
            return
        conn = self.hub_store._writer()
        for i in range(0, len(self._gone), _IN):
            chunk = self._gone[i : i + _IN]
            conn.execute(delete(keys_t).where(keys_t.c.record_id.in_(chunk)))
            conn.execute(delete(records_t).where(records_t.c.record_id.in_(chunk)))
        # Multi-row inserts straight on the driver (SqlHubStore._bulk): SQLAlchemy's per-row parameter
        # handling cost more than SQLite's work here. Keys go in key order, so consecutive rows land on
        # neighbouring pages of the (key, record_id) primary key.
        self.hub_store._bulk(records_t, self._new_records)
        self._new_keys.sort()
        self.hub_store._bulk(keys_t, self._new_keys)
        if self._new_edges:
            conn.execute(insert(edges_t), self._new_edges)
        self._gone.clear()
        self._new_records.clear()
        self._new_keys.clear()
        self._new_edges.clear()

    # ---- reads that go to SQL see the queued rows first --------------------------------------------------

    def edges_of(self, record_ids: Iterable[str], active_only: bool = True, evidence: bool = True) -> list[Edge]:
        self.flush()
        return super().edges_of(record_ids, active_only, evidence)

    def remove_edge(self, a: str, b: str, reason: str, actor: str | None = None) -> bool:
        self.flush()
        return super().remove_edge(a, b, reason, actor)

    def existing(self, record_ids: Iterable[str]) -> set[str]:
        records = self._current().records
        return {r for r in record_ids if r in records}
