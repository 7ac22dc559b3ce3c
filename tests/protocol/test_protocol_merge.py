"""The per-field apply rule (``sync_protocol.merge``) as pure functions, plus the two places where it
meets the hub engine: nothing is written for a rejected change, and a staff resolution is a new hub change
that nodes pull."""

from __future__ import annotations

from typing import Any

import pytest
from protocol_support import World, change, signer_for

from sync_protocol import wire
from sync_protocol.entities import DELETED, ENTITIES, HUB_ORIGIN
from sync_protocol.merge import FieldDecision, decide_field, merge_change, resolution_fields
from sync_protocol.model import Batch, FieldState, Op, Outcome, RecordState


def fs(value: Any, rev: int, origin: str = "n2", seen: dict[str, int] | None = None) -> FieldState:
    return FieldState(value, rev, origin, seen if seen is not None else {origin: rev})


def rec(*, scope: str = "1", deleted: FieldState | None = None, **fields: FieldState) -> RecordState:
    """A household ``h1`` at the hub; ``deleted`` is the state of its ``_deleted`` pseudo-field."""
    if deleted is not None:
        fields[DELETED] = deleted
    return RecordState("household", "h1", scope, fields)


# ---- the field rule ------------------------------------------------------------------------------------


def test_apply_when_unchanged_since_base() -> None:
    current = rec(village=fs("Subil", 5))
    m = merge_change(change(fields={"village": "Gunaighar"}, base={"village": 5}), current, hub_seq=9)
    assert m.outcome == Outcome.APPLIED
    assert m.written == {"village": "Gunaighar"}
    assert m.all_written
    assert m.state is not None
    assert m.state.fields["village"] == FieldState("Gunaighar", 9, "n1", {"n2": 5, "n1": 9})
    assert not m.conflicts


def test_new_record_is_applied() -> None:
    m = merge_change(change(fields={"village": "Subil", "ward": 3}), None, hub_seq=1)
    assert m.outcome == Outcome.APPLIED
    assert m.written == {"village": "Subil", "ward": 3}


@pytest.mark.parametrize("base", [0, 5, 7], ids=["changed-since-base", "unchanged-since-base", "base-is-current"])
def test_same_value_is_unchanged_and_writes_nothing(base: int) -> None:
    current = rec(village=fs("Subil", 7))
    m = merge_change(change(fields={"village": "Subil"}, base={"village": base}), current, hub_seq=9)
    assert m.outcome == Outcome.MERGED
    assert m.written == {}
    assert not m.conflicts
    assert m.state is not None
    kept = m.state.fields["village"]
    assert (kept.value, kept.rev, kept.origin) == ("Subil", 7, "n2")
    assert kept.seen["n1"] == 7  # n1 is now reconciled with rev 7


def test_changed_by_another_origin_is_a_conflict_and_the_hub_value_is_kept() -> None:
    current = rec(village=fs("Subil", 7, "n2"))
    m = merge_change(change(fields={"village": "Gunaighar"}, base={"village": 5}), current, hub_seq=9)
    assert m.outcome == Outcome.CONFLICT
    assert m.written == {}
    assert m.state is not None
    assert m.state.fields["village"].value == "Subil"
    (c,) = m.conflicts
    assert (c.field, c.base_rev, c.incoming_value) == ("village", 5, "Gunaighar")
    assert c.hub is not None
    assert (c.hub.value, c.hub.rev, c.hub.origin) == ("Subil", 7, "n2")


def test_hub_origin_counts_as_another_origin() -> None:
    current = rec(village=fs("Subil", 7, HUB_ORIGIN, seen={}))
    m = merge_change(change(fields={"village": "X"}, base={"village": 3}), current, hub_seq=9)
    assert m.outcome == Outcome.CONFLICT


def test_disjoint_fields_of_one_record_merge() -> None:
    # n2 changed the address after n1's base; n1 changed the village: both survive.
    current = rec(village=fs("Subil", 5, "n2"), address=fs("House 12, Road 3", 7, "n2"))
    m = merge_change(change(fields={"village": "Gunaighar"}, base={"village": 5, "address": 5}), current, hub_seq=9)
    assert m.outcome == Outcome.MERGED
    assert m.written == {"village": "Gunaighar"}
    assert m.state is not None
    assert m.state.values() == {"village": "Gunaighar", "address": "House 12, Road 3"}


