"""The node's JSON API (DESIGN section 6) and the UI's CSRF protection."""

from __future__ import annotations

from typing import Any

from .conftest import OPERATOR, PASSWORD, member


def test_session_and_bearer_auth(app: Any) -> None:
    c = app.test_client()
    bad = c.post("/api/v1/session", json={"username": OPERATOR, "password": "nope"})
    assert bad.status_code == 401 and bad.get_json() == {"errors": {"password": ["Wrong operator name or password"]}}
    bn = c.post("/api/v1/session", json={"username": OPERATOR}, headers={"Accept-Language": "bn"})
    assert bn.status_code == 422 and bn.get_json()["errors"] == {"password": ["আবশ্যক তথ্য"]}
    assert c.get("/api/v1/persons").status_code == 401
    assert c.get("/api/v1/persons", headers={"Authorization": "Bearer forged"}).status_code == 401
    token = c.post("/api/v1/session", json={"username": OPERATOR, "password": PASSWORD}).get_json()["token"]
    assert c.get("/api/v1/persons", headers={"Authorization": f"Bearer {token}"}).get_json() == {
        "items": [],
        "next": None,
    }


def test_household_person_enrolment_grievance_round_trip(api: Any) -> None:
    h = api.h
    r = api.post(
        "/api/v1/households",
        headers=h,
        json={
            "union_id": "1",
            "village": "Subil",
            "members": [
                member(),
                member(
                    full_name_en="Jamal Uddin",
                    full_name_bn="জামাল উদ্দিন",
                    sex="male",
                    date_of_birth="1978-01-01",
                    relation_to_head="spouse",
                ),
            ],
        },
    )
    assert r.status_code == 201, r.get_json()
    hh = r.get_json()
    assert isinstance(hh["id"], str) and len(hh["members"]) == 2
    assert api.get(f"/api/v1/households/{hh['id']}", headers=h).get_json()["village"] == "Subil"
    r = api.patch(f"/api/v1/households/{hh['id']}", headers=h, json={"ward": "৩"})
    assert r.status_code == 200 and r.get_json()["ward"] == "3"
    r = api.post(
        "/api/v1/persons",
        headers=h,
        json={
            "household_id": hh["id"],
            "full_name_en": "Mina Akter",
            "sex": "female",
            "date_of_birth": "2010-04-04",
            "brn": "20101234567890123",
        },
    )
    assert r.status_code == 201
    pid = r.get_json()["id"]
    r = api.patch(f"/api/v1/persons/{pid}", headers=h, json={"mobile": "8801912345678"})
    assert r.get_json()["mobile"] == "01912345678"
    found = api.get("/api/v1/persons?q=জামাল", headers=h).get_json()
    assert [p["full_name_en"] for p in found["items"]] == ["Jamal Uddin"] and found["next"] is None
    assert [p["id"] for p in api.get("/api/v1/persons?q=01912345678", headers=h).get_json()["items"]] == [pid]
    r = api.post("/api/v1/enrolments", headers=h, json={"person_id": pid, "programme": "PESP", "status": "applied"})
    assert r.status_code == 201
    eid = r.get_json()["id"]
    assert (
        api.patch(f"/api/v1/enrolments/{eid}", headers=h, json={"status": "approved"}).get_json()["status"]
        == "approved"
    )
    assert [e["id"] for e in api.get(f"/api/v1/enrolments?person_id={pid}", headers=h).get_json()["items"]] == [eid]
    r = api.post(
        "/api/v1/grievances",
        headers=h,
        json={
            "complainant_person_id": pid,
            "category": "payment_delay",
            "description": "stipend not paid",
            "programme": "PESP",
        },
    )
    assert r.status_code == 201
    g = r.get_json()
    assert g["tracking_number"].startswith("G-1-") and g["status"] == "received"
    r = api.post(f"/api/v1/grievances/{g['id']}/events", headers=h, json={"type": "escalate", "tier": "district"})
    assert r.status_code == 201 and (r.get_json()["status"], r.get_json()["tier"]) == ("escalated", "district")
    assert api.get(f"/api/v1/grievances/{g['id']}", headers=h).get_json()["events"][0]["type"] == "escalate"
    status = api.get("/api/v1/sync/status", headers=h).get_json()
    assert status["pending_changes"] == 10 and status["enrolled"] is False and status["last_sync_at"] is None


