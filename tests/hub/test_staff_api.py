"""Staff API and pages: sessions, the conflict queue made by two real signed pushes, resolution as a
hub change that nodes pull, roles, geographic scope, CSRF, login throttling and the access log."""

from __future__ import annotations

import re

from central_hub.store import SqlHubStore
from sync_protocol.ids import uuid7

from .conftest import PASSWORD, HubEnv
from .helpers import FakeNode, person


def make_conflict(env: HubEnv) -> tuple[str, FakeNode, FakeNode]:
    """Two offices of union 1 change one person's mobile from the same base: one conflict."""
    a, b = FakeNode(uuid7(), label="Subil UP office"), FakeNode(uuid7(), label="Debidwar upazila office")
    env.enrol(a)
    env.enrol(b)
    pid = uuid7()
    created = env.push(a.envelope([a.change(pid, person(1))])).json
    base = created["results"][0]["hub_seq"]
    assert env.push(a.envelope([a.change(pid, {"mobile": "01811111111"}, base={"mobile": base})])).status_code == 200
    answer = env.push(b.envelope([b.change(pid, {"mobile": "01922222222"}, base={"mobile": base}, actor="karim")]))
    result = answer.json["results"][0]
    assert result["result"] == "conflict"
    return result["conflict_ids"][0], a, b


def test_session_and_conflict_queue(hub_env: HubEnv) -> None:
    cid, _a, _b = make_conflict(hub_env)
    auth = hub_env.token("resolver")
    page = hub_env.client.get("/api/v1/conflicts?status=open", headers=auth)
    assert page.status_code == 200
    assert page.json["next"] is None
    [item] = page.json["items"]
    for key in (
        "id",
        "entity",
        "entity_id",
        "field",
        "base_value",
        "hub_value",
        "incoming_value",
        "node_id",
        "created_at",
        "status",
    ):
        assert key in item
    assert (item["id"], item["field"], item["status"]) == (cid, "mobile", "open")
    assert (item["base_value"], item["hub_value"], item["incoming_value"]) == (
        person(1)["mobile"],
        "01811111111",
        "01922222222",
    )
    assert item["node_label"] == "Debidwar upazila office" and item["actor"] == "karim"
    assert hub_env.client.get("/api/v1/conflicts?entity=household", headers=auth).json["items"] == []
    assert hub_env.client.get("/api/v1/conflicts?union=2", headers=auth).json["items"] == []
    assert hub_env.client.get("/api/v1/conflicts?older_than_days=1", headers=auth).json["items"] == []
    bad = hub_env.client.get("/api/v1/conflicts?entity=nope&limit=0", headers=auth)
    assert bad.status_code == 400 and set(bad.json["errors"]) == {"entity", "limit"}
    assert hub_env.client.post("/api/v1/session", json={"username": "resolver", "password": "nope"}).status_code == 401
    assert hub_env.client.get("/api/v1/conflicts").status_code == 401


def test_conflict_paging(hub_env: HubEnv) -> None:
    a, b = FakeNode(uuid7()), FakeNode(uuid7())
    hub_env.enrol(a)
    hub_env.enrol(b)
    ids = [uuid7() for _ in range(5)]
    hub_env.push(a.envelope([a.change(i, person(n)) for n, i in enumerate(ids)]))
    hub_env.push(
        a.envelope([a.change(i, {"mobile": "01811111111"}, base={"mobile": n + 1}) for n, i in enumerate(ids)])
    )
    hub_env.push(
        b.envelope([b.change(i, {"mobile": "01922222222"}, base={"mobile": n + 1}) for n, i in enumerate(ids)])
    )
    auth = hub_env.token("admin")
    got, url = [], "/api/v1/conflicts?limit=2"
    while url:
        page = hub_env.client.get(url, headers=auth).json
        got += [c["entity_id"] for c in page["items"]]
        url = f"/api/v1/conflicts?limit=2&cursor={page['next']}" if page["next"] else ""
    whole = [c["entity_id"] for c in hub_env.client.get("/api/v1/conflicts", headers=auth).json["items"]]
    assert got == whole and sorted(got) == sorted(ids)


