"""NID verification wired into the hub, end to end in one process: a field node pushes persons over HTTP
to a real hub app (loopback thread), the hub's scheduled job verifies them against the real EC simulator
(another loopback thread) through the HTTP client, the results are written as hub-owned fields into the
hub log, the node pulls them and shows them. Also: restart survival, re-verification after a correction,
atomic result publishing, and the staff dashboard (JSON, roles, scope, Bangla)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from central_hub import accounts
from central_hub.app import create_app as create_hub
from central_hub.enrolment import issue_token
from central_hub.nid import simulator
from central_hub.nid.memory import InMemoryNidVerifier
from central_hub.nid.population import PopulationRecord, generate
from central_hub.nid.service import NidService, make_publisher
from central_hub.nid.sql_store import SqlVerificationStore
from central_hub.nid.store import Outcome, Status, Subject
from central_hub.nid.worker import VerificationWorker
from central_hub.store import SqlHubStore
from field_node.app import create_app as create_node_app
from field_node.node import Node
from field_node.services import Registry
from field_node.sync_client import enroll, sync_once
from sync_protocol.hub import HubEngine

OPERATOR, NODE_PASSWORD = "rahima", "correct horse battery"
STAFF_PASSWORD = "correct horse 1"


class Served:
    """A WSGI app on a loopback port in a thread."""

    def __init__(self, app: Flask) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@dataclass
class World:
    tmp: Path
    db_url: str
    people: list[PopulationRecord]
    sim: simulator.ServerThread
    hub_store: SqlHubStore
    hub_app: Flask
    hub: Served
    node: Node

    @property
    def service(self) -> NidService:
        found: NidService = self.hub_app.extensions["central_hub_nid"]
        return found

    def restart_hub(self, nid_url: str | None = None) -> None:
        """Stop the hub and start a new process's worth of objects on the same database."""
        self.hub.stop()
        self.service.stop()
        self.hub_store.close()
        self.hub_store, self.hub_app = make_hub(self.db_url, self.sim.url if nid_url is None else nid_url)
        self.hub = Served(self.hub_app)
        self.node.set_config("hub_url", self.hub.url)

    def sync(self) -> Any:
        return sync_once(self.node)

    def sim_counters(self) -> dict[str, int]:
        state = self.sim.server.app.extensions[simulator.EXTENSION]  # type: ignore[attr-defined]
        return dict(state.counters)


def make_hub(db_url: str, nid_url: str) -> tuple[SqlHubStore, Flask]:
    store = SqlHubStore(db_url)
    store.migrate()
    if store.get_staff("admin") is None:
        for name, role, level, scope_id in (
            ("admin", "admin", "all", None),
            ("auditor", "auditor", "all", None),
            ("sylhet", "resolver", "division", "5"),  # holds no union of Cumilla
        ):
            accounts.add_staff(store, name, STAFF_PASSWORD, role, level, scope_id, hash_method="scrypt:1024:8:1")
    app = create_hub({"HUB_STORE": store, "TESTING": True, "HUB_NID_URL": nid_url, "HUB_NID_CONCURRENCY": 4})
    return store, app


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    people = [p for p in generate(40, seed=7) if len(p.nid) in (13, 17)][:4]
    sim = simulator.ServerThread(simulator.create_app({"NID_POPULATION": people}))
    sim.__enter__()
    db_url = f"sqlite:///{tmp_path / 'hub.db'}"
    hub_store, hub_app = make_hub(db_url, sim.url)
    hub = Served(hub_app)
    Node.create(tmp_path / "node", union_id="1", hub_url=hub.url, operator=OPERATOR, password=NODE_PASSWORD)
    node = Node(tmp_path / "node")
    node.login(OPERATOR, NODE_PASSWORD)
    enroll(node, issue_token(hub_store, union_id="1", upazila_id=None).token)
    w = World(tmp_path, db_url, people, sim, hub_store, hub_app, hub, node)
    try:
        yield w
    finally:
        w.hub.stop()
        w.service.stop()
        w.hub_store.close()
        node.close()
        sim.stop()


def member(p: PopulationRecord, **changes: Any) -> dict[str, Any]:
    values = {
        "full_name_bn": p.name_bn,
        "full_name_en": p.name_en,
        "sex": p.sex,
        "date_of_birth": p.date_of_birth,
        "nid": p.nid,
        "father_name": p.father_name_bn,
        "mother_name": p.mother_name_en,
    }
    values.update(changes)
    return values


