"""Changes, batches and bundles on the wire (``sync_protocol.wire``): one canonical encoding, lossless
round trips, and a specific refusal for every way the bytes can be wrong."""

from __future__ import annotations

import json
import random
import zlib

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from protocol_support import build_envelope, canonical, change, payload_of, props, signer_for, typed

from sync_protocol import wire
from sync_protocol.entities import ENTITIES, SCHEMA_VERSION
from sync_protocol.errors import (
    MalformedBatchError,
    NonCanonicalBatchError,
    OversizedBatchError,
    SignatureError,
    SyncProtocolError,
    TruncatedBatchError,
    UnsupportedVersionError,
)
from sync_protocol.model import PROTOCOL_VERSION, Batch, Change, Op

SIGNER = signer_for(0)
KEY = SIGNER.public_bytes

# ---- strategies --------------------------------------------------------------------------------------

bangla = st.text(alphabet=st.characters(min_codepoint=0x0980, max_codepoint=0x09FF), max_size=12)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | bangla
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
ids = st.text(alphabet="abcdef0123456789-", min_size=1, max_size=36)


@st.composite
def changes_for(draw: st.DrawFn, node_id: str, seq: int) -> Change:
    entity = draw(st.sampled_from(sorted(ENTITIES)))
    names = sorted(ENTITIES[entity].fields)
    chosen = draw(st.lists(st.sampled_from(names), min_size=1, max_size=4, unique=True))
    op = draw(st.sampled_from([Op.UPSERT, Op.DELETE]))
    return Change(
        node_id=node_id,
        node_seq=seq,
        hlc=draw(st.integers(min_value=0, max_value=2**63)),
        entity=entity,
        entity_id=draw(ids),
        scope=draw(st.sampled_from(["1", "2", "4512"])),
        op=op,
        fields={name: draw(json_values) for name in chosen},
        base={name: draw(st.integers(min_value=0, max_value=10**9)) for name in chosen if draw(st.booleans())},
        actor=draw(st.text(max_size=20) | bangla),
    )


@st.composite
def batches(draw: st.DrawFn, max_changes: int = 4) -> Batch:
    node_id = draw(st.sampled_from(["n1", "node-ঢাকা-7", "x"]))
    first = draw(st.integers(min_value=1, max_value=10**6))
    n = draw(st.integers(min_value=1, max_value=max_changes))
    return Batch(node_id, draw(ids), tuple(draw(changes_for(node_id, first + i)) for i in range(n)))


def reshuffled(batch: Batch, rnd: random.Random) -> Batch:
    """The same logical batch, its field and base mappings built in another insertion order."""

    def shuffle(mapping: dict) -> dict:
        items = list(mapping.items())
        rnd.shuffle(items)
        return dict(items)

    return Batch(
        batch.node_id,
        batch.batch_id,
        tuple(
            Change(
                **{
                    **{s: getattr(c, s) for s in Change.__slots__},
                    "fields": shuffle(dict(c.fields)),
                    "base": shuffle(dict(c.base)),
                }
            )
            for c in batch.changes
        ),
    )


def typed_batch(batch: Batch) -> tuple:
    return (
        batch.node_id,
        batch.batch_id,
        batch.protocol_version,
        batch.schema_version,
        tuple(
            (
                c.node_id,
                c.node_seq,
                c.hlc,
                c.entity,
                c.entity_id,
                c.scope,
                str(c.op),
                typed(c.fields),
                typed(c.base),
                c.actor,
            )
            for c in batch.changes
        ),
    )


# ---- canonical bytes and round trip ------------------------------------------------------------------


@props(80)
@given(batches(), st.randoms(use_true_random=False))
def test_one_logical_batch_has_exactly_one_encoding(batch: Batch, rnd: random.Random) -> None:
    first = wire.encode_batch(batch, SIGNER)
    assert wire.encode_batch(batch, SIGNER) == first
    assert wire.encode_batch(reshuffled(batch, rnd), SIGNER) == first


@props(120)
@given(batches())
@example(
    Batch(
        "n1",
        "b1",
        (change(fields={"full_name_bn": "মোছাঃ রহিমা খাতুন", "nid": None, "dob_estimated": True}, entity="person"),),
    )
)
def test_round_trip_keeps_every_value_and_type(batch: Batch) -> None:
    decoded = wire.decode_batch(wire.encode_batch(batch, SIGNER), KEY)
    assert decoded == batch
    # ``==`` treats True as 1 and 1 as 1.0; the wire must not turn one into the other.
    assert typed_batch(decoded) == typed_batch(batch)


# ---- tampering, truncation, size -----------------------------------------------------------------------


