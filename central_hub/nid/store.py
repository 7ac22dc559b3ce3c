"""The verification queue's storage interface, and an in-memory implementation.

The worker owns one small piece of state per person: what was asked (the *subject*), the current status
and the retry bookkeeping. It never touches registration data, so ingest never waits on verification.

Lifecycle of one person::

    enqueue(subject) -> pending --claim--> (in flight, leased) --record--> verified | mismatch | not_found
                                                                       \\-> error (retrying: due again later)
                                                                       \\-> error (not retrying: needs a person)
    enqueue(changed subject) -> pending again, version + 1; an in-flight answer for the old version is dropped

A claim is a *lease*: if the worker dies before recording, the lease runs out and the person is claimed
again, so a crash loses nothing.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Protocol

from central_hub.nid.interface import NidRequest
from central_hub.nid.numbers import mask_nid


class Status(StrEnum):
    PENDING = "pending"
    VERIFIED = "verified"
    MISMATCH = "mismatch"
    NOT_FOUND = "not_found"
    ERROR = "error"


@dataclass(frozen=True)
class Subject:
    """What is checked for one person. A change to any of these re-queues the person."""

    person_id: str
    nid: str
    name: str
    date_of_birth: date
    father_name: str | None = None
    mother_name: str | None = None

    def __repr__(self) -> str:
        return f"Subject(person_id={self.person_id!r}, nid={mask_nid(self.nid)!r})"

    def to_request(self) -> NidRequest:
        """Raises ``InvalidNidRequest`` when the details can never be verified as they are."""
        return NidRequest(self.nid, self.name, self.date_of_birth, self.father_name, self.mother_name)

    def same_details(self, other: Subject) -> bool:
        return (self.nid, self.name, self.date_of_birth, self.father_name, self.mother_name) == (
            other.nid, other.name, other.date_of_birth, other.father_name, other.mother_name,
        )  # fmt: skip


@dataclass(frozen=True)
class VerificationState:
    subject: Subject
    status: Status
    version: int  # bumped whenever the subject changes
    attempts: int = 0  # service calls recorded for this version
    mismatch_fields: tuple[str, ...] = ()
    retrying: bool = False  # only for ERROR: whether it will be tried again by itself
    next_attempt_at: datetime | None = None  # when a pending/retrying person is due
    error: str | None = None  # code and reason of the last failure
    checked_at: datetime | None = None  # when the last answer (or failure) was recorded

    @property
    def person_id(self) -> str:
        return self.subject.person_id

    @property
    def due(self) -> bool:
        return self.status == Status.PENDING or (self.status == Status.ERROR and self.retrying)


@dataclass(frozen=True)
class Claim:
    subject: Subject
    version: int
    attempts: int


@dataclass(frozen=True)
class Outcome:
    """What one verification attempt concluded."""

    status: Status
    mismatch_fields: tuple[str, ...] = ()
    retrying: bool = False
    next_attempt_at: datetime | None = None
    error: str | None = None

    def __post_init__(self) -> None:
        if self.status == Status.PENDING:
            raise ValueError("an outcome cannot be 'pending'")
        if self.status == Status.ERROR and self.retrying and self.next_attempt_at is None:
            raise ValueError("a retrying error needs next_attempt_at")
        if self.status == Status.MISMATCH and not self.mismatch_fields:
            raise ValueError("a mismatch names its fields")


class VerificationStore(Protocol):
    """Storage for the verification queue. Implementations must be safe to call from several threads."""

    def enqueue(self, subject: Subject, now: datetime) -> bool:
        """Add a person, or re-queue them if NID, name, birth date or parents' names changed.
        Returns True when the person is (again) pending, False when nothing changed."""
        ...

    def claim(self, limit: int, now: datetime, lease: timedelta) -> list[Claim]:
        """Up to ``limit`` persons due at ``now`` (pending, or retrying errors whose time has come),
        oldest due first, leased until ``now + lease`` so no one else claims them meanwhile."""
        ...

    def record(self, claim: Claim, outcome: Outcome, now: datetime) -> VerificationState | None:
        """Store an attempt's outcome and release the lease. Returns the new state, or None when the
        subject changed since the claim (the answer is about old details and is dropped)."""
        ...

    def get(self, person_id: str) -> VerificationState | None: ...

    def counts(self) -> dict[str, int]:
        """Persons per status, plus ``retrying`` (errors that will be retried)."""
        ...


def next_state(current: VerificationState, claim: Claim, outcome: Outcome, now: datetime) -> VerificationState:
    """The state after recording ``outcome`` for ``claim`` (the caller has checked the version)."""
    return replace(
        current,
        status=outcome.status,
        attempts=claim.attempts + 1,
        mismatch_fields=outcome.mismatch_fields if outcome.status == Status.MISMATCH else (),
        retrying=outcome.retrying if outcome.status == Status.ERROR else False,
        next_attempt_at=outcome.next_attempt_at if outcome.status == Status.ERROR and outcome.retrying else None,
        error=outcome.error if outcome.status == Status.ERROR else None,
        checked_at=now,
    )


class InMemoryVerificationStore:
    """Implements ``VerificationStore`` in a dict; for tests and as the reference behaviour."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, VerificationState] = {}
        self._leases: dict[str, datetime] = {}
        self._order: dict[str, int] = {}  # enqueue order breaks ties between equal due times
        self._counter = 0

    def enqueue(self, subject: Subject, now: datetime) -> bool:
        with self._lock:
            current = self._states.get(subject.person_id)
            if current is not None and current.subject.same_details(subject):
                return False
            version = current.version + 1 if current else 1
            self._states[subject.person_id] = VerificationState(subject, Status.PENDING, version, next_attempt_at=now)
            self._leases.pop(subject.person_id, None)
            self._counter += 1
            self._order[subject.person_id] = self._counter
            return True

    def claim(self, limit: int, now: datetime, lease: timedelta) -> list[Claim]:
        with self._lock:
            due = [
                s for s in self._states.values()
                if s.due and s.next_attempt_at is not None and s.next_attempt_at <= now
                and self._leases.get(s.person_id, now) <= now
            ]  # fmt: skip
            due.sort(key=lambda s: (s.next_attempt_at, self._order[s.person_id]))
            claims = []
            for state in due[:limit]:
                self._leases[state.person_id] = now + lease
                claims.append(Claim(state.subject, state.version, state.attempts))
            return claims

    def record(self, claim: Claim, outcome: Outcome, now: datetime) -> VerificationState | None:
        with self._lock:
            current = self._states.get(claim.subject.person_id)
            if current is None or current.version != claim.version:
                return None
            new = next_state(current, claim, outcome, now)
            self._states[current.person_id] = new
            self._leases.pop(current.person_id, None)
            return new

    def get(self, person_id: str) -> VerificationState | None:
        with self._lock:
            return self._states.get(person_id)

    def counts(self) -> dict[str, int]:
        with self._lock:
            result = dict.fromkeys([s.value for s in Status], 0)
            result["retrying"] = 0
            for state in self._states.values():
                result[state.status.value] += 1
                result["retrying"] += state.status == Status.ERROR and state.retrying
            return result
