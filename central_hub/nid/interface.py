"""What a verifier is asked and what it answers.

A verifier answers one of four results. ``Verified``, ``Mismatch`` and ``NotFound`` are the service's
verdict; ``VerificationFailed`` means no verdict was obtained (``retryable`` says whether asking again
later can help). A caller never has to catch a service exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol, runtime_checkable

from central_hub.nid.errors import InvalidNidRequest
from central_hub.nid.numbers import mask_nid, nid_problems, normalize_nid

#: the request fields a mismatch can name, in a stable order
MISMATCH_FIELDS = ("name", "date_of_birth", "father_name", "mother_name")


@dataclass(frozen=True)
class NidRequest:
    nid: str
    name: str  # Bangla or English script
    date_of_birth: date
    father_name: str | None = None
    mother_name: str | None = None

    def __post_init__(self) -> None:
        errors: dict[str, list[str]] = {}
        if not isinstance(self.nid, str):
            errors["nid"] = ["NID must be a string of digits"]
        else:
            object.__setattr__(self, "nid", normalize_nid(self.nid))
            dob = self.date_of_birth if isinstance(self.date_of_birth, date) else None
            if problems := nid_problems(self.nid, dob):
                errors["nid"] = problems
        if not isinstance(self.name, str) or not self.name.strip():
            errors["name"] = ["name is required"]
        if not isinstance(self.date_of_birth, date):
            errors["date_of_birth"] = ["date of birth must be a date (YYYY-MM-DD)"]
        elif self.date_of_birth > date.today():
            errors["date_of_birth"] = ["date of birth cannot be in the future"]
        for name in ("father_name", "mother_name"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                errors[name] = ["must be text"]
            elif isinstance(value, str) and not value.strip():
                object.__setattr__(self, name, None)
        if errors:
            raise InvalidNidRequest(errors)

    def __repr__(self) -> str:  # keep PII out of logs and tracebacks
        return f"NidRequest(nid={mask_nid(self.nid)!r})"

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "nid": self.nid,
            "name": self.name,
            "date_of_birth": self.date_of_birth.isoformat(),
        }
        if self.father_name is not None:
            body["father_name"] = self.father_name
        if self.mother_name is not None:
            body["mother_name"] = self.mother_name
        return body

    @classmethod
    def from_json(cls, data: Any) -> NidRequest:
        """Build from JSON, reporting every bad field at once."""
        if not isinstance(data, dict):
            raise InvalidNidRequest({"_body": ["expected a JSON object"]})
        errors: dict[str, list[str]] = {}
        for required in ("nid", "name", "date_of_birth"):
            if not isinstance(data.get(required), str):
                errors[required] = [f"{required} is required (a string)"]
        unknown = set(data) - {"nid", "name", "date_of_birth", "father_name", "mother_name"}
        for key in sorted(unknown):
            errors[key] = ["unknown field"]
        dob: date | None = None
        if isinstance(data.get("date_of_birth"), str):
            try:
                dob = date.fromisoformat(data["date_of_birth"])
            except ValueError:
                errors["date_of_birth"] = ["date of birth must be YYYY-MM-DD"]
        if isinstance(data.get("nid"), str) and (problems := nid_problems(normalize_nid(data["nid"]), dob)):
            errors["nid"] = problems
        if errors:
            raise InvalidNidRequest(errors)
        assert dob is not None
        return cls(data["nid"], data["name"], dob, data.get("father_name"), data.get("mother_name"))


@dataclass(frozen=True)
class Verified:
    status: str = field(default="verified", init=False)


@dataclass(frozen=True)
class Mismatch:
    fields: tuple[str, ...]  # a subset of MISMATCH_FIELDS, in that order
    status: str = field(default="mismatch", init=False)

    def __post_init__(self) -> None:
        unknown = set(self.fields) - set(MISMATCH_FIELDS)
        if unknown or not self.fields:
            raise ValueError(f"mismatch fields must be a non-empty subset of {MISMATCH_FIELDS}: {self.fields}")
        object.__setattr__(self, "fields", tuple(f for f in MISMATCH_FIELDS if f in self.fields))


@dataclass(frozen=True)
class NotFound:
    status: str = field(default="not_found", init=False)


@dataclass(frozen=True)
class VerificationFailed:
    """No verdict. ``retry_after`` (seconds) is the service's own hint, when it gave one."""

    retryable: bool
    reason: str
    code: str = "error"
    retry_after: float | None = None
    status: str = field(default="error", init=False)


NidResult = Verified | Mismatch | NotFound | VerificationFailed


def result_to_json(result: NidResult) -> dict[str, Any]:
    if isinstance(result, Mismatch):
        return {"status": "mismatch", "fields": list(result.fields)}
    if isinstance(result, VerificationFailed):
        return {"status": "error", "retryable": result.retryable, "reason": result.reason, "code": result.code}
    return {"status": result.status}


@runtime_checkable
class NidVerifier(Protocol):
    """Asks the Election Commission (or a stand-in) whether a person's details match an NID.

    ``verify`` raises nothing but ``InvalidNidRequest`` (which ``NidRequest`` already prevents); every
    service failure comes back as ``VerificationFailed``. Implementations must be safe to call from
    several threads at once.
    """

    def verify(self, request: NidRequest) -> NidResult: ...
