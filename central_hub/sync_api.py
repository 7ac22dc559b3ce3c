"""The node <-> hub sync API (docs/sync-http.md): enrol, push a signed batch, pull the node's scope.

Every refusal is JSON ``{"error": {"code", "message", ...}}`` and applies nothing: the engine checks
node, signature, versions and scope before it opens the transaction, and the transaction rolls back on
any later refusal.
"""

from __future__ import annotations

import contextlib
import gzip
import json
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from flask_wtf.csrf import CSRFProtect
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge

from sync_protocol import auth, wire
from sync_protocol.errors import (
    OversizedBatchError,
    SyncProtocolError,
    TruncatedBatchError,
    UnknownNodeError,
)

from . import enrolment
from .access import set_actor, set_outcome
from .app import hub
from .errors import HubError, InvalidRequestError

bp = Blueprint("sync_api", __name__, url_prefix="/sync/v1")

STATUS = {
    "malformed_batch": 400,
    "truncated_batch": 400,
    "non_canonical_batch": 400,
    "unsupported_version": 400,
    "invalid_cursor": 400,
    "clock_skew": 400,
    "oversized_batch": 413,
    "unknown_node": 401,
    "bad_signature": 401,
    "revoked_node": 403,
    "out_of_scope": 403,
    "sequence_gap": 409,
    "batch_replay_mismatch": 409,
    "sequence_reused": 409,
}


def error_response(code: str, payload: dict[str, Any], status: int) -> tuple[Response, int]:
    set_outcome(code)
    return jsonify({"error": payload}), status


@bp.errorhandler(SyncProtocolError)
def _protocol_error(exc: SyncProtocolError) -> tuple[Response, int]:
    return error_response(exc.code, exc.to_json(), STATUS.get(exc.code, 400))


@bp.errorhandler(HubError)
def _hub_error(exc: HubError) -> tuple[Response, int]:
    return error_response(exc.code, exc.to_json(), exc.status)


def _read_envelope() -> bytes:
    limit = wire.MAX_ENVELOPE_BYTES
    length = request.content_length
    if length is not None and length > limit:
        raise OversizedBatchError(f"batch is {length} bytes; the limit is {limit}: send fewer changes per batch")
    try:
        body = request.stream.read(limit + 1)
    except ClientDisconnected as exc:
        raise TruncatedBatchError("the request body ended before its Content-Length; send the batch again") from exc
    if length is not None and len(body) < length:
        raise TruncatedBatchError(f"{len(body)} of {length} bytes arrived; send the batch again")
    if len(body) > limit:
        raise OversizedBatchError(f"batch is larger than the limit of {limit} bytes")
    if not body:
        raise TruncatedBatchError("the request has no body; send one signed batch")
    return body


@bp.post("/enroll")
def enroll() -> Response:
    data = request.get_json(silent=True)
    if isinstance(data, dict) and isinstance(data.get("node_id"), str):
        set_actor(f"node:{data['node_id']}")
    return jsonify(enrolment.enroll(hub().store, data))


@bp.post("/push")
def push() -> Response:
    envelope = _read_envelope()
    # A bad header is reported by the engine just below, with its JSON answer; here it only names the actor.
    with contextlib.suppress(SyncProtocolError):
        set_actor(f"node:{wire.read_header(envelope).node_id}")
    response = hub().engine.push(envelope)
    return jsonify(response.to_json())


@bp.get("/pull")
def pull() -> Response:
    node_id = request.headers.get(auth.HEADER_NODE, "")
    set_actor(f"node:{node_id}" if node_id else "anonymous")
    store = hub().store
    node = store.get_node(node_id) if node_id else None
    if node is None:
        raise UnknownNodeError(f"node {node_id!r} is not enrolled at this hub; enrol it first")
    query = request.args.to_dict()
    max_age = current_app.config.get("HUB_PULL_MAX_AGE_S") or auth.DEFAULT_MAX_AGE_S
    auth.verify_request(node.public_key, dict(request.headers), "GET", "/sync/v1/pull", query, max_age_s=max_age)
    try:
        limit = int(query.get("limit", "500"))
        if not 1 <= limit <= 5000:
            raise ValueError(limit)
    except ValueError as exc:
        raise InvalidRequestError("bad limit", {"limit": ["a whole number from 1 to 5000"]}) from exc
    page = hub().engine.pull(node_id, query.get("cursor"), limit)
    return _compact_json(page.to_json())


def _compact_json(data: Any) -> Response:
    """Pull pages are most of what a union's slow link carries: compact UTF-8 JSON (Bangla stays 3 bytes a
    letter instead of 6 as \\u escapes), gzipped when the node accepts it (requests always does)."""
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    resp = Response(mimetype="application/json")
    if "gzip" in request.accept_encodings and len(body) > 512:
        resp.set_data(gzip.compress(body, 6))
        resp.headers["Content-Encoding"] = "gzip"
    else:
        resp.set_data(body)
    resp.headers["Vary"] = "Accept-Encoding"
    return resp


def init_app(app: Flask, csrf: CSRFProtect) -> None:
    csrf.exempt(bp)  # signed by the node's key; no cookies involved

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(exc: RequestEntityTooLarge) -> Any:
        if request.path.startswith("/sync/"):
            return error_response(
                "oversized_batch", {"code": "oversized_batch", "message": "request body too large"}, 413
            )
        set_outcome("too_large")
        return exc

    app.register_blueprint(bp)
