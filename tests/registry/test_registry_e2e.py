"""Registry merging end to end in one process: two field nodes of different unions register the same
woman (Bangla name and 17-digit NID at one office, English "Mst. ..." and the 13-digit NID at the other)
and enrol her in Old Age Allowance and Widow Allowance; the hub ingests both pushes, its scheduled
matching job links them, both records get the same registry id and both enrolments a double-dipping flag;
the nodes pull and show it. Her twin sister is not linked. Then the staff review pages in a real browser."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from central_hub import accounts
from central_hub.app import create_app as create_hub
from central_hub.enrolment import issue_token
from central_hub.registry.service import RegistryService
from central_hub.store import SqlHubStore
from field_node.app import create_app as create_node_app
from field_node.node import Node
from field_node.services import Registry
from field_node.sync_client import enroll, sync_once
from tests.nid.test_nid_hub import Served

OPERATOR, NODE_PASSWORD = "rahima", "correct horse battery"
STAFF_PASSWORD = "correct horse 1"
NID17 = "1950" + "2691234567890"


@dataclass
class World:
    hub_store: SqlHubStore
    hub_app: Flask
    hub: Served
    nodes: dict[str, Node]

    @property
    def service(self) -> RegistryService:
        found: RegistryService = self.hub_app.extensions["central_hub_registry"]
        return found


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    store = SqlHubStore(f"sqlite:///{tmp_path / 'hub.db'}")
    store.migrate()
    for name, role, level, scope_id in (
        ("admin", "admin", "all", None),
        ("reviewer", "reviewer", "district", "1"),  # Cumilla: both unions
        ("sylhet", "reviewer", "division", "5"),  # holds no union of Cumilla
        ("resolver", "resolver", "all", None),
    ):
        accounts.add_staff(store, name, STAFF_PASSWORD, role, level, scope_id, hash_method="scrypt:1024:8:1")
    app = create_hub({"HUB_STORE": store, "TESTING": True, "HUB_REGISTRY_INTERVAL_S": 0.3})
    hub = Served(app)
    nodes = {}
    for union in ("1", "2"):
        Node.create(tmp_path / f"node{union}", union_id=union, hub_url=hub.url, operator=OPERATOR,
                    password=NODE_PASSWORD)  # fmt: skip
        node = Node(tmp_path / f"node{union}")
        node.login(OPERATOR, NODE_PASSWORD)
        enroll(node, issue_token(store, union_id=union, upazila_id=None).token)
        nodes[union] = node
    w = World(store, app, hub, nodes)
    try:
        yield w
    finally:
        hub.stop()
        w.service.stop()
        for node in nodes.values():
            node.close()
        store.close()


def register_amina(w: World) -> dict[str, str]:
    bn = Registry(w.nodes["1"]).create_household({"village": "Subil"}, [
        {"full_name_bn": "মোসাম্মৎ আমিনা খাতুন", "sex": "female", "date_of_birth": "1950-06-12", "nid": NID17,
         "father_name": "মোঃ আব্দুল করিম", "mother_name": "রহিমা বেগম", "relation_to_head": "head"},
        # her twin sister: same parents, same birth date, another given name, no NID
        {"full_name_bn": "মোসাম্মৎ জমিলা খাতুন", "sex": "female", "date_of_birth": "1950-06-12",
         "father_name": "মোঃ আব্দুল করিম", "mother_name": "রহিমা বেগম", "relation_to_head": "sister"},
    ], actor=OPERATOR)  # fmt: skip
    en = Registry(w.nodes["2"]).create_household({"village": "Gunaighor"}, [
        {"full_name_en": "Mst. Amina Khatun", "sex": "female", "date_of_birth": "1950-06-12", "nid": NID17[4:],
         "father_name": "Md. Abdul Karim", "relation_to_head": "head"},
    ], actor=OPERATOR)  # fmt: skip
    ids = {"bn": bn["members"][0]["id"], "twin": bn["members"][1]["id"], "en": en["members"][0]["id"]}
    ids["oaa"] = Registry(w.nodes["1"]).create_enrolment(
        {"person_id": ids["bn"], "programme": "OAA", "status": "active"}, actor=OPERATOR)["id"]
    ids["wa"] = Registry(w.nodes["2"]).create_enrolment(
        {"person_id": ids["en"], "programme": "WA", "status": "active"}, actor=OPERATOR)["id"]
    return ids


def wait_for(check: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")


def node_page(node: Node, path: str) -> str:
    app = create_node_app({"NODE": node, "TESTING": True, "WTF_CSRF_ENABLED": False})
    client = app.test_client()
    assert client.post("/login", data={"username": OPERATOR, "password": NODE_PASSWORD}).status_code == 302
    resp = client.get(path)
    assert resp.status_code == 200
    return resp.get_data(as_text=True)


def test_same_woman_at_two_offices_gets_one_registry_id_and_double_dipping_flags(world: World) -> None:
    w = world
    ids = register_amina(w)
    for node in w.nodes.values():
        sync_once(node)
    w.service.start()  # the job `central-hub serve` runs; nobody calls it here

    def published() -> bool:
        recs = {k: w.hub_store.get_record("person", ids[k]) for k in ("bn", "en")}
        return all(r is not None and r.values().get("registry_id") for r in recs.values())

    wait_for(published)
    w.service.stop()
    for node in w.nodes.values():
        sync_once(node)
    bn = Registry(w.nodes["1"]).get_person(ids["bn"])
    en = Registry(w.nodes["2"]).get_person(ids["en"])
    twin = Registry(w.nodes["1"]).get_person(ids["twin"])
    assert bn["registry_id"] == en["registry_id"] == min(ids["bn"], ids["en"])
    assert twin["registry_id"] == ids["twin"]  # the twin is not linked
    for node, eid in ((w.nodes["1"], ids["oaa"]), (w.nodes["2"], ids["wa"])):
        flags = Registry(node).get_enrolment(eid)["double_dipping_flags"]
        assert [(f["rule"], f["programmes"], sorted(f["record_ids"])) for f in flags] == [
            ("OAA_excludes_WA", ["OAA", "WA"], sorted([ids["oaa"], ids["wa"]]))
        ]
    assert [f["programmes"] for f in bn["duplicate_flags"] if f["type"] == "double_dipping"] == [["OAA", "WA"]]
    page = node_page(w.nodes["1"], f"/persons/{ids['bn']}")
    assert 'id="double-dipping"' in page and "Possible duplicate" in page and "dd-flag" in page
    page_bn = node_page(w.nodes["2"], f"/persons/{ids['en']}?lang=bn")
    assert 'id="double-dipping"' in page_bn and "সম্ভাব্য দ্বৈত নিবন্ধন" in page_bn
    twin_page = node_page(w.nodes["1"], f"/persons/{ids['twin']}")
    assert 'id="double-dipping"' not in twin_page


def test_review_api_roles_scope_and_decision(world: World) -> None:
    w = world
    store, engine = w.hub_store, w.hub_app.extensions["central_hub"].engine
    engine.hub_write("person", "k1", {"full_name_en": "Md. Abdul Karim", "sex": "male", "date_of_birth": "1960-01-01",
                                      "father_name": "Abdur Rahim"}, scope="1")  # fmt: skip
    engine.hub_write("person", "k2", {"full_name_en": "Abdul Karim", "sex": "male", "date_of_birth": "1960-01-01"},
                     scope="2")  # fmt: skip
    w.service.run_once()
    client = w.hub_app.test_client()

    def auth(user: str) -> dict[str, str]:
        resp = client.post("/api/v1/session", json={"username": user, "password": STAFF_PASSWORD})
        return {"Authorization": f"Bearer {resp.get_json()['token']}"}

    items = client.get("/api/v1/registry/review", headers=auth("reviewer")).get_json()["items"]
    assert [(i["a"]["id"], i["b"]["id"]) for i in items] == [("k2", "k1")]
    assert "full_name_en" in items[0]["differs"] and "date_of_birth" not in items[0]["differs"]
    assert client.get("/api/v1/registry/review", headers=auth("sylhet")).get_json()["items"] == []  # out of scope
    assert client.get(f"/api/v1/registry/review/{items[0]['id']}", headers=auth("sylhet")).status_code == 404
    assert client.get("/api/v1/registry/review", headers=auth("resolver")).status_code == 403
    assert client.get("/api/v1/registry/review").status_code == 401
    bad = client.post("/api/v1/registry/decisions", headers=auth("reviewer"), json={"a": "k1", "b": "k2",
                                                                                   "decision": "maybe"})  # fmt: skip
    assert bad.status_code == 400 and "decision" in bad.get_json()["errors"]
    bad_bn = client.post("/api/v1/registry/decisions", headers={**auth("reviewer"), "Accept-Language": "bn"},
                         json={"a": "k1", "b": "k1", "decision": "same", "note": 5})  # fmt: skip
    assert bad_bn.status_code == 400 and bad_bn.get_json()["errors"] == {
        "b": ["প্রথমটি থেকে ভিন্ন একটি রেকর্ড হতে হবে"], "note": ["লেখা হতে হবে, সর্বোচ্চ ২০০০ অক্ষর"]}
    ok = client.post("/api/v1/registry/decisions", headers=auth("reviewer"),
                     json={"a": "k1", "b": "k2", "decision": "same", "note": "same father, checked"})  # fmt: skip
    assert ok.status_code == 200 and ok.get_json()["registry_ids"] == {"k1": "k1", "k2": "k1"}
    assert store.get_record("person", "k2").values()["registry_id"] == "k1"  # type: ignore[union-attr]
    cluster = client.get("/api/v1/registry/persons/k2", headers=auth("reviewer")).get_json()
    assert cluster["registry_id"] == "k1" and [p["id"] for p in cluster["persons"]] == ["k1", "k2"]
    assert client.get("/api/v1/registry/review", headers=auth("admin")).get_json()["items"] == []
    decided = client.get(f"/api/v1/registry/review/{items[0]['id']}", headers=auth("admin")).get_json()
    assert (decided["status"], decided["decided_by"]) == ("same", "reviewer")
    (decision,) = w.service.decisions()
    assert (decision["actor"], decision["decision"], decision["note"]) == ("reviewer", "same", "same father, checked")


def test_review_pages_in_a_real_browser_in_english_and_bangla(world: World, browser: Any) -> None:
    w = world
    engine = w.hub_app.extensions["central_hub"].engine
    engine.hub_write("person", "k1", {"full_name_en": "Md. Abdul Karim", "sex": "male", "date_of_birth": "1960-01-01",
                                      "father_name": "Abdur Rahim"}, scope="1")  # fmt: skip
    engine.hub_write("person", "k2", {"full_name_en": "Abdul Karim", "sex": "male", "date_of_birth": "1960-01-01"},
                     scope="2")  # fmt: skip
    w.service.run_once()
    page = browser.new_page()
    try:
        page.goto(f"{w.hub.url}/registry/review")
        page.get_by_label("Username").fill("reviewer")
        page.get_by_label("Password").fill(STAFF_PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_selector("#review-queue")
        assert page.locator("h1").inner_text() == "Possible duplicates"
        assert page.locator("#review-queue tbody tr").count() == 1
        page.locator("a.open-pair").click()
        page.wait_for_selector("#pair")
        differing = page.locator("#pair tr.differs")
        assert [differing.nth(i).get_attribute("data-field") for i in range(differing.count())] == [
            "full_name_en", "father_name"]
        assert "Abdul Karim" in page.locator('#pair tr[data-field="full_name_en"]').inner_text()
        page.screenshot(path="/tmp/registry-pair-en.png", full_page=True)
        pair_url = page.url
        page.get_by_label("Same person").check()
        page.get_by_label("Note").fill("same father, checked by phone")
        page.get_by_role("button", name="Save decision").click()
        page.wait_for_selector("#cluster")
        assert page.locator("#registry-id").inner_text() == "k1"
        assert page.locator("#cluster tbody tr").count() == 2
        page.get_by_role("link", name="বাংলা").click()
        page.wait_for_selector("#cluster")
        assert page.locator("h1").inner_text() == "রেজিস্ট্রিতে একজন ব্যক্তি"
        assert page.locator("#member-count").inner_text() == "২"
        assert "সুবিল" in page.locator('#cluster tr[data-person="k1"]').inner_text()
        assert "১৯৬০" in page.locator('#cluster tr[data-person="k1"]').inner_text()  # Bangla digits
        page.screenshot(path="/tmp/registry-cluster-bn.png", full_page=True)
        page.goto(pair_url)
        page.wait_for_selector("#pair-status")
        assert "ইতিমধ্যে সিদ্ধান্ত হয়েছে: একই ব্যক্তি" in page.locator("#pair-status").inner_text()
        page.locator("#nav-registry").click()
        page.wait_for_selector("#no-pairs")
        assert page.locator("h1").inner_text() == "সম্ভাব্য দ্বৈত নিবন্ধন"
    finally:
        page.close()
