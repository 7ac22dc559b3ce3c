"""The node's sync client against the real HubEngine over HTTP (in-process test hub), and its error
handling against hubs that misbehave."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask

from field_node.app import create_app
from field_node.cli import main
from field_node.errors import NotEnrolledError, SyncFailedError
from field_node.node import Node
from field_node.services import Registry
from field_node.sync_client import HubClient, enroll, sync_once

from .conftest import OPERATOR, PASSWORD, member
from .hubfake import MiniHub, serve


@pytest.fixture
def hub() -> Iterator[tuple[MiniHub, str]]:
    h = MiniHub()
    with serve(h.app) as url:
        yield h, url


def _make_node(tmp: Path, url: str, hub: MiniHub, name: str = "node") -> Node:
    Node.create(tmp / name, union_id="1", hub_url=url, operator=OPERATOR, password=PASSWORD)
    node = Node(tmp / name)
    node.login(OPERATOR, PASSWORD)
    hub.tokens[f"tok-{name}"] = frozenset({"1"})
    enroll(node, f"tok-{name}")
    return node


def test_push_and_pull_through_the_real_engine(tmp_path: Path, hub: tuple[MiniHub, str]) -> None:
    h, url = hub
    a, b = _make_node(tmp_path, url, h, "a"), _make_node(tmp_path, url, h, "b")
    reg_a, reg_b = Registry(a), Registry(b)
    hh = reg_a.create_household(
        {"village": "Subil"},
        [
            member(nid="4567891234"),
            member(full_name_en="Jamal Uddin", full_name_bn="জামাল উদ্দিন", sex="male", date_of_birth="1975-01-01"),
        ],
        actor=OPERATOR,
    )
    pid = hh["members"][0]["id"]
    reg_a.create_enrolment({"person_id": pid, "programme": "OAA"}, actor=OPERATOR)
    summary = sync_once(a)
    assert (summary.changes_acked, summary.applied, summary.rejected) == (4, 4, 0)
    assert summary.pending_after == 0 and reg_a.sync_status()["last_sync_at"] and not reg_a.sync_status()["last_error"]
    assert h.store.records[("person", pid)].values()["nid"] == "4567891234"
    # node b, same union, pulls a's records into its own encrypted store, searchable at once
    got = sync_once(b)
    assert got.pulled == 4
    assert [p["id"] for p in reg_b.search_persons("জামাল")] == [hh["members"][1]["id"]]
    # hub-owned results flow down, and a second sync is a no-op
    h.engine.hub_write("person", pid, {"nid_status": "verified"})
    assert sync_once(a).pulled >= 1
    assert reg_a.get_person(pid)["nid_status"] == "verified"
    again = sync_once(a)
    assert (again.batches_pushed, again.pulled) == (0, 0)


def test_concurrent_edit_becomes_a_conflict_and_the_hub_value_shows(tmp_path: Path, hub: tuple[MiniHub, str]) -> None:
    h, url = hub
    a, b = _make_node(tmp_path, url, h, "a"), _make_node(tmp_path, url, h, "b")
    pid = Registry(a).create_household({}, [member()], actor=OPERATOR)["members"][0]["id"]
    sync_once(a)
    sync_once(b)
    Registry(a).update_person(pid, {"mobile": "01711111111"}, actor=OPERATOR)
    Registry(b).update_person(pid, {"mobile": "01922222222"}, actor=OPERATOR)
    assert sync_once(a).applied == 1
    result = sync_once(b)
    assert result.conflicts == 1
    assert [c.field for c in h.store.list_conflicts("open")] == ["mobile"]
    assert Registry(b).get_person(pid)["mobile"] == "01711111111"  # the hub decides; b shows the hub's value


def test_lost_answer_is_replayed_not_applied_twice(tmp_path: Path, hub: tuple[MiniHub, str]) -> None:
    h, url = hub
    a = _make_node(tmp_path, url, h)
    Registry(a).create_household({}, [member()], actor=OPERATOR)
    h.lose_next_push_answer = True
    with pytest.raises(SyncFailedError) as exc:
        sync_once(a)
    assert exc.value.code == "http_504"
    assert Registry(a).sync_status()["last_error"].startswith("http_504")
    log_len = len(h.store.log)
    summary = sync_once(a)  # re-sends the same batch byte for byte
    assert summary.changes_acked == 2 and len(h.store.log) == log_len
    assert Registry(a).sync_status()["pending_changes"] == 0 and Registry(a).sync_status()["last_error"] is None


def test_sequence_gap_resends_from_what_the_hub_lacks(tmp_path: Path, hub: tuple[MiniHub, str]) -> None:
    h, url = hub
    a = _make_node(tmp_path, url, h)
    reg = Registry(a)
    reg.create_household({}, [member()], actor=OPERATOR)
    sync_once(a)
    h.reset_store_keeping_nodes()
    reg.create_grievance({"complainant_name": "X", "category": "other", "description": "d"}, actor=OPERATOR)
    summary = sync_once(a)
    # seq 1-2 were re-sent after the hub named the gap (already acknowledged here, so only 3 is new)
    assert summary.changes_acked == 1 and summary.rejected == 0
    assert h.store.nodes[a.node_id].last_seq == 3
    assert {k[0] for k in h.store.records} == {"household", "person", "grievance"}


def test_hub_errors_become_clear_sync_failures(tmp_path: Path, node: Node) -> None:
    with pytest.raises(NotEnrolledError) as not_enrolled:
        sync_once(node)
    assert not_enrolled.value.code == "not_enrolled"
    node.set_config("enrolled", 1)
    Registry(node).create_household({}, [member()], actor=OPERATOR)
    dead = HubClient("http://127.0.0.1:9", timeout=2)
    with pytest.raises(SyncFailedError) as exc:
        sync_once(node, dead)
    assert exc.value.code == "unreachable" and "cannot reach the hub" in exc.value.message
    broken = Flask("broken")
    broken.add_url_rule("/sync/v1/push", "p", lambda: ("<html>oops</html>", 500), methods=["POST"])
    with serve(broken) as url, pytest.raises(SyncFailedError) as exc:
        sync_once(node, HubClient(url))
    assert exc.value.code == "http_500"
    refusing = Flask("refusing")
    refusing.add_url_rule(
        "/sync/v1/push",
        "p",
        lambda: ({"error": {"code": "unknown_node", "message": "enrol first"}}, 401),
        methods=["POST"],
    )
    with serve(refusing) as url, pytest.raises(SyncFailedError) as exc:
        sync_once(node, HubClient(url))
    assert (exc.value.code, exc.value.message) == ("unknown_node", "enrol first")
    garbage = Flask("garbage")
    garbage.add_url_rule("/sync/v1/push", "p", lambda: {"hello": 1}, methods=["POST"])
    with serve(garbage) as url, pytest.raises(SyncFailedError) as exc:
        sync_once(node, HubClient(url))
    assert exc.value.code == "bad_answer"
    status = Registry(node).sync_status()
    assert status["pending_changes"] == 2 and status["last_error"].startswith("bad_answer")


def test_enroll_sync_commands_and_api(tmp_path: Path, hub: tuple[MiniHub, str], monkeypatch: Any) -> None:
    h, url = hub
    runner = CliRunner()
    env = {"FIELD_NODE_OPERATOR": OPERATOR, "FIELD_NODE_OPERATOR_PASSWORD": PASSWORD}
    d = tmp_path / "cli"
    r = runner.invoke(main, ["init", "--data-dir", str(d), "--union", "1", "--hub", url], env=env)
    assert r.exit_code == 0, r.output
    assert runner.invoke(main, ["sync", "--data-dir", str(d)], env=env).exit_code == 1  # not enrolled yet
    bad = runner.invoke(main, ["enroll", "--data-dir", str(d), "--token", "wrong"], env=env)
    assert bad.exit_code == 1 and "token" in bad.output
    h.tokens["good"] = frozenset({"1"})
    r = runner.invoke(main, ["enroll", "--data-dir", str(d), "--token", "good"], env=env)
    assert r.exit_code == 0 and "scopes: 1" in r.output
    node = Node(d)
    node.login(OPERATOR, PASSWORD)
    Registry(node).create_household({}, [member()], actor=OPERATOR)
    node.close()
    r = runner.invoke(main, ["sync", "--data-dir", str(d)], env=env)
    assert r.exit_code == 0 and "pushed 2 change(s)" in r.output and "0 still pending" in r.output
    # the API's "sync now"
    node = Node(d)
    app = create_app({"NODE": node})
    c = app.test_client()
    token = c.post("/api/v1/session", json={"username": OPERATOR, "password": PASSWORD}).get_json()["token"]
    hdr = {"Authorization": f"Bearer {token}"}
    c.post(
        "/api/v1/persons",
        headers=hdr,
        json={
            **member(full_name_en="New One", full_name_bn="নতুন", date_of_birth="2001-01-01"),
            "household_id": Registry(node).list("household")[0][0]["id"],
        },
    )
    r = c.post("/api/v1/sync", headers=hdr)
    assert r.status_code == 200 and r.get_json()["summary"]["applied"] == 1
    st = c.get("/api/v1/sync/status", headers=hdr).get_json()
    assert st["enrolled"] and st["pending_changes"] == 0 and st["last_sync_at"]
    node.close()