def register(w: World) -> dict[str, str]:
    """Three persons: one as on the NID card, one with a wrong birth date, one with an NID nobody holds."""
    right, wrong_dob, _unknown = w.people[0], w.people[1], w.people[2]
    bad_dob = (date.fromisoformat(wrong_dob.date_of_birth) + timedelta(days=40)).isoformat()
    unknown_nid = "1" + "9" * 12  # 13 digits, not in the population
    hh = Registry(w.node).create_household(
        {"village": "Subil"},
        [
            member(right, relation_to_head="head"),
            member(wrong_dob, date_of_birth=bad_dob, relation_to_head="spouse"),
            member(w.people[2], nid=unknown_nid, relation_to_head="son"),
        ],
        actor=OPERATOR,
    )
    ids = [m["id"] for m in hh["members"]]
    return {"verified": ids[0], "mismatch": ids[1], "not_found": ids[2]}


def node_client(w: World) -> Any:
    app = create_node_app({"NODE": w.node, "TESTING": True, "WTF_CSRF_ENABLED": False})
    client = app.test_client()
    assert client.post("/login", data={"username": OPERATOR, "password": NODE_PASSWORD}).status_code == 302
    token = client.post("/api/v1/session", json={"username": OPERATOR, "password": NODE_PASSWORD}).get_json()["token"]
    client.h = {"Authorization": f"Bearer {token}"}  # type: ignore[attr-defined]
    return client


def staff_headers(w: World, username: str = "admin") -> dict[str, str]:
    client = w.hub_app.test_client()
    resp = client.post("/api/v1/session", json={"username": username, "password": STAFF_PASSWORD})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return {"Authorization": f"Bearer {js(resp)['token']}"}


def js(resp: Any) -> Any:
    return resp.get_json()


def test_node_to_hub_to_simulator_and_back(world: World) -> None:
    w = world
    ids = register(w)
    assert w.sync().applied >= 4  # household + three persons

    report = w.service.run_once()
    assert report.claimed == 3 and report.recorded == {"verified": 1, "mismatch": 1, "not_found": 1}
    assert w.service.store.get(ids["mismatch"]).mismatch_fields == ("date_of_birth",)  # type: ignore[union-attr]
    # published as hub-owned fields in the hub's records and log
    hub_record = w.hub_store.get_record("person", ids["mismatch"])
    assert hub_record is not None and hub_record.values()["nid_status"] == "mismatch"

    pulled = w.sync()
    assert pulled.pulled == 3
    reg = Registry(w.node)
    for expected, pid in ids.items():
        assert reg.get_person(pid)["nid_status"] == expected
    assert reg.get_person(ids["mismatch"])["nid_mismatch_fields"] == ["date_of_birth"]
    assert reg.get_person(ids["verified"])["nid_checked_at"]

    client = node_client(w)
    api = client.get(f"/api/v1/persons/{ids['mismatch']}", headers=client.h).get_json()
    assert api["nid_status"] == "mismatch" and api["nid_mismatch_fields"] == ["date_of_birth"]
    page = client.get(f"/persons/{ids['mismatch']}").get_data(as_text=True)
    assert 'data-status="mismatch"' in page and "Mismatch" in page and "Date of birth" in page
    assert "Verified" in client.get(f"/persons/{ids['verified']}").get_data(as_text=True)
    home = client.get("/").get_data(as_text=True)
    assert "/persons/needing-correction" in home
    listing = client.get("/persons/needing-correction").get_data(as_text=True)
    assert ids["mismatch"] in listing and ids["not_found"] in listing and ids["verified"] not in listing
    assert "Not found" in listing
    client.get("/lang/bn")
    bn = client.get(f"/persons/{ids['mismatch']}").get_data(as_text=True)
    assert "তথ্যে অমিল" in bn
    assert "পাওয়া যায়নি" in client.get("/persons/needing-correction").get_data(as_text=True)
    assert "যাচাইকৃত" in client.get(f"/persons/{ids['verified']}").get_data(as_text=True)

    # a second run with nothing changed asks the simulator nothing more and writes nothing to the log
    requests_before, log_before = w.sim_counters()["requests"], w.hub_store.last_hub_seq()
    assert w.service.run_once().claimed == 0
    assert w.sim_counters()["requests"] == requests_before and w.hub_store.last_hub_seq() == log_before


