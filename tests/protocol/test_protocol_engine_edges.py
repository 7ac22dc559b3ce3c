"""Edge cases of the hub and replica engines: refused batches change nothing, lost answers and resends
settle exactly once, pulls respect pending local changes, rejections revert, cursors are checked."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from protocol_support import World, change, props, signer_for, snapshot, unchanged_hub

from sync_protocol import wire
from sync_protocol.errors import (
    BatchReplayMismatchError,
    ConflictAlreadyResolvedError,
    ConflictNotFoundError,
    InvalidCursorError,
    LocalWriteError,
    RevokedNodeError,
    ScopeError,
    SequenceGapError,
    SignatureError,
    SyncProtocolError,
    SyncRefusedError,
    UnknownNodeError,
)
from sync_protocol.hlc import pack, unpack
from sync_protocol.hub import decode_cursor, encode_cursor
from sync_protocol.model import Batch, Outcome
from sync_protocol.store import NodeRecord


def envelope(*changes: Any, batch_id: str = "b1", node: int = 0) -> bytes:
    return wire.encode_batch(Batch(f"n{node + 1}", batch_id, tuple(changes)), signer_for(node))


# ---- refused batches -----------------------------------------------------------------------------------


def test_sequence_gap_is_refused_with_the_seq_to_resend_from() -> None:
    w = World(1)
    w.hub.push(envelope(change(seq=1), batch_id="b1"))
    with unchanged_hub(w.hub_store), pytest.raises(SequenceGapError) as caught:
        w.hub.push(envelope(change(seq=4, fields={"ward": 2}), change(seq=5), batch_id="b2"))
    assert caught.value.resend_from == 2
    assert caught.value.to_json() == {"code": "sequence_gap", "message": caught.value.message, "resend_from": 2}
    assert "Resend from 2" in caught.value.message


def test_node_recovers_from_a_gap_after_the_hub_lost_changes() -> None:
    # The hub is restored from a backup taken after seq 1: it has forgotten seqs 2 and 3.
    w = World(1)
    w.write("n1", "household", "h1", {"village": "A"})
    w.push("n1")
    backup = copy.deepcopy(w.hub_store)
    w.write("n1", "household", "h1", {"ward": 2})
    w.write("n1", "household", "h2", {"village": "B"})
    w.push("n1")
    w.hub_store = backup
    w.hub.store = backup
    w.write("n1", "household", "h2", {"ward": 7})
    nxt = w.nodes["n1"].next_envelope()
    assert nxt is not None
    with pytest.raises(SequenceGapError) as caught:
        w.hub.push(nxt[0].envelope)
    assert caught.value.resend_from == 2
    w.nodes["n1"].discard_pending_batch(caught.value.resend_from)
    (response,) = w.push_all("n1")
    assert [r.node_seq for r in response.results] == [2, 3, 4]
    assert backup.nodes["n1"].last_seq == 4
    assert w.hub_values() == {
        ("household", "h1"): {"village": "A", "ward": 2},
        ("household", "h2"): {"village": "B", "ward": 7},
    }


def test_replayed_batch_id_with_other_content_is_refused() -> None:
    w = World(1)
    w.hub.push(envelope(change(fields={"village": "A"}), batch_id="same"))
    with unchanged_hub(w.hub_store), pytest.raises(BatchReplayMismatchError, match="never reused"):
        w.hub.push(envelope(change(fields={"village": "B"}), batch_id="same"))


def test_batch_id_reused_by_another_node_is_refused() -> None:
    w = World(2)
    w.hub.push(envelope(change(), batch_id="same"))
    with unchanged_hub(w.hub_store), pytest.raises(BatchReplayMismatchError):
        w.hub.push(envelope(change("n2"), batch_id="same", node=1))


def test_unknown_node_is_refused_for_push_and_pull() -> None:
    w = World(1)
    with unchanged_hub(w.hub_store):
        with pytest.raises(UnknownNodeError, match="not enrolled"):
            w.hub.push(envelope(change("n9"), node=8))
        with pytest.raises(UnknownNodeError):
            w.hub.pull("n9", None)


def test_revoked_node_is_refused_for_push_and_pull() -> None:
    w = World(1)
    node = w.hub_store.nodes["n1"]
    w.hub_store.add_node(NodeRecord(node.node_id, node.public_key, node.scopes, revoked=True))
    with unchanged_hub(w.hub_store):
        with pytest.raises(RevokedNodeError, match="revoked"):
            w.hub.push(envelope(change()))
        with pytest.raises(RevokedNodeError):
            w.hub.pull("n1", None)


def test_batch_signed_with_another_nodes_key_is_refused() -> None:
    w = World(2)
    forged = wire.encode_batch(Batch("n1", "b1", (change(),)), signer_for(1))  # n2's key, n1's name
    with unchanged_hub(w.hub_store), pytest.raises(SignatureError):
        w.hub.push(forged)


def test_out_of_scope_union_refuses_the_whole_batch() -> None:
    w = World(1, scopes={"n1": frozenset({"1"})})
    mixed = envelope(change(seq=1, entity_id="h1", scope="1"), change(seq=2, entity_id="h9", scope="2"))
    with unchanged_hub(w.hub_store), pytest.raises(ScopeError) as caught:
        w.hub.push(mixed)
    assert isinstance(caught.value, SyncRefusedError)
    assert caught.value.details["unions"] == ["2"]
    assert w.hub_store.nodes["n1"].last_seq == 0
    assert w.hub_store.log == [] and w.hub_store.batches == {}


def test_pull_only_returns_the_nodes_unions() -> None:
    w = World(2, scopes={"n1": frozenset({"1"}), "n2": frozenset({"2"})})
    w.write("n1", "household", "h1", {"village": "A"})
    w.write("n2", "household", "h2", {"village": "B"}, scope="2")
    w.push("n1")
    w.push("n2")
    w.pull("n1")
    w.pull("n2")
    assert w.visible("n1") == {("household", "h1"): {"village": "A"}}
    assert w.visible("n2") == {("household", "h2"): {"village": "B"}}


# ---- lost answers and resends --------------------------------------------------------------------------


def test_lost_push_response_then_resend_of_the_same_bytes_settles_once() -> None:
    w = World(1)
    w.write("n1", "household", "h1", {"village": "A", "ward": 3})
    node = w.nodes["n1"]
    first = w.push("n1", lose_response=True)
    assert first is not None
    state = snapshot(w.hub_store)
    w.write("n1", "household", "h1", {"village": "B"})  # the operator keeps working meanwhile
    nxt = node.next_envelope()
    assert nxt is not None and nxt[1] is None  # the kept batch, not a new one
    resent = w.hub.push(nxt[0].envelope)
    assert resent == first
    assert snapshot(w.hub_store) == state  # the resend changed nothing
    summary = node.ack(resent)
    assert (summary.acked, summary.applied) == (1, 1)
    assert node.store.get_pending_batch() is None
    (second,) = w.push_all("n1")
    assert [r.node_seq for r in second.results] == [2]
    assert [(e.origin, e.origin_seq) for e in w.hub_store.log] == [("n1", 1), ("n1", 2)]
    assert w.hub_values() == {("household", "h1"): {"village": "B", "ward": 3}}


def test_an_ack_that_arrives_twice_is_harmless() -> None:
    w = World(1)
    w.write("n1", "household", "h1", {"village": "A"})
    response = w.push("n1")
    assert response is not None
    before = copy.deepcopy(w.replica("n1").records)
    summary = w.nodes["n1"].ack(response)
    assert summary.acked == 0
    assert w.replica("n1").records == before


# ---- pulls and pending local changes -------------------------------------------------------------------


def test_pull_never_overwrites_a_field_with_a_pending_local_change() -> None:
    w = World(2)
    w.write("n1", "household", "h1", {"village": "A", "ward": 1})
    w.push("n1")
    w.pull("n2")
    w.write("n2", "household", "h1", {"village": "B", "ward": 2})
    w.push("n2")
    w.write("n1", "household", "h1", {"village": "mine"})  # pending on n1
    w.pull("n1")
    seen = w.visible("n1")[("household", "h1")]
    assert seen["village"] == "mine"  # pending: the hub decides it
    assert seen["ward"] == 2  # not pending: the newest hub value shows
    local = w.nodes["n1"].store.get_local("household", "h1")
    assert local is not None
    meta = local.meta["village"]
    assert (meta.pending, meta.shadow_value) == (1, "B")
    # the hub decides: n1 based its edit on rev 1, n2 wrote rev 2 -> conflict, hub keeps B
    (resp,) = w.push_all("n1")
    assert resp.results[0].outcome == Outcome.CONFLICT
    assert w.visible("n1")[("household", "h1")]["village"] == "B"


def test_rejected_change_reverts_the_nodes_field_to_the_hub_value() -> None:
    def validator(entity: str, fields: Any, current: Any) -> dict[str, list[str]]:
        return {"ward": ["ward must be between 1 and 9"]} if fields.get("ward") == 12 else {}

    w = World(1, validator=validator)
    w.hub.hub_write("household", "h1", {"ward": 4}, scope="1")
    w.pull("n1")
    w.write("n1", "household", "h1", {"ward": 12, "village": "new"})
    w.write("n1", "household", "h2", {"ward": 12})  # a record the hub never had
    (resp,) = w.push_all("n1")
    assert [r.outcome for r in resp.results] == [Outcome.REJECTED, Outcome.REJECTED]
    assert resp.results[0].errors == {"ward": ["ward must be between 1 and 9"]}
    assert resp.results[0].reason == "invalid field value(s)"
    assert w.visible("n1") == {("household", "h1"): {"ward": 4}, ("household", "h2"): {}}
    assert w.hub_values() == {("household", "h1"): {"ward": 4}}
    # the next edit bases on the hub value again and is accepted
    c = w.write("n1", "household", "h1", {"ward": 5})
    assert c is not None and dict(c.base) == {"ward": 1}
    (resp2,) = w.push_all("n1")
    assert resp2.results[0].outcome == Outcome.APPLIED


def test_hub_owned_fields_cannot_be_written_on_a_node() -> None:
    w = World(1)
    with pytest.raises(LocalWriteError, match="nid_status"):
        w.write("n1", "person", "p1", {"full_name_bn": "রহিমা খাতুন", "nid_status": "verified"})
    assert w.replica("n1").outbox_changes == []


def test_hub_owned_values_reach_the_node_by_pull() -> None:
    w = World(1)
    w.write("n1", "person", "p1", {"full_name_bn": "রহিমা খাতুন"})
    w.push("n1")
    w.hub.hub_write("person", "p1", {"nid_status": "verified", "registry_id": "R-1"})
    w.pull("n1")
    assert w.visible("n1")[("person", "p1")] == {
        "full_name_bn": "রহিমা খাতুন",
        "nid_status": "verified",
        "registry_id": "R-1",
    }


def test_conflict_cannot_be_resolved_twice_or_when_unknown() -> None:
    w = World(2)
    w.write("n1", "household", "h1", {"village": "A"})
    w.write("n2", "household", "h1", {"village": "B"})
    w.push("n1")
    resp = w.push("n2")
    assert resp is not None
    (cid,) = resp.results[0].conflict_ids
    w.hub.resolve(cid, "incoming")
    with unchanged_hub(w.hub_store):
        with pytest.raises(ConflictAlreadyResolvedError):
            w.hub.resolve(cid, "hub")
        with pytest.raises(ConflictNotFoundError):
            w.hub.resolve("no-such-conflict", "hub")


def test_update_vs_delete_through_the_engines() -> None:
    w = World(2)
    w.write("n1", "household", "h1", {"village": "A"})
    w.push("n1")
    w.pull("n2")
    w.write("n1", "household", "h1", {}, op="delete")
    w.write("n2", "household", "h1", {"village": "B"})
    w.push("n1")
    resp = w.push("n2")
    assert resp is not None
    (result,) = resp.results
    assert result.outcome == Outcome.CONFLICT
    conflict = w.hub_store.conflicts[result.conflict_ids[0]]
    assert (conflict.field, conflict.hub_value, conflict.incoming_value) == ("_deleted", True, False)
    assert conflict.incoming_fields == {"village": "B"}
    # staff side with the update: the record comes back with its new value, everywhere
    w.hub.resolve(conflict.id, "incoming")
    for nid in ("n1", "n2"):
        w.pull(nid)
        assert w.visible(nid) == w.hub_values() == {("household", "h1"): {"village": "B", "_deleted": False}}


# ---- cursors -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cursor", ["garbage!", "Yzk6MQ", encode_cursor(3)[:-1] + "*", "LTE", "YzE6LTE", "YzE6eA"])
def test_invalid_cursor_is_refused(cursor: str) -> None:
    w = World(1)
    with pytest.raises(InvalidCursorError, match="pull again without a cursor"):
        w.hub.pull("n1", cursor)


@props(200)
@given(st.text(max_size=24))
def test_any_text_as_cursor_is_either_a_position_or_invalid(cursor: str) -> None:
    try:
        value = decode_cursor(cursor)
    except InvalidCursorError:
        return
    assert isinstance(value, int) and value >= 0


@props(100)
@given(st.integers(min_value=0, max_value=2**62))
def test_cursor_round_trip(seq: int) -> None:
    assert decode_cursor(encode_cursor(seq)) == seq


def test_paged_pull_reads_every_entry_once_in_order() -> None:
    w = World(2, pull_limit=2)
    for i in range(7):
        w.write("n1", "household", f"h{i}", {"village": f"v{i}"})
    w.push("n1")
    pages = []
    cursor = None
    while True:
        page = w.hub.pull("n2", cursor, 2)
        pages.append([e.hub_seq for e in page.entries])
        cursor = page.cursor
        if not page.more:
            break
    assert pages == [[1, 2], [3, 4], [5, 6], [7]]
    assert w.hub.pull("n2", cursor, 2).entries == ()


def test_delete_of_a_record_another_node_deleted_first_stays_deleted_on_the_node() -> None:
    # Regression (found by the engine property): the "merged" answer used to bring the record back on
    # the node, editable, until its next pull.
    w = World(2)
    w.write("n1", "household", "h1", {"village": "A"})
    w.push("n1")
    w.pull("n2")
    w.write("n2", "household", "h1", {}, op="delete")
    w.push("n2")
    w.write("n1", "household", "h1", {}, op="delete")
    (resp,) = w.push_all("n1")
    assert resp.results[0].outcome == Outcome.MERGED
    assert w.visible("n1")[("household", "h1")]["_deleted"] is True
    with pytest.raises(LocalWriteError, match="deleted"):
        w.write("n1", "household", "h1", {"village": "B"})
    w.pull("n1")
    assert w.visible("n1") == w.hub_values()


@props(60)
@given(st.data())
def test_hub_refuses_a_tampered_batch_and_changes_nothing(data: st.DataObject) -> None:
    w = World(1)
    good = envelope(change(fields={"village": "সুবিল", "ward": 3}))
    tampered = bytearray(good)
    pos = data.draw(st.integers(min_value=0, max_value=len(good) - 1), label="position")
    tampered[pos] ^= data.draw(st.integers(min_value=1, max_value=255), label="xor mask")
    with unchanged_hub(w.hub_store), pytest.raises(SyncProtocolError):
        w.hub.push(bytes(tampered))
    assert w.hub.push(good).results[0].outcome == Outcome.APPLIED  # the genuine batch still goes through


def test_a_node_clock_far_in_the_future_does_not_drag_the_hub_clock() -> None:
    w = World(1)
    future = pack(w.wall.ms + 100 * 24 * 3600 * 1000, 0)
    response = w.hub.push(envelope(change(hlc=future)))
    assert response.results[0].outcome == Outcome.APPLIED  # the edit itself is kept
    assert unpack(w.hub.clock.last)[0] <= w.wall.ms
    entry = w.hub.hub_write("household", "h1", {"ward": 1})
    assert unpack(entry.hlc)[0] <= w.wall.ms


def test_equal_value_merge_keeps_showing_the_value_the_operator_entered() -> None:
    # The hub answers the revision of fields it already held with the same value ("unchanged").
    w = World(2)
    w.write("n1", "household", "h1", {"village": "A"})
    w.push("n1")
    w.pull("n2")
    w.write("n1", "household", "h1", {"village": "B"})
    w.push("n1")
    w.write("n2", "household", "h1", {"village": "B"})  # the same correction, made independently
    (resp,) = w.push_all("n2")
    assert resp.results[0].outcome == Outcome.MERGED
    assert resp.results[0].unchanged and resp.results[0].unchanged["village"] > 0
    assert w.visible("n2")[("household", "h1")]["village"] == "B"


def test_overlapping_batch_under_a_new_id_applies_only_the_new_changes() -> None:
    # The node gave up on a batch whose answer was lost and rebuilt one from the same first seq.
    w = World(1)
    w.write("n1", "household", "h1", {"village": "A"})
    w.write("n1", "household", "h1", {"ward": 2})
    first = w.push("n1", lose_response=True)
    assert first is not None
    w.nodes["n1"].discard_pending_batch()
    w.write("n1", "household", "h2", {"village": "B"})
    (second,) = w.push_all("n1")
    assert second.batch_id != first.batch_id
    assert second.results[:2] == first.results  # the stored results, not a second application
    assert second.results[2].node_seq == 3 and second.results[2].outcome == Outcome.APPLIED
    assert [(e.origin, e.origin_seq) for e in w.hub_store.log] == [("n1", 1), ("n1", 2), ("n1", 3)]
    assert w.replica("n1").acked_through() == 3
    w.pull("n1")
    assert w.visible("n1") == w.hub_values()


def test_hub_write_refuses_unknown_entities_and_records_it_cannot_place() -> None:
    w = World(1)
    with unchanged_hub(w.hub_store):
        with pytest.raises(LocalWriteError, match="unknown entity"):
            w.hub.hub_write("citizen", "c1", {"x": 1}, scope="1")
        with pytest.raises(LocalWriteError, match="does not exist"):
            w.hub.hub_write("person", "p404", {"nid_status": "verified"})  # no scope: which union?
    entry = w.hub.hub_write("person", "p1", {"nid_status": "verified"}, scope="1")
    assert (entry.hub_seq, entry.origin, entry.origin_seq, entry.scope) == (1, "hub", None, "1")


def test_hub_write_many_equals_one_hub_write_after_another_and_is_all_or_nothing() -> None:
    one, many = World(1), World(1)
    writes = [
        ("person", "p1", {"nid_status": "verified"}),
        ("person", "p2", {"registry_id": "p1"}),
        ("person", "p1", {"registry_id": "p1"}),  # the same record twice: the second sees the first
    ]
    expected = [one.hub.hub_write(e, i, v, scope="1") for e, i, v in writes]
    entries = many.hub.hub_write_many(writes, scope="1")
    strip = [(x.hub_seq, x.entity, x.entity_id, x.scope, dict(x.fields), x.origin) for x in entries]
    assert strip == [(x.hub_seq, x.entity, x.entity_id, x.scope, dict(x.fields), x.origin) for x in expected]
    assert snapshot(many.hub_store)["records"] == snapshot(one.hub_store)["records"]
    with unchanged_hub(many.hub_store), pytest.raises(LocalWriteError, match="does not exist"):
        many.hub.hub_write_many([("person", "p1", {"nid_status": "failed"}), ("person", "p404", {"x": 1})])
    assert many.hub.hub_write_many([]) == []


def test_importing_a_bundle_twice_changes_nothing_the_second_time() -> None:
    w = World(1)
    envs = [envelope(change(seq=i, entity_id=f"h{i}"), batch_id=f"b{i}") for i in (1, 2, 3)]
    bundle = wire.encode_bundle(envs)
    first = [w.hub.push(e) for e in wire.decode_bundle(bundle)]
    state = snapshot(w.hub_store)
    again = [w.hub.push(e) for e in wire.decode_bundle(bundle)]
    assert again == first
    assert snapshot(w.hub_store) == state
    assert [r.results[0].outcome for r in first] == [Outcome.APPLIED] * 3


def test_bundle_batches_imported_out_of_order_are_refused_until_the_gap_is_filled() -> None:
    w = World(1)
    b1, b2 = (envelope(change(seq=i, entity_id=f"h{i}"), batch_id=f"b{i}") for i in (1, 2))
    with unchanged_hub(w.hub_store), pytest.raises(SequenceGapError):
        w.hub.push(b2)
    w.hub.push(b1)
    assert w.hub.push(b2).results[0].outcome == Outcome.APPLIED
