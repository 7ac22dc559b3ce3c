"""Shared builders for the sync_protocol tests: deterministic keys, ids and clocks, hand-built envelopes,
and a small world of one hub and several nodes over the in-memory stores.

Nothing here reuses ``merge.py``; the oracle lives in ``test_protocol_engine_properties.py``.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings

from sync_protocol.hlc import HybridLogicalClock
from sync_protocol.hub import HubEngine
from sync_protocol.memory import MemoryHubStore, MemoryReplicaStore
from sync_protocol.model import Batch, Change, Op, PullPage, PushResponse
from sync_protocol.replica import ReplicaEngine
from sync_protocol.signing import Signer
from sync_protocol.store import NodeRecord

# One knob for the whole directory: NSP_PROTOCOL_EXAMPLES=5 runs every property five times harder.
_SCALE = max(1, int(os.environ.get("NSP_PROTOCOL_EXAMPLES", "1")))


def props(max_examples: int, *, heavy: bool = False) -> settings:
    """Settings for one property. Heavy (engine) properties get no deadline: their run time depends on
    the machine's load, and a timing assertion would make them flaky without proving anything."""
    return settings(
        max_examples=max_examples * _SCALE,
        deadline=None if heavy else 2000,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large] if heavy else [],
        derandomize=False,
    )


def signer_for(i: int) -> Signer:
    """A fixed Ed25519 key per index, so encodings are reproducible."""
    return Signer(bytes([i + 1]) * 32)