def test_errors_are_field_level_4xx_in_the_asked_language(api: Any) -> None:
    h = api.h
    r = api.post("/api/v1/households?lang=bn", headers=h, json={"union_id": "1", "members": [member(nid="123")]})
    assert r.status_code == 422
    assert r.get_json() == {"errors": {"members.0.nid": ["১০, ১৩ অথবা ১৭ অঙ্কের হতে হবে"]}}
    r = api.post("/api/v1/households", headers={**h, "Accept-Language": "en"}, json={"union_id": "424242"})
    assert r.status_code == 422 and r.get_json()["errors"] == {"union_id": ["Unknown union"]}
    assert api.get("/api/v1/households", headers=h).get_json()["items"] == []  # nothing stored
    assert api.get("/api/v1/persons/nope", headers=h).status_code == 404
    r = api.post("/api/v1/persons", headers=h, data="not json", content_type="application/json")
    assert r.status_code == 422 and "errors" in r.get_json()
    r = api.post("/api/v1/households", headers=h, json={"union_id": "1", "bogus": 1})
    assert r.status_code == 422 and r.get_json()["errors"] == {"bogus": ["Unknown field"]}


def test_duplicate_needs_confirmation(api: Any) -> None:
    h = api.h
    hh = api.post("/api/v1/households", headers=h, json={"members": [member(nid="4567891234")]}).get_json()
    again = {
        "household_id": hh["id"],
        "full_name_en": "Z",
        "sex": "male",
        "date_of_birth": "1990-01-01",
        "nid": "4567891234",
    }
    r = api.post("/api/v1/persons", headers=h, json=again)
    assert r.status_code == 409 and "duplicate" in r.get_json()["errors"]
    assert r.get_json()["duplicates"]["person"][0]["id"] == hh["members"][0]["id"]
    assert api.post("/api/v1/persons", headers=h, json={**again, "confirm_duplicate": True}).status_code == 201


def test_list_pagination(api: Any) -> None:
    h = api.h
    for i in range(3):
        api.post(
            "/api/v1/grievances", headers=h, json={"complainant_name": f"N{i}", "category": "other", "description": "d"}
        )
    first = api.get("/api/v1/grievances?limit=2", headers=h).get_json()
    assert len(first["items"]) == 2 and first["next"]
    second = api.get(f"/api/v1/grievances?limit=2&cursor={first['next']}", headers=h).get_json()
    assert len(second["items"]) == 1 and second["next"] is None


def test_ui_forms_need_a_csrf_token_but_the_api_does_not(app: Any) -> None:
    c = app.test_client()
    assert c.post("/login", data={"username": OPERATOR, "password": PASSWORD}).status_code == 400
    page = c.get("/login").get_data(as_text=True)
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    r = c.post("/login", data={"username": OPERATOR, "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 302
    assert c.post("/api/v1/session", json={"username": OPERATOR, "password": PASSWORD}).status_code == 201


def test_ui_requires_login(app: Any) -> None:
    r = app.test_client().get("/persons?q=x")
    assert r.status_code == 302 and "/login" in r.location


def test_bad_limit_is_a_field_error(api: Any) -> None:
    r = api.get("/api/v1/persons?limit=abc", headers=api.h)
    assert r.status_code == 422 and r.get_json() == {"errors": {"limit": ["Invalid"]}}
    assert api.get("/api/v1/persons?q=x&limit=0", headers=api.h).status_code == 422
