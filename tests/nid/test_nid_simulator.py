"""The EC simulator's HTTP API (Flask test client) and the `central-hub nid-simulator` command."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient

from central_hub.nid.cli import nid_simulator_command
from central_hub.nid.population import PopulationRecord, read_population
from central_hub.nid.simulator import create_app


@pytest.fixture
def client(population: list[PopulationRecord]) -> FlaskClient:
    return create_app({"NID_POPULATION": population[:20], "NID_SEED": 1}).test_client()


def _body(record: PopulationRecord) -> dict[str, str]:
    return {"nid": record.nid, "name": record.name_bn, "date_of_birth": record.date_of_birth}


def test_verify_answers_a_verdict(client: FlaskClient, population: list[PopulationRecord]) -> None:
    response = client.post("/v1/verify", json=_body(population[0]))
    assert response.status_code == 200 and response.get_json() == {"status": "verified"}
    wrong = {**_body(population[0]), "father_name": "Abdul Jabbar Molla"}
    assert client.post("/v1/verify", json=wrong).get_json() == {"status": "mismatch", "fields": ["father_name"]}


def test_bad_requests_get_field_errors(client: FlaskClient) -> None:
    response = client.post("/v1/verify", json={"nid": "123", "name": "", "date_of_birth": "1990-13-01", "x": 1})
    assert response.status_code == 400
    errors = response.get_json()["errors"]
    assert set(errors) == {"nid", "date_of_birth", "x"}
    assert client.post("/v1/verify", data="not json").status_code == 400


def test_outage_toggles_at_runtime(client: FlaskClient, population: list[PopulationRecord]) -> None:
    assert client.post("/admin/outage", json={"down": True}).get_json()["down"] is True
    assert client.post("/v1/verify", json=_body(population[0])).status_code == 503
    assert client.get("/healthz").get_json()["status"] == "outage"
    client.post("/admin/outage", json={"down": False})
    assert client.post("/v1/verify", json=_body(population[0])).status_code == 200
    assert client.post("/admin/outage", json={"down": "yes"}).status_code == 400


def test_outage_file(tmp_path: Path, population: list[PopulationRecord]) -> None:
    flag = tmp_path / "down"
    client = create_app({"NID_POPULATION": population[:5], "NID_OUTAGE_FILE": str(flag)}).test_client()
    assert client.post("/v1/verify", json=_body(population[0])).status_code == 200
    flag.touch()
    assert client.post("/v1/verify", json=_body(population[0])).status_code == 503
    flag.unlink()
    assert client.post("/v1/verify", json=_body(population[0])).status_code == 200


def test_server_side_rate_limit_answers_429_with_retry_after(client: FlaskClient,
                                                             population: list[PopulationRecord]) -> None:  # fmt: skip
    client.post("/admin/faults", json={"rate_limit": 2, "retry_after_s": 3})
    codes = [client.post("/v1/verify", json=_body(population[0])) for _ in range(3)]
    assert [r.status_code for r in codes] == [200, 200, 429]
    assert codes[2].headers["Retry-After"] == "3"
    assert client.get("/admin/state").get_json()["counters"]["rate_limited"] == 1


def test_fault_settings_are_validated_and_all_or_nothing(client: FlaskClient) -> None:
    response = client.post("/admin/faults", json={"fail_rate": 2, "latency_ms": 10, "colour": "red"})
    assert response.status_code == 400
    assert set(response.get_json()["errors"]) == {"fail_rate", "colour"}
    assert client.get("/admin/state").get_json()["faults"]["latency_ms"] == 0.0  # nothing applied
    ok = client.post("/admin/faults", json={"latency_ms": 10, "rate_limit": None})
    assert ok.status_code == 200 and ok.get_json()["faults"]["latency_ms"] == 10.0


def test_api_key_guards_verification_and_admin(population: list[PopulationRecord]) -> None:
    client = create_app({"NID_POPULATION": population[:5], "NID_API_KEY": "k1"}).test_client()
    assert client.post("/v1/verify", json=_body(population[0])).status_code == 401
    assert client.post("/admin/outage", json={"down": True}).status_code == 401
    response = client.post("/v1/verify", json=_body(population[0]), headers={"X-Api-Key": "k1"})
    assert response.status_code == 200


def test_make_population_command(tmp_path: Path) -> None:
    path = tmp_path / "people.jsonl"
    result = CliRunner().invoke(nid_simulator_command, ["--make-population", str(path), "--count", "400"])
    assert result.exit_code == 0, result.output
    records = read_population(path)
    assert len(records) == 400
    lengths = Counter(len(r.nid) for r in records)
    assert set(lengths) == {10, 13, 17} and min(lengths.values()) > 40
    assert all(r.nid[:4] == r.date_of_birth[:4] for r in records if len(r.nid) == 17)
    keys = [r.nid[4:] if len(r.nid) == 17 else r.nid for r in records]
    assert len(set(keys)) == len(keys)
    first = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    assert any("\u0980" <= ch <= "\u09ff" for ch in first["name_bn"]) and first["name_en"].isascii()
    # the file serves
    client = create_app({"NID_POPULATION": str(path)}).test_client()
    assert client.get("/healthz").get_json() == {"status": "ok", "population": 400}


def test_command_help_and_usage_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    help_text = runner.invoke(nid_simulator_command, ["--help"]).output
    assert "central-hub nid-simulator --population people.jsonl" in help_text
    assert runner.invoke(nid_simulator_command, []).exit_code == 2
    missing = runner.invoke(nid_simulator_command, ["--population", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    bad_rate = runner.invoke(nid_simulator_command, ["--population", "x", "--rate-limit", "fast"])
    assert bad_rate.exit_code == 2 and "20/s" in bad_rate.output


def test_a_bad_population_line_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"nid": "1"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.jsonl:1"):
        read_population(path)