class Counter:
    """Seeded id source: ``prefix-0001``, ``prefix-0002``, ..."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        return f"{self.prefix}-{self.n:04d}"


class FakeWall:
    """An injected wall clock in milliseconds that the test moves by hand (also backwards)."""

    def __init__(self, start_ms: int = 1_750_000_000_000) -> None:
        self.ms = start_ms

    def __call__(self) -> int:
        return self.ms

    def advance(self, delta_ms: int = 1) -> None:
        self.ms += delta_ms


def change(
    node_id: str = "n1",
    seq: int = 1,
    *,
    entity: str = "household",
    entity_id: str = "h1",
    scope: str = "1",
    fields: Mapping[str, Any] | None = None,
    base: Mapping[str, int] | None = None,
    op: str = Op.UPSERT,
    hlc: int = 1,
    actor: str = "",
) -> Change:
    return Change(
        node_id=node_id,
        node_seq=seq,
        hlc=hlc,
        entity=entity,
        entity_id=entity_id,
        scope=scope,
        op=op,
        fields=dict(fields if fields is not None else {"village": "Subil"}),
        base=dict(base or {}),
        actor=actor,
    )


def build_envelope(
    payload: bytes,
    signer: Signer,
    *,
    node_id: str = "n1",
    protocol: int = 1,
    schema: int = 1,
    codec: int = 1,
    compress: bool = True,
) -> bytes:
    """An envelope assembled from the format documented in ``wire.py`` (not from ``encode_batch``), so a
    test can sign bytes that ``encode_batch`` would never produce."""
    body = zlib.compress(payload, 6) if compress else payload
    node = node_id.encode("utf-8")
    signed = struct.pack(">4sHHBB", b"NSPB", protocol, schema, codec, len(node)) + node + struct.pack(">I", len(body))
    signed += body
    return signed + signer.sign(signed)


def payload_of(batch: Batch) -> dict[str, Any]:
    """The JSON payload of a batch as the wire format documents it."""
    return {
        "b": batch.batch_id,
        "n": batch.node_id,
        "s": batch.first_seq,
        "c": [
            [c.hlc, c.entity, c.entity_id, c.scope, c.op, dict(c.fields), dict(c.base), c.actor] for c in batch.changes
        ],
    }


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def typed(value: Any) -> Any:
    """A structure that compares JSON values type-strictly (``True != 1``, ``1 != 1.0``)."""
    if isinstance(value, Mapping):
        return ("dict", tuple(sorted((k, typed(v)) for k, v in value.items())))
    if isinstance(value, list | tuple):
        return ("list", tuple(typed(v) for v in value))
    return (type(value).__name__, value)


# ---- a world: one hub, several nodes -----------------------------------------------------------------

T = TypeVar("T", PushResponse, PullPage)


def over_http(message: T) -> T:
    """The message as a node receives it: through JSON text, as the HTTP layer sends it."""
    again = type(message).from_json(json.loads(json.dumps(message.to_json(), ensure_ascii=False)))
    assert again == message
    return again


class World:
    """One hub and ``n_nodes`` nodes (``n1``..), all in union ``"1"`` unless told otherwise, with seeded
    ids, fixed keys and injected clocks, so two worlds fed the same operations behave identically."""

    def __init__(
        self,
        n_nodes: int = 2,
        *,
        scopes: Mapping[str, frozenset[str]] | None = None,
        validator: Any = None,
        pull_limit: int = 500,
    ) -> None:
        self.wall = FakeWall()
        self.hub_store = MemoryHubStore()
        self.hub = HubEngine(
            self.hub_store,
            validator=validator,
            clock=HybridLogicalClock(self.wall),
            new_id=Counter("conflict"),
            now_iso=lambda: "2026-01-01T00:00:00Z",
        )
        self.pull_limit = pull_limit
        self.nodes: dict[str, ReplicaEngine] = {}
        for i in range(n_nodes):
            node_id = f"n{i + 1}"
            signer = signer_for(i)
            node_scopes = (scopes or {}).get(node_id, frozenset({"1"}))
            self.hub_store.add_node(NodeRecord(node_id, signer.public_bytes, node_scopes))
            self.nodes[node_id] = ReplicaEngine(
                MemoryReplicaStore(),
                node_id,
                signer=signer,
                clock=HybridLogicalClock(self.wall),
                new_id=Counter(f"{node_id}-batch"),
            )

    def write(self, node_id: str, entity: str, entity_id: str, values: Mapping[str, Any], **kw: Any) -> Change | None:
        node = self.nodes[node_id]
        self.wall.advance()
        with node.store.transaction():
            return node.write(entity, entity_id, kw.pop("scope", "1"), values, **kw)

    def push(self, node_id: str, *, lose_response: bool = False) -> PushResponse | None:
        """Send the node's next batch; with ``lose_response`` the hub applies it but the answer never
        arrives, so the node keeps the batch and resends the same bytes next time."""
        node = self.nodes[node_id]
        self.wall.advance()
        nxt = node.next_envelope()
        if nxt is None:
            return None
        pending, _ = nxt
        response = self.hub.push(pending.envelope)
        if not lose_response:
            node.ack(over_http(response))
        return response

    def push_all(self, node_id: str) -> list[PushResponse]:
        out = []
        while (resp := self.push(node_id)) is not None:
            out.append(resp)
        return out

    def pull(self, node_id: str) -> int:
        node = self.nodes[node_id]
        n = 0
        while True:
            self.wall.advance()
            page = over_http(self.hub.pull(node_id, node.store.get_cursor(), self.pull_limit))
            n += node.apply_pull(page)
            if not page.more:
                return n

    def replica(self, node_id: str) -> MemoryReplicaStore:
        store = self.nodes[node_id].store
        assert isinstance(store, MemoryReplicaStore)
        return store

    def visible(self, node_id: str) -> dict[tuple[str, str], dict[str, Any]]:
        return self.replica(node_id).visible()

    def hub_values(self, scopes: frozenset[str] | None = None) -> dict[tuple[str, str], dict[str, Any]]:
        return {k: r.values() for k, r in self.hub_store.records.items() if scopes is None or r.scope in scopes}


@contextmanager
def unchanged_hub(store: MemoryHubStore) -> Iterator[Callable[[], dict[str, Any]]]:
    """Asserts on exit that the hub store holds exactly what it held on entry."""
    before = snapshot(store)
    yield lambda: before
    assert snapshot(store) == before


def snapshot(store: MemoryHubStore) -> dict[str, Any]:
    return {
        "nodes": dict(store.nodes),
        "batches": dict(store.batches),
        "results": dict(store.results),
        "records": {k: r.to_json() for k, r in store.records.items()},
        "log": [e.to_json() for e in store.log],
        "conflicts": {k: c.to_json() for k, c in store.conflicts.items()},
    }