@props(150)
@given(batches(max_changes=2), st.data())
def test_any_flipped_byte_is_refused(batch: Batch, data: st.DataObject) -> None:
    envelope = bytearray(wire.encode_batch(batch, SIGNER))
    pos = data.draw(st.integers(min_value=0, max_value=len(envelope) - 1), label="position")
    envelope[pos] ^= data.draw(st.integers(min_value=1, max_value=255), label="xor mask")
    header_end = wire.read_header(wire.encode_batch(batch, SIGNER)).payload_offset
    with pytest.raises(SyncProtocolError) as caught:
        wire.decode_batch(bytes(envelope), KEY)
    if pos >= header_end:
        # payload or signature: only the signature can notice
        assert isinstance(caught.value, SignatureError)


def test_every_single_byte_flip_of_one_batch_is_refused() -> None:
    batch = Batch("n1", "b1", (change(fields={"village": "সুবিল", "ward": 3}), change(seq=2)))
    envelope = wire.encode_batch(batch, SIGNER)
    header_end = wire.read_header(envelope).payload_offset
    for pos in range(len(envelope)):
        for mask in (0x01, 0x80, 0xFF):
            tampered = bytearray(envelope)
            tampered[pos] ^= mask
            with pytest.raises(SyncProtocolError) as caught:
                wire.decode_batch(bytes(tampered), KEY)
            assert pos < header_end or isinstance(caught.value, SignatureError)


def test_flipped_payload_byte_is_a_signature_error() -> None:
    envelope = bytearray(wire.encode_batch(Batch("n1", "b1", (change(),)), SIGNER))
    envelope[-70] ^= 0x01
    with pytest.raises(SignatureError, match="altered or signed by another key"):
        wire.decode_batch(bytes(envelope), KEY)


def test_batch_signed_by_another_key_is_refused() -> None:
    envelope = wire.encode_batch(Batch("n1", "b1", (change(),)), signer_for(5))
    with pytest.raises(SignatureError):
        wire.decode_batch(envelope, KEY)


@props(60)
@given(batches(max_changes=2), st.data())
def test_truncated_at_any_length_is_refused_as_truncated(batch: Batch, data: st.DataObject) -> None:
    envelope = wire.encode_batch(batch, SIGNER)
    cut = data.draw(st.integers(min_value=0, max_value=len(envelope) - 1), label="cut")
    with pytest.raises(TruncatedBatchError):
        wire.decode_batch(envelope[:cut], KEY)


def test_every_truncation_of_one_batch_is_refused() -> None:
    envelope = wire.encode_batch(Batch("n1", "b1", (change(), change(seq=2))), SIGNER)
    for cut in range(len(envelope)):
        with pytest.raises(TruncatedBatchError):
            wire.decode_batch(envelope[:cut], KEY)


def test_bytes_after_the_signature_are_refused() -> None:
    envelope = wire.encode_batch(Batch("n1", "b1", (change(),)), SIGNER)
    with pytest.raises(MalformedBatchError, match="unexpected bytes"):
        wire.decode_batch(envelope + b"\0", KEY)


def test_oversized_envelope_is_refused_before_anything_else() -> None:
    with pytest.raises(OversizedBatchError, match="limit"):
        wire.decode_batch(b"NSPB" + b"\0" * wire.MAX_ENVELOPE_BYTES, KEY)


def test_too_many_changes_are_refused_when_encoding() -> None:
    many = tuple(change(seq=i + 1) for i in range(wire.MAX_CHANGES + 1))
    with pytest.raises(OversizedBatchError, match=str(wire.MAX_CHANGES)):
        wire.encode_batch(Batch("n1", "b1", many), SIGNER)


def test_payload_that_inflates_beyond_the_limit_is_refused() -> None:
    # A small, correctly signed envelope whose payload is a zlib bomb.
    bomb = zlib.compress(b" " * (wire.MAX_PAYLOAD_BYTES + 1024), 9)
    envelope = build_envelope(bomb, SIGNER, compress=False)
    assert len(envelope) < wire.MAX_ENVELOPE_BYTES
    with pytest.raises(OversizedBatchError, match="inflates"):
        wire.decode_batch(envelope, KEY)