def test_resolve_is_a_hub_change_that_nodes_pull(hub_env: HubEnv) -> None:
    cid, a, _b = make_conflict(hub_env)
    auth = hub_env.token("resolver")
    url = f"/api/v1/conflicts/{cid}/resolve"
    bad = hub_env.client.post(url, json={"choice": "value"}, headers=auth)
    assert bad.status_code == 400 and "value" in bad.json["errors"]
    invalid = hub_env.client.post(url, json={"choice": "value", "value": "123"}, headers=auth)
    assert invalid.status_code == 400 and "mobile" in invalid.json["errors"]
    assert hub_env.client.post(url, json={"choice": "maybe"}, headers=auth).status_code == 400
    done = hub_env.client.post(url, json={"choice": "incoming", "note": "confirmed by phone"}, headers=auth)
    assert done.status_code == 200, done.json
    assert done.json["status"] == "resolved" and done.json["resolution"]["actor"] == "resolver"
    assert done.json["resolution"]["note"] == "confirmed by phone"
    assert hub_env.client.post(url, json={"choice": "hub"}, headers=auth).status_code == 409
    assert hub_env.client.get("/api/v1/conflicts", headers=auth).json["items"] == []
    entries = hub_env.pull(a).json["entries"]
    last = entries[-1]
    assert (last["origin"], last["fields"], last["hub_seq"]) == ("hub", {"mobile": "01922222222"}, done.json["hub_seq"])
    person_id = last["entity_id"]
    got = hub_env.client.get(f"/api/v1/persons/{person_id}", headers=auth)
    assert got.status_code == 200 and got.json["mobile"] == "01922222222" and got.json["union_id"] == "1"
    by_nid = hub_env.client.get(f"/api/v1/persons?nid={person(1)['nid']}", headers=auth).json
    assert [p["id"] for p in by_nid["items"]] == [person_id] and by_nid["next"] is None
    bn_digits = person(1)["nid"].translate(str.maketrans("0123456789", "০১২৩৪৫৬৭৮৯"))
    assert hub_env.client.get(f"/api/v1/persons?nid={bn_digits}", headers=auth).json["items"][0]["id"] == person_id
    assert hub_env.client.get("/api/v1/persons?nid=12", headers=auth).status_code == 400
    assert hub_env.client.get(f"/api/v1/persons/{uuid7()}", headers=auth).status_code == 404


def test_roles_and_geographic_scope(hub_env: HubEnv) -> None:
    cid, _a, _b = make_conflict(hub_env)
    url = f"/api/v1/conflicts/{cid}/resolve"
    reviewer, auditor = hub_env.token("reviewer"), hub_env.token("auditor")
    sylhet, cumilla = hub_env.token("sylhet"), hub_env.token("cumilla")
    assert len(hub_env.client.get("/api/v1/conflicts", headers=reviewer).json["items"]) == 1
    assert hub_env.client.post(url, json={"choice": "hub"}, headers=reviewer).status_code == 403
    assert hub_env.client.get("/api/v1/conflicts", headers=auditor).status_code == 403
    assert hub_env.client.get(f"/api/v1/persons?nid={person(1)['nid']}", headers=auditor).status_code == 403
    # out of scope: invisible and unresolvable
    assert hub_env.client.get("/api/v1/conflicts", headers=sylhet).json["items"] == []
    assert hub_env.client.post(url, json={"choice": "hub"}, headers=sylhet).status_code == 404
    assert hub_env.client.get(f"/api/v1/persons?nid={person(1)['nid']}", headers=sylhet).json["items"] == []
    assert hub_env.store.get_conflict(cid).status == "open"  # type: ignore[union-attr]
    # Cumilla district holds union 1
    assert len(hub_env.client.get("/api/v1/conflicts", headers=cumilla).json["items"]) == 1
    assert hub_env.client.post(url, json={"choice": "hub"}, headers=cumilla).status_code == 200


def test_login_throttling(hub_env: HubEnv) -> None:
    for _ in range(5):
        assert (
            hub_env.client.post("/api/v1/session", json={"username": "admin", "password": "wrong"}).status_code == 401
        )
    blocked = hub_env.client.post("/api/v1/session", json={"username": "admin", "password": PASSWORD})
    assert blocked.status_code == 429 and blocked.json["error"]["code"] == "too_many_attempts"
    # other accounts are unaffected
    assert (
        hub_env.client.post("/api/v1/session", json={"username": "resolver", "password": PASSWORD}).status_code == 200
    )


def test_access_log_records_every_request_without_secrets(hub_env: HubEnv) -> None:
    _cid, a, _b = make_conflict(hub_env)
    auth = hub_env.token("admin")
    hub_env.client.get("/api/v1/conflicts?status=open", headers=auth)
    hub_env.pull(a)
    rows = hub_env.store.access_page(limit=1000)
    paths = [(r["method"], r["path"], r["status"], r["outcome"]) for r in reversed(rows)]
    assert ("POST", "/sync/v1/enroll", 200, "ok") in paths
    assert paths.count(("POST", "/sync/v1/push", 200, "ok")) == 3
    assert ("GET", "/api/v1/conflicts", 200, "ok") in paths
    assert ("GET", "/sync/v1/pull", 200, "ok") in paths
    actors = {r["actor"] for r in rows}
    assert f"node:{a.node_id}" in actors and "staff:admin" in actors
    text = repr(rows)
    token = auth["Authorization"].split()[1]
    assert token not in text and PASSWORD not in text and "status=open" not in text
    # refusals are logged with their code
    hub_env.push(b"NSPB")
    assert hub_env.store.access_page(limit=1)[0]["outcome"] == "truncated_batch"
    # the auditor's page shows it; other roles may not see it
    login = hub_env.client.get("/login")
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login.text).group(1)  # type: ignore[union-attr]
    hub_env.client.post("/login", data={"username": "auditor", "password": PASSWORD, "csrf_token": csrf})
    page = hub_env.client.get("/access-log")
    assert page.status_code == 200 and "/sync/v1/push" in page.text and "truncated_batch" in page.text
    assert hub_env.client.get("/conflicts").status_code == 403
    other = hub_env.app.test_client()
    login = other.get("/login")
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login.text).group(1)  # type: ignore[union-attr]
    other.post("/login", data={"username": "reviewer", "password": PASSWORD, "csrf_token": csrf})
    assert other.get("/access-log").status_code == 403
    assert other.get("/conflicts").status_code == 200


