"""The Election Commission's answer to a verification request, over an in-memory population.

Shared by the simulator (behind HTTP) and the in-memory verifier, so both give the same verdicts and
one conformance suite can hold them to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from central_hub.nid.interface import Mismatch, NidRequest, NidResult, NotFound, Verified
from central_hub.nid.names import names_match
from central_hub.nid.numbers import NidKey, nid_key
from central_hub.nid.population import PopulationRecord


class NidRegistry:
    """Read-only after construction, so any number of threads may look up at once."""

    def __init__(self, records: Iterable[PopulationRecord]) -> None:
        self._by_key: dict[tuple[str, str], PopulationRecord] = {}
        for record in records:
            key = nid_key(record.nid)
            slot = (key.kind, key.number)
            if slot in self._by_key:
                raise ValueError(f"two population records share NID key {key.number}")
            self._by_key[slot] = record

    def __len__(self) -> int:
        return len(self._by_key)

    def lookup(self, nid: str) -> PopulationRecord | None:
        """The record an NID names. A 13-digit number finds a 17-digit record and vice versa; a 17-digit
        query must carry the record's birth year, as the real service checks."""
        key: NidKey = nid_key(nid)
        record = self._by_key.get((key.kind, key.number))
        if record is None:
            return None
        if key.year is not None and key.year != _birth_year(record):
            return None
        return record

    def verify(self, request: NidRequest) -> NidResult:
        record = self.lookup(request.nid)
        if record is None:
            return NotFound()
        wrong: list[str] = []
        if not _either(request.name, record.name_bn, record.name_en):
            wrong.append("name")
        if request.date_of_birth != date.fromisoformat(record.date_of_birth):
            wrong.append("date_of_birth")
        if request.father_name is not None and not _either(
            request.father_name, record.father_name_bn, record.father_name_en
        ):
            wrong.append("father_name")
        if request.mother_name is not None and not _either(
            request.mother_name, record.mother_name_bn, record.mother_name_en
        ):
            wrong.append("mother_name")
        return Mismatch(tuple(wrong)) if wrong else Verified()


def _birth_year(record: PopulationRecord) -> int:
    if len(record.nid) == 17:
        return int(record.nid[:4])
    return date.fromisoformat(record.date_of_birth).year


def _either(asked: str, bangla: str, english: str) -> bool:
    return names_match(asked, bangla) or names_match(asked, english)
