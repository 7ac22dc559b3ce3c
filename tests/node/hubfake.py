"""A minimal hub for the node's sync tests: the real ``HubEngine`` over ``MemoryHubStore`` behind the
HTTP contract of docs/sync-http.md, served by werkzeug on a free loopback port. The real hub wraps the
same engine; this keeps the node's tests independent of the hub's own storage."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, jsonify, request
from werkzeug.serving import make_server

from sync_protocol import auth
from sync_protocol.errors import SyncProtocolError, UnknownNodeError
from sync_protocol.hub import HubEngine
from sync_protocol.memory import MemoryHubStore
from sync_protocol.signing import public_key_from_b64
from sync_protocol.store import NodeRecord
from sync_protocol.validation import validate_change

STATUS = {
    "unknown_node": 401,
    "bad_signature": 401,
    "revoked_node": 403,
    "out_of_scope": 403,
    "sequence_gap": 409,
    "batch_replay_mismatch": 409,
    "invalid_cursor": 400,
    "oversized_batch": 413,
}


class MiniHub:
    def __init__(self) -> None:
        self.store = MemoryHubStore()
        self.engine = HubEngine(self.store, validator=validate_change)
        self.tokens: dict[str, frozenset[str]] = {}
        self.lose_next_push_answer = False
        self.pushes = 0
        self.app = self._make_app()

    def reset_store_keeping_nodes(self) -> None:
        """The hub forgets everything but enrolments (restored from an old backup)."""
        nodes = dict(self.store.nodes)
        self.store = MemoryHubStore()
        for n in nodes.values():
            self.store.add_node(NodeRecord(n.node_id, n.public_key, n.scopes))
        self.engine = HubEngine(self.store, validator=validate_change)

    def _make_app(self) -> Flask:
        app = Flask("test_hub")

        @app.errorhandler(SyncProtocolError)
        def _err(exc: SyncProtocolError) -> Any:
            return jsonify({"error": exc.to_json()}), STATUS.get(exc.code, 400)

        @app.post("/sync/v1/enroll")
        def enroll() -> Any:
            data = request.get_json()
            scopes = self.tokens.pop(data.get("token"), None)
            if scopes is None:
                return jsonify({"error": {"code": "invalid_token", "message": "token unknown or used"}}), 401
            self.store.add_node(NodeRecord(data["node_id"], public_key_from_b64(data["public_key"]), scopes))
            return jsonify(
                {
                    "node_id": data["node_id"],
                    "union_id": sorted(scopes)[0],
                    "scopes": sorted(scopes),
                    "hub_protocol_version": 1,
                    "hub_schema_version": 1,
                }
            )

        @app.post("/sync/v1/push")
        def push() -> Any:
            self.pushes += 1
            response = self.engine.push(request.get_data())
            if self.lose_next_push_answer:
                self.lose_next_push_answer = False
                return "gateway timeout", 504  # applied, but the node never hears it
            return jsonify(response.to_json())

        @app.get("/sync/v1/pull")
        def pull() -> Any:
            node = self.store.get_node(request.headers.get(auth.HEADER_NODE, ""))
            if node is None:
                raise UnknownNodeError("not enrolled")
            query = request.args.to_dict()
            auth.verify_request(node.public_key, request.headers, "GET", "/sync/v1/pull", query)
            return jsonify(self.engine.pull(node.node_id, query.get("cursor"), int(query.get("limit", 500))).to_json())

        return app


@contextmanager
def serve(app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)