def test_correcting_the_birth_date_at_the_office_verifies_the_person(world: World) -> None:
    w = world
    ids = register(w)
    w.sync()
    w.service.run_once()
    w.sync()
    reg = Registry(w.node)
    pid = ids["mismatch"]
    assert reg.get_person(pid)["nid_status"] == "mismatch"

    reg.update_person(pid, {"date_of_birth": w.people[1].date_of_birth}, actor=OPERATOR)
    w.sync()
    assert w.service.store.get(pid) is not None
    report = w.service.run_once()
    assert report.claimed == 1 and report.recorded == {"verified": 1}  # only the corrected person is asked
    state = w.service.store.get(pid)
    assert state is not None and state.status == Status.VERIFIED and state.version == 2
    w.sync()
    assert reg.get_person(pid)["nid_status"] == "verified"
    assert reg.get_person(pid)["nid_mismatch_fields"] == []
    assert pid not in reg_ids(reg.persons_needing_correction())

    # an edit that does not touch what the EC is asked (mobile number) does not re-queue
    reg.update_person(pid, {"mobile": "01711000000"}, actor=OPERATOR)
    w.sync()
    assert w.service.run_once().claimed == 0


def reg_ids(rows: list[dict[str, Any]]) -> set[str]:
    return {r["id"] for r in rows}


def test_queue_and_results_survive_a_restart(world: World) -> None:
    w = world
    ids = register(w)
    w.sync()
    # The hub takes the persons into its queue and then "dies" before asking anyone.
    assert w.service.store.scan_until_done(datetime.now(UTC)) == 3
    assert w.service.store.counts()["pending"] == 3
    w.restart_hub()
    assert w.service.store.counts()["pending"] == 3  # the queue is in the hub database
    report = w.service.run_once()  # the new process's scan finds nothing new: the queue itself survived
    assert report.recorded == {"verified": 1, "mismatch": 1, "not_found": 1}

    requests_before = w.sim_counters()["requests"]
    w.restart_hub()
    counts = w.service.store.counts()
    assert (counts["verified"], counts["mismatch"], counts["not_found"], counts["pending"]) == (1, 1, 1, 0)
    assert w.service.run_once().claimed == 0 and w.sim_counters()["requests"] == requests_before
    w.sync()
    assert Registry(w.node).get_person(ids["not_found"])["nid_status"] == "not_found"


def test_without_a_service_url_verification_is_off_and_persons_stay_pending(world: World) -> None:
    w = world
    w.restart_hub(nid_url="")
    register(w)
    w.sync()
    assert not w.service.enabled
    assert w.service.run_once().claimed == 0
    data = w.hub_app.test_client().get("/api/v1/nid", headers=staff_headers(w)).get_json()
    assert data["service"]["enabled"] is False


def test_a_result_and_its_publication_commit_together(tmp_path: Path) -> None:
    """If writing the hub-owned fields fails, the recorded verdict is rolled back too: the person stays
    claimable (after the lease) instead of being 'verified' in the queue but never shown to nodes."""
    hub_store = SqlHubStore(f"sqlite:///{tmp_path / 'hub.db'}")
    hub_store.migrate()

    def broken_publish(_state: Any) -> None:
        raise RuntimeError("disk full")

    store = SqlVerificationStore(hub_store, publish=broken_publish)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    store.enqueue(Subject("p1", "1234567890", "Abdul Karim", date(1980, 1, 1)), now)
    (claim,) = store.claim(1, now, timedelta(minutes=5))
    with pytest.raises(RuntimeError):
        store.record(claim, Outcome(Status.VERIFIED), now)
    state = store.get("p1")
    assert state is not None and state.status == Status.PENDING and state.attempts == 0
    assert [c.subject.person_id for c in store.claim(1, now + timedelta(minutes=6), timedelta(minutes=5))] == ["p1"]
    hub_store.close()


