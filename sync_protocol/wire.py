"""Canonical, compressed, signed batches: the bytes that travel over HTTP and in file bundles.

Envelope (big-endian)::

    b"NSPB" | protocol u16 | schema u16 | codec u8 | node_id_len u8 | node_id | payload_len u32
            | payload (zlib of canonical JSON) | Ed25519 signature (64 bytes, over all that precedes it)

Versions and the node id travel in clear so a hub can refuse an unknown version, or find the node's key,
before it decompresses anything. The payload is canonical JSON (sorted keys, no spaces, UTF-8), so one
logical batch has exactly one encoding; ``decode_batch`` refuses any other spelling of the same batch,
which is what lets the hub recognise a replay by ``batch_id`` plus digest.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec
from marshmallow import Schema, ValidationError, fields, validate

from .entities import ENTITIES, SCHEMA_VERSION
from .errors import (
    MalformedBatchError,
    NonCanonicalBatchError,
    OversizedBatchError,
    TruncatedBatchError,
    UnsupportedVersionError,
)
from .model import PROTOCOL_VERSION, Batch, Change, Op
from .signing import SIGNATURE_BYTES, Signer, verify

MAGIC = b"NSPB"
CODEC_ZLIB = 1
MAX_ENVELOPE_BYTES = 8 * 1024 * 1024
MAX_PAYLOAD_BYTES = 64 * 1024 * 1024
MAX_CHANGES = 5000
_HEAD = struct.Struct(">4sHHBB")
_LEN = struct.Struct(">I")


# One encoder for every call: json.dumps with options builds a new JSONEncoder each time (the hub encodes
# one row per change). Same output as json.dumps with these options.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


_MSGSPEC_SORTED = msgspec.json.Encoder(order="sorted").encode


def canonical_json(value: Any) -> bytes:
    return _CANONICAL(value).encode("utf-8")


@dataclass(frozen=True)
class Header:
    protocol_version: int
    schema_version: int
    codec: int
    node_id: str
    payload_offset: int
    payload_len: int

    @property
    def signed_len(self) -> int:
        return self.payload_offset + self.payload_len


# ---- marshmallow schemas of the payload -------------------------------------------------------------

_SCALAR_OR_LIST = fields.Raw(allow_none=True)


class _ChangeRow(fields.Tuple):
    """``[hlc, entity, entity_id, scope, op, fields, base, actor]``: arrays, not objects, to keep the
    field names off the wire 500 times a batch."""

    def __init__(self) -> None:
        super().__init__(
            (
                fields.Integer(strict=True, validate=validate.Range(min=0)),
                fields.String(validate=validate.OneOf(sorted(ENTITIES))),
                fields.String(validate=validate.Length(min=1, max=64)),
                fields.String(validate=validate.Length(min=1, max=32)),
                fields.String(validate=validate.OneOf([o.value for o in Op])),
                fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=64)), values=_SCALAR_OR_LIST),
                fields.Dict(
                    keys=fields.String(validate=validate.Length(min=1, max=64)),
                    values=fields.Integer(strict=True, validate=validate.Range(min=0)),
                ),
                fields.String(validate=validate.Length(max=128)),
            )
        )


class BatchPayloadSchema(Schema):
    b = fields.String(required=True, validate=validate.Length(min=1, max=64), metadata={"doc": "batch id"})
    n = fields.String(required=True, validate=validate.Length(min=1, max=64), metadata={"doc": "node id"})
    s = fields.Integer(required=True, strict=True, validate=validate.Range(min=1), metadata={"doc": "first seq"})
    c = fields.List(_ChangeRow(), required=True, validate=validate.Length(min=1, max=MAX_CHANGES))


_PAYLOAD_SCHEMA = BatchPayloadSchema()


# The same rules once more, as types msgspec checks while it parses (the hub's fast decode). Each type is
# at least as strict as the schema; whatever it refuses goes to the reference path, which decides.
_Key = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
_Natural = Annotated[int, msgspec.Meta(ge=0)]


class _WireRow(msgspec.Struct, array_like=True):
    hlc: _Natural
    entity: Literal[tuple(sorted(ENTITIES))]  # type: ignore[valid-type]
    entity_id: _Key
    scope: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    op: Literal[tuple(o.value for o in Op)]  # type: ignore[valid-type]
    fields: dict[_Key, Any]
    base: dict[_Key, _Natural]
    actor: Annotated[str, msgspec.Meta(max_length=128)]


class _WirePayload(msgspec.Struct, forbid_unknown_fields=True):
    b: _Key
    c: Annotated[list[_WireRow], msgspec.Meta(min_length=1, max_length=MAX_CHANGES)]
    n: _Key
    s: Annotated[int, msgspec.Meta(ge=1)]


_MSGSPEC_DECODE = msgspec.json.Decoder(_WirePayload).decode

_ENTITY_NAMES = frozenset(ENTITIES)
_OP_NAMES = frozenset(o.value for o in Op)


def _natural(value: Any, least: int) -> bool:
    # marshmallow's Integer(strict=True) takes any integral number except a bool.
    return isinstance(value, int) and value is not True and value is not False and value >= least


def _text(value: Any, least: int, most: int) -> bool:
    return isinstance(value, str) and least <= len(value) <= most


def _key(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 64


def payload_ok(data: Any) -> bool:
    """Exactly the rules of ``BatchPayloadSchema``, written out by hand for JSON-decoded data: marshmallow
    cost 84 µs per change, this about 2. ``BatchPayloadSchema`` stays the reference and the source of
    the error messages; tests/protocol/test_wire_fastcheck.py checks that both accept the same data."""
    if not isinstance(data, dict) or len(data) != 4:
        return False
    b, n, s, c = data.get("b"), data.get("n"), data.get("s"), data.get("c")
    if not (_text(b, 1, 64) and _text(n, 1, 64) and _natural(s, 1)):
        return False
    if not isinstance(c, list) or not 1 <= len(c) <= MAX_CHANGES:
        return False
    for row in c:
        if not isinstance(row, list) or len(row) != 8:
            return False
        hlc, entity, entity_id, scope, op, values, base, actor = row
        if not (
            _natural(hlc, 0)
            and isinstance(entity, str)
            and entity in _ENTITY_NAMES
            and _text(entity_id, 1, 64)
            and _text(scope, 1, 32)
            and isinstance(op, str)
            and op in _OP_NAMES
            and isinstance(values, dict)
            and isinstance(base, dict)
            and _text(actor, 0, 128)
        ):
            return False
        for k in values:
            if not _key(k):
                return False
        for k, v in base.items():
            if not (_key(k) and _natural(v, 0)):
                return False
    return True


def _row(change: Change) -> list[Any]:
    return [
        change.hlc,
        change.entity,
        change.entity_id,
        change.scope,
        change.op,
        dict(change.fields),
        dict(change.base),
        change.actor,
    ]


def _payload(batch: Batch) -> dict[str, Any]:
    return {"b": batch.batch_id, "n": batch.node_id, "s": batch.first_seq, "c": [_row(c) for c in batch.changes]}


def _row_digest(canonical_row: bytes) -> str:
    return hashlib.sha256(canonical_row).hexdigest()[:32]


def change_digest(change: Change) -> str:
    """Fingerprint of one change's content (everything but its node id and seq, which are its identity):
    the hub keeps it with the change's result, to tell a resent change from a different change that
    reuses the seq."""
    return _row_digest(canonical_json(_row(change)))


def check_batch_shape(batch: Batch) -> None:
    if not batch.changes:
        raise MalformedBatchError("a batch must hold at least one change")
    if len(batch.changes) > MAX_CHANGES:
        raise OversizedBatchError(f"a batch holds at most {MAX_CHANGES} changes, this one {len(batch.changes)}")
    first = batch.changes[0].node_seq
    for i, change in enumerate(batch.changes):
        if change.node_id != batch.node_id:
            raise MalformedBatchError(f"change {i} is from node {change.node_id}, batch is from {batch.node_id}")
        if change.node_seq != first + i:
            raise MalformedBatchError(
                f"changes of a batch must be consecutive: expected seq {first + i}, found {change.node_seq}"
            )


def encode_batch(batch: Batch, signer: Signer) -> bytes:
    """The one canonical, compressed, signed encoding of ``batch``."""
    check_batch_shape(batch)
    raw = canonical_json(_payload(batch))
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise OversizedBatchError(f"batch payload is {len(raw)} bytes; the limit is {MAX_PAYLOAD_BYTES}")
    payload = zlib.compress(raw, 6)
    node = batch.node_id.encode("utf-8")
    if len(node) > 255:
        raise MalformedBatchError("node id longer than 255 bytes")
    head = (
        _HEAD.pack(MAGIC, batch.protocol_version, batch.schema_version, CODEC_ZLIB, len(node))
        + node
        + _LEN.pack(len(payload))
    )
    signed = head + payload
    envelope = signed + signer.sign(signed)
    if len(envelope) > MAX_ENVELOPE_BYTES:
        raise OversizedBatchError(
            f"encoded batch is {len(envelope)} bytes; the limit is {MAX_ENVELOPE_BYTES}: send fewer changes"
        )
    return envelope


def read_header(envelope: bytes) -> Header:
    """Parse and check the clear-text header; refuses unknown versions before anything else."""
    if len(envelope) > MAX_ENVELOPE_BYTES:
        raise OversizedBatchError(
            f"batch is {len(envelope)} bytes; the limit is {MAX_ENVELOPE_BYTES}: send fewer changes per batch"
        )
    if len(envelope) < _HEAD.size:
        raise TruncatedBatchError(f"batch is only {len(envelope)} bytes: it was cut off in transfer")
    magic, proto, schema, codec, node_len = _HEAD.unpack_from(envelope)
    if magic != MAGIC:
        raise MalformedBatchError("not a sync batch (wrong magic bytes)")
    if proto != PROTOCOL_VERSION or schema != SCHEMA_VERSION:
        raise UnsupportedVersionError(
            f"batch uses protocol version {proto} with schema version {schema}; this side speaks "
            f"protocol version {PROTOCOL_VERSION} with schema version {SCHEMA_VERSION}. "
            "Update the older of the two installations.",
            batch_protocol_version=proto,
            batch_schema_version=schema,
            supported_protocol_version=PROTOCOL_VERSION,
            supported_schema_version=SCHEMA_VERSION,
        )
    if codec != CODEC_ZLIB:
        raise MalformedBatchError(f"unknown compression codec {codec}")
    off = _HEAD.size
    if len(envelope) < off + node_len + _LEN.size:
        raise TruncatedBatchError("batch was cut off inside its header")
    try:
        node_id = envelope[off : off + node_len].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedBatchError("node id in the header is not UTF-8") from exc
    off += node_len
    (payload_len,) = _LEN.unpack_from(envelope, off)
    off += _LEN.size
    expected = off + payload_len + SIGNATURE_BYTES
    if len(envelope) < expected:
        raise TruncatedBatchError(f"batch was cut off: {len(envelope)} of {expected} bytes arrived; send it again")
    if len(envelope) > expected:
        raise MalformedBatchError(f"{len(envelope) - expected} unexpected bytes after the signature")
    return Header(proto, schema, codec, node_id, off, payload_len)


def digest(envelope: bytes) -> str:
    return hashlib.sha256(envelope).hexdigest()


def decode_batch(envelope: bytes, public_key: bytes) -> Batch:
    """Verify and decode. Raises a ``SyncProtocolError`` subclass for every way the bytes can be wrong."""
    return decode_batch_digests(envelope, public_key)[0]


def decode_batch_digests(envelope: bytes, public_key: bytes) -> tuple[Batch, tuple[str, ...]]:
    """``decode_batch`` plus ``change_digest`` of every change, got almost free from the canonical check."""
    header = read_header(envelope)
    signed = envelope[: header.signed_len]
    verify(public_key, envelope[header.signed_len :], signed)
    return _decode(header, envelope[header.payload_offset : header.signed_len])


def _decode_payload(header: Header, compressed: bytes) -> Batch:
    return _decode(header, compressed)[0]


def _floats_spelled_alike(values: Iterable[Any]) -> bool:
    """msgspec and ``json`` write every JSON value alike except a float with an exponent (``1e16`` against
    ``1e+16``): only without one can msgspec's encoding stand for the canonical one."""
    for v in values:
        kind = type(v)
        if kind is str or kind is int or kind is bool or v is None:
            continue
        if kind is float:
            if "e" in repr(v):
                return False
        elif kind is list:
            if not _floats_spelled_alike(v):
                return False
        elif kind is not dict or not _floats_spelled_alike(v.values()):
            return False
    return True


