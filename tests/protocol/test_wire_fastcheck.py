"""``wire.payload_ok`` (the hand-written payload check on the hub's hot path) against its reference,
marshmallow's ``BatchPayloadSchema``: both must accept and refuse exactly the same data.

The domain is what ``json.loads`` can hand the decoder (dicts, lists, str, int, float, bool, None), made
adversarial: bools and floats where integers belong, huge and negative integers, strings at and past
every length limit, rows of the wrong length, wrong container types, extra and missing keys, and non-str
keys (not producible by JSON, but both checks must still refuse them). Each example starts from a valid
payload and breaks zero or more places, so accepted and refused data are both well represented."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import pytest
from hypothesis import assume, event, example, given
from hypothesis import strategies as st
from marshmallow import ValidationError
from protocol_support import build_envelope, props, signer_for

from sync_protocol import wire
from sync_protocol.entities import ENTITIES
from sync_protocol.errors import MalformedBatchError

SIGNER = signer_for(0)
KEY = SIGNER.public_bytes


def marshmallow_accepts(data: Any) -> bool:
    try:
        wire.BatchPayloadSchema().load(data)
    except ValidationError:
        return False
    return True


def agree(data: Any) -> bool:
    fast = wire.payload_ok(data)
    assert fast == marshmallow_accepts(data), f"fast check says {fast}"
    return fast


def text(lo: int, hi: int) -> st.SearchStrategy[str]:
    return st.text(min_size=lo, max_size=hi)


# Values at and around every limit in the schema.
LIMIT_STRINGS = st.sampled_from(["", "x", "x" * 32, "x" * 33, "x" * 64, "x" * 65, "x" * 128, "x" * 129, "ব" * 64])
INTS = st.one_of(
    st.integers(-3, 3),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, 2**63, 2**64, 10**30, -(10**30)]),
)
JSON_ATOMS = st.one_of(
    st.none(),
    st.booleans(),
    INTS,
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 1.0, -0.0, 1e300]),
    text(0, 10),
    LIMIT_STRINGS,
)
JSON_VALUES = st.recursive(
    JSON_ATOMS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(text(0, 5), inner, max_size=3)),
    max_leaves=8,
)
# Anything at all, including keys JSON cannot spell.
ANY_VALUES = st.one_of(JSON_VALUES, st.dictionaries(st.one_of(st.integers(), st.none(), st.booleans()), JSON_ATOMS))
KEYS = st.one_of(text(1, 8), LIMIT_STRINGS)


@st.composite
def valid_row(draw: st.DrawFn) -> list[Any]:
    return [
        draw(st.integers(min_value=0, max_value=2**70)),
        draw(st.sampled_from(sorted(ENTITIES))),
        draw(text(1, 64)),
        draw(text(1, 32)),
        draw(st.sampled_from(["upsert", "delete"])),
        draw(st.dictionaries(KEYS, JSON_VALUES, max_size=4)),
        draw(st.dictionaries(KEYS, st.integers(min_value=0, max_value=2**64), max_size=3)),
        draw(text(0, 128)),
    ]


@st.composite
def payloads(draw: st.DrawFn) -> Any:
    data: dict[Any, Any] = {
        "b": draw(text(1, 64)),
        "n": draw(text(1, 64)),
        "s": draw(st.integers(min_value=1, max_value=2**70)),
        "c": draw(st.lists(valid_row(), min_size=1, max_size=4)),
    }
    breakages = draw(st.integers(min_value=0, max_value=3))
    for _ in range(breakages):
        where = draw(st.sampled_from(["top", "top-key", "rows", "row", "cell", "fields-key", "base", "whole"]))
        rows = data.get("c")
        if where == "top":
            data[draw(st.sampled_from("bnsc"))] = draw(st.one_of(ANY_VALUES, LIMIT_STRINGS, INTS))
        elif where == "top-key":
            if draw(st.booleans()):
                data.pop(draw(st.sampled_from("bnsc")), None)
            else:
                data[draw(st.one_of(st.sampled_from(["x", "B", "bb"]), st.integers(), st.none()))] = 1
        elif where == "rows":
            data["c"] = draw(st.one_of(st.just([]), ANY_VALUES, st.lists(valid_row(), min_size=0, max_size=2)))
        elif where in ("row", "cell", "fields-key", "base") and isinstance(rows, list) and rows:
            i = draw(st.integers(0, len(rows) - 1))
            row = rows[i]
            if where == "row":
                choice = draw(st.sampled_from(["short", "long", "other"]))
                if choice == "short" and isinstance(row, list):
                    rows[i] = row[: draw(st.integers(0, 7))]
                elif choice == "long" and isinstance(row, list):
                    rows[i] = [*row, draw(JSON_ATOMS)]
                else:
                    rows[i] = draw(ANY_VALUES)
            elif isinstance(row, list) and len(row) == 8:
                if where == "cell":
                    row[draw(st.integers(0, 7))] = draw(st.one_of(ANY_VALUES, LIMIT_STRINGS, INTS))
                elif where == "fields-key" and isinstance(row[5], dict):
                    row[5][draw(st.one_of(LIMIT_STRINGS, st.integers(), st.none()))] = draw(JSON_ATOMS)
                elif where == "base" and isinstance(row[6], dict):
                    row[6][draw(KEYS)] = draw(st.one_of(JSON_ATOMS, ANY_VALUES))
        elif where == "whole":
            return draw(ANY_VALUES)
    return data


@props(500)
@given(payloads())
@example({"b": "b", "n": "n", "s": True, "c": [[1, "person", "p", "1", "upsert", {}, {}, ""]]})
@example({"b": "b", "n": "n", "s": 1, "c": [[False, "person", "p", "1", "upsert", {}, {}, ""]]})
@example({"b": "b", "n": "n", "s": 1, "c": [[1, "person", "p", "1", "upsert", {}, {"f": True}, ""]]})
@example({"b": "b", "n": "n", "s": 1.0, "c": [[1, "person", "p", "1", "upsert", {}, {}, ""]]})
@example({"b": "b", "n": "n", "s": 10**40, "c": [[10**40, "person", "p", "1", "upsert", {}, {"f": 10**40}, ""]]})
@example({"b": "b", "n": "n", "s": 1, "c": [[1, "person", "p", "1", "upsert", {1: "x"}, {}, ""]]})
@example({"b": "b", "n": "n", "s": 1, "c": [[1, ["person"], "p", "1", "upsert", {}, {}, ""]]})
@example({"b": "b", "n": "n", "s": 1, "c": [[1, "person", "p", "1", {"upsert": 1}, {}, {}, ""]]})
@example({"b": "b", "n": "n", "s": 1, "c": [[1, "person", "p", "1", "upsert", [], {}, ""]]})
@example({"b": "b", "n": "n", "s": 1, "c": [[1, "person", "p", "1", "upsert", {}, {}, None]]})
@example({"b": "b", "n": "n", "s": 1, "c": [[[1], "person", "p", "1", "upsert", {}, {}, ""]]})
@example({"b": "b", "n": "n", "s": 1, "c": {"0": [1, "person", "p", "1", "upsert", {}, {}, ""]}})
@example([["b", "n"]])
def test_fast_check_agrees_with_the_marshmallow_schema(data: Any) -> None:
    event(f"accepted: {agree(data)}")


@props(100)
@given(payloads())
def test_the_decoder_refuses_exactly_what_the_schema_refuses(data: Any) -> None:
    """End to end through ``decode_batch``: refused payloads are malformed with marshmallow's field-level
    message; accepted ones decode (only JSON-spellable data can travel, so others are skipped)."""
    try:
        raw = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        assume(False)
        return
    data = json.loads(raw)  # what actually travels (json.dumps spells a None key "null", and so on)
    named = isinstance(data, dict) and isinstance(data.get("n"), str) and data["n"]
    node_id = data["n"] if named else "n1"
    assume(len(node_id.encode("utf-8")) <= 255)
    ok = marshmallow_accepts(copy.deepcopy(data))
    envelope = build_envelope(raw.encode("utf-8"), SIGNER, node_id=node_id)
    if ok:
        batch = wire.decode_batch(envelope, KEY)
        assert len(batch.changes) == len(data["c"])
    else:
        with pytest.raises(MalformedBatchError, match=r"does not match the batch schema: \{"):
            wire.decode_batch(envelope, KEY)


def test_change_count_limits_agree() -> None:
    row = [1, "person", "p", "1", "upsert", {}, {}, ""]
    for n, accepted in ((0, False), (1, True), (wire.MAX_CHANGES, True), (wire.MAX_CHANGES + 1, False)):
        assert agree({"b": "b", "n": "n", "s": 1, "c": [list(row) for _ in range(n)]}) is accepted


def test_nan_in_a_field_value_is_malformed_not_a_crash() -> None:
    # json.loads accepts NaN; canonical JSON cannot spell it, so no node can have signed it canonically.
    raw = '{"b":"b","c":[[1,"person","p","1","upsert",{"x":NaN},{},""]],"n":"n1","s":1}'
    assert math.isnan(json.loads(raw)["c"][0][5]["x"])
    with pytest.raises(MalformedBatchError, match="number JSON does not allow"):
        wire.decode_batch(build_envelope(raw.encode(), SIGNER), KEY)