def test_dashboard_json_counts_by_union_roles_and_scope(world: World) -> None:
    w = world
    ids = register(w)
    w.sync()
    w.service.run_once()
    client = w.hub_app.test_client()
    data = client.get("/api/v1/nid", headers=staff_headers(w)).get_json()
    assert {k: data["counts"][k] for k in ("verified", "mismatch", "not_found", "pending", "error")} == {
        "verified": 1, "mismatch": 1, "not_found": 1, "pending": 0, "error": 0,
    }  # fmt: skip
    assert [(u["union_id"], u["counts"]["mismatch"]) for u in data["by_union"]] == [("1", 1)]
    failures = {f["person_id"]: f for f in data["recent_failures"]}
    assert set(failures) == {ids["mismatch"], ids["not_found"]}
    assert failures[ids["mismatch"]]["nid_mismatch_fields"] == ["date_of_birth"]
    service = data["service"]
    assert service["enabled"] and service["circuit"] == "closed" and service["last_success_at"]
    assert service["last_error_at"] is None
    # roles and scope
    assert client.get("/api/v1/nid").status_code == 401
    assert client.get("/api/v1/nid", headers=staff_headers(w, "auditor")).status_code == 403
    sylhet = client.get("/api/v1/nid", headers=staff_headers(w, "sylhet")).get_json()
    assert sylhet["by_union"] == [] and sylhet["recent_failures"] == [] and sylhet["counts"]["verified"] == 0


def test_dashboard_page_in_a_real_browser_in_english_and_bangla(world: World, browser: Any) -> None:
    w = world
    ids = register(w)
    w.sync()
    w.service.run_once()
    page = browser.new_page()
    try:
        page.goto(f"{w.hub.url}/nid")
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill(STAFF_PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_selector("#nid-counts")
        assert page.locator("h1").inner_text() == "NID verification"
        assert page.locator('#nid-counts td[data-state="verified"]').inner_text() == "1"
        assert page.locator('#nid-counts td[data-state="mismatch"]').inner_text() == "1"
        assert page.locator("#nid-circuit").inner_text() == "Working"
        row = page.locator(f'#nid-failures tr[data-person="{ids["mismatch"]}"]')
        assert "Date of birth" in row.inner_text() and "Mismatch" in row.inner_text()
        assert "Subil" in page.locator('#nid-unions tr[data-union="1"]').inner_text()
        page.screenshot(path="/tmp/nid-dashboard-en.png", full_page=True)
        page.get_by_role("link", name="বাংলা").click()
        page.wait_for_selector("#nid-counts")
        assert page.locator("h1").inner_text() == "এনআইডি যাচাই"
        header = page.locator("#nid-counts thead").inner_text()
        for word in ("যাচাইকৃত", "তথ্যে অমিল", "পাওয়া যায়নি", "যাচাই অপেক্ষমাণ"):
            assert word in header
        assert page.locator('#nid-counts td[data-state="verified"]').inner_text() == "১"
        assert "সুবিল" in page.locator('#nid-unions tr[data-union="1"]').inner_text()
        assert "জন্ম তারিখ" in page.locator(f'#nid-failures tr[data-person="{ids["mismatch"]}"]').inner_text()
        page.screenshot(path="/tmp/nid-dashboard-bn.png", full_page=True)
    finally:
        page.close()


def test_the_scheduled_job_verifies_without_being_called(world: World) -> None:
    """What `central-hub serve` runs: the APScheduler job scans and verifies on its own."""
    w = world
    register(w)
    w.sync()
    w.service.interval_s = 0.2
    w.service.start()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        counts = w.service.store.counts()
        if counts["verified"] + counts["mismatch"] + counts["not_found"] == 3:
            break
        time.sleep(0.05)
    w.service.stop()
    counts = w.service.store.counts()
    assert (counts["verified"], counts["mismatch"], counts["not_found"], counts["pending"]) == (1, 1, 1, 0)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def hub_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlHubStore]:
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else f"sqlite:///{tmp_path / 'hub.db'}"
    store = SqlHubStore(str(url))
    store.migrate()
    yield store
    store.close()