def test_conflicting_field_does_not_block_the_others() -> None:
    current = rec(village=fs("Subil", 7, "n2"), ward=fs(2, 5, "n2"))
    m = merge_change(change(fields={"village": "X", "ward": 4}, base={"village": 5, "ward": 5}), current, hub_seq=9)
    assert m.outcome == Outcome.CONFLICT
    assert m.written == {"ward": 4}
    assert not m.all_written
    assert [c.field for c in m.conflicts] == ["village"]


def test_consecutive_edits_by_one_node_never_conflict_without_a_pull() -> None:
    # n1 writes twice, both based on what it had before its first edit (it never pulled in between).
    first = merge_change(change(seq=1, fields={"village": "A"}, base={}), None, hub_seq=1)
    assert first.outcome == Outcome.APPLIED
    second = merge_change(change(seq=2, fields={"village": "B"}, base={}), first.state, hub_seq=2)
    assert second.outcome == Outcome.APPLIED
    assert second.written == {"village": "B"}
    third = merge_change(change(seq=3, fields={"village": "C"}, base={"village": 1}), second.state, hub_seq=3)
    assert third.outcome == Outcome.APPLIED


def test_own_edit_after_another_nodes_write_still_conflicts() -> None:
    first = merge_change(change("n1", 1, fields={"village": "A"}), None, hub_seq=1)
    other = merge_change(change("n2", 1, fields={"village": "B"}, base={"village": 1}), first.state, hub_seq=2)
    assert other.outcome == Outcome.APPLIED
    again = merge_change(change("n1", 2, fields={"village": "C"}, base={"village": 1}), other.state, hub_seq=3)
    assert again.outcome == Outcome.CONFLICT


@pytest.mark.parametrize(
    ("state", "incoming", "base", "expected"),
    [
        (None, "x", 0, FieldDecision.APPLY),
        (fs("a", 3), "x", 3, FieldDecision.APPLY),
        (fs("a", 3), "a", 3, FieldDecision.UNCHANGED),
        (fs("a", 3), "a", 0, FieldDecision.UNCHANGED),
        (fs("a", 3), "x", 2, FieldDecision.CONFLICT),
        (fs("a", 3, seen={"n1": 3}), "x", 0, FieldDecision.APPLY),
        (fs("a", 3, seen={"n1": 2}), "x", 0, FieldDecision.CONFLICT),
    ],
)
def test_decide_field_table(state: FieldState | None, incoming: Any, base: int, expected: FieldDecision) -> None:
    assert decide_field(state, incoming, base, "n1") is expected


# ---- deletes -------------------------------------------------------------------------------------------


def test_update_vs_delete_is_a_conflict_on_deleted() -> None:
    current = rec(village=fs("Subil", 5, "n2"), deleted=fs(True, 7, "n2"))
    m = merge_change(change(fields={"village": "X"}, base={"village": 5}), current, hub_seq=9)
    assert m.outcome == Outcome.CONFLICT
    assert m.state is None and m.written == {}
    (c,) = m.conflicts
    assert c.field == DELETED
    assert c.incoming_value is False
    assert c.incoming_fields == {"village": "X"}
    assert c.hub is not None and c.hub.value is True


def test_delete_vs_update_is_a_conflict_on_deleted() -> None:
    current = rec(village=fs("Subil", 5, "n2"), address=fs("Road 3", 7, "n2"))
    m = merge_change(
        change(op=Op.DELETE, fields={DELETED: True}, base={"village": 5, "address": 5}), current, hub_seq=9
    )
    assert m.outcome == Outcome.CONFLICT
    assert m.state is None and m.written == {}
    (c,) = m.conflicts
    assert (c.field, c.incoming_value) == (DELETED, True)


