"""Outage: the EC service is down for a stretch while registrations keep arriving.

Real simulator on loopback, the HTTP verifier, the worker on a SQLite queue. Nothing may be lost, no
verdict may be recorded while the service is down, and everyone is verified once it is back.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from central_hub.nid.http_client import HttpNidVerifier, HttpVerifierConfig
from central_hub.nid.interface import Mismatch, NotFound, Verified
from central_hub.nid.memory import InMemoryNidVerifier
from central_hub.nid.population import PopulationRecord
from central_hub.nid.sqlite_store import SqliteVerificationStore
from central_hub.nid.store import Claim, Outcome, Status, Subject, VerificationState
from central_hub.nid.worker import RetryPolicy, VerificationWorker


@dataclass
class Recorded:
    at: float
    person_id: str
    status: Status


class RecordingStore(SqliteVerificationStore):
    """Keeps a timeline of every recorded outcome."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.timeline: list[Recorded] = []
        self._timeline_lock = threading.Lock()

    def record(self, claim: Claim, outcome: Outcome, now):  # type: ignore[no-untyped-def,override]
        state: VerificationState | None = super().record(claim, outcome, now)
        if state is not None:
            with self._timeline_lock:
                self.timeline.append(Recorded(time.monotonic(), state.person_id, state.status))
        return state


def _subjects(population: list[PopulationRecord]) -> list[Subject]:
    subjects = []
    for i, record in enumerate(population[:120]):
        dob = date.fromisoformat(record.date_of_birth)
        nid, name = record.nid, record.name_bn if i % 2 else record.name_en
        if i % 12 == 5:  # a wrong birth date (same year, so a 17-digit NID stays well formed)
            dob = dob + timedelta(days=1) if dob.month < 12 else dob - timedelta(days=1)
        if i % 12 == 7:  # an NID the service does not know
            nid = f"{9000000000 + i}"
        subjects.append(Subject(f"person-{i:03d}", nid, name, dob, record.father_name_en))
    return subjects


def test_outage_loses_nothing_and_marks_nothing_wrongly(simulator, population, tmp_path) -> None:  # type: ignore[no-untyped-def]
    simulator.set_faults(latency_ms=5)
    subjects = _subjects(population)
    oracle = InMemoryNidVerifier(population)
    expected = {s.person_id: oracle.verify(s.to_request()) for s in subjects}
    assert {type(r) for r in expected.values()} == {Verified, Mismatch, NotFound}

    store = RecordingStore(tmp_path / "queue.sqlite")
    verifier = HttpNidVerifier(
        HttpVerifierConfig(
            simulator.url, connect_timeout=0.5, read_timeout=0.5, max_attempts=2, backoff_base=0.01,
            backoff_cap=0.05, breaker_threshold=3, breaker_cooldown=0.3,
        )
    )  # fmt: skip
    worker = VerificationWorker(
        store, verifier, max_workers=4, batch_size=16, retry=RetryPolicy(base=timedelta(seconds=0.1),
        cap=timedelta(seconds=0.4)), lease=timedelta(seconds=30),
    )  # fmt: skip
    stop = threading.Event()

    def work() -> None:
        while not stop.is_set():
            if worker.run_once().claimed == 0:
                time.sleep(0.02)

    def ingest(batch: list[Subject]) -> None:
        for subject in batch:
            store.enqueue(subject, datetime.now(UTC))
            time.sleep(0.01)

    loop = threading.Thread(target=work, daemon=True)
    loop.start()
    try:
        ingest(subjects[:40])
        simulator.set_faults(outage=True)
        # answers already in flight when the switch flipped may still land; after this grace none may
        time.sleep(0.2)
        down_from = time.monotonic()
        ingest(subjects[40:90])  # registrations keep arriving while the service is down
        # an operator corrects a name during the outage: the correction is what gets verified
        edited = subjects[41]
        store.enqueue(Subject(edited.person_id, edited.nid, "Someone Else Entirely", edited.date_of_birth,
                              edited.father_name), datetime.now(UTC))  # fmt: skip
        time.sleep(0.2)
        store.enqueue(edited, datetime.now(UTC))
        time.sleep(0.5)
        down_until = time.monotonic()
        simulator.set_faults(outage=False)
        ingest(subjects[90:])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            counts = store.counts()
            if counts["pending"] == 0 and counts["retrying"] == 0:
                break
            time.sleep(0.05)
    finally:
        stop.set()
        loop.join(timeout=10)
        worker.close()
        verifier.close()

    during = [r for r in store.timeline if down_from <= r.at <= down_until]
    assert during, "the worker should have tried during the outage"
    assert {r.status for r in during} == {Status.ERROR}  # no verdict while the service was down
    assert verifier.breaker.times_opened >= 1  # and it stopped hammering the dead service
    assert verifier.stats["circuit_rejections"] > 0

    counts = store.counts()
    assert counts["pending"] == 0 and counts["retrying"] == 0 and counts["error"] == 0
    for subject in subjects:  # nothing lost, every verdict right
        state = store.get(subject.person_id)
        assert state is not None, subject
        assert state.subject == subject
        want = expected[subject.person_id]
        assert state.status.value == want.status, (subject, state)
        if isinstance(want, Mismatch):
            assert state.mismatch_fields == want.fields
    assert sum(1 for s in subjects if store.get(s.person_id).status == Status.VERIFIED) == sum(  # type: ignore[union-attr]
        isinstance(r, Verified) for r in expected.values()
    )
    store.close()
