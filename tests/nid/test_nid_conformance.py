"""One conformance suite for every NidVerifier: the in-memory one and the HTTP client talking to the real
simulator over loopback must give the same answers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta

import pytest

from central_hub.nid.errors import InvalidNidRequest
from central_hub.nid.http_client import HttpNidVerifier, HttpVerifierConfig
from central_hub.nid.interface import (
    Mismatch,
    NidRequest,
    NidVerifier,
    NotFound,
    VerificationFailed,
    Verified,
)
from central_hub.nid.memory import InMemoryNidVerifier
from central_hub.nid.population import PopulationRecord

Population = list[PopulationRecord]


@dataclass
class Harness:
    verifier: NidVerifier
    set_down: Callable[[bool], None]


@pytest.fixture(params=["memory", "http"])
def harness(request: pytest.FixtureRequest, population: list[PopulationRecord]) -> Iterator[Harness]:
    if request.param == "memory":
        memory = InMemoryNidVerifier(population)

        def set_memory_down(down: bool) -> None:
            memory.down = down

        yield Harness(memory, set_memory_down)
        return
    simulator = request.getfixturevalue("simulator")
    config = HttpVerifierConfig(simulator.url, connect_timeout=1, read_timeout=2, max_attempts=2, backoff_base=0.01,
                                backoff_cap=0.02)  # fmt: skip
    http = HttpNidVerifier(config)
    yield Harness(http, lambda down: simulator.set_faults(outage=down))
    http.close()


def _first(population: list[PopulationRecord], length: int) -> PopulationRecord:
    return next(r for r in population if len(r.nid) == length)


def _request(record: PopulationRecord, **overrides: object) -> NidRequest:
    values: dict[str, object] = {
        "nid": record.nid,
        "name": record.name_en,
        "date_of_birth": date.fromisoformat(record.date_of_birth),
        "father_name": record.father_name_en,
        "mother_name": record.mother_name_en,
    }
    values.update(overrides)
    return NidRequest(**values)  # type: ignore[arg-type]


def test_the_implementations_satisfy_the_protocol(harness: Harness) -> None:
    assert isinstance(harness.verifier, NidVerifier)


@pytest.mark.parametrize("length", [10, 13, 17])
def test_exact_details_verify_in_english_and_bangla(
    harness: Harness, population: list[PopulationRecord], length: int
) -> None:
    record = _first(population, length)
    assert harness.verifier.verify(_request(record)) == Verified()
    bangla = _request(record, name=record.name_bn, father_name=record.father_name_bn, mother_name=record.mother_name_bn)
    assert harness.verifier.verify(bangla) == Verified()


def test_parents_are_optional(harness: Harness, population: list[PopulationRecord]) -> None:
    record = _first(population, 17)
    assert harness.verifier.verify(_request(record, father_name=None, mother_name=None)) == Verified()


def test_spelling_variants_honorifics_and_token_order_still_verify(harness: Harness, population: Population) -> None:
    record = next(r for r in population if r.name_en.startswith("Md. ") and len(r.name_en.split()) == 3)
    _, given, family = record.name_en.split()
    for variant in (f"Mohammad {given} {family}", f"Muhammad {given} {family}", f"{given} {family}",
                    f"{family} {given}", f"MD {given.upper()} {family.upper()}"):  # fmt: skip
        assert harness.verifier.verify(_request(record, name=variant)) == Verified(), variant


def test_mst_and_hossain_variants(harness: Harness, population: list[PopulationRecord]) -> None:
    woman = next(r for r in population if r.name_en.startswith("Mst. "))
    assert harness.verifier.verify(_request(woman, name=woman.name_en.replace("Mst.", "Mosammat"))) == Verified()
    hossain = next(r for r in population if r.father_name_en.endswith("Hossain"))
    for spelling in ("Hussain", "Hosen"):
        father = hossain.father_name_en.replace("Hossain", spelling)
        assert harness.verifier.verify(_request(hossain, father_name=father)) == Verified(), spelling


def test_thirteen_digit_query_finds_seventeen_digit_record_and_back(harness: Harness, population: Population) -> None:
    long_record = _first(population, 17)
    assert harness.verifier.verify(_request(long_record, nid=long_record.nid[4:])) == Verified()
    short_record = _first(population, 13)
    year = short_record.date_of_birth[:4]
    assert harness.verifier.verify(_request(short_record, nid=year + short_record.nid)) == Verified()


def test_seventeen_digit_query_with_another_year_is_not_found(harness: Harness, population: Population) -> None:
    record = _first(population, 13)
    dob = date.fromisoformat(record.date_of_birth)
    other_year = dob.replace(year=dob.year - 1, day=min(dob.day, 28))
    query = _request(record, nid=f"{other_year.year}{record.nid}", date_of_birth=other_year)
    assert harness.verifier.verify(query) == NotFound()


def test_ten_digit_numbers_are_their_own_keys(harness: Harness, population: list[PopulationRecord]) -> None:
    smart = _first(population, 10)
    national = _first(population, 13)
    # the 13-digit holder's details under a 10-digit number made from its digits: a different key
    assert harness.verifier.verify(_request(national, nid=national.nid[:10])) == NotFound()
    assert harness.verifier.verify(_request(smart, nid="0" * 3 + smart.nid)) == NotFound()


def test_unknown_nid_is_not_found(harness: Harness, population: list[PopulationRecord]) -> None:
    known = {r.nid for r in population}
    nid = next(n for n in (f"{i:010d}" for i in range(1, 1000)) if n not in known)
    assert harness.verifier.verify(_request(_first(population, 10), nid=nid)) == NotFound()


def test_mismatches_name_every_wrong_field(harness: Harness, population: list[PopulationRecord]) -> None:
    record = _first(population, 17)
    dob = date.fromisoformat(record.date_of_birth)
    other_day = dob + timedelta(days=1) if dob.month != 12 or dob.day != 31 else dob - timedelta(days=1)
    stranger = next(r for r in population if not set(r.name_en.split()) & set(record.name_en.split()))
    cases = {
        ("name",): {"name": stranger.name_en},
        ("date_of_birth",): {"date_of_birth": other_day},
        ("father_name",): {"father_name": "Abdul Jabbar Molla"},
        ("mother_name",): {"mother_name": "Kohinur Begum Molla"},
        ("name", "date_of_birth", "father_name", "mother_name"): {
            "name": stranger.name_bn, "date_of_birth": other_day, "father_name": "Abdul Jabbar Molla",
            "mother_name": "Kohinur Begum Molla",
        },
    }  # fmt: skip
    for fields, overrides in cases.items():
        assert harness.verifier.verify(_request(record, **overrides)) == Mismatch(fields), fields


def test_rahim_is_not_rahima(harness: Harness, population: list[PopulationRecord]) -> None:
    record = next(r for r in population if "Rahima" in r.name_en.split())
    assert harness.verifier.verify(_request(record, name=record.name_en.replace("Rahima", "Rahim"))) == Mismatch(
        ("name",)
    )


def test_service_down_is_a_retryable_failure_not_a_verdict(harness: Harness, population: Population) -> None:
    harness.set_down(True)
    result = harness.verifier.verify(_request(_first(population, 17)))
    assert isinstance(result, VerificationFailed)
    assert result.retryable
    harness.set_down(False)
    assert harness.verifier.verify(_request(_first(population, 17))) == Verified()


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"nid": "12345"}, "nid"),
        ({"nid": "123456789012a"}, "nid"),
        ({"nid": "19991234567890123", "date_of_birth": date(1990, 1, 1)}, "nid"),
        ({"name": "  "}, "name"),
        ({"date_of_birth": date.today() + timedelta(days=2)}, "date_of_birth"),
    ],
)
def test_malformed_requests_are_refused_before_any_call(values: dict[str, object], field: str) -> None:
    base: dict[str, object] = {"nid": "1234567890", "name": "Abdul Karim", "date_of_birth": date(1990, 1, 1)}
    with pytest.raises(InvalidNidRequest) as caught:
        NidRequest(**{**base, **values})  # type: ignore[arg-type]
    assert field in caught.value.errors


def test_bangla_digits_in_the_nid_are_normalised() -> None:
    request = NidRequest("১২৩৪ ৫৬৭-৮৯০", "Abdul Karim", date(1990, 1, 1))
    assert request.nid == "1234567890"
    assert "1234567890" not in repr(request)
