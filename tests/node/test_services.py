"""Operator operations over the encrypted store: registration, search, duplicates, enrolments, grievances."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from field_node.errors import PossibleDuplicateError, ValidationFailed
from field_node.node import Node
from field_node.services import Registry, derive_grievance_state

from .conftest import OPERATOR, member


def test_household_with_members_in_one_flow(registry: Registry, node: Node) -> None:
    hh = registry.create_household(
        {"village": "সুবিল", "land_decimals": "১২.৫", "monthly_income_bdt": "৮০০০", "house_type": "kutcha"},
        [
            member(nid="১৯৮০১২৩৪৫৬৭৮৯০১২৩", mobile="+8801712345678"),
            member(
                full_name_en="Karim Mia",
                full_name_bn="করিম মিয়া",
                sex="male",
                date_of_birth="2005-06-07",
                relation_to_head="son",
            ),
        ],
        actor=OPERATOR,
    )
    assert hh["union_id"] == "1" and hh["land_decimals"] == 12.5 and hh["monthly_income_bdt"] == 8000
    head, son = hh["members"]
    assert hh["head_person_id"] == head["id"] and head["relation_to_head"] == "head"
    assert head["nid"] == "19801234567890123" and head["mobile"] == "01712345678"
    assert son["household_id"] == hh["id"] and son["life_status"] == "alive"
    assert registry.sync_status()["pending_changes"] == 3  # household + 2 persons, one change each
    _, store, _ = node.require()
    changes = store.outbox(0, 10)
    assert [c.entity for c in changes] == ["household", "person", "person"]
    assert all(c.scope == "1" for c in changes) and changes[1].fields["nid"] == "19801234567890123"


def test_invalid_member_stores_nothing(registry: Registry, node: Node) -> None:
    with pytest.raises(ValidationFailed) as exc:
        registry.create_household({}, [member(), member(full_name_en="B", nid="12345")], actor=OPERATOR, lang="bn")
    assert exc.value.errors == {"members.1.nid": ["১০, ১৩ অথবা ১৭ অঙ্কের হতে হবে"]}
    assert registry.list("household")[0] == [] and registry.sync_status()["pending_changes"] == 0


def test_search_by_bangla_and_english_name_nid_and_mobile(registry: Registry) -> None:
    registry.create_household(
        {},
        [
            member(nid="4567891234", mobile="01812345678"),
            member(full_name_en="Abdul Karim", full_name_bn="আব্দুল করিম", sex="male", date_of_birth="1970-01-01"),
        ],
        actor=OPERATOR,
    )
    names = lambda q: sorted(p["full_name_en"] for p in registry.search_persons(q))  # noqa: E731
    assert names("রহিমা") == ["Rahima Khatun"]
    assert names("করিম") == ["Abdul Karim"]
    assert names("karim") == ["Abdul Karim"]
    assert names("khat") == ["Rahima Khatun"]  # prefix
    assert names("৪৫৬৭৮৯১২৩৪") == ["Rahima Khatun"]
    assert names("+880 1812-345678") == ["Rahima Khatun"]
    assert names("nobody") == []
    # the index follows edits in the same transaction
    pid = registry.search_persons("karim")[0]["id"]
    registry.update_person(pid, {"full_name_en": "Abdul Kalam"}, actor=OPERATOR)
    assert names("karim") == [] and names("kalam") == ["Abdul Kalam"]


def test_duplicate_warning_and_confirmation(registry: Registry) -> None:
    hh = registry.create_household({}, [member(nid="4567891234")], actor=OPERATOR)
    same_nid = member(full_name_en="Someone Else", full_name_bn="অন্য কেউ", nid="4567891234", household_id=hh["id"])
    with pytest.raises(PossibleDuplicateError) as exc:
        registry.create_person(same_nid, actor=OPERATOR)
    assert [p["id"] for p in exc.value.matches["person"]] == [hh["members"][0]["id"]]
    same_name_dob = member(full_name_en="  rahima   KHATUN ", full_name_bn="", household_id=hh["id"])
    with pytest.raises(PossibleDuplicateError):
        registry.create_person(same_name_dob, actor=OPERATOR)
    created = registry.create_person(same_name_dob, actor=OPERATOR, confirm_duplicates=True)
    assert created["full_name_en"] == "rahima KHATUN"
    different_dob = member(full_name_bn="", date_of_birth="1981-02-03", household_id=hh["id"])
    assert registry.create_person(different_dob, actor=OPERATOR)["id"]


def test_life_status_and_enrolment_status(registry: Registry) -> None:
    hh = registry.create_household({}, [member()], actor=OPERATOR)
    pid = hh["members"][0]["id"]
    with pytest.raises(ValidationFailed) as exc:
        registry.update_person(pid, {"life_status": "deceased"}, actor=OPERATOR)
    assert "date_of_death" in exc.value.errors
    dead = registry.update_person(pid, {"life_status": "deceased", "date_of_death": "2024-03-01"}, actor=OPERATOR)
    assert dead["life_status"] == "deceased" and dead["date_of_death"] == "2024-03-01"
    enrolment = registry.create_enrolment(
        {"person_id": pid, "programme": "WA", "payment_channel": "nagad"}, actor=OPERATOR
    )
    assert enrolment["status"] == "applied" and enrolment["scope"] == "1"
    active = registry.update_enrolment(enrolment["id"], {"status": "active"}, actor=OPERATOR)
    assert active["status"] == "active" and active["status_changed_on"]
    with pytest.raises(ValidationFailed):
        registry.create_enrolment({"person_id": "nope", "programme": "WA"}, actor=OPERATOR)


def test_grievance_tracking_numbers_and_derived_state(registry: Registry, node: Node) -> None:
    numbers = [
        registry.create_grievance(
            {"complainant_name": f"C{i}", "category": "payment_delay", "description": "late"}, actor=OPERATOR
        )["tracking_number"]
        for i in range(3)
    ]
    prefix = node.node_id.replace("-", "")[-8:].upper()
    assert numbers == [f"G-1-{prefix}-0000{i}" for i in (1, 2, 3)]
    g = registry.create_grievance(
        {"complainant_name": "X", "category": "exclusion", "description": "d"}, actor=OPERATOR
    )
    assert (g["status"], g["tier"]) == ("received", "union")
    g = registry.add_grievance_event(g["id"], {"type": "comment", "note": "looking"}, actor=OPERATOR)
    assert g["status"] == "under_review"
    g = registry.add_grievance_event(g["id"], {"type": "escalate"}, actor=OPERATOR)
    assert (g["status"], g["tier"]) == ("escalated", "upazila")
    g = registry.add_grievance_event(g["id"], {"type": "resolve", "note": "paid"}, actor=OPERATOR)
    assert g["status"] == "resolved" and [e["type"] for e in g["events"]] == ["comment", "escalate", "resolve"]
    # events are their own append-only records; the grievance row itself was written once
    _, store, _ = node.require()
    assert [c.entity for c in store.outbox(0, 100)].count("grievance") == 4
    with pytest.raises(ValidationFailed):
        registry.create_grievance({"category": "exclusion", "description": "no complainant"}, actor=OPERATOR)


def test_derived_state_is_order_independent() -> None:
    events = [
        {"id": "b", "type": "escalate", "tier": "district", "occurred_at": "2026-01-02T00:00:00Z"},
        {"id": "a", "type": "comment", "occurred_at": "2026-01-01T00:00:00Z"},
        {"id": "c", "type": "close", "occurred_at": "2026-01-03T00:00:00Z"},
    ]
    assert derive_grievance_state("received", "union", events) == ("closed", "district")
    assert derive_grievance_state("received", "union", list(reversed(events))) == ("closed", "district")


def test_list_pages(registry: Registry) -> None:
    for i in range(5):
        registry.create_grievance(
            {"complainant_name": f"C{i}", "category": "other", "description": "d"}, actor=OPERATOR
        )
    page1, nxt = registry.list("grievance", limit=3)
    page2, last = registry.list("grievance", after=nxt, limit=3)
    assert len(page1) == 3 and len(page2) == 2 and last is None
    assert len({g["id"] for g in page1 + page2}) == 5


def test_bangla_words_are_indexed_whole(registry: Registry, node: Node) -> None:
    registry.create_household({}, [member(full_name_bn="রহিমা খাতুন", father_name="আব্দুর রশীদ")], actor=OPERATOR)
    conn = node.require()[0].conn
    conn.execute("CREATE VIRTUAL TABLE temp.vocab USING fts5vocab(main, person_fts, 'row')")
    terms = {r[0] for r in conn.execute("SELECT term FROM temp.vocab")}
    assert {"রহিমা", "খাতুন", "আব্দুর", "রশীদ"} <= terms  # not cut at vowel signs into "রহ" + "ম"
    assert "রহ" not in terms
    assert [p["full_name_bn"] for p in registry.search_persons("রশী")] == ["রহিমা খাতুন"]  # prefix of a word


def test_migration_rebuilds_the_search_index(tmp_path: Path, monkeypatch: Any) -> None:
    from field_node import db as dbmod

    monkeypatch.setattr(dbmod, "MIGRATIONS", dbmod.MIGRATIONS[:1])  # a node created by the first release
    Node.create(tmp_path / "old", union_id="1", hub_url="http://h", operator=OPERATOR, password="pw")
    old = Node(tmp_path / "old")
    old.login(OPERATOR, "pw")
    Registry(old).create_household({}, [member(full_name_bn="সালমা বেগম")], actor=OPERATOR)
    old.close()
    monkeypatch.undo()
    new = Node(tmp_path / "old")
    new.login(OPERATOR, "pw")  # opening runs the pending migrations
    version = new.require()[0].conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0]
    assert version == len(dbmod.MIGRATIONS) == 3
    assert new.require()[0].conn.execute("SELECT count(*) FROM bundle_forward").fetchone()[0] == 0
    assert [p["full_name_bn"] for p in Registry(new).search_persons("সালমা")] == ["সালমা বেগম"]
    new.close()
