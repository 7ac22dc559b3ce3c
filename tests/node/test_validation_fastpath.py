"""``validation._load`` (field deserialisers called directly, the hub's hot path) against the reference,
marshmallow's ``Schema.load(partial=True)``: the same values, the same field-level messages, the same key
order, for every entity, on generated input that mixes valid values with wrong types and bad strings."""

from __future__ import annotations

from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from sync_protocol import validation as v

# Plausible and implausible values for every kind of field the schemas have.
DIGITS = st.text(alphabet="0123456789০১২৩৪৫৬৭৮৯ -.", max_size=20)
VALUES = st.one_of(
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.text(min_size=140, max_size=320),
    DIGITS,
    st.sampled_from(
        [
            "",
            " ",
            "1",
            "Subil",
            "female",
            " male ",
            "married",
            "deceased",
            "kutcha",
            "bkash",
            "HSP",
            "oaa",
            "1980-01-31",
            "১৯৮০-০১-৩১",
            "2999-01-01",
            "1879-12-31",
            "1980-02-30",
            "01712345678",
            "+8801712345678",
            "1234567890",
            "19801234567890123",
            "yes",
            "off",
            "1,234.5",
            "-3",
            "abc-DEF_1",
            "a b",
            "x" * 65,
        ]
    ),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@st.composite
def entity_input(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    entity = draw(st.sampled_from(sorted(v.SCHEMAS)))
    names = sorted(v.SCHEMAS[entity].fields)
    most = draw(st.sampled_from([1, 2, len(names)]))
    chosen = draw(st.lists(st.sampled_from(names), unique=True, max_size=most))
    return entity, {name: draw(VALUES) for name in chosen}


@settings(max_examples=600, deadline=None)
@given(entity_input())
def test_fast_load_equals_marshmallow_schema_load(case: tuple[str, dict[str, Any]]) -> None:
    entity, data = case
    fast_values, fast_errors = v._load(entity, data)
    ref_values, ref_errors = v._load_with_schema(entity, data)
    event("has errors" if ref_errors else "all valid")
    assert fast_errors == ref_errors
    assert list(fast_errors) == list(ref_errors)
    assert fast_values == ref_values
    assert list(fast_values) == list(ref_values)
    assert [type(x) for x in fast_values.values()] == [type(x) for x in ref_values.values()]


def test_every_schema_takes_the_fast_path() -> None:
    assert all(v._plain_fields(entity) is not None for entity in v.SCHEMAS)