def test_forms_need_csrf(hub_env: HubEnv) -> None:
    cid, _a, _b = make_conflict(hub_env)
    no_token = hub_env.client.post("/login", data={"username": "admin", "password": PASSWORD})
    assert no_token.status_code == 400  # CSRFProtect refuses before the view runs
    assert hub_env.client.get("/conflicts").status_code == 302  # still not logged in
    login = hub_env.client.get("/login")
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login.text).group(1)  # type: ignore[union-attr]
    assert (
        hub_env.client.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": csrf}).status_code
        == 302
    )
    forged = hub_env.client.post(f"/conflicts/{cid}", data={"choice": "hub", "note": "x"})
    assert forged.status_code == 400
    assert hub_env.store.get_conflict(cid).status == "open"  # type: ignore[union-attr]
    view = hub_env.client.get(f"/conflicts/{cid}")
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', view.text).group(1)  # type: ignore[union-attr]
    ok = hub_env.client.post(
        f"/conflicts/{cid}", data={"choice": "value", "value": "01700000000", "note": "x", "csrf_token": csrf}
    )
    assert ok.status_code == 302
    resolved = hub_env.store.get_conflict(cid)
    assert resolved.status == "resolved" and resolved.resolution["value"] == "01700000000"  # type: ignore[union-attr,index]


def test_bangla_pages(hub_env: HubEnv) -> None:
    make_conflict(hub_env)
    hub_env.client.get("/lang/bn?next=/login")
    page = hub_env.client.get("/login")
    assert "লগ ইন" in page.text and "পাসওয়ার্ড" in page.text and 'lang="bn"' in page.text
    assert hub_env.client.get("/lang/en?next=//evil.example").headers["Location"] == "/"


def test_store_fixture_type(hub_env: HubEnv) -> None:
    assert isinstance(hub_env.store, SqlHubStore)


def test_update_versus_delete_and_typed_values(hub_env: HubEnv) -> None:
    """A delete racing an update is a conflict; staff can bring the record back with the update."""
    a, b = FakeNode(uuid7()), FakeNode(uuid7())
    hub_env.enrol(a)
    hub_env.enrol(b)
    hid = uuid7()
    household = {"union_id": "1", "village": "Subil", "ward": "3", "land_decimals": 12, "monthly_income_bdt": 9000}
    rev = hub_env.push(a.envelope([a.change(hid, household, entity="household")])).json["results"][0]["hub_seq"]
    deleted = hub_env.push(
        a.envelope([a.change(hid, {"_deleted": True}, entity="household", op="delete", base={"_deleted": rev})])
    ).json
    assert deleted["results"][0]["result"] == "applied", deleted
    update = hub_env.push(
        b.envelope([b.change(hid, {"monthly_income_bdt": 12000}, entity="household", base={"monthly_income_bdt": rev})])
    ).json["results"][0]
    assert update["result"] == "conflict"
    auth = hub_env.token("admin")
    [item] = hub_env.client.get("/api/v1/conflicts?entity=household", headers=auth).json["items"]
    assert item["field"] == "_deleted" and item["hub_value"] is True and item["incoming_value"] is False
    done = hub_env.client.post(f"/api/v1/conflicts/{item['id']}/resolve", json={"choice": "incoming"}, headers=auth)
    assert done.status_code == 200, done.json
    record = hub_env.store.get_record("household", hid)
    assert record is not None and not record.deleted
    assert record.fields["monthly_income_bdt"].value == 12000


def test_web_form_keeps_the_type_of_the_value() -> None:
    from central_hub.web import parse_value

    assert parse_value("15", [12, 14]) == 15
    assert parse_value("01712345678", ["01711111111", None]) == "01712345678"
    assert parse_value("1234567890", ["1111111111"]) == "1234567890"  # an NID stays text
    assert parse_value("no", [True, False]) is False
    assert parse_value("", ["x"]) is None
