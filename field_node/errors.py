"""One exception hierarchy for the field node. Every error has a message an operator can act on."""

from __future__ import annotations

from typing import Any


class FieldNodeError(Exception):
    """Base class of everything ``field_node`` raises."""

    status = 400

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NodeNotInitialisedError(FieldNodeError):
    status = 404


class NodeLockedError(FieldNodeError):
    """The database is still encrypted: no operator has logged in since the node started."""

    status = 423


class LoginError(FieldNodeError):
    status = 401


class WrongPasswordError(LoginError):
    pass


class LoginThrottledError(LoginError):
    status = 429

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, retry_after=retry_after)
        self.retry_after = retry_after


class OperatorExistsError(FieldNodeError):
    status = 409


class ValidationFailed(FieldNodeError):
    """Field-level errors; nothing was stored."""

    status = 422

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("invalid input", errors=errors)
        self.errors = errors


class PossibleDuplicateError(FieldNodeError):
    """A new person looks like one already on this node; the operator may confirm and save anyway."""

    status = 409

    def __init__(self, matches: dict[str, list[dict[str, Any]]]) -> None:
        super().__init__("possible duplicate", matches=matches)
        self.matches = matches


class NotFoundError(FieldNodeError):
    status = 404


class SyncFailedError(FieldNodeError):
    status = 502

    def __init__(self, message: str, *, code: str = "sync_failed", **details: Any) -> None:
        super().__init__(message, code=code, **details)
        self.code = code


class NotEnrolledError(SyncFailedError):
    status = 409
