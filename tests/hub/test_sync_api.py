"""The sync HTTP API with real Ed25519-signed envelopes: enrolment, push (and every refusal, each of
which applies nothing), replay, pull paging and scope."""

from __future__ import annotations

import struct

from sync_protocol import wire
from sync_protocol.ids import uuid7
from sync_protocol.signing import Signer

from .conftest import HubEnv
from .helpers import FakeNode, person


def test_enrol_once_then_token_is_spent(hub_env: HubEnv) -> None:
    node = FakeNode(uuid7())
    answer = hub_env.enrol(node)
    assert answer["node_id"] == node.node_id and answer["union_id"] == "1" and answer["scopes"] == ["1"]
    assert answer["hub_protocol_version"] == 1 and answer["hub_schema_version"] >= 1
    from central_hub.enrolment import issue_token

    issued = issue_token(hub_env.store, union_id="1")
    other = FakeNode(uuid7())
    body = {"token": issued.token, "node_id": other.node_id, "public_key": other.signer.public_b64}
    assert hub_env.client.post("/sync/v1/enroll", json=body).status_code == 200
    again = hub_env.client.post("/sync/v1/enroll", json={**body, "node_id": uuid7()})
    assert again.status_code == 401 and again.json["error"]["code"] == "invalid_token"
    bad = hub_env.client.post("/sync/v1/enroll", json={"token": "x", "node_id": "", "public_key": "AAAA"})
    assert bad.status_code == 400
    assert set(bad.json["error"]["errors"]) == {"node_id", "public_key"}


def test_upazila_token_scopes_every_union_of_the_upazila(hub_env: HubEnv) -> None:
    from sync_protocol.geo import unions_of_upazila

    node = FakeNode(uuid7())
    answer = hub_env.enrol(node, upazila="1")
    assert set(answer["scopes"]) == set(unions_of_upazila("1")) and len(answer["scopes"]) > 1
    assert hub_env.store.get_node(node.node_id).scopes == unions_of_upazila("1")  # type: ignore[union-attr]


def test_push_applies_and_replay_returns_the_stored_answer(hub_env: HubEnv) -> None:
    node = FakeNode(uuid7())
    hub_env.enrol(node)
    envelope = node.envelope([node.change(f"p{i}", person(i)) for i in range(3)])
    first = hub_env.push(envelope)
    assert first.status_code == 200
    assert [r["result"] for r in first.json["results"]] == ["applied"] * 3
    assert first.json["acked_through"] == 3
    assert hub_env.store.last_hub_seq() == 3
    again = hub_env.push(envelope)
    assert again.status_code == 200 and again.json == first.json
    assert hub_env.store.last_hub_seq() == 3
    # an invalid value is rejected per change with field-level errors, not applied
    bad = hub_env.push(node.envelope([node.change("p9", {**person(9), "nid": "12"})]))
    assert bad.json["results"][0]["result"] == "rejected"
    assert "nid" in bad.json["results"][0]["errors"]
    assert hub_env.store.last_hub_seq() == 3


def _refused(env: HubEnv, envelope: bytes, status: int, code: str) -> dict:
    before = (env.store.last_hub_seq(), env.store.list_conflicts(), [n.node.last_seq for n in env.store.list_nodes()])
    resp = env.push(envelope)
    assert resp.status_code == status, resp.json
    assert resp.json["error"]["code"] == code
    assert resp.json["error"]["message"]
    after = (env.store.last_hub_seq(), env.store.list_conflicts(), [n.node.last_seq for n in env.store.list_nodes()])
    assert after == before  # nothing applied
    return dict(resp.json["error"])


