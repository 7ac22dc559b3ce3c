"""One-time enrolment tokens and node enrolment. A token fixes the node's scope: one union, or every
union of an upazila. Only a hash of the token is stored."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

from sync_protocol import geo
from sync_protocol.entities import SCHEMA_VERSION
from sync_protocol.errors import SignatureError
from sync_protocol.model import PROTOCOL_VERSION
from sync_protocol.signing import public_key_from_b64
from sync_protocol.store import NodeRecord

from .errors import InvalidRequestError, InvalidTokenError, NodeExistsError
from .store import SqlHubStore, iso, utc_now

TOKEN_DAYS = 7


@dataclass(frozen=True)
class IssuedToken:
    token: str
    scopes: frozenset[str]
    expires_at: str


def issue_token(
    store: SqlHubStore, *, union_id: str | None = None, upazila_id: str | None = None, days: int = TOKEN_DAYS
) -> IssuedToken:
    if (union_id is None) == (upazila_id is None):
        raise InvalidRequestError("give a union or an upazila", {"union": ["give exactly one of union / upazila"]})
    if union_id is not None:
        if not geo.union_exists(str(union_id)):
            raise InvalidRequestError("unknown union", {"union": [f"no union with id {union_id!r}"]})
        scopes = frozenset({str(union_id)})
    else:
        scopes = geo.unions_of_upazila(str(upazila_id))
        if not scopes:
            raise InvalidRequestError("unknown upazila", {"upazila": [f"no upazila with id {upazila_id!r}"]})
    token = secrets.token_urlsafe(24)
    expires = iso(utc_now() + dt.timedelta(days=days))
    store.add_token(
        token,
        scopes,
        None if union_id is None else str(union_id),
        None if upazila_id is None else str(upazila_id),
        expires,
    )
    return IssuedToken(token, scopes, expires)


def _text(data: dict[str, Any], name: str, errors: dict[str, list[str]], max_len: int, required: bool = True) -> str:
    value = data.get(name, "")
    if not isinstance(value, str) or (required and not value.strip()) or len(value) > max_len:
        errors[name] = [
            f"required text of at most {max_len} characters" if required else f"at most {max_len} characters"
        ]
        return ""
    return value.strip()


def enroll(store: SqlHubStore, data: Any) -> dict[str, Any]:
    """Redeem a token for a node's public key; answers the node's scope and the hub's versions."""
    if not isinstance(data, dict):
        raise InvalidRequestError("send a JSON object", {"body": ["expected a JSON object"]})
    errors: dict[str, list[str]] = {}
    token = _text(data, "token", errors, 200)
    node_id = _text(data, "node_id", errors, 64)
    label = _text(data, "label", errors, 200, required=False)
    key_text = _text(data, "public_key", errors, 100)
    public_key = b""
    if key_text:
        try:
            public_key = public_key_from_b64(key_text)
        except SignatureError as exc:
            errors["public_key"] = [exc.message]
    if errors:
        raise InvalidRequestError("enrolment request is not valid", errors)
    with store.transaction():
        issued = store.get_token(token)
        now = iso(utc_now())
        if issued is None or issued.used_at is not None or issued.expires_at <= now:
            raise InvalidTokenError("enrolment token is unknown, expired or already used; ask for a new one")
        if store.get_node(node_id) is not None:
            raise NodeExistsError(f"node {node_id} is already enrolled")
        if not store.use_token(token, node_id):
            raise InvalidTokenError("enrolment token was used meanwhile; ask for a new one")
        store.add_node(
            NodeRecord(node_id, public_key, issued.scopes, label=label or node_id),
            union_id=issued.union_id,
            upazila_id=issued.upazila_id,
        )
    return {
        "node_id": node_id,
        "union_id": issued.union_id,
        "upazila_id": issued.upazila_id,
        "scopes": sorted(issued.scopes, key=lambda s: (len(s), s)),
        "hub_protocol_version": PROTOCOL_VERSION,
        "hub_schema_version": SCHEMA_VERSION,
    }
