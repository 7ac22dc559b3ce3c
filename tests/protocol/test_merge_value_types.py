"""A value that changes JSON type is a change: ``true`` is not ``1`` and ``1`` is not ``1.0``."""

from __future__ import annotations

from sync_protocol.merge import FieldDecision, decide_field, same_value
from sync_protocol.model import FieldState


def test_same_value_keeps_json_types_apart() -> None:
    assert same_value(True, True) and same_value(1, 1) and same_value("a", "a")
    assert not same_value(True, 1)
    assert not same_value(1, 1.0)
    assert not same_value(0, False)
    assert same_value({"a": [1, "x"]}, {"a": [1, "x"]})
    assert not same_value({"a": [1]}, {"a": [True]})
    assert not same_value([1, 2], [1, 2, 3])


def test_a_type_change_since_the_base_is_a_conflict_not_a_no_op() -> None:
    held = FieldState(1, rev=5, origin="other")
    assert decide_field(held, True, base_rev=2, node_id="me") is FieldDecision.CONFLICT
    assert decide_field(held, 1, base_rev=2, node_id="me") is FieldDecision.UNCHANGED
    assert decide_field(held, True, base_rev=5, node_id="me") is FieldDecision.APPLY