def _decode_fast(header: Header, raw: bytes) -> tuple[Batch, tuple[str, ...]] | None:
    """``_decode`` of a well-formed canonical payload with msgspec (C) instead of ``json``: under half the
    time. ``None`` whenever it is not certain, and the reference path then decides and words the error;
    tests/protocol/test_wire_fast_decode.py holds the two together."""
    try:
        data = _MSGSPEC_DECODE(raw)
    except (msgspec.DecodeError, ValueError, TypeError):
        return None
    if data.n != header.node_id:
        return None
    encode = _MSGSPEC_SORTED
    try:
        rows = [encode(row) for row in data.c]
    except (msgspec.EncodeError, ValueError, TypeError, OverflowError):
        return None
    canonical = b"".join(
        (
            b'{"b":',
            encode(data.b),
            b',"c":[',
            b",".join(rows),
            b'],"n":',
            encode(data.n),
            b',"s":',
            str(data.s).encode("ascii"),
            b"}",
        )
    )
    if canonical != raw:
        return None
    for row in data.c:
        if not _floats_spelled_alike(row.fields.values()):
            return None
    first, node_id = data.s, header.node_id
    changes = tuple(
        Change(node_id, first + i, r.hlc, r.entity, r.entity_id, r.scope, r.op, r.fields, r.base, r.actor)
        for i, r in enumerate(data.c)
    )
    batch = Batch(node_id, data.b, changes, header.protocol_version, header.schema_version)
    return batch, tuple(_row_digest(r) for r in rows)