# ---- versions ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("protocol", "schema"),
    [(PROTOCOL_VERSION + 1, SCHEMA_VERSION), (PROTOCOL_VERSION, SCHEMA_VERSION + 1), (0, 0), (65535, 7)],
)
def test_unknown_version_is_refused_naming_both_versions(protocol: int, schema: int) -> None:
    payload = canonical(payload_of(Batch("n1", "b1", (change(),))))
    envelope = build_envelope(payload, SIGNER, protocol=protocol, schema=schema)
    # Only the version is wrong: the same bytes with the right versions decode.
    assert wire.decode_batch(build_envelope(payload, SIGNER), KEY).batch_id == "b1"
    with pytest.raises(UnsupportedVersionError) as caught:
        wire.decode_batch(envelope, KEY)
    message = caught.value.message
    assert f"protocol version {protocol} with schema version {schema}" in message
    assert f"protocol version {PROTOCOL_VERSION} with schema version {SCHEMA_VERSION}" in message
    assert caught.value.to_json()["code"] == "unsupported_version"
    assert caught.value.details["batch_protocol_version"] == protocol
    assert caught.value.details["supported_schema_version"] == SCHEMA_VERSION


def test_unknown_codec_is_refused() -> None:
    payload = canonical(payload_of(Batch("n1", "b1", (change(),))))
    with pytest.raises(MalformedBatchError, match="codec 2"):
        wire.decode_batch(build_envelope(payload, SIGNER, codec=2), KEY)


# ---- payload content -----------------------------------------------------------------------------------


def _respellings(payload: dict) -> list[bytes]:
    c = canonical(payload)
    spellings = [
        json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8"),  # spaces after , and :
        json.dumps(dict(reversed(list(payload.items()))), separators=(",", ":"), ensure_ascii=False).encode(),
        json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii"),
        c + b"\n",
        b" " + c,
        c.replace(b'{"b":', b'{"b":"dup","b":', 1),  # a duplicate key: json.loads keeps the last one
    ]
    return [s for s in spellings if s != c]


@props(40)
@given(batches(max_changes=2))
def test_same_json_spelled_differently_is_non_canonical(batch: Batch) -> None:
    payload = payload_of(batch)
    assert wire.decode_batch(build_envelope(canonical(payload), SIGNER, node_id=batch.node_id), KEY) == batch
    spellings = _respellings(payload)
    assert len(spellings) >= 4
    for spelling in spellings:
        assert json.loads(spelling) == payload
        with pytest.raises(NonCanonicalBatchError, match="canonical"):
            wire.decode_batch(build_envelope(spelling, SIGNER, node_id=batch.node_id), KEY)


def _valid_payload() -> dict:
    return payload_of(Batch("n1", "b1", (change(base={"village": 3}),)))


def _row(**changes: object) -> dict:
    p = _valid_payload()
    for index, value in changes.items():
        p["c"][0][int(index[1:])] = value
    return p


MALFORMED = [
    pytest.param({k: v for k, v in _valid_payload().items() if k != "b"}, "'b'", id="missing batch id"),
    pytest.param({**_valid_payload(), "s": 0}, "'s'", id="first seq 0"),
    pytest.param({**_valid_payload(), "s": "1"}, "'s'", id="first seq as text"),
    pytest.param({**_valid_payload(), "c": []}, "'c'", id="no changes"),
    pytest.param({**_valid_payload(), "b": ""}, "'b'", id="empty batch id"),
    pytest.param({**_valid_payload(), "x": 1}, "'x'", id="unknown key"),
    pytest.param(_row(i0=-1), "'c'", id="negative hlc"),
    pytest.param(_row(i0=1.5), "'c'", id="float hlc"),
    pytest.param(_row(i1="citizen"), "Must be one of: enrolment", id="unknown entity"),
    pytest.param(_row(i2=""), "'c'", id="empty entity id"),
    pytest.param(_row(i4="merge"), "Must be one of: upsert, delete", id="unknown op"),
    pytest.param(_row(i5=["village"]), "'c'", id="fields not an object"),
    pytest.param(_row(i6={"village": "3"}), "'c'", id="base revision as text"),
    pytest.param(_row(i6={"village": -2}), "'c'", id="negative base revision"),
    pytest.param({**_valid_payload(), "c": [_valid_payload()["c"][0][:7]]}, "'c'", id="short change row"),
    pytest.param({**_valid_payload(), "c": "nope"}, "'c'", id="changes not a list"),
]


@pytest.mark.parametrize(("payload", "names"), MALFORMED)
def test_schema_violations_are_malformed_with_a_readable_message(payload: dict, names: str) -> None:
    envelope = build_envelope(canonical(payload), SIGNER)
    with pytest.raises(MalformedBatchError) as caught:
        wire.decode_batch(envelope, KEY)
    assert caught.value.code == "malformed_batch"
    assert "does not match the batch schema" in caught.value.message
    assert names in caught.value.message


