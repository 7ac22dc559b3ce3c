"""The VerificationStore contract, run against the in-memory and the SQLite store; restart survival for SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from central_hub.nid.sql_store import SqlVerificationStore
from central_hub.nid.sqlite_store import SqliteVerificationStore
from central_hub.nid.store import InMemoryVerificationStore, Outcome, Status, Subject, VerificationStore
from central_hub.store import SqlHubStore

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


def subject(n: int, **changes: object) -> Subject:
    values: dict[str, object] = {
        "person_id": f"p{n:04d}",
        "nid": f"{1000000000 + n}",
        "name": f"Abdul Karim {n}",
        "date_of_birth": date(1980, 1, 1),
        "father_name": "Abdul Jabbar",
    }
    values.update(changes)
    return Subject(**values)  # type: ignore[arg-type]


@pytest.fixture(params=["memory", "sqlite", "hub-sqlite", pytest.param("hub-postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VerificationStore]:
    if request.param == "memory":
        yield InMemoryVerificationStore()
    elif request.param.startswith("hub-"):
        # the queue inside the hub database (SqlVerificationStore over SqlHubStore's engine)
        url = request.getfixturevalue("pg_url") if request.param == "hub-postgres" else f"sqlite:///{tmp_path}/hub.db"
        hub_store = SqlHubStore(str(url))
        hub_store.migrate()
        yield SqlVerificationStore(hub_store)
        hub_store.close()
    else:
        sqlite = SqliteVerificationStore(tmp_path / "nid.sqlite")
        yield sqlite
        sqlite.close()


def test_enqueued_persons_are_claimed_oldest_first_and_leased(store: VerificationStore) -> None:
    for n in range(5):
        assert store.enqueue(subject(n), T0 + timedelta(seconds=n))
    claims = store.claim(3, T0 + timedelta(minutes=1), LEASE)
    assert [c.subject.person_id for c in claims] == ["p0000", "p0001", "p0002"]
    assert all(c.version == 1 and c.attempts == 0 for c in claims)
    rest = store.claim(10, T0 + timedelta(minutes=1), LEASE)
    assert [c.subject.person_id for c in rest] == ["p0003", "p0004"]  # leased ones are not handed out twice
    assert store.claim(10, T0 + timedelta(minutes=2), LEASE) == []


def test_not_due_before_enqueue_time(store: VerificationStore) -> None:
    store.enqueue(subject(1), T0)
    assert store.claim(10, T0 - timedelta(seconds=1), LEASE) == []


def test_verdicts_are_recorded_and_stay_out_of_the_queue(store: VerificationStore) -> None:
    for n in range(3):
        store.enqueue(subject(n), T0)
    a, b, c = store.claim(3, T0, LEASE)
    store.record(a, Outcome(Status.VERIFIED), T0 + timedelta(seconds=1))
    store.record(b, Outcome(Status.MISMATCH, mismatch_fields=("name", "date_of_birth")), T0)
    store.record(c, Outcome(Status.NOT_FOUND), T0)
    state = store.get("p0000")
    assert state is not None and state.status == Status.VERIFIED and state.attempts == 1
    assert state.checked_at == T0 + timedelta(seconds=1)
    mismatch = store.get("p0001")
    assert mismatch is not None and mismatch.mismatch_fields == ("name", "date_of_birth")
    assert store.counts() == {"pending": 0, "verified": 1, "mismatch": 1, "not_found": 1, "error": 0, "retrying": 0}
    assert store.claim(10, T0 + timedelta(days=30), LEASE) == []


def test_retrying_errors_come_back_when_due(store: VerificationStore) -> None:
    store.enqueue(subject(1), T0)
    (claim,) = store.claim(1, T0, LEASE)
    later = T0 + timedelta(seconds=30)
    state = store.record(claim, Outcome(Status.ERROR, retrying=True, next_attempt_at=later, error="timeout: x"), T0)
    assert state is not None and state.retrying and state.next_attempt_at == later and state.attempts == 1
    assert store.counts()["retrying"] == 1
    assert store.claim(1, later - timedelta(seconds=1), LEASE) == []
    (again,) = store.claim(1, later, LEASE)
    assert again.attempts == 1
    final = store.record(again, Outcome(Status.ERROR, retrying=False, error="auth_failed: x"), later)
    assert final is not None and not final.retrying and final.attempts == 2 and final.next_attempt_at is None
    assert store.claim(1, later + timedelta(days=1), LEASE) == []


def test_changed_details_requeue_and_drop_the_stale_answer(store: VerificationStore) -> None:
    store.enqueue(subject(1), T0)
    assert not store.enqueue(subject(1), T0)  # same details: nothing to do
    (claim,) = store.claim(1, T0, LEASE)
    assert store.enqueue(subject(1, name="Abdul Karim Sarkar"), T0 + timedelta(seconds=1))  # edited while in flight
    assert store.record(claim, Outcome(Status.VERIFIED), T0 + timedelta(seconds=2)) is None
    state = store.get("p0001")
    assert state is not None and state.status == Status.PENDING and state.version == 2
    (fresh,) = store.claim(1, T0 + timedelta(seconds=3), LEASE)
    assert fresh.subject.name == "Abdul Karim Sarkar" and fresh.version == 2
    store.record(fresh, Outcome(Status.VERIFIED), T0)
    for change in ({"nid": "1999999999"}, {"date_of_birth": date(1981, 1, 1)}, {"mother_name": "Rahima"}):
        assert store.enqueue(subject(1, name="Abdul Karim Sarkar", **change), T0), change
        state = store.get("p0001")
        assert state is not None and state.status == Status.PENDING


def test_an_expired_lease_is_claimed_again(store: VerificationStore) -> None:
    store.enqueue(subject(1), T0)
    assert len(store.claim(1, T0, LEASE)) == 1
    assert store.claim(1, T0 + LEASE - timedelta(seconds=1), LEASE) == []
    assert len(store.claim(1, T0 + LEASE, LEASE)) == 1


def test_sqlite_state_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "nid.sqlite"
    first = SqliteVerificationStore(path)
    for n in range(4):
        first.enqueue(subject(n), T0)
    a, b, _unrecorded = first.claim(3, T0, LEASE)
    first.record(a, Outcome(Status.VERIFIED), T0)
    first.record(b, Outcome(Status.ERROR, retrying=True, next_attempt_at=T0 + timedelta(minutes=1), error="x"), T0)
    # c stays claimed: the process "crashes" before recording it
    first.close()

    second = SqliteVerificationStore(path)
    assert second.counts() == {"pending": 2, "verified": 1, "mismatch": 0, "not_found": 0, "error": 1, "retrying": 1}
    verified = second.get("p0000")
    assert verified is not None and verified.status == Status.VERIFIED and verified.subject == subject(0)
    # p0003 was never claimed; p0002's lease is still running, so it waits; p0001 is not due yet
    assert [cl.subject.person_id for cl in second.claim(10, T0 + timedelta(seconds=1), LEASE)] == ["p0003"]
    due = second.claim(10, T0 + LEASE, LEASE)
    assert sorted(cl.subject.person_id for cl in due) == ["p0001", "p0002"]  # nothing lost across the crash
    second.close()


def test_two_sqlite_stores_on_one_file_never_lease_the_same_person(tmp_path: Path) -> None:
    path = tmp_path / "nid.sqlite"
    one, two = SqliteVerificationStore(path), SqliteVerificationStore(path)
    for n in range(20):
        one.enqueue(subject(n), T0)
    got_one = {c.subject.person_id for c in one.claim(12, T0, LEASE)}
    got_two = {c.subject.person_id for c in two.claim(12, T0, LEASE)}
    assert not got_one & got_two and len(got_one | got_two) == 20
    one.close()
    two.close()
