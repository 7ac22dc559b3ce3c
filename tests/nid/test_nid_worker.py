"""The background verification worker over the in-memory store and verifier."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, date, datetime, timedelta

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from central_hub.nid.interface import NidRequest, NidResult, VerificationFailed
from central_hub.nid.memory import InMemoryNidVerifier
from central_hub.nid.population import PopulationRecord
from central_hub.nid.store import InMemoryVerificationStore, Status, Subject, VerificationState
from central_hub.nid.worker import RetryPolicy, VerificationWorker, hub_fields, schedule_verification
from sync_protocol.hub import HubEngine
from sync_protocol.memory import MemoryHubStore

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


class FakeNow:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def subject_of(record: PopulationRecord, person_id: str, **changes: object) -> Subject:
    values: dict[str, object] = {
        "person_id": person_id,
        "nid": record.nid,
        "name": record.name_en,
        "date_of_birth": date.fromisoformat(record.date_of_birth),
        "father_name": record.father_name_bn,
    }
    values.update(changes)
    return Subject(**values)  # type: ignore[arg-type]


def test_each_person_gets_the_services_verdict(population: list[PopulationRecord]) -> None:
    store, now = InMemoryVerificationStore(), FakeNow()
    good, wrong_dob, unknown, bad = population[:4]
    store.enqueue(subject_of(good, "a", name=good.name_bn), T0)
    store.enqueue(subject_of(wrong_dob, "b", date_of_birth=date(1901, 1, 2)), T0)
    store.enqueue(subject_of(unknown, "c", nid="0000000001"), T0)
    # a 17-digit NID whose year disagrees with the birth date can never verify: error, not retried
    store.enqueue(subject_of(bad, "d", nid="1901" + "1" * 13), T0)
    with VerificationWorker(store, InMemoryNidVerifier(population), max_workers=2, now=now) as worker:
        report = worker.run_once()
    assert report.claimed == 4
    assert report.recorded == {"verified": 1, "mismatch": 1, "not_found": 1, "error": 1}
    states = {pid: store.get(pid) for pid in "abcd"}
    assert states["a"].status == Status.VERIFIED  # type: ignore[union-attr]
    assert states["b"].mismatch_fields == ("date_of_birth",)  # type: ignore[union-attr]
    assert states["c"].status == Status.NOT_FOUND  # type: ignore[union-attr]
    d = states["d"]
    assert d is not None and d.status == Status.ERROR and not d.retrying and "invalid_request" in (d.error or "")


class SlowVerifier:
    def __init__(self, inner: InMemoryNidVerifier, delay: float) -> None:
        self.inner, self.delay = inner, delay
        self.active = self.peak = 0
        self._lock = threading.Lock()

    def verify(self, request: NidRequest) -> NidResult:
        with self._lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        time.sleep(self.delay)
        with self._lock:
            self.active -= 1
        return self.inner.verify(request)


def test_concurrency_is_bounded_by_max_workers(population: list[PopulationRecord]) -> None:
    store = InMemoryVerificationStore()
    for i, record in enumerate(population[:40]):
        store.enqueue(subject_of(record, f"p{i}"), T0)
    slow = SlowVerifier(InMemoryNidVerifier(population), 0.01)
    with VerificationWorker(store, slow, max_workers=4, batch_size=40, now=lambda: T0) as worker:
        report = worker.run_once()
    assert report.recorded == {"verified": 40}
    assert slow.peak == 4  # used the pool in parallel, and never more than it


def test_failures_are_retried_on_a_growing_jittered_schedule(population: list[PopulationRecord]) -> None:
    store, now = InMemoryVerificationStore(), FakeNow()
    verifier = InMemoryNidVerifier(population)
    verifier.down = True
    for i, record in enumerate(population[:10]):
        store.enqueue(subject_of(record, f"p{i}"), T0)
    policy = RetryPolicy(base=timedelta(seconds=10), cap=timedelta(seconds=60), jitter=0.5)
    worker = VerificationWorker(store, verifier, max_workers=2, retry=policy, now=now, rng=random.Random(1))
    for attempt, ceiling in enumerate([10, 20, 40, 60, 60], start=1):
        before = now.now
        report = worker.run_until_idle()
        assert report.recorded == {"error": 10}
        assert worker.run_once().claimed == 0  # nobody is due again immediately
        states = [store.get(f"p{i}") for i in range(10)]
        delays = [(s.next_attempt_at - before).total_seconds() for s in states]  # type: ignore[union-attr,operator]
        assert all(ceiling * 0.5 <= d <= ceiling for d in delays), (attempt, delays)
        assert len(set(delays)) > 1  # jittered: the crowd spreads out
        assert all(s.attempts == attempt and s.retrying for s in states)  # type: ignore[union-attr]
        now.now = max(s.next_attempt_at for s in states)  # type: ignore[union-attr,type-var]
    verifier.down = False
    assert worker.run_until_idle().recorded == {"verified": 10}
    worker.close()


class ScriptedVerifier:
    def __init__(self, results: list[NidResult]) -> None:
        self.results = results

    def verify(self, request: NidRequest) -> NidResult:
        return self.results.pop(0)


def test_retry_after_is_respected_and_max_attempts_gives_up(population: list[PopulationRecord]) -> None:
    store, now = InMemoryVerificationStore(), FakeNow()
    store.enqueue(subject_of(population[0], "p"), T0)
    verifier = ScriptedVerifier(
        [VerificationFailed(True, "slow down", "rate_limited", retry_after=300), VerificationFailed(True, "x")]
    )
    policy = RetryPolicy(base=timedelta(seconds=1), max_attempts=2)
    with VerificationWorker(store, verifier, retry=policy, now=now) as worker:
        worker.run_once()
        state = store.get("p")
        assert state is not None and state.next_attempt_at is not None
        assert state.next_attempt_at - T0 >= timedelta(seconds=300)
        now.now = state.next_attempt_at
        worker.run_once()
    final = store.get("p")
    assert final is not None and final.status == Status.ERROR and not final.retrying and final.attempts == 2


def test_an_edit_during_verification_drops_the_old_answer(population: list[PopulationRecord]) -> None:
    store = InMemoryVerificationStore()
    record = population[0]
    store.enqueue(subject_of(record, "p", name="Someone Else Entirely"), T0)
    inner = InMemoryNidVerifier(population)

    class EditingVerifier:
        def verify(self, request: NidRequest) -> NidResult:
            # the operator corrects the name while the old one is being checked
            store.enqueue(subject_of(record, "p"), T0)
            return inner.verify(request)

    worker = VerificationWorker(store, EditingVerifier(), now=lambda: T0)
    report = worker.run_once()
    assert report.stale == 1 and report.recorded == {}
    state = store.get("p")
    assert state is not None and state.status == Status.PENDING  # not "mismatch" for a name nobody holds now
    worker.verifier = inner
    assert worker.run_once().recorded == {"verified": 1}
    worker.close()


def test_a_verifier_that_raises_does_not_lose_the_batch(population: list[PopulationRecord]) -> None:
    store = InMemoryVerificationStore()
    inner = InMemoryNidVerifier(population)
    for i, record in enumerate(population[:6]):
        store.enqueue(subject_of(record, f"p{i}"), T0)

    class Flaky:
        def verify(self, request: NidRequest) -> NidResult:
            if request.nid == population[2].nid:
                raise RuntimeError("bug")
            return inner.verify(request)

    with VerificationWorker(store, Flaky(), now=lambda: T0) as worker:
        report = worker.run_once()
    assert report.recorded == {"verified": 5, "error": 1}
    broken = store.get("p2")
    assert broken is not None and broken.retrying


def test_results_reach_the_hub_log_as_hub_owned_person_fields(population: list[PopulationRecord]) -> None:
    engine = HubEngine(MemoryHubStore())
    store = InMemoryVerificationStore()
    store.enqueue(subject_of(population[0], "p-ok"), T0)
    store.enqueue(subject_of(population[1], "p-bad", date_of_birth=date(1902, 2, 2)), T0)

    def publish(state: VerificationState) -> None:
        engine.hub_write("person", state.person_id, hub_fields(state), scope="1")

    with VerificationWorker(store, InMemoryNidVerifier(population), now=lambda: T0, on_result=publish) as worker:
        worker.run_once()
    page = engine.pull_scopes(frozenset({"1"}), None)
    by_id = {entry.entity_id: entry for entry in page.entries}
    assert by_id["p-ok"].origin == "hub"
    assert by_id["p-ok"].fields == {
        "nid_status": "verified",
        "nid_checked_at": T0.isoformat(),
        "nid_mismatch_fields": [],
    }
    assert by_id["p-bad"].fields["nid_status"] == "mismatch"
    assert by_id["p-bad"].fields["nid_mismatch_fields"] == ["date_of_birth"]


def test_a_retrying_error_shows_as_pending_to_operators() -> None:
    subject = Subject("p", "1234567890", "Abdul Karim", date(1980, 1, 1))
    retrying = VerificationState(subject, Status.ERROR, 1, 1, retrying=True, next_attempt_at=T0, checked_at=T0)
    assert hub_fields(retrying)["nid_status"] == "pending"
    final = VerificationState(subject, Status.ERROR, 1, 1, retrying=False, checked_at=T0)
    assert hub_fields(final)["nid_status"] == "error"


def test_the_scheduler_job_runs_the_worker(population: list[PopulationRecord]) -> None:
    store = InMemoryVerificationStore()
    for i, record in enumerate(population[:20]):
        store.enqueue(subject_of(record, f"p{i}"), datetime.now(UTC))
    scheduler = BackgroundScheduler()
    worker = VerificationWorker(store, InMemoryNidVerifier(population), max_workers=2)
    job = schedule_verification(scheduler, worker, interval_s=0.05)
    assert job.id == "nid-verification" and job.max_instances == 1
    scheduler.start()
    try:
        deadline = time.monotonic() + 10
        while store.counts()["verified"] < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        scheduler.shutdown(wait=True)
        worker.close()
    assert store.counts()["verified"] == 20


def test_max_workers_must_be_positive() -> None:
    with pytest.raises(ValueError):
        VerificationWorker(InMemoryVerificationStore(), InMemoryNidVerifier([]), max_workers=0)


def test_one_slow_answer_does_not_hold_up_the_rest(population: list[PopulationRecord]) -> None:
    store = InMemoryVerificationStore()
    inner = InMemoryNidVerifier(population)
    for i, record in enumerate(population[:30]):
        store.enqueue(subject_of(record, f"p{i:02d}"), T0)
    others_done = threading.Event()
    slow_nid = population[0].nid
    waited: list[bool] = []

    class OneSlow:
        def verify(self, request: NidRequest) -> NidResult:
            if request.nid == slow_nid:
                # a 429 waiting out its Retry-After: it may only finish once everyone else has
                waited.append(others_done.wait(timeout=5))
            return inner.verify(request)

    def watch(state: VerificationState) -> None:
        if store.counts()["verified"] >= 29:
            others_done.set()

    with VerificationWorker(store, OneSlow(), max_workers=3, batch_size=6, now=lambda: T0, on_result=watch) as worker:
        report = worker.run_until_idle()
    assert waited == [True]  # the other 29 went through the remaining threads meanwhile (no batch barrier)
    assert report.recorded == {"verified": 30}


def test_subject_from_a_hub_person_record() -> None:
    from central_hub.nid.hub_bridge import subject_from_person

    fields = {"nid": "1234567890", "full_name_bn": "আব্দুল করিম", "full_name_en": "Abdul Karim",
              "date_of_birth": "1980-02-03", "father_name": "", "mother_name": "Rahima Khatun"}  # fmt: skip
    subject = subject_from_person("p1", fields)
    assert subject == Subject("p1", "1234567890", "আব্দুল করিম", date(1980, 2, 3), None, "Rahima Khatun")
    assert subject_from_person("p1", {**fields, "full_name_bn": None}).name == "Abdul Karim"  # type: ignore[union-attr]
    assert subject_from_person("p1", {**fields, "nid": None, "brn": "20011234567890123"}) is None
    assert subject_from_person("p1", {**fields, "date_of_birth": "not a date"}) is None


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_ingest_never_waits_for_the_service(kind: str, population: list[PopulationRecord], tmp_path) -> None:  # type: ignore[no-untyped-def]
    from central_hub.nid.sqlite_store import SqliteVerificationStore

    store = InMemoryVerificationStore() if kind == "memory" else SqliteVerificationStore(tmp_path / "q.sqlite")
    for i, record in enumerate(population[:8]):
        store.enqueue(subject_of(record, f"early{i}"), T0)
    release = threading.Event()
    inner = InMemoryNidVerifier(population)

    class Stuck:
        def verify(self, request: NidRequest) -> NidResult:
            release.wait(timeout=10)  # the EC hangs
            return inner.verify(request)

    worker = VerificationWorker(store, Stuck(), max_workers=4, now=lambda: T0)
    runner = threading.Thread(target=worker.run_until_idle)
    runner.start()
    try:
        enqueued = threading.Thread(
            target=lambda: [store.enqueue(subject_of(r, f"late{i}"), T0) for i, r in enumerate(population[8:60])]
        )
        enqueued.start()
        enqueued.join(timeout=5)
        assert not enqueued.is_alive()  # registrations went in while every worker thread was stuck
        assert not release.is_set()
        assert store.counts()["pending"] >= 52
    finally:
        release.set()
        runner.join(timeout=10)
        worker.close()
    worker2 = VerificationWorker(store, inner, now=lambda: T0)
    worker2.run_until_idle()
    worker2.close()
    assert store.counts()["verified"] == 60
