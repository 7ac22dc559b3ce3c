"""HTTP client for the hub's sync API (docs/sync-http.md), and one sync round over a ``Node``.

``HubClient`` only moves bytes and JSON and turns the hub's error answers into ``SyncFailedError``
with the hub's ``code``; ``sync_once`` drives the replica engine: push every pending batch (re-sending
a built batch byte for byte until acknowledged), then pull pages until the hub has no more. A
background agent can call ``sync_once`` on a timer; it keeps no state of its own.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import requests

from sync_protocol.auth import sign_request
from sync_protocol.model import PullPage, PushResponse
from sync_protocol.signing import Signer

from .errors import NotEnrolledError, SyncFailedError
from .node import Node

PUSH_PATH = "/sync/v1/push"
PULL_PATH = "/sync/v1/pull"
ENROLL_PATH = "/sync/v1/enroll"


class HubClient:
    def __init__(self, base_url: str, *, timeout: float = 30.0, session: requests.Session | None = None) -> None:
        if not base_url:
            raise SyncFailedError("this node has no hub URL", code="no_hub_url")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()

    def _request(self, method: str, path: str, **kw: Any) -> requests.Response:
        try:
            resp = self.session.request(method, self.base_url + path, timeout=self.timeout, **kw)
        except requests.RequestException as exc:
            raise SyncFailedError(
                f"cannot reach the hub at {self.base_url}: {exc.__class__.__name__}", code="unreachable"
            ) from exc
        if resp.status_code >= 400:
            try:
                err = resp.json().get("error", {})
            except ValueError:
                err = {}
            if not isinstance(err, dict):
                err = {}
            code = str(err.get("code") or f"http_{resp.status_code}")
            message = str(err.get("message") or f"hub answered HTTP {resp.status_code}")
            details = {k: val for k, val in err.items() if k not in ("code", "message")}
            raise SyncFailedError(message, code=code, status_code=resp.status_code, **details)
        return resp

    def enroll(self, token: str, node_id: str, public_key_b64: str, label: str = "") -> dict[str, Any]:
        resp = self._request(
            "POST", ENROLL_PATH, json={"token": token, "node_id": node_id, "public_key": public_key_b64, "label": label}
        )
        data: dict[str, Any] = resp.json()
        return data

    def push(self, envelope: bytes) -> PushResponse:
        resp = self._request("POST", PUSH_PATH, data=envelope, headers={"Content-Type": "application/octet-stream"})
        try:
            return PushResponse.from_json(resp.json())
        except (ValueError, KeyError, TypeError) as exc:
            raise SyncFailedError("the hub's push answer is not a push response", code="bad_answer") from exc

    def pull(self, signer: Signer, node_id: str, cursor: str | None, limit: int = 500) -> PullPage:
        query = {"limit": str(limit)}
        if cursor:
            query["cursor"] = cursor
        headers = sign_request(signer, node_id, "GET", PULL_PATH, query)
        resp = self._request("GET", PULL_PATH, params=query, headers=headers)
        try:
            return PullPage.from_json(resp.json())
        except (ValueError, KeyError, TypeError) as exc:
            raise SyncFailedError("the hub's pull answer is not a pull page", code="bad_answer") from exc


@dataclass
class SyncSummary:
    batches_pushed: int = 0
    changes_acked: int = 0
    applied: int = 0
    merged: int = 0
    conflicts: int = 0
    rejected: int = 0
    pulled: int = 0
    pending_after: int = 0
    rejected_changes: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        return (
            f"pushed {self.changes_acked} change(s) in {self.batches_pushed} batch(es): {self.applied} applied, "
            f"{self.merged} merged, {self.conflicts} conflict(s), {self.rejected} rejected; "
            f"pulled {self.pulled} update(s); {self.pending_after} still pending"
        )


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def enroll(node: Node, token: str, client: HubClient | None = None, label: str = "") -> dict[str, Any]:
    """Enrol the node at its hub with a one-time token and remember the scopes the hub granted."""
    _, _, engine = node.require()
    client = client or HubClient(node.hub_url)
    assert engine.signer is not None
    answer = client.enroll(token, node.node_id, engine.signer.public_b64, label or f"union {node.union_id}")
    node.set_config("enrolled", 1)
    node.set_config("scopes", json.dumps(answer.get("scopes", [])))
    return answer


def sync_once(node: Node, client: HubClient | None = None, *, max_batches: int = 1000, page: int = 500) -> SyncSummary:
    """One push of everything pending, then a pull to the end. Records the outcome in ``sync_state``."""
    database, store, engine = node.require()
    if not node.config.get("enrolled"):
        raise NotEnrolledError(
            "this node is not enrolled at its hub; run: field-node enroll --data-dir DIR --token TOKEN",
            code="not_enrolled",
        )
    client = client or HubClient(node.hub_url)
    summary = SyncSummary()
    try:
        for _ in range(max_batches):
            with database.transaction():  # hold the node while building: writes must not interleave
                nxt = engine.next_envelope()
            if nxt is None:
                break
            pending, _batch = nxt
            try:
                response = client.push(pending.envelope)
            except SyncFailedError as exc:
                if exc.code == "sequence_gap":
                    engine.discard_pending_batch(int(exc.details.get("resend_from", 1)))
                    continue
                if exc.code in (
                    "unsupported_version",
                    "malformed_batch",
                    "non_canonical_batch",
                    "batch_replay_mismatch",
                ):
                    # The hub will never take this exact batch; rebuild it from the outbox next time.
                    engine.discard_pending_batch()
                raise
            ack = engine.ack(response)
            summary.batches_pushed += 1
            summary.changes_acked += ack.acked
            summary.applied += ack.applied
            summary.merged += ack.merged
            summary.conflicts += ack.conflicts
            summary.rejected += ack.rejected
            summary.rejected_changes += [r.to_json() for r in ack.rejected_changes]
        cursor = store.get_cursor()
        while True:
            pulled = client.pull(engine.signer, node.node_id, cursor, page)  # type: ignore[arg-type]
            summary.pulled += engine.apply_pull(pulled)
            cursor = pulled.cursor
            if not pulled.more:
                break
    except SyncFailedError as exc:
        with database.transaction():
            store.set_state("last_error", f"{exc.code}: {exc.message}")
            store.set_state("last_attempt_at", _now_iso())
        raise
    with database.transaction():
        store.set_state("last_sync_at", _now_iso())
        store.set_state("last_error", None)
        summary.pending_after = store.last_seq() - store.acked_through()
    return summary
