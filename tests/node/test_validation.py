"""The shared validation module: normalisers (property tests) and the field rules."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from sync_protocol import validation as v

bangla_or_ascii_digit = st.sampled_from(list("0123456789০১২৩৪৫৬৭৮৯"))


@given(st.lists(st.integers(0, 9), min_size=1, max_size=30))
def test_bangla_digits_map_to_the_same_ascii_number(digits: list[int]) -> None:
    ascii_text = "".join(map(str, digits))
    bangla = v.bangla_digits(ascii_text)
    assert all(c in v.BANGLA_DIGITS for c in bangla)
    assert v.ascii_digits(bangla) == ascii_text
    assert v.ascii_digits(ascii_text) == ascii_text


@given(st.text(max_size=40))
def test_ascii_digits_is_idempotent_and_touches_only_digits(text: str) -> None:
    once = v.ascii_digits(text)
    assert v.ascii_digits(once) == once
    assert len(once) == len(text)
    assert not any(c in v.BANGLA_DIGITS for c in once)


@given(
    st.sampled_from("3456789"),
    st.lists(bangla_or_ascii_digit, min_size=8, max_size=8),
    st.sampled_from(["", "+88", "88"]),
    st.sampled_from(["", " ", "-"]),
)
def test_every_spelling_of_a_mobile_normalises_to_11_ascii_digits(
    op: str, rest: list[str], prefix: str, sep: str
) -> None:
    local = "01" + op + "".join(rest)
    spelled = prefix + local[:5] + sep + local[5:]
    out = v.normalize_mobile(spelled)
    assert out == v.ascii_digits(local)
    assert len(out) == 11 and out.isdigit()
    assert v.normalize_mobile(out) == out  # idempotent


@given(st.text(alphabet="0123456789+ -", max_size=16))
def test_mobile_normaliser_accepts_only_valid_numbers(text: str) -> None:
    out = v.normalize_mobile(text)
    if out is not None:
        assert len(out) == 11 and out.startswith("01") and out[2] in "3456789"


def test_mobile_examples() -> None:
    assert v.normalize_mobile("+8801712345678") == "01712345678"
    assert v.normalize_mobile("8801712345678") == "01712345678"
    assert v.normalize_mobile("০১৭১২৩৪৫৬৭৮") == "01712345678"
    assert v.normalize_mobile("01212345678") is None  # 012 is not a mobile operator prefix
    assert v.normalize_mobile("0171234567") is None


def test_nid_lengths_and_birth_year_rule() -> None:
    base = {"household_id": "h1", "full_name_en": "A", "sex": "male", "date_of_birth": "1980-01-01"}
    for nid in ("1234567890", "1234567890123", "19801234567890123", "১৯৮০১২৩৪৫৬৭৮৯০১২৩"):
        values, errors = v.clean("person", {**base, "nid": nid})
        assert errors == {}, nid
        assert values["nid"] == v.ascii_digits(nid)
    _, errors = v.clean("person", {**base, "nid": "123456789012"})
    assert errors == {"nid": ["Must be 10, 13 or 17 digits"]}
    _, errors = v.clean("person", {**base, "nid": "19811234567890123"})
    assert errors == {"nid": [v.MSG_NID_YEAR]}
    _, errors = v.clean("person", {**base, "brn": "1234"}, lang="bn")
    assert errors == {"brn": ["১৭ অঙ্কের হতে হবে"]}


def test_bangla_messages_come_from_the_glossary() -> None:
    _, errors = v.clean("person", {"household_id": "h", "full_name_bn": "ক", "nid": "12"}, lang="bn")
    assert errors["sex"] == ["আবশ্যক তথ্য"]
    assert errors["nid"] == ["১০, ১৩ অথবা ১৭ অঙ্কের হতে হবে"]
    future = (dt.date.today() + dt.timedelta(days=2)).isoformat()
    _, errors = v.clean("person", {"date_of_birth": future}, current={"sex": "male"}, lang="bn")
    assert errors == {"date_of_birth": ["ভবিষ্যতের তারিখ দেওয়া যাবে না"]}
    _, errors = v.clean("person", {"sex": "robot"}, current={}, lang="bn")
    assert errors == {"sex": [v.MESSAGES_BN[v.MSG_CHOICE]]}


def test_validate_change_is_partial_but_uses_current_values_for_cross_field_rules() -> None:
    current = {"date_of_birth": "1980-05-05", "nid": "19801234567890123", "sex": "male", "full_name_en": "X"}
    assert v.validate_change("person", {"mobile": "01812345678"}, current) == {}
    # only the date of birth changes, and it no longer matches the NID held in the record
    assert v.validate_change("person", {"date_of_birth": "1975-05-05"}, current) == {"nid": [v.MSG_NID_YEAR]}
    assert v.validate_change("person", {"nid": "19751234567890123"}, current) == {"nid": [v.MSG_NID_YEAR]}
    # a new record must be complete
    assert "sex" in v.validate_change("person", {"full_name_en": "Y", "household_id": "h"}, None)
    # hub-owned fields are the hub's business, not a validation error
    assert v.validate_change("person", {"nid_status": "verified"}, current) == {}


def test_codes_from_fixed_lists_and_geography() -> None:
    ok, errors = v.clean(
        "enrolment", {"person_id": "p", "programme": "oaa", "status": "active", "payment_channel": "bkash"}
    )
    assert errors == {} and ok["programme"] == "OAA"
    _, errors = v.clean(
        "enrolment", {"person_id": "p", "programme": "XYZ", "status": "active", "payment_channel": "cash"}
    )
    assert set(errors) == {"programme", "payment_channel"}
    assert v.clean("household", {"union_id": "১"})[0]["union_id"] == "1"
    assert v.clean("household", {"union_id": "999999"})[1] == {"union_id": [v.MSG_UNION]}
    assert v.clean("grievance_event", {"grievance_id": "g", "type": "escalate", "tier": "upazila"})[1] == {}
    assert "type" in v.clean("grievance_event", {"grievance_id": "g", "type": "shout"})[1]
    assert set(v.programmes()) >= {"OAA", "WA", "DA", "MCBP", "EGPP", "PESP", "SESP", "HSSP"}


def test_death_date_rules() -> None:
    current = {"date_of_birth": "1950-01-01", "sex": "male", "full_name_en": "Old"}
    assert v.validate_change("person", {"life_status": "deceased"}, current) == {"date_of_death": [v.MSG_REQUIRED]}
    assert v.validate_change("person", {"life_status": "deceased", "date_of_death": "1949-01-01"}, current) == {
        "date_of_death": [v.MSG_DEATH_BEFORE_BIRTH]
    }
    assert v.validate_change("person", {"life_status": "deceased", "date_of_death": "2020-01-01"}, current) == {}