def _batch(header: Header, data: dict[str, Any]) -> Batch:
    first = data["s"]
    node_id = header.node_id
    changes = tuple(
        Change(node_id, first + i, row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7])
        for i, row in enumerate(data["c"])
    )
    return Batch(
        node_id=node_id,
        batch_id=data["b"],
        changes=changes,
        protocol_version=header.protocol_version,
        schema_version=header.schema_version,
    )


def _decode(header: Header, compressed: bytes) -> tuple[Batch, tuple[str, ...]]:
    raw = _inflate(compressed)
    fast = _decode_fast(header, raw)
    return fast if fast is not None else _decode_reference(header, raw)


def _inflate(compressed: bytes) -> bytes:
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(compressed, MAX_PAYLOAD_BYTES)
    except zlib.error as exc:
        raise MalformedBatchError(f"payload does not decompress: {exc}") from exc
    if inflater.unconsumed_tail:
        raise OversizedBatchError(f"payload inflates beyond {MAX_PAYLOAD_BYTES} bytes")
    if not inflater.eof:
        raise TruncatedBatchError("compressed payload ends early")
    return raw


def _decode_reference(header: Header, raw: bytes) -> tuple[Batch, tuple[str, ...]]:
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedBatchError(f"payload is not UTF-8 JSON: {exc}") from exc
    if not payload_ok(data):
        try:
            _PAYLOAD_SCHEMA.load(data)
        except ValidationError as exc:
            raise MalformedBatchError(f"payload does not match the batch schema: {exc.messages}") from exc
        # Only reachable if the two checks ever disagree: the stricter one wins.
        raise MalformedBatchError("payload does not match the batch schema")
    if data["n"] != header.node_id:
        raise MalformedBatchError("node id in the payload differs from the header")
    # The canonical form of the whole payload, assembled from the canonical form of each row (keys b, c,
    # n, s in sorted order; the check above guarantees there are no others): the rows' bytes are what
    # the change digests are taken over.
    try:
        rows = [canonical_json(row) for row in data["c"]]
    except ValueError as exc:  # NaN or Infinity: json.loads takes them, canonical JSON does not
        raise MalformedBatchError(f"payload holds a number JSON does not allow: {exc}") from exc
    canonical = b"".join(
        (
            b'{"b":',
            canonical_json(data["b"]),
            b',"c":[',
            b",".join(rows),
            b'],"n":',
            canonical_json(data["n"]),
            b',"s":',
            str(data["s"]).encode("ascii"),
            b"}",
        )
    )
    if canonical != raw:
        raise NonCanonicalBatchError("payload is not in canonical form (sorted keys, no whitespace, UTF-8)")
    return _batch(header, data), tuple(_row_digest(r) for r in rows)


