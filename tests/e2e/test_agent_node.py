"""The agent wired into a real node app (in process): the API and the UI button share one agent, its
status is kept in the encrypted database across app restarts, and the UI shows the failure in plain
Bangla or English."""

from __future__ import annotations

from pathlib import Path

from field_node.agent import AGENT_EXTENSION, agent_of
from field_node.app import create_app
from field_node.node import Node

OPERATOR, PASSWORD = "rahima", "a long pass phrase"


def app_for(data_dir: Path):  # type: ignore[no-untyped-def]
    node = Node(data_dir)
    node.login(OPERATOR, PASSWORD)
    return create_app({"NODE": node, "WTF_CSRF_ENABLED": False, "TESTING": True, "SYNC_INTERVAL_S": 0}), node


def test_api_ui_and_restart_share_one_persisted_status(tmp_path: Path) -> None:
    Node.create(tmp_path / "n", union_id="1", hub_url="http://127.0.0.1:9", operator=OPERATOR, password=PASSWORD)
    app, node = app_for(tmp_path / "n")
    api = app.test_client()
    token = api.post("/api/v1/session", json={"username": OPERATOR, "password": PASSWORD}).get_json()["token"]
    hdr = {"Authorization": f"Bearer {token}"}

    r = api.post("/api/v1/sync", headers=hdr)
    assert r.status_code == 409  # not enrolled
    agent = app.extensions[AGENT_EXTENSION]
    assert agent is agent_of(app) and agent.enabled is False
    status = api.get("/api/v1/sync/status", headers=hdr).get_json()["agent"]
    assert status["rounds"] == 1 and status["last_error"]["kind"] == "not_enrolled"

    ui = app.test_client()
    ui.post("/login", data={"username": OPERATOR, "password": PASSWORD})
    ui.post("/sync")  # the button: same agent, second round
    assert agent.status.rounds == 2
    page = ui.get("/?lang=bn").get_data(as_text=True)
    assert "এই নোডটি এখনও হাবে নিবন্ধিত হয়নি" in page
    page = ui.get("/?lang=en").get_data(as_text=True)
    assert "This node is not enrolled at the hub yet" in page
    node.close()

    # A new process over the same data directory reads the status back from the encrypted database.
    app2, node2 = app_for(tmp_path / "n")
    again = agent_of(app2).snapshot()
    assert again["rounds"] == 2 and again["last_error"]["kind"] == "not_enrolled"
    node2.close()
