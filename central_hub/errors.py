"""The hub's exception hierarchy. Protocol errors come from ``sync_protocol.errors``; these cover what
the hub adds around them (staff accounts, enrolment, storage), each with a stable ``code`` for JSON."""

from __future__ import annotations

from typing import Any


class HubError(Exception):
    code = "hub_error"
    status = 400

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.details}


class InvalidRequestError(HubError):
    """Field-level problems with a request; ``errors`` maps field -> messages."""

    code = "invalid_request"

    def __init__(self, message: str, errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(message, errors=errors or {})
        self.errors = errors or {}


class InvalidTokenError(HubError):
    code = "invalid_token"
    status = 401


class NodeExistsError(HubError):
    code = "node_exists"
    status = 409


class AuthError(HubError):
    code = "unauthorized"
    status = 401


class ThrottledError(HubError):
    code = "too_many_attempts"
    status = 429


class ForbiddenError(HubError):
    code = "forbidden"
    status = 403


class NotFoundError(HubError):
    code = "not_found"
    status = 404


class StoreError(HubError):
    """The database is not usable as asked (unknown URL scheme, schema missing...)."""

    code = "store_error"
    status = 500
