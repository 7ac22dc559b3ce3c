"""Matching features of one record and the comparison levels shared by the per-record matcher (Python)
and the Splink batch model (SQL).

Each comparison is declared once, as an ordered list of levels with a SQL condition (for Splink on
DuckDB) and a Python predicate (for the incremental matcher). The Splink model is trained on these very
levels and its m/u probabilities are exported by level label, so the two implementations score alike.
Comparisons have a ``role``: ``person`` evidence (own name, date of birth, own NID/BRN, sex) can make a
link; ``household`` evidence (parents' or husband's names, phone, place, payment account) is shared by
siblings and twins and may only add to a score that person evidence already supports.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from rapidfuzz.distance import Levenshtein

from central_hub.registry.normalize import (
    NORMALISATION_VERSION,
    normalize_account,
    normalize_brn,
    normalize_mobile,
    normalize_name,
    normalize_nid,
    parse_date,
)


@dataclass(frozen=True, slots=True)
class Features:
    """What the matcher knows about one record (all normalised)."""

    record_id: str
    name_keys: tuple[str, ...]
    name_key: str | None
    name_latin: str | None
    sex: str | None
    dob: str | None  # YYYY-MM-DD
    dob_year: int | None
    nid13: str | None
    nid10: str | None
    brn: str | None
    fs_keys: tuple[str, ...]  # father's and husband's names: one form line holds either
    mother_key: str | None
    mobile: str | None
    account: str | None
    union_id: str | None
    district_id: str | None
    # derived, for speed in the per-record matcher
    name_set: frozenset[str] = frozenset()
    fs_set: frozenset[str] = frozenset()
    dob_heaped: bool = False  # on 1 January: an estimate more often than a birthday

    def as_row(self) -> dict[str, Any]:
        """The record as a row for Splink (lists stay lists; DuckDB reads them as VARCHAR[])."""
        return {
            "unique_id": self.record_id, "name_keys": list(self.name_keys), "name_key": self.name_key,
            "name_latin": self.name_latin, "sex": self.sex, "dob": self.dob, "dob_year": self.dob_year,
            "nid13": self.nid13, "nid10": self.nid10, "brn": self.brn, "fs_keys": list(self.fs_keys),
            "mother_key": self.mother_key, "mobile": self.mobile, "account": self.account,
            "union_id": self.union_id, "district_id": self.district_id,
        }


def _s(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value != value:  # NaN from pandas
        return ""
    return str(value).strip()


def prepare(record: Mapping[str, Any]) -> Features:
    """Normalise one person record (the person JSON fields of DESIGN section 6, plus optional
    ``account_number`` and ``district_id``)."""
    keys: set[str] = set()
    latin = ""
    sex_hint = None
    for field in ("full_name_en", "full_name_bn"):
        n = normalize_name(_s(record.get(field)))
        keys.update(n.keys)
        sex_hint = sex_hint or n.sex_hint
        if n.latin and not latin:
            latin = n.latin
    dob_d: date | None = parse_date(_s(record.get("date_of_birth")) or None)
    nid = normalize_nid(_s(record.get("nid")), dob_d.year if dob_d else None)
    fs: set[str] = set()
    for field in ("father_name", "spouse_name"):
        k = normalize_name(_s(record.get(field))).key
        if k:
            fs.add(k)
    mother = normalize_name(_s(record.get("mother_name"))).key or None
    sex = _s(record.get("sex")) or sex_hint or None
    name_keys = tuple(sorted(keys))
    return Features(
        record_id=_s(record.get("record_id") or record.get("id")),
        name_keys=name_keys,
        name_key=" ".join(name_keys) or None,
        name_latin=latin or None,
        sex=sex,
        dob=dob_d.isoformat() if dob_d else None,
        dob_year=dob_d.year if dob_d else None,
        nid13=nid.canonical if nid and nid.kind == "nid13" else None,
        nid10=nid.canonical if nid and nid.kind == "nid10" else None,
        brn=normalize_brn(_s(record.get("brn"))),
        fs_keys=tuple(sorted(fs)),
        mother_key=mother,
        mobile=normalize_mobile(_s(record.get("mobile"))),
        account=normalize_account(_s(record.get("account_number"))),
        union_id=_s(record.get("union_id")) or None,
        district_id=_s(record.get("district_id")) or _district_of(_s(record.get("union_id"))),
        name_set=frozenset(name_keys),
        fs_set=frozenset(fs),
        dob_heaped=bool(dob_d and dob_d.month == 1 and dob_d.day == 1),
    )


_UNION_DISTRICT: dict[str, str] | None = None


def _district_of(union_id: str) -> str | None:
    """District of a union from the bundled geography (person records carry only the union)."""
    global _UNION_DISTRICT
    if not union_id:
        return None
    if _UNION_DISTRICT is None:
        from central_hub.registry.synth import union_districts

        _UNION_DISTRICT = dict(union_districts())
    return _UNION_DISTRICT.get(union_id)


# --- comparison levels ---------------------------------------------------------------------------------

Pred = Callable[[Features, Features], bool]


@dataclass(frozen=True)
class Level:
    label: str
    sql: str
    py: Pred
    null: bool = False
    tf_column: str | None = None  # term-frequency adjusted on this column's value


@dataclass(frozen=True)
class Comparison:
    name: str
    role: str  # "person" | "household"
    levels: tuple[Level, ...]


def _jacc(a: tuple[str, ...], b: tuple[str, ...]) -> float:
    sa, sb = set(a), set(b)
    return len(sa & sb) / len(sa | sb) if sa or sb else 0.0


def _dob_near(a: Features, b: Features) -> bool:
    if a.dob is None or b.dob is None:
        return False
    if a.dob_year == b.dob_year and (a.dob[5:] == "01-01" or b.dob[5:] == "01-01"):
        return True  # one of them heaped on 1 January
    return a.dob_year == b.dob_year and a.dob[5:7] == b.dob[8:10] and a.dob[8:10] == b.dob[5:7]


def _one_edit(x: str | None, y: str | None) -> bool:
    return x is not None and y is not None and Levenshtein.distance(x, y) <= 1


COMPARISONS: tuple[Comparison, ...] = (
    Comparison("name", "person", (
        Level("null", "l.name_key IS NULL OR r.name_key IS NULL",
              lambda a, b: a.name_key is None or b.name_key is None, null=True),
        Level("exact", "l.name_key = r.name_key", lambda a, b: a.name_key == b.name_key, tf_column="name_key"),
        Level("subset", "list_has_all(l.name_keys, r.name_keys) OR list_has_all(r.name_keys, l.name_keys)",
              lambda a, b: set(a.name_keys) <= set(b.name_keys) or set(b.name_keys) <= set(a.name_keys)),
        # More than half the tokens shared ("Abdul Hamid Hossain" / "Abdul Jabbar Hossain" share exactly
        # half and are brothers). Token overlap only: string similarity (Jaro-Winkler) calls "Abdul Karim"
        # and "Abdul Kader" or the twins "Rafiqul Islam" and "Shafiqul Islam" similar; spelling variants
        # are folded by the keys instead.
        Level("similar",
              "len(list_intersect(l.name_keys, r.name_keys)) * 2 > len(list_distinct(list_concat(l.name_keys, "
              "r.name_keys)))",
              lambda a, b: _jacc(a.name_keys, b.name_keys) > 0.5),
        Level("partial", "len(list_intersect(l.name_keys, r.name_keys)) >= 1",
              lambda a, b: bool(set(a.name_keys) & set(b.name_keys))),
        Level("else", "ELSE", lambda a, b: True),
    )),
    Comparison("dob", "person", (
        Level("null", "l.dob IS NULL OR r.dob IS NULL", lambda a, b: a.dob is None or b.dob is None, null=True),
        Level("exact", "l.dob = r.dob AND substr(l.dob, 6, 5) <> '01-01'",
              lambda a, b: a.dob == b.dob and a.dob is not None and a.dob[5:] != "01-01"),
        Level("exact_jan1", "l.dob = r.dob", lambda a, b: a.dob == b.dob),
        Level("near",
              "l.dob_year = r.dob_year AND (substr(l.dob, 6, 5) = '01-01' OR substr(r.dob, 6, 5) = '01-01' OR "
              "(substr(l.dob, 6, 2) = substr(r.dob, 9, 2) AND substr(l.dob, 9, 2) = substr(r.dob, 6, 2)))",
              _dob_near),
        # Only an estimated date (heaped on 1 January) may drift by years; a precise one that differs by
        # months is another person (a sibling) more often than an error.
        Level("estimated_2y",
              "abs(l.dob_year - r.dob_year) <= 2 AND (substr(l.dob, 6, 5) = '01-01' OR substr(r.dob, 6, 5) = '01-01')",
              lambda a, b: abs((a.dob_year or 0) - (b.dob_year or 0)) <= 2
              and ((a.dob is not None and a.dob[5:] == "01-01") or (b.dob is not None and b.dob[5:] == "01-01"))),
        Level("else", "ELSE", lambda a, b: True),
    )),
    Comparison("nid", "person", (
        Level("null", "(l.nid13 IS NULL OR r.nid13 IS NULL) AND (l.nid10 IS NULL OR r.nid10 IS NULL)",
              lambda a, b: (a.nid13 is None or b.nid13 is None) and (a.nid10 is None or b.nid10 is None),
              null=True),
        Level("exact", "l.nid13 = r.nid13 OR l.nid10 = r.nid10",
              lambda a, b: (a.nid13 is not None and a.nid13 == b.nid13)
              or (a.nid10 is not None and a.nid10 == b.nid10)),
        Level("one_edit", "levenshtein(l.nid13, r.nid13) <= 1 OR levenshtein(l.nid10, r.nid10) <= 1",
              lambda a, b: _one_edit(a.nid13, b.nid13) or _one_edit(a.nid10, b.nid10)),
        Level("else", "ELSE", lambda a, b: True),
    )),
    Comparison("brn", "person", (
        Level("null", "l.brn IS NULL OR r.brn IS NULL", lambda a, b: a.brn is None or b.brn is None, null=True),
        Level("exact", "l.brn = r.brn", lambda a, b: a.brn == b.brn),
        Level("one_edit", "levenshtein(l.brn, r.brn) <= 1", lambda a, b: _one_edit(a.brn, b.brn)),
        Level("else", "ELSE", lambda a, b: True),
    )),
    Comparison("sex", "person", (
        Level("null", "l.sex IS NULL OR r.sex IS NULL", lambda a, b: a.sex is None or b.sex is None, null=True),
        Level("exact", "l.sex = r.sex", lambda a, b: a.sex == b.sex),
        Level("else", "ELSE", lambda a, b: True),
    )),
    Comparison("father_or_spouse", "household", (
        Level("null", "len(l.fs_keys) = 0 OR len(r.fs_keys) = 0",
              lambda a, b: not a.fs_keys or not b.fs_keys, null=True),
        Level("exact", "len(list_intersect(l.fs_keys, r.fs_keys)) >= 1",
              lambda a, b: bool(set(a.fs_keys) & set(b.fs_keys))),
        Level("else", "ELSE", lambda a, b: True),
    )),
    Comparison("mother", "household", (
        Level("null", "l.mother_key IS NULL OR r.mother_key IS NULL",
              lambda a, b: a.mother_key is None or b.mother_key is None, null=True),
        Level("exact", "l.mother_key = r.mother_key", lambda a, b: a.mother_key == b.mother_key),
        Level("else", "ELSE", lambda a, b: True),
    )),
    Comparison("mobile", "household", (
        Level("null", "l.mobile IS NULL OR r.mobile IS NULL",
              lambda a, b: a.mobile is None or b.mobile is None, null=True),
        Level("exact", "l.mobile = r.mobile", lambda a, b: a.mobile == b.mobile),
        Level("else", "ELSE", lambda a, b: True),
    )),
    Comparison("place", "household", (
        Level("null", "l.district_id IS NULL OR r.district_id IS NULL",
              lambda a, b: a.district_id is None or b.district_id is None, null=True),
        Level("union", "l.union_id = r.union_id", lambda a, b: a.union_id == b.union_id),
        Level("district", "l.district_id = r.district_id", lambda a, b: a.district_id == b.district_id),
        Level("else", "ELSE", lambda a, b: True),
    )),
    Comparison("account", "household", (
        Level("null", "l.account IS NULL OR r.account IS NULL",
              lambda a, b: a.account is None or b.account is None, null=True),
        Level("exact", "l.account = r.account", lambda a, b: a.account == b.account),
        Level("else", "ELSE", lambda a, b: True),
    )),
)


def gamma(comparison: Comparison, a: Features, b: Features) -> int:
    """Index of the first level whose predicate holds (the Splink comparison vector value order)."""
    for i, level in enumerate(comparison.levels):
        if level.py(a, b):
            return i
    return len(comparison.levels) - 1


def gammas(a: Features, b: Features) -> list[int]:
    """All comparison levels of a pair at once: the same result as ``gamma`` for each comparison (a test
    checks this on generated pairs), written out by hand because the matcher calls it for every candidate."""
    # name
    if a.name_key is None or b.name_key is None:
        gn = 0
    elif a.name_key == b.name_key:
        gn = 1
    else:
        sa, sb = a.name_set, b.name_set
        inter = len(sa & sb)
        if sa <= sb or sb <= sa:
            gn = 2
        elif inter * 2 > len(sa | sb):
            gn = 3
        else:
            gn = 4 if inter else 5
    # date of birth
    if a.dob is None or b.dob is None:
        gd = 0
    elif a.dob == b.dob:
        gd = 2 if a.dob_heaped else 1
    elif a.dob_year == b.dob_year and (a.dob_heaped or b.dob_heaped
                                       or (a.dob[5:7] == b.dob[8:10] and a.dob[8:10] == b.dob[5:7])):
        gd = 3
    elif (a.dob_heaped or b.dob_heaped) and abs((a.dob_year or 0) - (b.dob_year or 0)) <= 2:
        gd = 4
    else:
        gd = 5
    # NID: a smart-card number is not compared with a 13/17-digit one
    if (a.nid13 is None or b.nid13 is None) and (a.nid10 is None or b.nid10 is None):
        gi = 0
    elif (a.nid13 is not None and a.nid13 == b.nid13) or (a.nid10 is not None and a.nid10 == b.nid10):
        gi = 1
    elif _one_edit(a.nid13, b.nid13) or _one_edit(a.nid10, b.nid10):
        gi = 2
    else:
        gi = 3
    gb = 0 if a.brn is None or b.brn is None else 1 if a.brn == b.brn else 2 if _one_edit(a.brn, b.brn) else 3
    gs = 0 if a.sex is None or b.sex is None else 1 if a.sex == b.sex else 2
    gf = 0 if not a.fs_set or not b.fs_set else 1 if a.fs_set & b.fs_set else 2
    gm = 0 if a.mother_key is None or b.mother_key is None else 1 if a.mother_key == b.mother_key else 2
    gp = 0 if a.mobile is None or b.mobile is None else 1 if a.mobile == b.mobile else 2
    if a.district_id is None or b.district_id is None:
        gl = 0
    else:
        gl = 1 if a.union_id == b.union_id else 2 if a.district_id == b.district_id else 3
    ga = 0 if a.account is None or b.account is None else 1 if a.account == b.account else 2
    return [gn, gd, gi, gb, gs, gf, gm, gp, gl, ga]


def splink_settings(prior: float = 1e-4) -> dict[str, Any]:
    """A Splink settings dictionary using exactly the levels above."""
    comparisons = []
    for c in COMPARISONS:
        levels = []
        for lv in c.levels:
            d: dict[str, Any] = {
                # comparison conditions name columns with suffixes (x_l / x_r); blocking rules use l.x / r.x
                "sql_condition": re.sub(r"\b([lr])\.(\w+)", r"\2_\1", lv.sql),
                "label_for_charts": lv.label,
            }
            if lv.null:
                d["is_null_level"] = True
            if lv.tf_column:
                d["tf_adjustment_column"] = lv.tf_column
                d["tf_adjustment_weight"] = 1.0
            levels.append(d)
        comparisons.append({"output_column_name": c.name, "comparison_levels": levels,
                            "comparison_description": f"{c.name} ({c.role} evidence)"})
    return {
        "link_type": "dedupe_only",
        "unique_id_column_name": "unique_id",
        "probability_two_random_records_match": prior,
        "comparisons": comparisons,
        "blocking_rules_to_generate_predictions": BLOCKING_RULES_SQL,
        "retain_intermediate_calculation_columns": True,
        "retain_matching_columns": False,
        "additional_columns_to_retain": [],
        "sql_dialect": "duckdb",
    }


# Batch blocking (Splink); the incremental index uses the same ideas as keys (see matcher.blocking_keys).
BLOCKING_RULES_SQL: list[dict[str, str]] = [
    {"blocking_rule": "l.nid13 = r.nid13", "sql_dialect": "duckdb"},
    {"blocking_rule": "l.nid10 = r.nid10", "sql_dialect": "duckdb"},
    {"blocking_rule": "l.brn = r.brn", "sql_dialect": "duckdb"},
    {"blocking_rule": "l.name_key = r.name_key AND l.dob_year = r.dob_year", "sql_dialect": "duckdb"},
    {"blocking_rule": "l.dob = r.dob AND l.district_id = r.district_id", "sql_dialect": "duckdb"},
    {"blocking_rule": "l.mobile = r.mobile", "sql_dialect": "duckdb"},
]

FEATURES_VERSION = f"{NORMALISATION_VERSION}/f4"
