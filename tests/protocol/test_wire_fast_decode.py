"""The hub's fast decode (msgspec) against the reference decode (``json``): on any payload bytes, the fast
path either steps aside (``None``) or gives exactly the batch and change digests the reference gives; it
never accepts what the reference refuses. Payloads are canonical encodings of generated batches (with
floats of every spelling, escapes, non-ASCII text, big integers, nesting) and then respelled: spaces,
reordered keys, escaped characters, other exponent forms, duplicate keys, NaN, cut bytes."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import event, example, given
from hypothesis import strategies as st
from protocol_support import canonical, props, typed
from test_wire_fastcheck import payloads as adversarial_payloads

from sync_protocol import wire
from sync_protocol.errors import WireError

HEADER = wire.Header(1, 1, wire.CODEC_ZLIB, "n1", 0, 0)

floats = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1e16, 1e-7, 1.5e-07, 1e22, 123456789012345678.0, 0.1, 100.0, -0.0, 5e-324]),
)
atoms = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    floats,
    st.text(max_size=12),
    st.sampled_from(["ব্যক্তি", "\u2028", "\x7f", "\x00", '"', "\\", "0193a7e4-1e5"]),
)
values = st.recursive(
    atoms,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)


@st.composite
def payloads(draw: st.DrawFn) -> dict[str, Any]:
    rows = []
    for i in range(draw(st.integers(1, 4))):
        fields = draw(st.dictionaries(st.text(min_size=1, max_size=8), values, max_size=5))
        base = draw(st.dictionaries(st.sampled_from(sorted(fields) or ["x"]), st.integers(0, 2**40), max_size=2))
        rows.append(
            [draw(st.integers(0, 2**62)), "person", f"p{i}", "1", "upsert", fields, base, draw(st.text(max_size=5))]
        )
    return {"b": draw(st.text(min_size=1, max_size=10)), "n": "n1", "s": draw(st.integers(1, 2**40)), "c": rows}


def respell(raw: bytes, how: int, data: Any) -> bytes:
    text = raw.decode("utf-8", "surrogatepass")
    if how == 0:
        return raw
    if how == 1:
        return json.dumps(data, ensure_ascii=False).encode("utf-8", "surrogatepass")  # spaces, insertion order
    if how == 2:
        return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()  # \\uXXXX escapes
    if how == 3:
        return text.replace("e+", "e").encode("utf-8", "surrogatepass")  # msgspec's exponent spelling
    if how == 4:
        return text.replace('{"b":', '{"b":"dup","b":', 1).encode("utf-8", "surrogatepass")
    if how == 5:
        return text.replace(",", ",NaN,", 1).encode("utf-8", "surrogatepass")
    if how == 6:
        return raw[: len(raw) // 2]
    return text.replace('"n1"', '"n2"').encode("utf-8", "surrogatepass")


def reference(raw: bytes) -> tuple[Any, Any] | WireError:
    try:
        batch, digests = wire._decode_reference(HEADER, raw)
    except WireError as exc:
        return exc
    return batch, digests


def same(a: tuple[Any, Any], b: tuple[Any, Any]) -> bool:
    if a[1] != b[1] or a[0].batch_id != b[0].batch_id or len(a[0].changes) != len(b[0].changes):
        return False
    return all(
        (x.node_id, x.node_seq, x.hlc, x.entity, x.entity_id, x.scope, x.op, x.actor, typed(x.fields), typed(x.base))
        == (y.node_id, y.node_seq, y.hlc, y.entity, y.entity_id, y.scope, y.op, y.actor, typed(y.fields), typed(y.base))
        for x, y in zip(a[0].changes, b[0].changes, strict=True)
    )


@props(400)
@given(data=payloads(), how=st.integers(0, 7))
@example(data={"b": "b", "n": "n1", "s": 1, "c": [[1, "person", "p", "1", "upsert", {"x": 1e16}, {}, ""]]}, how=3)
@example(data={"b": "b", "n": "n1", "s": 1, "c": [[1, "person", "p", "1", "upsert", {"x": 2**70}, {}, ""]]}, how=0)
def test_the_fast_decode_is_the_reference_or_steps_aside(data: dict[str, Any], how: int) -> None:
    try:
        raw = respell(canonical(data), how, data)
    except UnicodeEncodeError:
        return  # lone surrogates: not UTF-8, no payload to decode
    want = reference(raw)
    got = wire._decode_fast(HEADER, raw)
    if got is None:
        event("fast path stepped aside")
        return
    event("fast path decided")
    assert not isinstance(want, WireError), f"fast path accepted what the reference refuses: {want}"
    assert same(got, want)


@props(200)
@given(data=payloads())
def test_canonical_payloads_without_exponent_floats_take_the_fast_path(data: dict[str, Any]) -> None:
    raw = canonical(data)
    has_exponent = any(isinstance(v, float) and "e" in repr(v) for v in _leaves([r[5] for r in data["c"]]))
    got = wire._decode_fast(HEADER, raw)
    if has_exponent or any(isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 2**63 for v in _leaves(data)):
        return  # may step aside: the reference decides
    assert got is not None
    want = reference(raw)
    assert not isinstance(want, WireError) and same(got, want)


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


def test_an_exponent_float_is_decided_by_the_reference() -> None:
    data = {"b": "b", "n": "n1", "s": 1, "c": [[1, "person", "p", "1", "upsert", {"pmt": 1e16}, {}, ""]]}
    raw = canonical(data)
    assert wire._decode_fast(HEADER, raw) is None
    batch, _ = wire._decode_reference(HEADER, raw)
    assert batch.changes[0].fields == {"pmt": 1e16} and not math.isnan(batch.changes[0].fields["pmt"])


@props(500)
@given(data=adversarial_payloads())
def test_what_the_schema_refuses_never_takes_the_fast_path(data: Any) -> None:
    """The schema's adversarial cases (wrong types, lengths at and past every limit, bools and floats for
    integers, rows too short or long, extra or missing keys), as the canonical bytes a node could sign."""
    try:
        raw = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        raw_bytes = raw.encode("utf-8")
    except (TypeError, ValueError, UnicodeEncodeError):
        return
    header = HEADER
    if isinstance(data, dict) and isinstance(data.get("n"), str):
        header = wire.Header(1, 1, wire.CODEC_ZLIB, data["n"], 0, 0)
    want = reference_with(header, raw_bytes)
    got = wire._decode_fast(header, raw_bytes)
    event(f"reference accepts: {not isinstance(want, WireError)}; fast decided: {got is not None}")
    if got is not None:
        assert not isinstance(want, WireError), f"fast path accepted what the reference refuses: {want}"
        assert same(got, want)


def reference_with(header: wire.Header, raw: bytes) -> tuple[Any, Any] | WireError:
    try:
        return wire._decode_reference(header, raw)
    except WireError as exc:
        return exc
