"""The HTTP client against the real simulator on loopback: retries, Retry-After, timeouts, circuit breaker,
credentials."""

from __future__ import annotations

import logging
import socket
from datetime import date

import pytest
import requests

from central_hub.nid.errors import NidConfigError, NidConnectionError, NidServerError
from central_hub.nid.http_client import HttpNidVerifier, HttpVerifierConfig
from central_hub.nid.interface import NidRequest, VerificationFailed, Verified
from central_hub.nid.population import PopulationRecord


class FakeTime:
    """Clock and sleep for the client's breaker, bucket and backoff; HTTP itself runs in real time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _request(record: PopulationRecord) -> NidRequest:
    return NidRequest(record.nid, record.name_en, date.fromisoformat(record.date_of_birth))


def _verifier(url: str, t: FakeTime, **overrides: object) -> HttpNidVerifier:
    settings: dict[str, object] = {"connect_timeout": 1, "read_timeout": 2, "max_attempts": 4, "backoff_base": 0.5,
                                   "backoff_cap": 4, "breaker_threshold": 50}  # fmt: skip
    settings.update(overrides)
    return HttpNidVerifier(HttpVerifierConfig(url, **settings), clock=t.clock, sleep=t.sleep)  # type: ignore[arg-type]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_server_errors_are_retried_with_growing_jittered_backoff(simulator, population) -> None:  # type: ignore[no-untyped-def]
    simulator.set_faults(fail_rate=1.0)
    t = FakeTime()
    verifier = _verifier(simulator.url, t)
    result = verifier.verify(_request(population[0]))
    assert isinstance(result, VerificationFailed) and result.retryable and result.code == "server_error"
    assert simulator.state.counters["server_errors"] == 4
    assert len(t.slept) == 3
    for attempt, delay in enumerate(t.slept):
        assert 0 <= delay <= 0.5 * 2**attempt
    assert verifier.stats["retries"] == 3 and verifier.stats["server_errors"] == 4


def test_a_transient_failure_then_success_verifies(simulator, population) -> None:  # type: ignore[no-untyped-def]
    simulator.set_faults(fail_rate=1.0)
    t = FakeTime()

    def sleep_and_heal(seconds: float) -> None:
        t.sleep(seconds)
        simulator.set_faults(fail_rate=0.0)  # the service recovers while we back off

    verifier = HttpNidVerifier(
        HttpVerifierConfig(simulator.url, backoff_base=0.01), clock=t.clock, sleep=sleep_and_heal
    )
    assert verifier.verify(_request(population[0])) == Verified()
    assert verifier.stats["attempts"] == 2


def test_429_retry_after_is_honoured(simulator, population) -> None:  # type: ignore[no-untyped-def]
    simulator.set_faults(rate_429=1.0, retry_after_s=0.25)
    t = FakeTime()
    verifier = _verifier(simulator.url, t, max_attempts=3)
    result = verifier.verify(_request(population[0]))
    assert isinstance(result, VerificationFailed) and result.code == "rate_limited" and result.retryable
    assert t.slept == [0.25, 0.25]
    assert result.retry_after == 0.25  # handed on so the worker schedules no sooner
    assert verifier.breaker.state == "closed"  # throttling is not an outage


def test_a_long_retry_after_ends_the_call_instead_of_holding_a_thread(simulator, population) -> None:  # type: ignore[no-untyped-def]
    simulator.set_faults(rate_429=1.0, retry_after_s=120)
    t = FakeTime()
    result = _verifier(simulator.url, t, max_retry_after=30).verify(_request(population[0]))
    assert isinstance(result, VerificationFailed) and result.retry_after == 120
    assert t.slept == []


def test_a_slow_answer_is_a_timeout(simulator, population) -> None:  # type: ignore[no-untyped-def]
    simulator.set_faults(timeout_rate=1.0, timeout_sleep_s=0.6)
    t = FakeTime()
    verifier = _verifier(simulator.url, t, read_timeout=0.15, max_attempts=2)
    result = verifier.verify(_request(population[0]))
    assert isinstance(result, VerificationFailed) and result.code == "timeout" and result.retryable
    assert verifier.stats["timeouts"] == 2


def test_connection_refused_is_mapped_with_its_cause(population) -> None:  # type: ignore[no-untyped-def]
    t = FakeTime()
    verifier = _verifier(f"http://127.0.0.1:{_free_port()}", t, max_attempts=1)
    with pytest.raises(NidConnectionError) as caught:
        verifier.attempt_once(_request(population[0]))
    assert isinstance(caught.value.__cause__, requests.ConnectionError)
    result = verifier.verify(_request(population[0]))
    assert isinstance(result, VerificationFailed) and result.code == "connection_failed" and result.retryable


def test_circuit_opens_fails_fast_and_recovers_through_a_half_open_probe(simulator, population) -> None:  # type: ignore[no-untyped-def]
    simulator.set_faults(outage=True)
    t = FakeTime()
    verifier = _verifier(simulator.url, t, max_attempts=1, breaker_threshold=3, breaker_cooldown=20)
    for _ in range(3):
        assert verifier.verify(_request(population[0])).code == "server_error"  # type: ignore[union-attr]
    sent = simulator.state.counters["requests"]
    result = verifier.verify(_request(population[0]))
    assert isinstance(result, VerificationFailed) and result.code == "circuit_open" and result.retryable
    assert result.retry_after == pytest.approx(20)
    assert simulator.state.counters["requests"] == sent  # failing fast: nothing was sent
    t.now += 20
    with pytest.raises(NidServerError):  # the half-open probe goes out and fails: open again
        verifier.attempt_once(_request(population[0]))
    assert verifier.verify(_request(population[0])).code == "circuit_open"  # type: ignore[union-attr]
    simulator.set_faults(outage=False)
    t.now += 20
    assert verifier.verify(_request(population[0])) == Verified()
    assert verifier.breaker.state == "closed"


def test_credentials_travel_in_the_header_and_never_in_logs(simulator, population, caplog) -> None:  # type: ignore[no-untyped-def]
    secret = "s3cr3t-api-key-do-not-log"
    simulator.state.api_key = secret
    t = FakeTime()
    caplog.set_level(logging.DEBUG)
    without = _verifier(simulator.url, t).verify(_request(population[0]))
    assert isinstance(without, VerificationFailed) and without.code == "auth_failed" and not without.retryable
    wrong = _verifier(simulator.url, t, api_key="wrong").verify(_request(population[0]))
    assert isinstance(wrong, VerificationFailed) and wrong.code == "auth_failed"
    good = _verifier(simulator.url, t, api_key=secret)
    assert good.verify(_request(population[0])) == Verified()
    simulator.set_faults(fail_rate=1.0)
    good.verify(_request(population[0]))  # failures and retries are logged...
    assert caplog.records
    assert secret not in caplog.text  # ...but never the key
    assert population[0].nid not in caplog.text  # nor a whole NID
    assert secret not in repr(good) and secret not in repr(good.config)


def test_client_side_rate_limit_paces_calls(simulator, population) -> None:  # type: ignore[no-untyped-def]
    t = FakeTime()
    verifier = _verifier(simulator.url, t, rate_limit=20, burst=1)
    for record in population[:5]:
        verifier.verify(_request(record))
    assert sum(t.slept) >= 4 / 20 - 1e-9  # the four calls after the first waited for tokens


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(NidConfigError):
        HttpVerifierConfig("ftp://example")
    with pytest.raises(NidConfigError):
        HttpVerifierConfig("http://127.0.0.1:1", max_attempts=0)
