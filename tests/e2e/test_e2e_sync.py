"""Real processes: a hub and field nodes of Debidwar upazila on loopback. Enrolment with a one-time
token, sync both ways through the nodes' JSON API, a real conflict resolved through the staff API, a
pending local edit that a pull does not overwrite, and file bundles carried between processes."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from field_node.node import Node
from field_node.sync_client import HubClient
from sync_protocol import wire

from .harness import ApiError, HubProc, NodeProc, run_cli, stop_all

pytestmark = pytest.mark.e2e

SUBIL, GUNAIGHOR, DEBIDWAR = "1", "2", "1"
_n = itertools.count(1)


def household(node: NodeProc, union: str | None = None, name_en: str = "Rahima Khatun", name_bn: str = "রহিমা খাতুন"):
    i = next(_n)
    body: dict[str, Any] = {
        "ward": str(i % 9 + 1),
        "village": "Subil",
        "address": f"House {i}, Subil bazar road",
        "land_decimals": 12,
        "house_type": "kutcha",
        "monthly_income_bdt": 7500,
        "members": [
            {
                "full_name_bn": f"{name_bn} {i}",
                "full_name_en": f"{name_en} {i}",
                "sex": "female",
                "date_of_birth": f"19{50 + i % 40}-03-0{1 + i % 9}",
                "relation_to_head": "head",
                "mobile": f"0171{i:07d}",
            }
        ],
    }
    if union:
        body["union_id"] = union
    hh: dict[str, Any] = node.api.post("/api/v1/households", body)
    return hh, hh["members"][0]["id"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("e2e")
    hub = HubProc(root).init().start()
    subil = NodeProc("subil", root, SUBIL, hub.url).init()
    upazila = NodeProc("debidwar-upazila", root, SUBIL, hub.url).init()
    out = subil.enroll(hub.token(union=SUBIL))
    assert "scopes: 1" in out
    assert f"scopes: {SUBIL}" in out
    up_out = upazila.enroll(hub.token(upazila=DEBIDWAR))
    assert GUNAIGHOR in up_out.split("scopes:")[1].split(", ")  # every union of Debidwar
    subil.start()
    upazila.start()
    try:
        yield {"root": root, "hub": hub, "subil": subil, "upazila": upazila}
    finally:
        stop_all([subil.proc, upazila.proc, hub.proc])


def test_a_token_works_once(world: dict[str, Any], tmp_path: Path) -> None:
    hub: HubProc = world["hub"]
    token = hub.token(union=GUNAIGHOR)
    first = NodeProc("first", tmp_path, GUNAIGHOR, hub.url).init()
    assert "scopes: 2" in first.enroll(token)
    second = NodeProc("second", tmp_path, GUNAIGHOR, hub.url).init()
    with pytest.raises(RuntimeError, match="token"):
        second.enroll(token)


def test_changes_flow_both_ways_and_a_real_conflict_is_resolved(world: dict[str, Any]) -> None:
    hub: HubProc = world["hub"]
    subil: NodeProc = world["subil"]
    upazila: NodeProc = world["upazila"]
    _, pid = household(subil)
    assert subil.sync()["summary"]["applied"] == 2
    upazila.sync()
    assert upazila.api.get(f"/api/v1/persons/{pid}")["full_name_en"].startswith("Rahima Khatun")

    # An edit by another office in scope reaches the union node.
    upazila.api.patch(f"/api/v1/persons/{pid}", {"mobile": "01811111111"})
    upazila.sync()
    subil.sync()
    assert subil.api.get(f"/api/v1/persons/{pid}")["mobile"] == "01811111111"

    # Both offices change the same field from the same base: the second to arrive is a conflict.
    subil.api.patch(f"/api/v1/persons/{pid}", {"occupation": "farmer"})
    upazila.api.patch(f"/api/v1/persons/{pid}", {"occupation": "day labourer"})
    first = upazila.sync()["summary"]
    assert (first["applied"] + first["merged"], first["conflicts"]) == (1, 0)  # accepted
    summary = subil.sync()["summary"]
    assert summary["conflicts"] == 1
    open_ = [c for c in hub.conflicts() if c["entity_id"] == pid]
    assert len(open_) == 1
    conflict = open_[0]
    assert (conflict["field"], conflict["hub_value"], conflict["incoming_value"]) == (
        "occupation",
        "day labourer",
        "farmer",
    )
    # Until staff decide, the union node shows the hub's value.
    assert subil.api.get(f"/api/v1/persons/{pid}")["occupation"] == "day labourer"

    # A staff decision is a hub change; it reaches both offices by pull.
    hub.staff().post(f"/api/v1/conflicts/{conflict['id']}/resolve", {"choice": "incoming", "note": "checked"})
    assert not [c for c in hub.conflicts() if c["entity_id"] == pid]
    for node in (subil, upazila):
        node.sync()
        assert node.api.get(f"/api/v1/persons/{pid}")["occupation"] == "farmer"
    assert hub.staff().get(f"/api/v1/persons/{pid}")["occupation"] == "farmer"


def test_a_pull_does_not_overwrite_a_pending_local_edit(world: dict[str, Any]) -> None:
    hub: HubProc = world["hub"]
    subil: NodeProc = world["subil"]
    upazila: NodeProc = world["upazila"]
    _, pid = household(subil)
    subil.sync()
    upazila.sync()
    subil.api.patch(f"/api/v1/persons/{pid}", {"father_name": "Abdul Karim"})  # pending on the node
    upazila.api.patch(f"/api/v1/persons/{pid}", {"father_name": "Abdul Kadir", "occupation": "teacher"})
    upazila.sync()

    # Pull only (no push), with the node's own code against the real hub, while the node is stopped.
    assert subil.proc is not None
    subil.proc.terminate()
    node = Node(subil.data_dir)
    node.login(subil.operator, subil.password)
    _, store, engine = node.require()
    page = HubClient(hub.url).pull(engine.signer, node.node_id, store.get_cursor(), 500)  # type: ignore[arg-type]
    assert any(e.entity_id == pid and "father_name" in e.fields for e in page.entries)
    engine.apply_pull(page)
    node.close()
    subil.start()

    person = subil.api.get(f"/api/v1/persons/{pid}")
    assert person["father_name"] == "Abdul Karim"  # the pending local value stands
    assert person["occupation"] == "teacher"  # a field without a local edit takes the hub's value
    assert subil.status()["pending_changes"] == 1
    # The push that follows makes it a conflict for staff, not a silent overwrite either way.
    assert subil.sync()["summary"]["conflicts"] == 1
    fields = {(c["field"], c["incoming_value"]) for c in hub.conflicts() if c["entity_id"] == pid}
    assert fields == {("father_name", "Abdul Karim")}


def test_sync_status_reports_an_unreachable_hub_in_plain_words(world: dict[str, Any], tmp_path: Path) -> None:
    hub: HubProc = world["hub"]
    lonely = NodeProc("lonely", tmp_path, GUNAIGHOR, "http://127.0.0.1:9").init()
    lonely.start()
    try:
        with pytest.raises(ApiError) as err:
            lonely.sync()
        assert err.value.status == 409  # not enrolled
        status = lonely.status()["agent"]
        assert status["last_error"]["kind"] == "not_enrolled"
        assert "field-node enroll" in status["last_error"]["en"]
        assert "নিবন্ধিত" in status["last_error"]["bn"]
    finally:
        stop_all([lonely.proc])
    del hub


def test_bundles_between_processes(world: dict[str, Any], tmp_path: Path) -> None:
    hub: HubProc = world["hub"]
    upazila: NodeProc = world["upazila"]
    gunaighor = NodeProc("gunaighor", tmp_path, GUNAIGHOR, hub.url).init()
    gunaighor.enroll(hub.token(union=GUNAIGHOR))
    gunaighor.start()
    try:
        ids = [household(gunaighor, name_en="Fatema Begum", name_bn="ফাতেমা বেগম")[1] for _ in range(3)]
        bundle = tmp_path / "gunaighor.nspb"
        out = gunaighor.cli("bundle", "export", "--data-dir", str(gunaighor.data_dir), "--out", str(bundle))
        assert "1 batch(es)" in out
        assert gunaighor.status()["pending_changes"] == 6  # export acknowledges nothing

        # A tampered copy is refused at the upazila node and at the hub, with a clear message.
        data = bundle.read_bytes()
        env = wire.decode_bundle(data)[0]
        head = wire.read_header(env)
        bad = bytearray(env)
        bad[head.payload_offset + 5] ^= 0x20
        tampered = tmp_path / "tampered.nspb"
        tampered.write_bytes(wire.encode_bundle([bytes(bad)]))
        with pytest.raises(RuntimeError, match="bundle refused: batch 1 of 1 is not valid"):
            upazila.cli("bundle", "import", "--data-dir", str(upazila.data_dir), str(tampered))
        forged = bytearray(env)
        forged[-3] ^= 0x01
        tampered.write_bytes(wire.encode_bundle([bytes(forged)]))
        with pytest.raises(RuntimeError, match="bad_signature"):
            run_cli(["central-hub", "bundle-import", "--db", hub.db_url, str(tampered)])

        # Store and forward: the upazila node keeps it, its next sync hands it to the hub.
        out = upazila.cli("bundle", "import", "--data-dir", str(upazila.data_dir), str(bundle))
        assert "1 stored for forwarding" in out
        again = upazila.cli("bundle", "import", "--data-dir", str(upazila.data_dir), str(bundle))
        assert "0 stored for forwarding, 1 already known" in again
        result = upazila.sync()
        assert result["summary"]["bundle_batches_forwarded"] == 1
        for pid in ids:
            assert upazila.api.get(f"/api/v1/persons/{pid}")["full_name_en"].startswith("Fatema Begum")
            assert hub.staff().get(f"/api/v1/persons/{pid}")["union_id"] == GUNAIGHOR
        assert upazila.sync()["summary"]["bundle_batches_forwarded"] == 0  # forwarded once only

        # The same bundle at the hub directly changes nothing; the origin's online sync learns the results.
        out = run_cli(["central-hub", "bundle-import", "--db", hub.db_url, str(bundle)])
        assert "0 applied" in out and "6 already known" in out
        summary = gunaighor.sync()["summary"]
        assert summary["changes_acked"] == 6 and summary["applied"] == 6  # the stored answers
        assert gunaighor.status()["pending_changes"] == 0
    finally:
        stop_all([gunaighor.proc])


def test_the_background_agent_syncs_by_itself_and_backs_off(world: dict[str, Any], tmp_path: Path) -> None:
    import time

    hub: HubProc = world["hub"]
    auto = NodeProc("auto", tmp_path, GUNAIGHOR, hub.url, sync_interval=1).init()
    auto.enroll(hub.token(union=GUNAIGHOR))
    auto.start()
    try:
        _, pid = household(auto, name_en="Salma Khatun", name_bn="সালমা খাতুন")
        deadline = time.monotonic() + 30
        while auto.status()["pending_changes"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert auto.status()["pending_changes"] == 0  # nobody pressed "Sync now"
        assert hub.staff().get(f"/api/v1/persons/{pid}")["full_name_en"].startswith("Salma Khatun")

        # The hub goes away: rounds fail, the agent backs off and says so in plain words.
        assert hub.proc is not None
        hub.proc.kill9()
        household(auto)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            agent = auto.status()["agent"]
            if agent["consecutive_failures"] >= 1:
                break
            time.sleep(0.2)
        assert agent["last_error"]["kind"] == "unreachable"
        assert "অফলাইন" in agent["last_error"]["bn"]
        assert agent["next_attempt_at"] > agent["last_attempt_at"]
        hub.start()
        deadline = time.monotonic() + 40  # the first backoff is 2.5-5 s
        while auto.status()["pending_changes"] and time.monotonic() < deadline:
            time.sleep(0.3)
        status = auto.status()["agent"]
        assert status["pending_changes"] == 0 and status["last_error"] is None
        assert status["consecutive_failures"] == 0
    finally:
        stop_all([auto.proc])
        if hub.proc is not None and not hub.proc.alive:
            hub.start()
