"""Operator screens through Flask's test client (the browser test covers the main flow in Chromium)."""

from __future__ import annotations

from typing import Any

import pytest

from field_node.app import create_app
from field_node.node import Node
from field_node.services import Registry

from .conftest import OPERATOR, PASSWORD


@pytest.fixture
def ui(node: Node) -> Any:
    client = create_app({"NODE": node, "TESTING": True, "WTF_CSRF_ENABLED": False}).test_client()
    assert client.post("/login", data={"username": OPERATOR, "password": PASSWORD}).status_code == 302
    return client


def _household(ui: Any, extra: dict[str, str] | None = None) -> Any:
    form = {
        "member_count": "2",
        "save": "1",
        "hh-village": "Subil",
        "m-0-full_name_bn": "নাসরিন আক্তার",
        "m-0-full_name_en": "Nasrin Akter",
        "m-0-sex": "female",
        "m-0-date_of_birth": "১৯৮৮-০২-০৩",
        "m-0-nid": "4567891234",
        "m-0-mobile": "+8801712345678",
        "m-1-full_name_en": "Babul Mia",
        "m-1-sex": "male",
        "m-1-date_of_birth": "1985-01-01",
    }
    form.update(extra or {})
    return ui.post("/households/new", data=form)


def test_register_view_edit_and_life_status(ui: Any, registry: Registry) -> None:
    r = _household(ui)
    assert r.status_code == 302 and "/households/" in r.location
    page = ui.get(r.location).get_data(as_text=True)
    assert "Nasrin Akter" in page and "Babul Mia" in page
    person = registry.search_persons("nasrin")[0]
    assert person["date_of_birth"] == "1988-02-03" and person["mobile"] == "01712345678"
    edit = {f"p-{k}": (v if v is not None else "") for k, v in person.items() if not isinstance(v, bool)}
    edit.update({"action": "edit", "p-occupation": "Tailor", "p-disability": "1"})
    assert ui.post(f"/persons/{person['id']}", data=edit).status_code == 302
    assert registry.get_person(person["id"])["occupation"] == "Tailor"
    assert registry.get_person(person["id"])["disability"] is True
    bad = ui.post(f"/persons/{person['id']}", data={"action": "deceased", "date_of_death": "1980-01-01"})
    assert bad.status_code == 422 and 'id="l-date_of_death-error"' in bad.get_data(as_text=True)
    assert registry.get_person(person["id"])["life_status"] == "alive"
    ui.post(f"/persons/{person['id']}", data={"action": "deceased", "date_of_death": "2025-05-05"})
    assert registry.get_person(person["id"])["life_status"] == "deceased"
    ui.post(f"/persons/{person['id']}", data={"action": "migrated"})
    assert registry.get_person(person["id"])["life_status"] == "migrated"


def test_duplicate_warning_then_confirm(ui: Any, registry: Registry) -> None:
    _household(ui)
    again = {
        "m-0-full_name_en": "Nasrin Other",
        "m-0-full_name_bn": "অন্য",
        "m-1-full_name_en": "",
        "m-1-sex": "",
        "m-1-date_of_birth": "",
    }
    r = _household(ui, again)
    assert r.status_code == 409 and 'id="duplicate-warning"' in r.get_data(as_text=True)
    assert len(registry.list("household")[0]) == 1
    r = _household(ui, {**again, "confirm_duplicates": "1"})
    assert r.status_code == 302 and len(registry.list("household")[0]) == 2


def test_enrol_change_status_and_grievance_events(ui: Any, registry: Registry) -> None:
    _household(ui)
    pid = registry.search_persons("nasrin")[0]["id"]
    assert (
        ui.post(
            f"/persons/{pid}",
            data={"action": "enrol", "programme": "WA", "payment_channel": "bkash", "account_number": "০১৭১২৩৪৫৬৭৮"},
        ).status_code
        == 302
    )
    enrolment = registry.person_enrolments(pid)[0]
    assert (enrolment["programme"], enrolment["status"], enrolment["account_number"]) == (
        "WA",
        "applied",
        "01712345678",
    )
    ui.post(f"/enrolments/{enrolment['id']}/status", data={"status": "active"})
    assert registry.get_enrolment(enrolment["id"])["status"] == "active"
    bad = ui.post("/grievances/new", data={"category": "exclusion", "description": ""})
    assert bad.status_code == 422 and registry.list("grievance")[0] == []
    r = ui.post(
        "/grievances/new",
        data={
            "complainant_person_id": pid,
            "category": "payment_delay",
            "description": "allowance late",
            "programme": "WA",
        },
    )
    assert r.status_code == 302
    gid = r.location.rsplit("/", 1)[1]
    ui.post(f"/grievances/{gid}", data={"type": "escalate", "tier": "upazila", "note": "needs UNO"})
    page = ui.get(f"/grievances/{gid}?lang=bn").get_data(as_text=True)
    assert "ঊর্ধ্বতন পর্যায়ে প্রেরিত" in page and "উপজেলা" in page and "needs UNO" in page
    assert ui.get("/grievances").status_code == 200


def test_every_screen_renders_in_both_languages(ui: Any, registry: Registry) -> None:
    _household(ui)
    pid = registry.search_persons("nasrin")[0]["id"]
    hh = registry.get_person(pid)["household_id"]
    for lang in ("en", "bn"):
        for path in (
            "/",
            "/households/new",
            f"/households/{hh}",
            "/persons?q=নাসরিন",
            f"/persons/{pid}",
            "/grievances",
            "/grievances/new",
            "/about",
        ):
            r = ui.get(f"{path}{'&' if '?' in path else '?'}lang={lang}")
            assert r.status_code == 200, (path, lang)
            assert f'<html lang="{lang}">' in r.get_data(as_text=True)
    assert "সুবিল" in ui.get("/about?lang=bn").get_data(as_text=True)  # union 1, Subil, in Bangla
