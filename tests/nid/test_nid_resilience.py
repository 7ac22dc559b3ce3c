"""Token bucket, circuit breaker and backoff, driven by a fake clock."""

from __future__ import annotations

import random

import pytest

from central_hub.nid.resilience import CircuitBreaker, TokenBucket, backoff_delay


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_token_bucket_spaces_calls_at_the_rate_after_the_burst() -> None:
    t = FakeTime()
    bucket = TokenBucket(10, burst=2, clock=t.clock, sleep=t.sleep)
    waits = [bucket.acquire() for _ in range(6)]
    assert waits[:2] == [0, 0]
    assert all(w == pytest.approx(0.1) for w in waits[2:])
    assert t.now - 1000.0 == pytest.approx(0.4)


def test_token_bucket_refills_while_idle_up_to_its_burst() -> None:
    t = FakeTime()
    bucket = TokenBucket(5, burst=3, clock=t.clock, sleep=t.sleep)
    assert [bucket.try_acquire() for _ in range(4)] == [True, True, True, False]
    t.now += 10  # far longer than needed to refill: still only a burst of 3
    assert [bucket.try_acquire() for _ in range(4)] == [True, True, True, False]


def test_breaker_opens_after_consecutive_failures_and_probes_after_cooldown() -> None:
    t = FakeTime()
    breaker = CircuitBreaker(threshold=3, cooldown=30, clock=t.clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure()
    breaker.record_success()  # a success resets the count: failures must be consecutive
    for _ in range(3):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state == CircuitBreaker.OPEN
    assert not breaker.allow()
    assert breaker.remaining_cooldown() == pytest.approx(30)
    t.now += 30
    assert breaker.state == CircuitBreaker.HALF_OPEN
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # only one probe at a time
    breaker.record_failure()  # probe failed: open for another cool-down
    assert breaker.state == CircuitBreaker.OPEN
    assert breaker.times_opened == 2
    t.now += 30
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state == CircuitBreaker.CLOSED
    assert breaker.allow() and breaker.allow()


def test_a_probe_that_never_reports_back_does_not_keep_the_circuit_open() -> None:
    t = FakeTime()
    breaker = CircuitBreaker(threshold=1, cooldown=10, clock=t.clock)
    breaker.record_failure()
    t.now += 10
    assert breaker.allow()  # the probe's thread then dies without recording anything
    t.now += 5
    assert not breaker.allow()
    t.now += 5
    assert breaker.allow()  # a fresh probe after another cool-down
    breaker.record_success()
    assert breaker.state == CircuitBreaker.CLOSED


def test_full_jitter_backoff_stays_under_the_growing_ceiling() -> None:
    rng = random.Random(5)
    for attempt in range(8):
        ceiling = min(4.0, 0.25 * 2**attempt)
        samples = [backoff_delay(attempt, 0.25, 4.0, rng) for _ in range(200)]
        assert all(0 <= s <= ceiling for s in samples)
        assert max(samples) > ceiling * 0.8  # spread over the whole range, not a fixed delay
