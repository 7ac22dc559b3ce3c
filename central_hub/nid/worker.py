"""The hub's background NID verification worker.

Each run claims a batch of due persons from a ``VerificationStore``, asks the verifier with bounded
concurrency (a thread pool of ``max_workers``), and records each outcome. It reads and writes only its
own queue state, so registration ingest never waits for the Election Commission. Failures are retried
on a backoff schedule (exponential, jittered, never sooner than the service's Retry-After); an answer
is recorded only for the details it was asked about (a person edited meanwhile is asked again).
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, as_completed, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from central_hub.nid.errors import InvalidNidRequest
from central_hub.nid.interface import Mismatch, NidResult, NidVerifier, NotFound, VerificationFailed, Verified
from central_hub.nid.store import Claim, Outcome, Status, VerificationState, VerificationStore

log = logging.getLogger(__name__)

Now = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RetryPolicy:
    """When a failed person is due again: ``base * 2**(attempts-1)`` capped at ``cap``, scaled by a random
    factor in [1 - jitter, 1] so a crowd that failed together spreads out, and never before the service's
    Retry-After. ``max_attempts`` (None: forever) turns a retryable failure into a final error."""

    base: timedelta = timedelta(seconds=30)
    cap: timedelta = timedelta(hours=1)
    jitter: float = 0.5
    max_attempts: int | None = None

    def delay(self, attempts: int, retry_after: float | None, rng: random.Random) -> timedelta:
        raw = min(self.cap, self.base * (2 ** min(max(attempts - 1, 0), 30)))
        delay = raw * rng.uniform(1 - self.jitter, 1)
        if retry_after is not None:
            delay = max(delay, timedelta(seconds=retry_after))
        return delay


@dataclass
class BatchReport:
    claimed: int = 0
    recorded: dict[str, int] = field(default_factory=dict)  # status -> count
    stale: int = 0  # answers dropped because the person changed while being checked
    unrecorded: int = 0  # answers whose recording failed (asked again once the lease runs out)

    def add(self, status: str) -> None:
        self.recorded[status] = self.recorded.get(status, 0) + 1


class VerificationWorker:
    def __init__(
        self,
        store: VerificationStore,
        verifier: NidVerifier,
        *,
        max_workers: int = 8,
        batch_size: int | None = None,
        lease: timedelta = timedelta(minutes=5),
        retry: RetryPolicy | None = None,
        now: Now = utc_now,
        rng: random.Random | None = None,
        on_result: Callable[[VerificationState], None] | None = None,
    ) -> None:
        """``on_result`` is called with every recorded state (the hook that publishes results to the hub
        record; see docs/nid.md). ``lease`` must outlast one verify() call including its retries."""
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self.store = store
        self.verifier = verifier
        self.max_workers = max_workers
        self.batch_size = batch_size or max_workers * 4
        self.lease = lease
        self.retry = retry or RetryPolicy()
        self._now = now
        self._rng = rng or random.Random()
        self._on_result = on_result
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="nid-verify")
        self._run_lock = threading.Lock()

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def __enter__(self) -> VerificationWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run_once(self) -> BatchReport:
        """Claim one batch, verify it, record the outcomes. Overlapping calls do not run twice at once."""
        report = BatchReport()
        if not self._run_lock.acquire(blocking=False):
            return report
        try:
            claims = self.store.claim(self.batch_size, self._now(), self.lease)
            report.claimed = len(claims)
            futures = {self._pool.submit(self._ask, claim): claim for claim in claims}
            for future in as_completed(futures):
                self._finish(futures[future], future, report)
            return report
        finally:
            self._run_lock.release()

    def run_until_idle(self, max_items: int = 100_000) -> BatchReport:
        """Verify until nothing is due now (retries scheduled for later stay queued).

        A sliding window rather than batch after batch: whenever the pool starts to idle it claims more,
        so one slow answer (a 429 waiting out its Retry-After) does not hold up the next batch.
        """
        report = BatchReport()
        if not self._run_lock.acquire(blocking=False):
            return report
        try:
            in_flight: dict[Future[Outcome], Claim] = {}
            drained = False
            while True:
                if not drained and len(in_flight) <= self.max_workers and report.claimed < max_items:
                    room = min(self.batch_size - len(in_flight), max_items - report.claimed)
                    claims = self.store.claim(room, self._now(), self.lease)
                    drained = not claims
                    report.claimed += len(claims)
                    for claim in claims:
                        in_flight[self._pool.submit(self._ask, claim)] = claim
                if not in_flight:
                    return report
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    self._finish(in_flight.pop(future), future, report)
                if drained and not in_flight:
                    drained = False  # look once more: answers recorded meanwhile may have made more due
                    continue
        finally:
            self._run_lock.release()

    def _finish(self, claim: Claim, future: Future[Outcome], report: BatchReport) -> None:
        try:
            outcome = future.result()
        except Exception as exc:  # a verifier bug must not lose the rest of the batch
            log.exception("verifier raised for person %s", claim.subject.person_id)
            outcome = self._failure(claim, VerificationFailed(True, f"verifier raised {type(exc).__name__}"))
        try:
            state = self.store.record(claim, outcome, self._now())
        except Exception:  # e.g. the database is busy: the lease runs out and the person is asked again
            log.exception("recording the NID result of person %s failed", claim.subject.person_id)
            report.unrecorded += 1
            return
        if state is None:
            report.stale += 1
            return
        report.add(state.status.value)
        if self._on_result is not None:
            try:
                self._on_result(state)
            except Exception:
                log.exception("publishing the NID result of person %s failed", state.person_id)

    def _ask(self, claim: Claim) -> Outcome:
        try:
            request = claim.subject.to_request()
        except InvalidNidRequest as exc:
            # Details that can never verify: a person has to correct the record, which re-queues it.
            return Outcome(Status.ERROR, retrying=False, error=f"invalid_request: {exc.message}")
        return self._outcome(claim, self.verifier.verify(request))

    def _outcome(self, claim: Claim, result: NidResult) -> Outcome:
        if isinstance(result, Verified):
            return Outcome(Status.VERIFIED)
        if isinstance(result, Mismatch):
            return Outcome(Status.MISMATCH, mismatch_fields=result.fields)
        if isinstance(result, NotFound):
            return Outcome(Status.NOT_FOUND)
        return self._failure(claim, result)

    def _failure(self, claim: Claim, result: VerificationFailed) -> Outcome:
        attempts = claim.attempts + 1
        error = f"{result.code}: {result.reason}"
        give_up = self.retry.max_attempts is not None and attempts >= self.retry.max_attempts
        if not result.retryable or give_up:
            return Outcome(Status.ERROR, retrying=False, error=error)
        when = self._now() + self.retry.delay(attempts, result.retry_after, self._rng)
        return Outcome(Status.ERROR, retrying=True, next_attempt_at=when, error=error)


def schedule_verification(scheduler: Any, worker: VerificationWorker, interval_s: float) -> Any:
    """Add the worker to an APScheduler (3.x) scheduler: one run every ``interval_s`` seconds, never two
    at once, missed runs coalesced. Returns the job."""
    return scheduler.add_job(
        worker.run_until_idle,
        "interval",
        seconds=interval_s,
        id="nid-verification",
        name="NID verification",
        max_instances=1,
        coalesce=True,
        replace_existing=True,
    )


def hub_fields(state: VerificationState) -> dict[str, Any]:
    """The person's hub-owned fields for a state (what ``HubEngine.hub_write`` should carry to nodes).

    A retrying error is shown as ``pending``: to an operator the check is still under way.
    """
    status = state.status.value
    if state.status == Status.ERROR and state.retrying:
        status = Status.PENDING.value
    return {
        "nid_status": status,
        "nid_checked_at": state.checked_at.isoformat() if state.checked_at else None,
        "nid_mismatch_fields": list(state.mismatch_fields),
    }