def test_scan_and_publish_on_both_backends(hub_db: SqlHubStore) -> None:
    """The log scan queues persons written by any path (node push, staff resolution, hub write) and only
    when verified details changed; a recorded result enters the hub log in the same transaction."""
    engine = HubEngine(hub_db)
    queue = SqlVerificationStore(hub_db, publish=make_publisher(engine))
    now = datetime(2026, 1, 1, tzinfo=UTC)
    person = {"full_name_bn": "মোঃ আব্দুল করিম", "date_of_birth": "1980-02-03", "nid": "1980123456789"}
    engine.hub_write("person", "p1", person, scope="1")
    engine.hub_write("person", "p2", {"full_name_bn": "রহিমা খাতুন", "date_of_birth": "1990-01-01"}, scope="1")  # no NID
    engine.hub_write("household", "h1", {"village": "Subil"}, scope="1")
    assert queue.scan_until_done(now) == 1 and queue.scan_cursor() == 3
    assert queue.scan_until_done(now) == 0  # nothing new

    (claim,) = queue.claim(10, now, timedelta(minutes=5))
    state = queue.record(claim, Outcome(Status.MISMATCH, mismatch_fields=("name",)), now)
    assert state is not None
    entry = hub_db.read_log(3, None, 10)[-1]
    assert (entry.entity_id, entry.fields["nid_status"], entry.fields["nid_mismatch_fields"]) == (
        "p1",
        "mismatch",
        ["name"],
    )
    assert queue.scan_until_done(now) == 0  # our own hub-owned write does not re-queue

    engine.hub_write("person", "p1", {"mobile": "01711000000"})  # not asked of the EC
    assert queue.scan_until_done(now) == 0
    engine.hub_write("person", "p1", {"full_name_bn": "মোঃ আবদুল করিম"})  # e.g. a staff resolution of the name
    assert queue.scan_until_done(now) == 1
    requeued = queue.get("p1")
    assert requeued is not None and requeued.status == Status.PENDING and requeued.version == 2
    assert requeued.subject.name == "মোঃ আবদুল করিম"


def test_a_failing_record_does_not_stop_the_batch(tmp_path: Path) -> None:
    hub_store = SqlHubStore(f"sqlite:///{tmp_path / 'hub.db'}")
    hub_store.migrate()
    calls = {"n": 0}

    def flaky_publish(_state: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("database busy")

    store = SqlVerificationStore(hub_store, publish=flaky_publish)
    now = datetime.now(UTC)
    for n in range(3):
        store.enqueue(Subject(f"p{n}", f"{1234567890 + n}", "Abdul Karim", date(1980, 1, 1)), now)
    verifier = InMemoryNidVerifier([])
    with VerificationWorker(store, verifier, max_workers=2) as worker:
        report = worker.run_once()
    assert report.claimed == 3 and report.unrecorded == 1 and report.recorded == {"not_found": 2}
    assert store.counts()["pending"] == 1  # leased; asked again after the lease
    hub_store.close()


def test_service_side_errors_are_retried_at_start_but_invalid_details_are_not(tmp_path: Path) -> None:
    """A wrong API key makes every answer a final error; after fixing the key and restarting, those
    persons are asked again. Details that can never verify wait for a correction instead."""
    hub_store = SqlHubStore(f"sqlite:///{tmp_path / 'hub.db'}")
    hub_store.migrate()
    store = SqlVerificationStore(hub_store)
    now = datetime.now(UTC)
    store.enqueue(Subject("key", "1234567890", "Abdul Karim", date(1980, 1, 1)), now)
    store.enqueue(Subject("bad", "12345", "Abdul Karim", date(1980, 1, 1)), now)
    claims = {c.subject.person_id: c for c in store.claim(10, now, timedelta(minutes=5))}
    store.record(claims["key"], Outcome(Status.ERROR, error="auth_failed: HTTP 401"), now)
    store.record(claims["bad"], Outcome(Status.ERROR, error="invalid_request: NID must have 10, 13 or 17 digits"), now)
    assert store.claim(10, now + timedelta(hours=1), timedelta(minutes=5)) == []

    service = NidService(store, VerificationWorker(store, InMemoryNidVerifier([]), max_workers=1), interval_s=3600)
    service.start()
    deadline = time.monotonic() + 10
    while store.get("key").status == Status.ERROR and time.monotonic() < deadline:  # type: ignore[union-attr]
        time.sleep(0.02)
    service.stop()
    assert store.get("key").status == Status.NOT_FOUND  # type: ignore[union-attr]  # asked again: a verdict
    assert store.get("bad").status == Status.ERROR and not store.get("bad").retrying  # type: ignore[union-attr]
    hub_store.close()
