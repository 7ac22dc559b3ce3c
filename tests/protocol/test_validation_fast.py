"""``validation_fast.validate_change`` against the reference ``validation.validate_change``: the same
answer (English and Bangla) for every entity on generated field dicts that mix valid values, boundary
values and every kind of bad one, with ``current`` absent (a create) or present (an edit); and the fast
verdict never says "valid" where the reference finds an error."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import event, example, given
from hypothesis import strategies as st
from protocol_support import props

from sync_protocol import validation, validation_fast
from sync_protocol.entities import DELETED, ENTITIES
from sync_protocol.validation import (
    SCHEMAS,
    _Bool,
    _Brn,
    _Choice,
    _Date,
    _Id,
    _Mobile,
    _Nid,
    _Number,
    _Programme,
    _Text,
    _Union,
)

ODD = st.sampled_from([None, "", "   ", " x ", "১২৩", True, False, 0, -1, 1.5, float("nan"), [], {}, "x" * 2001])


def _dates() -> st.SearchStrategy[Any]:
    today = dt.date.today()
    return st.one_of(
        st.dates(dt.date(1850, 1, 1), today + dt.timedelta(days=400)).map(dt.date.isoformat),
        st.sampled_from(
            [
                "1880-01-01",
                "1879-12-31",
                today.isoformat(),
                (today + dt.timedelta(days=1)).isoformat(),
                "2020-02-30",
                "১৯৮০-০১-৩১",
                " 1980-01-31",
                "19800131",
                "1980-1-31",
            ]
        ),
    )


def _for(field: Any) -> st.SearchStrategy[Any]:
    if isinstance(field, _Choice):
        good = list(field.choices)
        return st.one_of(st.sampled_from(good), st.sampled_from(good).map(lambda v: f" {v}"), st.text(max_size=8))
    if isinstance(field, _Text):
        n = field.max_len
        return st.one_of(
            st.text(min_size=1, max_size=12),
            st.sampled_from(["রহিমা খাতুন", "Mst. Rahima", "a" * n, "a" * (n + 1), " a" * (n // 2 + 1), "\u2028"]),
        )
    if isinstance(field, _Date):
        return _dates()
    if isinstance(field, _Number):
        return st.one_of(
            st.integers(-5, 10**16),
            st.floats(allow_nan=True, allow_infinity=True),
            st.sampled_from(["12", "1,200", "১২", "12.5", 10**15, 10**15 - 1]),
        )
    if isinstance(field, _Nid):
        return st.one_of(
            st.sampled_from(["1234567890", "1985123456789", "19851234567890123", "1980123456789012", "123 456 7890"]),
            st.text(alphabet="0123456789০১২ -", min_size=0, max_size=18),
        )
    if isinstance(field, _Brn):
        return st.one_of(st.sampled_from(["19851234567890123", "1985123456789"]), st.text("0123456789", max_size=18))
    if isinstance(field, _Mobile):
        return st.one_of(
            st.sampled_from(
                ["01712345678", "01212345678", "+8801712345678", "০১৭১২৩৪৫৬৭৮", "0171234567", "017 1234 5678"]
            ),
            st.text("0123456789+", max_size=14),
        )
    if isinstance(field, _Union):
        return st.sampled_from(["1", "2", "4539", "99999", " 1", "১", "x", 1])
    if isinstance(field, _Programme):
        return st.sampled_from(["OAA", "WA", "oaa", "NOPE", " OAA"])
    if isinstance(field, _Id):
        return st.one_of(
            st.sampled_from(["h-1", "0193a7e4-aaaa-7bbb-8ccc-dddddddddddd", "x" * 64, "x" * 65, "a b", "আ"]),
            st.text(max_size=6),
        )
    if isinstance(field, _Bool):
        return st.sampled_from([True, False, "yes", "0", 1, "maybe"])
    raise AssertionError(f"no strategy for {type(field).__name__}")  # a new field type needs one


def _good(field: Any) -> st.SearchStrategy[Any]:
    """Values the reference accepts as they are (most of what nodes send)."""
    if isinstance(field, _Choice):
        return st.sampled_from(list(field.choices))
    if isinstance(field, _Text):
        return st.text(min_size=1, max_size=min(field.max_len, 20)).filter(lambda v: not v.isspace())
    if isinstance(field, _Date):
        return st.dates(dt.date(1900, 1, 1), dt.date.today()).map(dt.date.isoformat)
    if isinstance(field, _Number):
        return st.integers(0, 10**6) if field.integer else st.one_of(st.integers(0, 10**6), st.floats(0, 1e6))
    if isinstance(field, _Nid):
        return st.sampled_from(["1234567890", "1985123456789", "19851234567890123"])
    if isinstance(field, _Brn):
        return st.just("19851234567890123")
    if isinstance(field, _Mobile):
        return st.integers(0, 10**8 - 1).map(lambda n: f"017{n:08d}")
    if isinstance(field, _Union):
        return st.sampled_from(["1", "2"])
    if isinstance(field, _Programme):
        return st.sampled_from(["OAA", "WA"])
    if isinstance(field, _Id):
        return st.from_regex(r"[0-9a-z\-_]{1,20}", fullmatch=True)
    if isinstance(field, _Bool):
        return st.booleans()
    raise AssertionError(f"no strategy for {type(field).__name__}")


@st.composite
def changes(draw: st.DrawFn) -> tuple[str, dict[str, Any], dict[str, Any] | None]:
    entity = draw(st.sampled_from(sorted(SCHEMAS)))
    schema_fields = SCHEMAS[entity].fields
    names = draw(st.lists(st.sampled_from(sorted(schema_fields)), max_size=len(schema_fields), unique=True))
    if draw(st.booleans()):  # a create with what it needs, so that valid creates are common
        names = [*validation.REQUIRED[entity], *(n for n in names if n not in validation.REQUIRED[entity])]
    odd_share = draw(st.sampled_from([0.0, 0.0, 0.1, 0.5]))  # often all-plausible: the fast path's domain
    values: dict[str, Any] = {}
    for name in names:
        roll = draw(st.floats(0, 1))
        kind = ODD if roll < odd_share else _for(schema_fields[name]) if roll < 0.3 else _good(schema_fields[name])
        values[name] = draw(kind)
    if draw(st.integers(0, 9)) == 0:
        spec = ENTITIES[entity]
        values[draw(st.sampled_from(["shoe_size", DELETED, *sorted(spec.hub_owned)]))] = "x"
    current = None
    if draw(st.integers(0, 2)) == 0:
        keys = draw(st.lists(st.sampled_from(sorted(schema_fields))))
        current = {n: draw(st.one_of(_good(schema_fields[n]), _for(schema_fields[n]))) for n in keys}
    return entity, values, current


PERSON = {
    "household_id": "h-1",
    "full_name_en": "Rahima Khatun",
    "full_name_bn": "রহিমা খাতুন",
    "sex": "female",
    "date_of_birth": "1985-03-01",
    "nid": "19851234567890123",
    "mobile": "01712345678",
}


@props(1500)
@given(change=changes())
@example(change=("person", PERSON, None))
@example(change=("person", {**PERSON, "nid": "19861234567890123"}, None))  # 17 digits, wrong year
@example(change=("person", {"date_of_death": "1980-01-01"}, {"date_of_birth": "1985-03-01"}))
@example(change=("person", {"life_status": "deceased"}, dict(PERSON)))
@example(change=("person", {**PERSON, "full_name_en": " ", "full_name_bn": "   "}, None))
@example(change=("grievance", {"category": "other", "description": "late"}, None))
@example(change=("household", {"union_id": "1", "land_decimals": 12.5}, None))
def test_the_fast_validator_answers_what_the_reference_answers(change: Any) -> None:
    entity, values, current = change
    want = validation.validate_change(entity, values, current)
    fast = validation_fast.certainly_valid(entity, values, current)
    event(f"fast verdict: {fast}; reference: {'valid' if not want else 'errors'}")
    if fast:
        assert want == {}, f"fast path said valid, reference found {want}"
    assert validation_fast.validate_change(entity, values, current) == want
    assert validation_fast.validate_change(entity, values, current, "bn") == validation.validate_change(
        entity, values, current, "bn"
    )


def test_a_typical_registration_takes_the_fast_path() -> None:
    assert validation_fast.certainly_valid("person", PERSON, None)
    assert validation_fast.certainly_valid("person", {"mobile": "01812345678"}, PERSON)
    assert not validation_fast.certainly_valid("person", {**PERSON, "mobile": "+8801712345678"}, None)


def test_future_dates_follow_the_reference_today(monkeypatch: Any) -> None:
    monkeypatch.setattr(validation, "today", lambda: dt.date(2000, 1, 1))
    values = {**PERSON, "date_of_birth": "2000-01-02", "nid": "1234567890"}
    assert not validation_fast.certainly_valid("person", values, None)
    assert validation_fast.validate_change("person", values, None) == {"date_of_birth": [validation.MSG_FUTURE]}