def test_every_refusal_applies_nothing(hub_env: HubEnv) -> None:
    node = FakeNode(uuid7())
    hub_env.enrol(node)
    ok = node.envelope([node.change("p1", person(1))])
    assert hub_env.push(ok).status_code == 200

    stranger = FakeNode(uuid7())
    _refused(hub_env, stranger.envelope([stranger.change("p2", person(2))]), 401, "unknown_node")

    forged = FakeNode(node.node_id, signer=Signer.generate(), seq=node.seq)
    _refused(hub_env, forged.envelope([forged.change("p2", person(2))]), 401, "bad_signature")

    tampered = bytearray(node.envelope([node.change("p2", person(2))]))
    node.seq -= 1
    tampered[-70] ^= 0xFF  # inside the compressed payload: the signature no longer matches
    _refused(hub_env, bytes(tampered), 401, "bad_signature")

    err = _refused(hub_env, node.envelope([node.change("p3", person(3), scope="2")]), 403, "out_of_scope")
    assert err["unions"] == ["2"]
    node.seq -= 1

    err = _refused(
        hub_env,
        node.envelope(
            [node.change("p1", {"mobile": "01812345678"}, base={"mobile": 1})],
            batch_id=hub_env.store.list_nodes() and _first_batch_id(hub_env),
        ),
        409,
        "batch_replay_mismatch",
    )
    node.seq -= 1

    node.seq += 5
    err = _refused(hub_env, node.envelope([node.change("p4", person(4))]), 409, "sequence_gap")
    assert err["resend_from"] == 2
    node.seq -= 6

    whole = node.envelope([node.change("p5", person(5))])
    node.seq -= 1
    _refused(hub_env, whole[:-10], 400, "truncated_batch")
    _refused(hub_env, whole[:5], 400, "truncated_batch")
    _refused(hub_env, b"", 400, "truncated_batch")
    _refused(hub_env, b"XXXX" + whole[4:], 400, "malformed_batch")

    versioned = bytearray(whole)
    struct.pack_into(">H", versioned, 4, 99)
    err = _refused(hub_env, bytes(versioned), 400, "unsupported_version")
    assert "99" in err["message"] and "1" in err["message"]

    # Content-Length beyond the limit is refused before the body is read
    huge = hub_env.client.post(
        "/sync/v1/push",
        data=b"x",
        content_type="application/octet-stream",
        environ_overrides={"CONTENT_LENGTH": str(wire.MAX_ENVELOPE_BYTES + 1)},
    )
    assert huge.status_code == 413 and huge.json["error"]["code"] == "oversized_batch"
    # a body shorter than its Content-Length (connection cut) is truncated
    short = hub_env.client.post(
        "/sync/v1/push",
        input_stream=__import__("io").BytesIO(whole[:40]),
        content_type="application/octet-stream",
        environ_overrides={"CONTENT_LENGTH": str(len(whole))},
    )
    assert short.status_code == 400 and short.json["error"]["code"] == "truncated_batch"

    hub_env.store.set_node_revoked(node.node_id)
    _refused(hub_env, whole, 403, "revoked_node")
    assert hub_env.store.last_hub_seq() == 1


def test_node_restored_from_an_older_backup_is_refused_with_sequence_reused(hub_env: HubEnv) -> None:
    node = FakeNode(uuid7())
    hub_env.enrol(node)
    first = [node.change(f"p{i}", person(i)) for i in range(3)]
    assert hub_env.push(node.envelope(first)).status_code == 200
    # a resend of seqs the hub holds, with the same changes (answer lost), is still answered
    again = hub_env.push(node.envelope(first[1:]))
    assert again.status_code == 200 and [r["seq"] for r in again.json["results"]] == [2, 3]
    node.seq = 1  # the node's database comes back from a backup taken after seq 1
    err = _refused(
        hub_env, node.envelope([node.change("p7", person(7)), node.change("p8", person(8))]), 409, "sequence_reused"
    )
    assert err["seq"] == 2 and err["hub_last_seq"] == 3
    assert "restored from an older backup" in err["message"] and "seq 2" in err["message"]
    assert hub_env.store.load_records([("person", "p7"), ("person", "p8")]) == {}


def _first_batch_id(env: HubEnv) -> str:
    from sqlalchemy import select

    from central_hub.schema import batches

    with env.store.engine.connect() as conn:
        return str(conn.execute(select(batches.c.batch_id)).scalar())


def test_pull_pages_and_scope(hub_env: HubEnv) -> None:
    a, b = FakeNode(uuid7()), FakeNode(uuid7(), union="2")
    hub_env.enrol(a)
    hub_env.enrol(b, union="2")
    assert hub_env.push(a.envelope([a.change(f"a{i}", person(i)) for i in range(7)])).status_code == 200
    assert hub_env.push(b.envelope([b.change(f"b{i}", person(i)) for i in range(4)])).status_code == 200
    seen, cursor, pages = [], None, 0
    while True:
        resp = hub_env.pull(a, cursor, limit=3)
        assert resp.status_code == 200, resp.json
        seen += resp.json["entries"]
        cursor, pages = resp.json["cursor"], pages + 1
        if not resp.json["more"]:
            break
    assert pages == 3
    assert [e["entity_id"] for e in seen] == [f"a{i}" for i in range(7)]
    assert {e["scope"] for e in seen} == {"1"}
    assert [e["hub_seq"] for e in seen] == sorted(e["hub_seq"] for e in seen)
    rest = hub_env.pull(a, cursor)
    assert rest.json["entries"] == [] and rest.json["more"] is False
    b_entries = hub_env.pull(b).json["entries"]
    assert [e["entity_id"] for e in b_entries] == [f"b{i}" for i in range(4)]


