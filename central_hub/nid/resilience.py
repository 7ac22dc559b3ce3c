"""Client-side protections for calling a slow, rate-limited, sometimes-down service.

Both take an injectable ``clock`` (seconds, monotonic) and ``sleep`` so tests can drive time.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

Clock = Callable[[], float]
Sleep = Callable[[float], None]


class TokenBucket:
    """At most ``rate`` calls per second on average, bursts up to ``burst``; thread-safe.

    ``acquire`` reserves a token and sleeps outside the lock until it is due, so waiting threads
    queue fairly instead of spinning.
    """

    def __init__(self, rate: float, burst: float | None = None, *, clock: Clock = time.monotonic,
                 sleep: Sleep = time.sleep) -> None:  # fmt: skip
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._updated = clock()
        self._lock = threading.Lock()

    def try_acquire(self) -> bool:
        with self._lock:
            self._refill()
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False

    def acquire(self) -> float:
        """Take one token, sleeping until it is available; returns the seconds waited."""
        with self._lock:
            self._refill()
            self._tokens -= 1  # may go negative: a reservation that later callers queue behind
            wait = 0.0 if self._tokens >= 0 else -self._tokens / self.rate
        if wait > 0:
            self._sleep(wait)
        return wait

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now


class CircuitBreaker:
    """Closed -> open after ``threshold`` consecutive failures; after ``cooldown`` seconds one probe
    call is let through (half-open): success closes the circuit, failure opens it for another cool-down.
    """

    CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"

    def __init__(self, threshold: int = 5, cooldown: float = 30.0, *, clock: Clock = time.monotonic) -> None:
        if threshold < 1 or cooldown < 0:
            raise ValueError("threshold must be >= 1 and cooldown >= 0")
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._probe_in_flight = False
        self._probe_started = 0.0
        self.times_opened = 0

    @property
    def state(self) -> str:
        with self._lock:
            return self._state()

    def _state(self) -> str:
        if self._opened_at is None:
            return self.CLOSED
        if self._clock() - self._opened_at >= self.cooldown:
            return self.HALF_OPEN
        return self.OPEN

    def allow(self) -> bool:
        """Whether a call may go out now. In half-open, only one probe at a time."""
        with self._lock:
            state = self._state()
            if state == self.CLOSED:
                return True
            # A probe that never reported back (its thread died) must not keep the circuit open forever:
            # after another cool-down a new probe may go.
            stale = self._probe_in_flight and self._clock() - self._probe_started >= self.cooldown
            if state == self.HALF_OPEN and (not self._probe_in_flight or stale):
                self._probe_in_flight = True
                self._probe_started = self._clock()
                return True
            return False

    def remaining_cooldown(self) -> float:
        with self._lock:
            if self._opened_at is None:
                return 0.0
            return max(0.0, self.cooldown - (self._clock() - self._opened_at))

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._probe_in_flight = False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._probe_in_flight or (self._opened_at is None and self._failures >= self.threshold):
                self._opened_at = self._clock()
                self.times_opened += 1
            self._probe_in_flight = False

    def release_probe(self) -> None:
        """The probe ended without telling us anything about the service (e.g. a 429)."""
        with self._lock:
            self._probe_in_flight = False


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """"Full jitter" exponential backoff: uniform in [0, min(cap, base * 2**attempt)].

    Jitter spreads the retries of many clients that failed together, so they do not return together.
    ``attempt`` counts from 0 for the first retry.
    """
    ceiling = min(cap, base * (2 ** min(attempt, 30)))
    return (rng or random).uniform(0, ceiling)
