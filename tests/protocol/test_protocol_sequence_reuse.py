"""A node restored from an older backup numbers its new edits with seqs the hub already holds. The hub must
refuse such a batch (``sequence_reused``) instead of answering with the stored results of the old changes,
which would mark the new edits acknowledged and lose them; a genuine resend of the same changes after a
lost answer must still be accepted."""

from __future__ import annotations

import copy

import pytest
from protocol_support import World, change, signer_for, snapshot, unchanged_hub

from sync_protocol import wire
from sync_protocol.errors import SequenceReuseError, SyncRefusedError
from sync_protocol.memory import MemoryReplicaStore
from sync_protocol.model import Batch


def envelope(*changes: object, batch_id: str) -> bytes:
    return wire.encode_batch(Batch("n1", batch_id, tuple(changes)), signer_for(0))  # type: ignore[arg-type]


def test_node_restored_from_an_older_backup_is_refused_and_keeps_its_new_edits() -> None:
    w = World(1)
    w.write("n1", "household", "h1", {"village": "A"})
    w.push("n1")
    backup = copy.deepcopy(w.replica("n1"))  # the office's backup, taken after seq 1 was acknowledged
    w.write("n1", "household", "h1", {"ward": 2})
    w.write("n1", "household", "h2", {"village": "B"})
    w.push("n1")
    assert w.hub_store.nodes["n1"].last_seq == 3

    restored = backup
    assert isinstance(restored, MemoryReplicaStore)
    w.nodes["n1"].store = restored
    w.write("n1", "household", "h3", {"village": "C"})  # gets seq 2 again
    nxt = w.nodes["n1"].next_envelope()
    assert nxt is not None
    with unchanged_hub(w.hub_store), pytest.raises(SequenceReuseError) as caught:
        w.hub.push(nxt[0].envelope)
    err = caught.value
    assert isinstance(err, SyncRefusedError)
    assert err.code == "sequence_reused"
    assert err.seq == 2 and err.hub_last_seq == 3
    assert err.to_json() == {"code": "sequence_reused", "message": err.message, "seq": 2, "hub_last_seq": 3}
    assert "restored from an older backup" in err.message and "seq 2" in err.message
    # the node did not take the refusal as an acknowledgement: its new edit is still waiting
    assert restored.acked_through() == 1
    assert [c.entity_id for c in restored.outbox(1, 10)] == ["h3"]
    assert ("household", "h3") not in w.hub_store.records


def test_resend_after_a_lost_answer_is_still_accepted_with_the_stored_results() -> None:
    w = World(1)
    w.write("n1", "household", "h1", {"village": "A"})
    w.write("n1", "household", "h2", {"village": "B"})
    first = w.push("n1", lose_response=True)
    assert first is not None
    w.write("n1", "household", "h3", {"village": "C"})
    # the node re-batches from its first unacknowledged seq (a new batch id, same changes 1 and 2, plus 3)
    pending = w.nodes["n1"].store.get_pending_batch()
    assert pending is not None
    w.nodes["n1"].discard_pending_batch(1)
    (again,) = w.push_all("n1")
    assert again.batch_id != first.batch_id
    assert [r.node_seq for r in again.results] == [1, 2, 3]
    assert again.results[:2] == first.results
    assert w.hub_store.nodes["n1"].last_seq == 3


@pytest.mark.parametrize(
    ("resend", "changed"),
    [((2, 3, 4), 2), ((1, 2, 3, 4), 2), ((2, 3, 4), 3), ((1,), 1)],
    ids=["first-of-batch", "middle", "last-held", "whole-batch-held"],
)
def test_any_changed_held_seq_refuses_the_whole_batch(resend: tuple[int, ...], changed: int) -> None:
    w = World(1)
    held = {s: change(seq=s, entity_id=f"h{s}", fields={"village": f"V{s}"}) for s in (1, 2, 3)}
    w.hub.push(envelope(*held.values(), batch_id="b1"))
    batch = [held.get(s) or change(seq=s, entity_id=f"h{s}", fields={"village": f"V{s}"}) for s in resend]
    batch[resend.index(changed)] = change(seq=changed, entity_id="other", fields={"village": "X"})
    before = snapshot(w.hub_store)
    with pytest.raises(SequenceReuseError) as caught:
        w.hub.push(envelope(*batch, batch_id="b2"))
    assert caught.value.seq == changed
    assert snapshot(w.hub_store) == before
    assert w.hub_store.digests == {("n1", s): wire.change_digest(c) for s, c in held.items()}


def test_a_change_that_differs_only_in_its_base_or_actor_is_a_different_change() -> None:
    w = World(1)
    original = change(seq=1, fields={"village": "A"}, base={"village": 0}, actor="rahima")
    w.hub.push(envelope(original, batch_id="b1"))
    for other in (
        change(seq=1, fields={"village": "A"}, base={"village": 0}, actor="karim"),
        change(seq=1, fields={"village": "A"}, base={"village": 1}, actor="rahima"),
    ):
        with unchanged_hub(w.hub_store), pytest.raises(SequenceReuseError):
            w.hub.push(envelope(other, batch_id="b2"))


def test_results_stored_without_a_digest_are_not_compared() -> None:
    # Rows written before the hub kept digests (an upgraded database) cannot be checked; they answer as before.
    w = World(1)
    w.hub.push(envelope(change(seq=1, fields={"village": "A"}), batch_id="b1"))
    w.hub_store.digests.clear()
    response = w.hub.push(envelope(change(seq=1, fields={"village": "other"}), batch_id="b2"))
    assert response.results[0].outcome == "applied"
    assert w.hub_values()[("household", "h1")] == {"village": "A"}


def test_change_digest_is_the_digest_the_decoder_reports() -> None:
    changes = [change(seq=s, fields={"village": "গ্রাম", "ward": s}, base={"ward": s}) for s in (5, 6)]
    env = envelope(*changes, batch_id="b1")
    batch, digests = wire.decode_batch_digests(env, signer_for(0).public_bytes)
    assert digests == tuple(wire.change_digest(c) for c in changes)
    assert digests == tuple(wire.change_digest(c) for c in batch.changes)
    assert len(set(digests)) == 2
