"""The HTTP client for the Election Commission's NID service (and the simulator, which speaks its API).

One ``verify`` call makes up to ``max_attempts`` tries: 5xx answers, timeouts and connection errors are
retried after full-jitter exponential backoff; a 429 is retried after its ``Retry-After``. A client-side
token bucket keeps us under the agreed rate, and a circuit breaker stops hammering a service that is
down (calls fail fast with a retryable result until a half-open probe succeeds). The API key travels in
a header and is never logged or shown in ``repr``.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from central_hub.nid.errors import (
    CircuitOpenError,
    NidAuthError,
    NidConfigError,
    NidConnectionError,
    NidProtocolError,
    NidRateLimitedError,
    NidRejectedError,
    NidServerError,
    NidServiceError,
    NidTimeoutError,
    NidTransientError,
)
from central_hub.nid.interface import (
    MISMATCH_FIELDS,
    Mismatch,
    NidRequest,
    NidResult,
    NotFound,
    VerificationFailed,
    Verified,
)
from central_hub.nid.numbers import mask_nid
from central_hub.nid.resilience import CircuitBreaker, Clock, Sleep, TokenBucket, backoff_delay

log = logging.getLogger(__name__)

VERIFY_PATH = "/v1/verify"


@dataclass(frozen=True)
class HttpVerifierConfig:
    base_url: str
    api_key: str | None = field(default=None, repr=False)
    api_key_header: str = "X-Api-Key"
    connect_timeout: float = 3.05
    read_timeout: float = 10.0
    max_attempts: int = 4  # tries per verify() call, the first included
    backoff_base: float = 0.25
    backoff_cap: float = 8.0
    # A Retry-After longer than this ends the call with a retryable result carrying the hint, so the
    # caller reschedules instead of holding a worker thread asleep.
    max_retry_after: float = 30.0
    rate_limit: float | None = None  # calls per second across all threads; None: unlimited
    burst: float | None = None
    breaker_threshold: int = 5
    breaker_cooldown: float = 30.0
    pool_size: int = 32  # keep-alive connections; size it to the worker's max_workers

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise NidConfigError(f"base_url must start with http:// or https://, got {self.base_url!r}")
        if self.max_attempts < 1:
            raise NidConfigError("max_attempts must be at least 1")
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise NidConfigError("timeouts must be positive")


class _Stats:
    FIELDS = ("calls", "attempts", "retries", "rate_limited", "server_errors", "timeouts", "connection_errors",
              "circuit_rejections")  # fmt: skip

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(self.FIELDS, 0)

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


class HttpNidVerifier:
    """Implements ``NidVerifier`` over HTTP. Thread-safe: one instance serves all worker threads."""

    def __init__(
        self,
        config: HttpVerifierConfig,
        *,
        session: requests.Session | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self._url = config.base_url.rstrip("/") + VERIFY_PATH
        self._session = session or _pooled_session(config.pool_size)
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.breaker = CircuitBreaker(config.breaker_threshold, config.breaker_cooldown, clock=clock)
        self.bucket = (
            TokenBucket(config.rate_limit, config.burst, clock=clock, sleep=sleep) if config.rate_limit else None
        )
        self._stats = _Stats()

    def __repr__(self) -> str:
        return f"HttpNidVerifier({self.config!r})"

    @property
    def stats(self) -> dict[str, int]:
        return self._stats.snapshot()

    def close(self) -> None:
        self._session.close()

    def verify(self, request: NidRequest) -> NidResult:
        self._stats.add("calls")
        last: NidTransientError | None = None
        for attempt in range(self.config.max_attempts):
            try:
                return self.attempt_once(request)
            except NidTransientError as exc:
                last = exc
                if isinstance(exc, CircuitOpenError) or attempt + 1 >= self.config.max_attempts:
                    break
                if exc.retry_after is not None:
                    delay = exc.retry_after
                else:
                    delay = backoff_delay(attempt, self.config.backoff_base, self.config.backoff_cap, self._rng)
                if delay > self.config.max_retry_after:
                    break
                log.info("NID %s: %s, retrying in %.2fs", mask_nid(request.nid), exc.code, delay)
                self._stats.add("retries")
                self._sleep(delay)
            except NidServiceError as exc:
                log.warning("NID %s: %s (%s), not retrying", mask_nid(request.nid), exc.code, exc.message)
                return VerificationFailed(retryable=False, reason=exc.message, code=exc.code)
        assert last is not None
        log.warning("NID %s: giving up this call: %s", mask_nid(request.nid), last.code)
        return VerificationFailed(retryable=True, reason=last.message, code=last.code, retry_after=last.retry_after)

    def attempt_once(self, request: NidRequest) -> NidResult:
        """One call through the breaker and rate limit, no retries: a verdict, or a ``NidServiceError``."""
        if not self.breaker.allow():
            self._stats.add("circuit_rejections")
            raise CircuitOpenError("circuit open: the NID service failed repeatedly; waiting before probing",
                                   retry_after=self.breaker.remaining_cooldown())  # fmt: skip
        if self.bucket is not None:
            self.bucket.acquire()
        self._stats.add("attempts")
        headers = {self.config.api_key_header: self.config.api_key} if self.config.api_key else {}
        try:
            response = self._session.post(
                self._url,
                json=request.to_json(),
                headers=headers,
                timeout=(self.config.connect_timeout, self.config.read_timeout),
            )
        except requests.Timeout as exc:
            self.breaker.record_failure()
            self._stats.add("timeouts")
            raise NidTimeoutError(f"no answer within the timeout ({type(exc).__name__})") from exc
        except requests.RequestException as exc:
            self.breaker.record_failure()
            self._stats.add("connection_errors")
            raise NidConnectionError(f"could not reach the NID service ({type(exc).__name__})") from exc
        return self._interpret(response)

    def _interpret(self, response: requests.Response) -> NidResult:
        status = response.status_code
        if status >= 500:
            self.breaker.record_failure()
            self._stats.add("server_errors")
            raise NidServerError(f"NID service answered {status}", retry_after=_retry_after(response))
        # Any other answer shows the service is up, whatever it says about this request.
        self.breaker.record_success()
        if status == 429:
            self._stats.add("rate_limited")
            raise NidRateLimitedError("rate limited by the NID service", retry_after=_retry_after(response) or 1.0)
        if status in (401, 403):
            raise NidAuthError(f"NID service refused our credentials ({status})")
        if status != 200:
            raise NidRejectedError(f"NID service rejected the request ({status}): {_body_text(response)}")
        try:
            body = response.json()
        except ValueError as exc:
            raise NidProtocolError("NID service answered 200 with a body that is not JSON") from exc
        return _parse_result(body)


def _pooled_session(pool_size: int) -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)  # we retry ourselves
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _parse_result(body: Any) -> NidResult:
    status = body.get("status") if isinstance(body, dict) else None
    if status == "verified":
        return Verified()
    if status == "not_found":
        return NotFound()
    if status == "mismatch":
        fields = body.get("fields")
        if isinstance(fields, list) and fields and set(fields) <= set(MISMATCH_FIELDS):
            return Mismatch(tuple(fields))
    raise NidProtocolError(f"unexpected answer from the NID service: status={status!r}")


def _retry_after(response: requests.Response) -> float | None:
    """Seconds from a Retry-After header: delta-seconds (fractions accepted) or an HTTP date."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _body_text(response: requests.Response) -> str:
    return response.text[:200]
