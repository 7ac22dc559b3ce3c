"""Double-dipping rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from central_hub.registry.errors import RulesError
from central_hub.registry.rules import flags_for, flags_for_clusters, load_rules, parse_rules, rules_from_programmes

# shared/ sits beside the checkout (as in CI); the seeded rules must follow the reference table.
REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "programmes.csv"


def test_shipped_rules_match_the_programme_reference():
    shipped = {(r.kind, r.programmes) for r in load_rules()}
    if REFERENCE.exists():
        seeded = {(r.kind, r.programmes) for r in rules_from_programmes(REFERENCE.read_text(encoding="utf-8"))}
        assert shipped == seeded
    assert ("duplicate", frozenset()) in shipped


def test_exclusive_and_duplicate_flags():
    enrol = [
        {"id": "e1", "programme": "OAA", "status": "active"},
        {"id": "e2", "programme": "WA", "status": "approved"},
        {"id": "e3", "programme": "OAA", "status": "applied"},
        {"id": "e4", "programme": "DA", "status": "exited"},  # exited: draws nothing, flags nothing
        {"id": "e5", "programme": "PESP", "status": "active"},
    ]
    flags = {(f.rule, f.programmes, f.record_ids) for f in flags_for(enrol)}
    assert flags == {
        ("same_programme_twice", ("OAA",), ("e1", "e3")),
        ("OAA_excludes_WA", ("OAA", "WA"), ("e1", "e2", "e3")),
    }


def test_no_flags_for_compatible_programmes():
    assert flags_for([{"id": "a", "programme": "MCBP"}, {"id": "b", "programme": "PESP"}]) == []


def test_flags_follow_clusters():
    clusters = {"p1": "c1", "p2": "c1", "p3": "c3"}
    enrol = [{"id": "e1", "person_id": "p1", "programme": "OAA"}, {"id": "e2", "person_id": "p2", "programme": "DA"},
             {"id": "e3", "person_id": "p3", "programme": "WA"}]
    out = flags_for_clusters(clusters, enrol)
    assert list(out) == ["c1"]
    assert out["c1"][0].as_dict() == {
        "rule": "OAA_excludes_DA", "programmes": ["DA", "OAA"], "record_ids": ["e1", "e2"]}


@pytest.mark.parametrize("text, field", [
    ("rule,kind,programmes\nx,sometimes,OAA;WA\n", "kind"),
    ("rule,kind,programmes\nx,exclusive,OAA\n", "programmes"),
    ("rule,kind,programmes\n,duplicate,*\n", "rule"),
])
def test_malformed_rules_name_the_field(text, field):
    with pytest.raises(RulesError, match=f"line 2: {field}"):
        parse_rules(text)