@pytest.mark.parametrize(
    ("payload", "compress", "message"),
    [
        pytest.param(b"\xff\xfe not json", True, "not UTF-8 JSON", id="not utf-8"),
        pytest.param(b"{'b': 1}", True, "not UTF-8 JSON", id="not json"),
        pytest.param(b"this is not zlib", False, "does not decompress", id="not zlib"),
        pytest.param(zlib.compress(b'{"b":"b1"}')[:-6], False, "ends early", id="zlib stream cut inside"),
        pytest.param(b"[1,2,3]", True, "batch schema", id="json array"),
    ],
)
def test_undecodable_payloads_are_refused(payload: bytes, compress: bool, message: str) -> None:
    with pytest.raises((MalformedBatchError, TruncatedBatchError), match=message):
        wire.decode_batch(build_envelope(payload, SIGNER, compress=compress), KEY)


def test_node_id_in_payload_must_match_the_header() -> None:
    payload = canonical({**_valid_payload(), "n": "n2"})
    with pytest.raises(MalformedBatchError, match="differs from the header"):
        wire.decode_batch(build_envelope(payload, SIGNER, node_id="n1"), KEY)


def test_wrong_magic_is_refused() -> None:
    envelope = b"XXXX" + wire.encode_batch(Batch("n1", "b1", (change(),)), SIGNER)[4:]
    with pytest.raises(MalformedBatchError, match="magic"):
        wire.read_header(envelope)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ((change(seq=1), change(seq=3)), "consecutive: expected seq 2, found 3"),
        ((change(seq=2), change(seq=1)), "consecutive"),
        ((change(seq=1), change(seq=1)), "consecutive"),
        ((change(seq=1), change("n2", seq=2)), "from node n2"),
        ((), "at least one change"),
    ],
)
def test_batches_of_non_consecutive_changes_are_refused(changes: tuple[Change, ...], message: str) -> None:
    with pytest.raises(MalformedBatchError, match=message):
        wire.encode_batch(Batch("n1", "b1", changes), SIGNER)


def test_decoded_seqs_follow_the_first_seq() -> None:
    batch = Batch("n1", "b1", tuple(change(seq=41 + i) for i in range(3)))
    assert [c.node_seq for c in wire.decode_batch(wire.encode_batch(batch, SIGNER), KEY).changes] == [41, 42, 43]


# ---- bundles -------------------------------------------------------------------------------------------

envelope_lists = st.lists(st.binary(min_size=1, max_size=64), max_size=5)


@props(60)
@given(envelope_lists)
def test_bundle_round_trip(envelopes: list[bytes]) -> None:
    assert wire.decode_bundle(wire.encode_bundle(envelopes)) == envelopes


def test_bundle_of_real_batches_round_trips_and_each_batch_verifies() -> None:
    envs = [wire.encode_batch(Batch("n1", f"b{i}", (change(seq=i),)), SIGNER) for i in (1, 2, 3)]
    out = wire.decode_bundle(wire.encode_bundle(envs))
    assert [wire.decode_batch(e, KEY).batch_id for e in out] == ["b1", "b2", "b3"]


@props(80)
@given(envelope_lists, st.data())
def test_truncated_bundle_is_refused(envelopes: list[bytes], data: st.DataObject) -> None:
    bundle = wire.encode_bundle(envelopes)
    cut = data.draw(st.integers(min_value=len(wire.BUNDLE_MAGIC), max_value=len(bundle) - 1), label="cut")
    with pytest.raises(TruncatedBatchError, match="cut off"):
        wire.decode_bundle(bundle[:cut])


def test_bundle_cut_exactly_between_two_batches_is_refused() -> None:
    # Found by test_truncated_bundle_is_refused: before the bundle had an end marker, a file cut at a
    # batch boundary (or right after the header) read as a complete bundle with fewer batches.
    envs = [b"first-envelope", b"second-envelope"]
    bundle = wire.encode_bundle(envs)
    for boundary in (len(wire.BUNDLE_MAGIC), len(wire.BUNDLE_MAGIC) + 4 + len(envs[0]), len(bundle) - 4):
        with pytest.raises(TruncatedBatchError):
            wire.decode_bundle(bundle[:boundary])


def test_bytes_after_the_end_of_a_bundle_are_refused() -> None:
    with pytest.raises(MalformedBatchError, match="after the end"):
        wire.decode_bundle(wire.encode_bundle([b"one"]) + b"junk")


def test_empty_bundle_round_trips_and_empty_batches_cannot_be_bundled() -> None:
    assert wire.decode_bundle(wire.encode_bundle([])) == []
    with pytest.raises(MalformedBatchError):
        wire.encode_bundle([b"ok", b""])


def test_file_that_is_not_a_bundle_is_refused() -> None:
    with pytest.raises(MalformedBatchError, match="not a sync bundle"):
        wire.decode_bundle(b"PK\x03\x04 a zip file")
