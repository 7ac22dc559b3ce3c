"""The seeded simulation (``sync_protocol.simulation``) over the real stores: the node's SQLCipher
``SqlcipherReplicaStore`` for every node and the hub's SQLAlchemy ``SqlHubStore`` on SQLite, and on
PostgreSQL (``pg_url``; required in CI). Fewer seeds and operations than the in-memory runs, since every
commit here is a real database commit: SQLite 3 seeds x 4 nodes x 200 ops, PostgreSQL 1 seed x 4 nodes x 120 ops
(about 50-80 changes, 1-2 conflicts and 20-30 lost messages per run).

The real stores have no ``crash_hook``, so the simulation's crash-at-commit faults are off here (crash=0);
drops, duplicates, delayed pushes, partitions and clock skew stay on. Process crashes against the real
stores are covered by ``test_chaos.py`` (kill -9).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from central_hub.store import SqlHubStore
from field_node.db import NodeDatabase
from field_node.replica_store import SqlcipherReplicaStore
from sync_protocol.simulation import run
from sync_protocol.store import HubStore, NodeRecord


def node_store_factory(root: Path, opened: list[NodeDatabase]) -> Callable[[str], SqlcipherReplicaStore]:
    def make(node_id: str) -> SqlcipherReplicaStore:
        database = NodeDatabase(root / f"{node_id}.db", os.urandom(32))
        database.migrate()
        with database.transaction():
            database.conn.execute("INSERT INTO node_config (key, value) VALUES ('node_id', ?)", (node_id,))
        opened.append(database)
        return SqlcipherReplicaStore(database)

    return make


def hub_store_factory(url: str, opened: list[SqlHubStore]) -> Callable[[], SqlHubStore]:
    def make() -> SqlHubStore:
        store = SqlHubStore(url)
        store.migrate()
        opened.append(store)
        return store

    return make


def enrol(store: HubStore, node: NodeRecord) -> None:
    assert isinstance(store, SqlHubStore)
    store.add_node(node)


def simulate(seed: int, ops: int, hub_url: str, root: Path) -> None:
    dbs: list[NodeDatabase] = []
    hubs: list[SqlHubStore] = []
    try:
        report = run(
            seed,
            4,
            ops,
            hub_store_factory=hub_store_factory(hub_url, hubs),
            replica_store_factory=node_store_factory(root, dbs),
            enrol=enrol,
            crash=0.0,
            null_is_absent=True,  # business-table columns cannot tell "set to null" from "never set"
        )
    finally:
        for d in dbs:
            d.close()
        for h in hubs:
            h.close()
    # The run verified convergence, zero lost/duplicated changes and the conflict oracle; make sure it
    # did real work under faults, not an empty run.
    assert report.changes >= 10
    assert report.hub_log > 0 and report.pushes > 0 and report.pulls > 0
    assert report.drops > 0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_simulation_on_sqlcipher_nodes_and_sqlite_hub(seed: int, tmp_path: Path) -> None:
    simulate(seed, 200, f"sqlite:///{tmp_path / 'hub.db'}", tmp_path)


@pytest.mark.postgres
def test_simulation_on_sqlcipher_nodes_and_postgres_hub(pg_url: str, tmp_path: Path) -> None:
    simulate(11, 120, pg_url, tmp_path)
