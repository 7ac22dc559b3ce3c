"""One exception hierarchy for NID verification.

Service failures never escape ``NidVerifier.verify`` as exceptions: the HTTP client raises these
internally (mapped from ``requests`` errors with ``raise ... from``) and turns them into a
``VerificationFailed`` result at its edge, so callers handle one result type. What does escape is
``InvalidNidRequest``: a request that can never succeed, caught before any network traffic.
"""

from __future__ import annotations


class NidError(Exception):
    """Base class of everything the nid package raises."""

    code = "nid_error"
    retryable = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidNidRequest(NidError):
    """The request is malformed; ``errors`` maps each bad field to its messages."""

    code = "invalid_request"

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{field}: {', '.join(msgs)}" for field, msgs in sorted(errors.items())))
        self.errors = errors


class NidConfigError(NidError):
    code = "bad_config"


class NidServiceError(NidError):
    """The service could not give an answer this time."""

    code = "service_error"


class NidAuthError(NidServiceError):
    """Credentials refused: retrying will not help until an operator fixes the configuration."""

    code = "auth_failed"


class NidProtocolError(NidServiceError):
    """The service answered something this client does not understand."""

    code = "bad_response"


class NidRejectedError(NidServiceError):
    """The service refused the request as malformed (4xx other than auth and rate limiting)."""

    code = "rejected"


class NidTransientError(NidServiceError):
    """A failure worth retrying later."""

    code = "transient"
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NidTimeoutError(NidTransientError):
    code = "timeout"


class NidConnectionError(NidTransientError):
    code = "connection_failed"


class NidServerError(NidTransientError):
    code = "server_error"


class NidRateLimitedError(NidTransientError):
    code = "rate_limited"


class CircuitOpenError(NidTransientError):
    """The client stopped calling a failing service for a cool-down; nothing was sent."""

    code = "circuit_open"
