"""The create fast path of ``merge_change`` (a record the hub has never seen) gives exactly what the general
per-field rule gives, and its ``UniformFields`` state reads like the equivalent dict of ``FieldState``."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from protocol_support import change, props

from sync_protocol.entities import ENTITIES
from sync_protocol.merge import _merge_upsert, merge_change
from sync_protocol.model import FieldState, Op, RecordState, UniformFields

_MUTABLE = sorted(name for name, spec in ENTITIES.items() if not spec.append_only)
_json_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=False, allow_infinity=False), st.text()
)
_json = st.recursive(_json_scalar, lambda inner: st.lists(inner, max_size=3), max_leaves=5)


@st.composite
def new_record_changes(draw: st.DrawFn) -> Any:
    entity = draw(st.sampled_from(_MUTABLE))
    names = draw(st.lists(st.sampled_from(sorted(ENTITIES[entity].fields)), min_size=1, max_size=8, unique=True))
    values = {n: draw(_json) for n in names}
    base = draw(st.dictionaries(st.sampled_from(names), st.integers(0, 50), max_size=3))
    node = draw(st.sampled_from(["n1", "n2", "a-long-node-id"]))
    return change(node, draw(st.integers(1, 10**6)), entity=entity, entity_id="r1", fields=values, base=base)


def _as_plain(result: Any) -> Any:
    state = result.state
    return (
        result.outcome,
        result.written,
        None if state is None else (state.entity, state.entity_id, state.scope, state.to_json()),
        result.conflicts,
        result.reason,
        result.errors,
        result.all_written,
        result.unchanged,
    )


@props(300)
@given(c=new_record_changes(), hub_seq=st.integers(1, 10**9))
def test_the_create_path_equals_the_general_rule(c: Any, hub_seq: int) -> None:
    fast = merge_change(c, None, hub_seq=hub_seq)
    assert isinstance(fast.state.fields, UniformFields)
    assert _as_plain(fast) == _as_plain(_merge_upsert(c, None, hub_seq))
    assert fast.written == dict(c.fields) and fast.written is not c.fields


@props(200)
@given(c=new_record_changes(), hub_seq=st.integers(1, 10**9), later=st.integers(1, 10**6))
def test_a_second_change_on_a_created_record_merges_as_on_the_dict_state(c: Any, hub_seq: int, later: int) -> None:
    created = merge_change(c, None, hub_seq=hub_seq).state
    as_dict = RecordState(created.entity, created.entity_id, created.scope, dict(created.fields))
    assert created == as_dict and created.values() == as_dict.values()
    first = sorted(c.fields)[0]
    follow = change(
        "other",
        later,
        entity=c.entity,
        entity_id=c.entity_id,
        fields={first: "a different value"},
        base={first: 0},
    )
    on_uniform = merge_change(follow, created, hub_seq=hub_seq + 1)
    on_dict = merge_change(follow, as_dict, hub_seq=hub_seq + 1)
    assert _as_plain(on_uniform) == _as_plain(on_dict)
    # and a third change, by the creator, on the layered state the second one left
    layered_state = on_uniform.state or created
    third = change(c.node_id, later + 1, entity=c.entity, entity_id=c.entity_id, fields=dict(c.fields), base={})
    on_layers = merge_change(third, layered_state, hub_seq=hub_seq + 2)
    flat = RecordState(layered_state.entity, layered_state.entity_id, layered_state.scope, dict(layered_state.fields))
    assert _as_plain(on_layers) == _as_plain(merge_change(third, flat, hub_seq=hub_seq + 2))


def test_uniform_fields_reads_like_field_states() -> None:
    fields = UniformFields({"sex": "female", "nid": "1234567890"}, 7, "n1")
    assert fields["sex"] == FieldState("female", 7, "n1", {"n1": 7})
    assert "nid" in fields and "mobile" not in fields and len(fields) == 2
    assert dict(fields) == {
        "sex": FieldState("female", 7, "n1", {"n1": 7}),
        "nid": FieldState("1234567890", 7, "n1", {"n1": 7}),
    }


def test_deletes_and_append_only_entities_keep_their_own_rules() -> None:
    tomb = merge_change(change(op=Op.DELETE, fields={"_deleted": True}), None, hub_seq=3)
    assert not isinstance(tomb.state.fields, UniformFields) and tomb.written == {"_deleted": True}
    event = merge_change(
        change(entity="grievance_event", entity_id="e1", fields={"type": "note", "grievance_id": "g1"}),
        None,
        hub_seq=4,
    )
    assert event.state is not None and event.all_written
