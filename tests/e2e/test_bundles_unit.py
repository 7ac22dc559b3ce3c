"""File bundles over the protocol engines and in-memory stores: export, store-and-forward at an upazila
node, direct import at the hub, idempotence and tampering."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from field_node.bundles import (
    BundleError,
    SqlForwardQueue,
    apply_at_hub,
    export_envelopes,
    forward,
    import_for_forwarding,
    iter_envelopes,
)
from sync_protocol import wire
from sync_protocol.errors import SequenceGapError
from sync_protocol.hub import HubEngine
from sync_protocol.memory import MemoryHubStore, MemoryReplicaStore
from sync_protocol.replica import ReplicaEngine
from sync_protocol.signing import Signer
from sync_protocol.store import NodeRecord

UNION, OTHER_UNION = "1", "2"


def node(hub_store: MemoryHubStore, node_id: str, scopes: set[str]) -> ReplicaEngine:
    signer = Signer.generate()
    hub_store.add_node(NodeRecord(node_id, signer.public_bytes, frozenset(scopes)))
    return ReplicaEngine(MemoryReplicaStore(), node_id, signer=signer)


def write_people(engine: ReplicaEngine, n: int, scope: str = UNION, start: int = 0) -> list[str]:
    ids = []
    for i in range(start, start + n):
        pid = f"p-{engine.node_id}-{i}"
        with engine.store.transaction():
            engine.write("person", pid, scope, {"full_name_en": f"Person {i}", "full_name_bn": f"ব্যক্তি {i}"})
        ids.append(pid)
    return ids


def sync(engine: ReplicaEngine, hub: HubEngine) -> None:
    while (nxt := engine.next_envelope()) is not None:
        engine.ack(hub.push(nxt[0].envelope))
    page = hub.pull(engine.node_id, engine.store.get_cursor(), 5000)
    engine.apply_pull(page)


class ConnQueue(SqlForwardQueue):
    def __init__(self) -> None:
        conn = sqlite3.connect(":memory:", isolation_level=None)

        @contextmanager
        def tx() -> Iterator[None]:
            conn.execute("BEGIN")
            try:
                yield
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

        super().__init__(conn, tx)


@pytest.fixture
def world() -> tuple[MemoryHubStore, HubEngine, ReplicaEngine, ReplicaEngine]:
    store = MemoryHubStore()
    hub = HubEngine(store)
    union_node = node(store, "n-union", {UNION})
    upazila_node = node(store, "n-upazila", {UNION, OTHER_UNION})
    return store, hub, union_node, upazila_node


def test_export_covers_every_pending_change_and_acknowledges_nothing(world) -> None:
    _, _, union_node, _ = world
    write_people(union_node, 1200)
    envelopes = export_envelopes(union_node, batch_size=500)
    batches = [wire.decode_batch(e, union_node.signer.public_bytes) for e in envelopes]
    assert [(b.first_seq, b.last_seq) for b in batches] == [(1, 500), (501, 1000), (1001, 1200)]
    assert union_node.store.acked_through() == 0
    # The online sync re-sends the first batch byte for byte.
    pending, _ = union_node.next_envelope()
    assert pending.envelope == envelopes[0]
    assert export_envelopes(union_node, batch_size=500)[0] == envelopes[0]


def test_export_with_nothing_pending_is_empty(world) -> None:
    _, _, union_node, _ = world
    assert export_envelopes(union_node) == []


def test_store_and_forward_through_an_upazila_node(world) -> None:
    store, hub, union_node, upazila_node = world
    write_people(union_node, 700)
    data = wire.encode_bundle(export_envelopes(union_node, batch_size=500))
    queue = ConnQueue()
    report = import_for_forwarding(queue, data, own_node_id=upazila_node.node_id, scopes=frozenset({UNION, "2"}))
    assert (report.batches, report.new, report.changes, report.origins) == (2, 2, 700, ["n-union"])
    again = import_for_forwarding(queue, data, own_node_id=upazila_node.node_id, scopes=frozenset({UNION, "2"}))
    assert (again.new, again.already_known) == (0, 2)
    assert store.get_node("n-union").last_seq == 0  # stored, not yet forwarded

    assert forward(queue, hub.push) == 2
    assert forward(queue, hub.push) == 0  # nothing left; a forwarded batch is never sent twice
    assert store.get_node("n-union").last_seq == 700
    assert len(hub.pull_scopes(frozenset({UNION}), None, 5000).entries) == 700
    assert queue.counts() == {"forwarded": 2}

    # The upazila node sees the records by pulling; the origin learns its results on its next sync,
    # which replays its kept batch and gets the stored answer: nothing applied twice.
    sync(upazila_node, hub)
    assert sum(1 for k in upazila_node.store.visible() if k[0] == "person") == 700
    log_before = store.last_hub_seq()
    sync(union_node, hub)
    assert union_node.store.acked_through() == 700
    assert store.last_hub_seq() == log_before
    assert union_node.store.visible() == {k: v for k, v in upazila_node.store.visible().items()}


def test_forward_leaves_an_origin_with_a_gap_for_later(world) -> None:
    store, hub, union_node, _ = world
    write_people(union_node, 10)
    first = export_envelopes(union_node, batch_size=500)  # seq 1-10 (kept as the pending batch)
    write_people(union_node, 5, start=10)
    later = export_envelopes(union_node, batch_size=10)[1:]  # seq 11-15 only
    queue = ConnQueue()
    import_for_forwarding(queue, wire.encode_bundle(later), own_node_id="x", scopes=frozenset({UNION}))
    with pytest.raises(SequenceGapError):
        hub.push(later[0])
    assert forward(queue, hub.push) == 0
    assert queue.counts() == {"stored": 1}
    import_for_forwarding(queue, wire.encode_bundle(first), own_node_id="x", scopes=frozenset({UNION}))
    assert forward(queue, hub.push) == 2
    assert store.get_node("n-union").last_seq == 15


def test_node_import_refuses_tampering_out_of_scope_and_own_bundles(world) -> None:
    _, _, union_node, _upazila_node = world
    write_people(union_node, 50)
    envelope = export_envelopes(union_node)[0]
    header = wire.read_header(envelope)
    tampered = bytearray(envelope)
    tampered[header.payload_offset + header.payload_len // 2] ^= 0x40
    queue = ConnQueue()
    with pytest.raises(BundleError, match=r"bundle refused: batch 1 of 1 is not valid.*Nothing was imported"):
        import_for_forwarding(queue, wire.encode_bundle([bytes(tampered)]), own_node_id="x", scopes=frozenset({UNION}))
    with pytest.raises(BundleError, match="cut off"):
        import_for_forwarding(queue, wire.encode_bundle([envelope])[:-10], own_node_id="x", scopes=frozenset({UNION}))
    with pytest.raises(BundleError, match="outside this node's scope"):
        import_for_forwarding(queue, wire.encode_bundle([envelope]), own_node_id="x", scopes=frozenset({"2"}))
    with pytest.raises(BundleError, match="exported by this node itself"):
        import_for_forwarding(queue, wire.encode_bundle([envelope]), own_node_id="n-union", scopes=frozenset({UNION}))
    assert queue.counts() == {}
    assert len(list(iter_envelopes(wire.encode_bundle([envelope])))) == 1


def test_a_forged_batch_reaches_the_queue_but_the_hub_refuses_it(world) -> None:
    store, hub, union_node, _ = world
    write_people(union_node, 3)
    envelope = bytearray(export_envelopes(union_node)[0])
    envelope[-1] ^= 0x01  # only the signature changed: undetectable without the origin's key
    queue = ConnQueue()
    import_for_forwarding(queue, wire.encode_bundle([bytes(envelope)]), own_node_id="x", scopes=frozenset({UNION}))
    assert forward(queue, hub.push) == 0
    assert queue.counts() == {"refused": 1}
    answer = queue.conn.execute("SELECT answer FROM bundle_forward").fetchone()[0]
    assert "bad_signature" in answer
    assert store.get_node("n-union").last_seq == 0


def test_hub_import_is_idempotent_and_all_or_nothing(world) -> None:
    store, hub, union_node, upazila_node = world
    write_people(union_node, 600)
    write_people(upazila_node, 20, scope=OTHER_UNION)
    good = export_envelopes(union_node, batch_size=500) + export_envelopes(upazila_node)
    data = wire.encode_bundle(good)

    bad = list(good)
    forged = bytearray(bad[1])
    forged[-5] ^= 0xFF
    bad[1] = bytes(forged)
    with pytest.raises(BundleError, match=r"batch 2 of 3 is not valid \(bad_signature"):
        apply_at_hub(hub, wire.encode_bundle(bad))
    assert store.last_hub_seq() == 0  # batch 1 was fine, but nothing is applied from a refused bundle

    report = apply_at_hub(hub, data)
    assert (report.batches, report.changes, report.applied, report.replayed) == (3, 620, 620, 0)
    seq = store.last_hub_seq()
    again = apply_at_hub(hub, data)
    assert (again.applied, again.replayed) == (0, 620)
    assert store.last_hub_seq() == seq

    # The origin's online sync afterwards: same answers, nothing new at the hub.
    sync(union_node, hub)
    assert union_node.store.acked_through() == 600
    assert store.last_hub_seq() == seq


def test_hub_import_of_a_bundle_from_an_unknown_node(world) -> None:
    _, hub, _, _ = world
    stranger = ReplicaEngine(MemoryReplicaStore(), "n-stranger", signer=Signer.generate())
    write_people(stranger, 2)
    with pytest.raises(BundleError, match="not enrolled"):
        apply_at_hub(hub, wire.encode_bundle(export_envelopes(stranger)))