# ---- file bundles: the same signed batches, one after another in a file ------------------------------

BUNDLE_MAGIC = b"NSPBUNDLE1\n"


# A zero length closes the bundle: without it, a file cut exactly between two batches would read as a
# complete, shorter bundle and the missing batches would go unnoticed.
_BUNDLE_END = _LEN.pack(0)


def encode_bundle(envelopes: list[bytes]) -> bytes:
    out = bytearray(BUNDLE_MAGIC)
    for env in envelopes:
        if not env:
            raise MalformedBatchError("a bundle cannot hold an empty batch")
        out += _LEN.pack(len(env)) + env
    return bytes(out + _BUNDLE_END)


def decode_bundle(data: bytes) -> list[bytes]:
    """Split a bundle into its envelopes (each still to be verified by ``decode_batch``)."""
    if not data.startswith(BUNDLE_MAGIC):
        raise MalformedBatchError("not a sync bundle file (wrong header)")
    off = len(BUNDLE_MAGIC)
    out: list[bytes] = []
    while True:
        if off + _LEN.size > len(data):
            raise TruncatedBatchError("bundle file is cut off; copy it again from the source")
        (n,) = _LEN.unpack_from(data, off)
        off += _LEN.size
        if n == 0:
            if off != len(data):
                raise MalformedBatchError(f"{len(data) - off} unexpected bytes after the end of the bundle")
            return out
        if n > MAX_ENVELOPE_BYTES:
            raise OversizedBatchError("bundle holds a batch larger than the limit")
        if off + n > len(data):
            raise TruncatedBatchError("bundle file is cut off; copy it again from the source")
        out.append(data[off : off + n])
        off += n