def test_pull_refusals(hub_env: HubEnv) -> None:
    node = FakeNode(uuid7())
    hub_env.enrol(node)
    assert hub_env.pull(node, cursor="not-a-cursor").json["error"]["code"] == "invalid_cursor"
    assert hub_env.pull(node, limit=0).status_code == 400
    forged = FakeNode(node.node_id)
    resp = hub_env.pull(forged)
    assert resp.status_code == 401 and resp.json["error"]["code"] == "bad_signature"
    old = hub_env.pull(node, when=1_000_000)
    assert old.status_code == 401 and old.json["error"]["code"] == "bad_signature"
    # a signature over other query parameters does not verify
    from sync_protocol.auth import sign_request

    headers = sign_request(node.signer, node.node_id, "GET", "/sync/v1/pull", {"limit": "5"})
    assert hub_env.client.get("/sync/v1/pull?limit=6", headers=headers).status_code == 401
    assert hub_env.pull(FakeNode(uuid7())).json["error"]["code"] == "unknown_node"
    hub_env.store.set_node_revoked(node.node_id)
    revoked = hub_env.pull(node)
    assert revoked.status_code == 403 and revoked.json["error"]["code"] == "revoked_node"


def test_non_canonical_payload_is_refused(hub_env: HubEnv) -> None:
    """The same batch spelled differently (here: with spaces) is refused even when properly signed."""
    import json
    import zlib

    node = FakeNode(uuid7())
    hub_env.enrol(node)
    batch = node.batch([node.change("p1", person(1))])
    payload = {
        "b": batch.batch_id,
        "n": node.node_id,
        "s": 1,
        "c": [
            [c.hlc, c.entity, c.entity_id, c.scope, c.op, dict(c.fields), dict(c.base), c.actor] for c in batch.changes
        ],
    }
    body = zlib.compress(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode())
    nid = node.node_id.encode()
    head = struct.pack(">4sHHBB", b"NSPB", 1, wire.SCHEMA_VERSION, 1, len(nid)) + nid + struct.pack(">I", len(body))
    envelope = head + body + node.signer.sign(head + body)
    _refused(hub_env, envelope, 400, "non_canonical_batch")
    node.seq = 0
    assert hub_env.push(node.envelope([node.change("p1", person(1))], batch_id=batch.batch_id)).status_code == 200


def test_upazila_node_pulls_every_union_of_its_upazila_only(hub_env: HubEnv) -> None:
    from sync_protocol.geo import unions_of_upazila

    upazila = FakeNode(uuid7(), label="Debidwar upazila office")
    hub_env.enrol(upazila, upazila="1")
    unions = sorted(unions_of_upazila("1"))
    inside, outside = unions[:3], "2000"
    assert outside not in unions
    writers = [FakeNode(uuid7(), union=u) for u in [*inside, outside]]
    for w in writers:
        hub_env.enrol(w, union=w.union)
        assert hub_env.push(w.envelope([w.change(f"{w.union}-p", person(1))])).status_code == 200
    # the upazila node may also write any of its unions in one batch
    mixed = upazila.envelope([upazila.change(f"u-{u}", person(2), scope=u) for u in inside])
    assert [r["result"] for r in hub_env.push(mixed).json["results"]] == ["applied"] * 3
    entries = hub_env.pull(upazila).json["entries"]
    assert {e["scope"] for e in entries} == set(inside)
    assert len(entries) == 6


def test_pull_page_is_gzipped_for_a_node_that_accepts_it(hub_env: HubEnv) -> None:
    """A slow union link carries mostly pull pages; they must travel compressed and decode identically."""
    import gzip
    import json

    from sync_protocol.auth import sign_request

    node = FakeNode(uuid7())
    hub_env.enrol(node)
    assert hub_env.push(node.envelope([node.change(f"p{i}", person(i)) for i in range(40)])).status_code == 200
    plain = hub_env.pull(node)
    headers = sign_request(node.signer, node.node_id, "GET", "/sync/v1/pull", {})
    zipped = hub_env.client.get("/sync/v1/pull", headers={**headers, "Accept-Encoding": "gzip"})
    assert zipped.status_code == 200
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert "Content-Encoding" not in plain.headers
    assert json.loads(gzip.decompress(zipped.data)) == plain.json
    assert len(zipped.data) * 3 < len(plain.data)
