"""A field node on disk: its data directory, the operators' keyring, and (once unlocked) the database,
replica store and replica engine.

Layout of ``--data-dir``: ``node.db`` (SQLCipher; with ``-wal``/``-shm`` next to it), ``keyring.json``
(wrapped database keys only) and ``login-throttle.json`` (failed-login counters). The node id, union,
hub URL and the Ed25519 signing key live INSIDE the encrypted database (``node_config``).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sync_protocol import geo
from sync_protocol.ids import uuid7
from sync_protocol.replica import ReplicaEngine
from sync_protocol.signing import Signer

from .db import DB_FILE, NodeDatabase
from .errors import FieldNodeError, LoginError, NodeLockedError, NodeNotInitialisedError
from .keyring import KEYRING_FILE, Keyring, LoginThrottle
from .replica_store import SqlcipherReplicaStore


class Node:
    def __init__(self, data_dir: str | Path, *, clock: Callable[[], float] = time.time) -> None:
        self.data_dir = Path(data_dir)
        if not (self.data_dir / KEYRING_FILE).exists() or not (self.data_dir / DB_FILE).exists():
            raise NodeNotInitialisedError(
                f"no field node in {self.data_dir}; create one with: field-node init --data-dir {self.data_dir}"
            )
        self.keyring = Keyring.load(self.data_dir)
        self.throttle = LoginThrottle(self.data_dir, clock)
        self.database: NodeDatabase | None = None
        self.store: SqlcipherReplicaStore | None = None
        self.engine: ReplicaEngine | None = None
        self._unlock_lock = threading.Lock()
        self.config: dict[str, Any] = {}

    # ---- creation -----------------------------------------------------------------------------------

    @classmethod
    def create(cls, data_dir: str | Path, *, union_id: str, hub_url: str, operator: str, password: str) -> Node:
        data_dir = Path(data_dir)
        if not geo.union_exists(union_id):
            raise FieldNodeError(f"union {union_id!r} does not exist in the bundled geography")
        if not operator or not password:
            raise FieldNodeError("the first operator needs a name and a password")
        if (data_dir / DB_FILE).exists() or (data_dir / KEYRING_FILE).exists():
            raise FieldNodeError(f"{data_dir} already holds a field node")
        data_dir.mkdir(parents=True, exist_ok=True)
        key = os.urandom(32)
        database = NodeDatabase(data_dir / DB_FILE, key)
        database.migrate()
        signer = Signer.generate()
        with database.transaction():
            for k, v in {
                "node_id": uuid7(),
                "union_id": str(union_id),
                "hub_url": hub_url.rstrip("/"),
                "signing_key": signer.private_bytes.hex(),
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "grievance_seq": 0,
            }.items():
                database.conn.execute("INSERT INTO node_config (key, value) VALUES (?, ?)", (k, v))
        database.close()
        ring = Keyring.create(data_dir)
        ring.add(operator, password, key)
        return cls(data_dir)

    # ---- operators ----------------------------------------------------------------------------------

    def login(self, username: str, password: str) -> str:
        """Check an operator's password (throttled); unlocks the database on first success."""
        self.throttle.check(username)
        try:
            key = self.keyring.unwrap(username, password)
        except LoginError:
            self.throttle.failed(username)
            raise
        self.throttle.succeeded(username)
        self._open(key)
        return username

    def _open(self, key: bytes) -> None:
        with self._unlock_lock:
            if self.database is not None:
                return
            database = NodeDatabase(self.data_dir / DB_FILE, key)
            database.migrate()
            store = SqlcipherReplicaStore(database)
            self.config = {k: v for k, v in database.conn.execute("SELECT key, value FROM node_config")}
            self.engine = ReplicaEngine(
                store, str(self.config["node_id"]), signer=Signer(bytes.fromhex(self.config["signing_key"]))
            )
            self.store = store
            self.database = database

    def add_operator(self, username: str, password: str, *, by: str, by_password: str) -> None:
        key = self.keyring.unwrap(by, by_password)
        self.keyring.add(username, password, key)

    def change_password(self, username: str, old_password: str, new_password: str) -> None:
        self.throttle.check(username)
        try:
            key = self.keyring.unwrap(username, old_password)
        except LoginError:
            self.throttle.failed(username)
            raise
        self.keyring.add(username, new_password, key, replace=True)

    @property
    def locked(self) -> bool:
        return self.database is None

    def require(self) -> tuple[NodeDatabase, SqlcipherReplicaStore, ReplicaEngine]:
        if self.database is None or self.store is None or self.engine is None:
            raise NodeLockedError("the node database is locked; an operator must log in first")
        return self.database, self.store, self.engine

    @property
    def node_id(self) -> str:
        return str(self.config.get("node_id", ""))

    @property
    def union_id(self) -> str:
        return str(self.config.get("union_id", ""))

    @property
    def hub_url(self) -> str:
        return str(self.config.get("hub_url", ""))

    def set_config(self, key: str, value: Any) -> None:
        database, _, _ = self.require()
        with database.transaction():
            database.conn.execute("INSERT OR REPLACE INTO node_config (key, value) VALUES (?, ?)", (key, value))
        self.config[key] = value

    def close(self) -> None:
        if self.database is not None:
            self.database.close()
        self.database = self.store = self.engine = None