def test_delete_of_an_unchanged_record_is_applied_and_a_second_delete_merges() -> None:
    current = rec(village=fs("Subil", 5, "n2"))
    m = merge_change(change(op=Op.DELETE, fields={DELETED: True}, base={"village": 5}), current, hub_seq=9)
    assert m.outcome == Outcome.APPLIED
    assert m.written == {DELETED: True}
    assert m.state is not None and m.state.deleted
    again = merge_change(change("n2", 1, op=Op.DELETE, fields={DELETED: True}), m.state, hub_seq=10)
    assert again.outcome == Outcome.MERGED and again.written == {}


def test_update_of_a_record_deleted_by_the_same_node_earlier_revives_it() -> None:
    deleted = rec(village=fs("Subil", 5, "n1"), deleted=fs(True, 7, "n1"))
    m = merge_change(change(fields={"village": "X"}, base={"village": 5}), deleted, hub_seq=9)
    assert m.outcome == Outcome.APPLIED
    assert m.written == {DELETED: False, "village": "X"}


# ---- append-only, hub-owned, structure ------------------------------------------------------------------


EVENT = {"grievance_id": "g1", "type": "escalated", "note": "উপজেলায় পাঠানো হলো", "tier": "upazila"}


def test_append_only_new_id_is_applied_and_same_content_merges() -> None:
    c1 = change(entity="grievance_event", entity_id="e1", fields=EVENT)
    first = merge_change(c1, None, hub_seq=3)
    assert first.outcome == Outcome.APPLIED and first.written == EVENT
    # another node sends the very same event (e.g. via a bundle imported twice): no conflict
    same = merge_change(change("n2", 4, entity="grievance_event", entity_id="e1", fields=EVENT), first.state, hub_seq=4)
    assert same.outcome == Outcome.MERGED and same.written == {} and not same.conflicts
    # two offices acting on one grievance append two events; neither conflicts
    other = merge_change(
        change("n2", 5, entity="grievance_event", entity_id="e2", fields={**EVENT, "type": "resolved"}), None, hub_seq=5
    )
    assert other.outcome == Outcome.APPLIED


def test_append_only_never_conflicts_and_cannot_be_rewritten_or_deleted() -> None:
    first = merge_change(change(entity="grievance_event", entity_id="e1", fields=EVENT), None, hub_seq=3)
    rewrite = merge_change(
        change("n2", 1, entity="grievance_event", entity_id="e1", fields={**EVENT, "note": "x"}), first.state, hub_seq=4
    )
    assert rewrite.outcome == Outcome.REJECTED and not rewrite.conflicts
    assert rewrite.reason is not None and "immutable" in rewrite.reason
    delete = merge_change(
        change(entity="grievance_event", entity_id="e1", op=Op.DELETE, fields={DELETED: True}), first.state, hub_seq=4
    )
    assert delete.outcome == Outcome.REJECTED and not delete.conflicts


@pytest.mark.parametrize(
    ("entity", "field"),
    [(e.name, f) for e in ENTITIES.values() for f in sorted(e.hub_owned)],
)
def test_hub_owned_fields_from_a_node_are_rejected_with_field_errors(entity: str, field: str) -> None:
    writable = sorted(ENTITIES[entity].fields)[0]
    m = merge_change(change(entity=entity, fields={writable: "ok", field: "verified"}), None, hub_seq=1)
    assert m.outcome == Outcome.REJECTED
    assert m.state is None and m.written == {} and not m.conflicts
    assert m.errors == {field: ["this field is set by the central hub only"]}


def test_hub_owned_field_push_writes_nothing_at_the_hub() -> None:
    w = World(1)
    w.hub.hub_write("person", "p1", {"full_name_bn": "রহিমা"}, scope="1")
    log_before, records_before = list(w.hub_store.log), dict(w.hub_store.records)
    bad = change(entity="person", entity_id="p1", fields={"full_name_bn": "করিম", "nid_status": "verified"})
    response = w.hub.push(wire.encode_batch(Batch("n1", "b1", (bad,)), signer_for(0)))
    (result,) = response.results
    assert result.outcome == Outcome.REJECTED
    assert result.errors == {"nid_status": ["this field is set by the central hub only"]}
    assert result.hub_seq is None
    assert w.hub_store.log == log_before
    assert w.hub_store.records == records_before
    assert w.hub_store.conflicts == {}


