"""Signed node requests for reads (pull). Pushes need nothing more: the batch itself is signed.

A node sends ``X-Node-Id``, ``X-Node-Time`` (unix seconds) and ``X-Node-Signature`` (base64 Ed25519
over ``"{METHOD}\\n{path}\\n{sorted query}\\n{node_id}\\n{time}"``). The hub verifies with the enrolled key
and refuses times further than ``max_age_s`` from its clock; the window is wide because union laptops
have wrong clocks, and a replayed pull only re-reads data the node may read anyway.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Mapping
from urllib.parse import urlencode

from .errors import SignatureError
from .signing import Signer, verify

HEADER_NODE = "X-Node-Id"
HEADER_TIME = "X-Node-Time"
HEADER_SIGNATURE = "X-Node-Signature"
DEFAULT_MAX_AGE_S = 72 * 3600


def _message(method: str, path: str, query: Mapping[str, str], node_id: str, when: int) -> bytes:
    q = urlencode(sorted((str(k), str(v)) for k, v in query.items()))
    return f"{method.upper()}\n{path}\n{q}\n{node_id}\n{when}".encode()


def sign_request(
    signer: Signer, node_id: str, method: str, path: str, query: Mapping[str, str], when: int | None = None
) -> dict[str, str]:
    """Headers to add to a request."""
    ts = int(time.time()) if when is None else when
    sig = signer.sign(_message(method, path, query, node_id, ts))
    return {
        HEADER_NODE: node_id,
        HEADER_TIME: str(ts),
        HEADER_SIGNATURE: base64.b64encode(sig).decode("ascii"),
    }


def verify_request(
    public_key: bytes,
    headers: Mapping[str, str],
    method: str,
    path: str,
    query: Mapping[str, str],
    *,
    now: int | None = None,
    max_age_s: int = DEFAULT_MAX_AGE_S,
) -> str:
    """Check the signature headers; returns the node id. Raises ``SignatureError``."""
    node_id = headers.get(HEADER_NODE, "")
    try:
        ts = int(headers.get(HEADER_TIME, ""))
        sig = base64.b64decode(headers.get(HEADER_SIGNATURE, ""), validate=True)
    except (ValueError, binascii.Error) as exc:
        raise SignatureError("request signature headers are missing or malformed") from exc
    current = int(time.time()) if now is None else now
    if abs(current - ts) > max_age_s:
        raise SignatureError(
            f"request time is {abs(current - ts) // 3600} h away from the hub's clock; fix the node's date and time"
        )
    verify(public_key, sig, _message(method, path, query, node_id, ts))
    return node_id