@pytest.mark.parametrize(
    ("kw", "reason", "errors"),
    [
        ({"entity": "citizen"}, "unknown entity 'citizen'", None),
        ({"fields": {"colour": "red"}}, "unknown field(s)", {"colour": ["household has no field 'colour'"]}),
        ({"fields": {DELETED: True}}, "_deleted is written by delete changes only", {DELETED: ["not writable"]}),
        ({"fields": {}}, "an upsert must change at least one field", None),
        ({"op": Op.DELETE, "fields": {DELETED: True, "village": "x"}}, "a delete carries no field values", None),
        ({"op": "merge"}, "unknown op 'merge'", None),
    ],
)
def test_structurally_wrong_changes_are_rejected(kw: dict, reason: str, errors: dict | None) -> None:
    m = merge_change(change(**kw), rec(village=fs("Subil", 1)), hub_seq=2)
    assert m.outcome == Outcome.REJECTED
    assert m.reason == reason
    assert m.errors == errors
    assert m.state is None and m.written == {}


def test_scope_mismatch_is_rejected() -> None:
    m = merge_change(
        change(scope="2", fields={"village": "X"}, base={"village": 1}), rec(village=fs("S", 1)), hub_seq=2
    )
    assert m.outcome == Outcome.REJECTED
    assert m.reason == "record belongs to union 1, change claims union 2"
    assert m.errors == {"union_id": ["record belongs to union 1"]}
    assert m.state is None


def test_validator_errors_reject_the_whole_change() -> None:
    def validator(entity: str, fields: Any, current: Any) -> dict[str, list[str]]:
        return {"ward": ["ward must be 1-9"]} if fields.get("ward") == 12 else {}

    m = merge_change(change(fields={"village": "X", "ward": 12}), None, hub_seq=1, validator=validator)
    assert m.outcome == Outcome.REJECTED
    assert m.errors == {"ward": ["ward must be 1-9"]}
    assert m.written == {}


# ---- staff resolutions -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("choice", "value", "expected"),
    [
        ("hub", None, {"village": "Hub"}),
        ("incoming", None, {"village": "In"}),
        ("value", "Third", {"village": "Third"}),
    ],
)
def test_resolution_fields(choice: str, value: Any, expected: dict) -> None:
    assert resolution_fields("village", choice, current_value="Hub", incoming_value="In", value=value) == expected


def test_resolution_of_update_vs_delete_with_incoming_revives_the_update() -> None:
    out = resolution_fields(DELETED, "incoming", current_value=True, incoming_value=False, incoming_fields={"ward": 3})
    assert out == {DELETED: False, "ward": 3}
    with pytest.raises(ValueError, match="choice must be one of"):
        resolution_fields("ward", "toss-a-coin", current_value=1, incoming_value=2)


@pytest.mark.parametrize(
    ("choice", "value", "final"), [("hub", None, "B"), ("incoming", None, "A"), ("value", "C", "C")]
)
def test_staff_resolution_is_a_new_hub_change_that_nodes_pull(choice: str, value: Any, final: str) -> None:
    w = World(2)
    w.write("n1", "household", "h1", {"village": "base"})
    w.push("n1")
    w.pull("n2")
    w.write("n1", "household", "h1", {"village": "A"})
    w.write("n2", "household", "h1", {"village": "B"})
    w.push("n2")  # B applied
    (resp,) = [w.push("n1")]  # A conflicts
    assert resp is not None
    (result,) = resp.results
    assert result.outcome == Outcome.CONFLICT
    (conflict_id,) = result.conflict_ids
    log_len = len(w.hub_store.log)

    resolved, entry = w.hub.resolve(conflict_id, choice, value=value, note="checked by phone", actor="staff-1")
    assert resolved.status == "resolved"
    assert resolved.resolution is not None and resolved.resolution["hub_seq"] == entry.hub_seq
    assert entry.origin == HUB_ORIGIN
    assert entry.hub_seq == log_len + 1
    assert w.hub_store.log[-1] == entry
    assert dict(entry.fields) == {"village": final}  # even "keep the hub value" is written again
    assert w.hub_store.records[("household", "h1")].fields["village"].origin == HUB_ORIGIN

    for node in ("n1", "n2"):
        w.pull(node)
        assert w.visible(node)[("household", "h1")]["village"] == final
