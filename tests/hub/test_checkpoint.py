"""The hub's background WAL checkpoints (``central_hub.checkpoint``): the committed pages reach the database
file without the writers' commits doing it, and stopping hands checkpoints back to SQLite."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from pathlib import Path

from central_hub import schema as hub_tables
from central_hub.checkpoint import SAFETY_NET_PAGES, WalCheckpointer
from central_hub.store import SqlHubStore

ROWS = 1500  # about 4 KB each: some 1,500 pages, past SQLite's own 1,000-page checkpoint, below the safety net


def _autocheckpoint(store: SqlHubStore) -> int:
    with store._conn() as conn:
        return int(conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one())


def _write_pages(store: SqlHubStore, prefix: str) -> None:
    with store.transaction():
        store._upsert(hub_tables.settings, [{"key": f"{prefix}{i}", "value": "x" * 4000} for i in range(ROWS)], ["key"])


def _rows_in_main_file(db: Path, tmp: Path, prefix: str) -> int:
    """Rows found by reading the database file alone, as if the WAL were lost: what checkpoints copied."""
    copy = tmp / "main-file-only.db"
    shutil.copyfile(db, copy)
    conn = sqlite3.connect(copy)
    try:
        return int(conn.execute("SELECT count(*) FROM settings WHERE key LIKE ?", (prefix + "%",)).fetchone()[0])
    finally:
        conn.close()


def test_committed_pages_reach_the_database_file_in_the_background(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    store = SqlHubStore(f"sqlite:///{db}")
    store.migrate()
    checkpointer = WalCheckpointer(store, interval_s=0.05)
    try:
        checkpointer.start()
        # the hub's connections now leave checkpoints to the thread, up to the safety net
        assert _autocheckpoint(store) == SAFETY_NET_PAGES
        _write_pages(store, "bg-")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (
            checkpointer.wal_frames >= ROWS and checkpointer.checkpointed == checkpointer.wal_frames
        ):
            time.sleep(0.05)
        assert checkpointer.wal_frames >= ROWS and checkpointer.checkpointed == checkpointer.wal_frames
        # the WAL is all copied: later checkpoints write nothing, so the file can be copied whole now
        assert _rows_in_main_file(db, tmp_path, "bg-") == ROWS
        assert checkpointer.last_error is None
    finally:
        checkpointer.stop()
    # stopped: the thread is gone and new connections checkpoint as SQLite does by default
    assert not [t for t in threading.enumerate() if t.name == "hub-wal-checkpoint"]
    assert _autocheckpoint(store) == 1000
    with store._conn() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM settings WHERE key LIKE 'bg-%'").scalar_one() == ROWS
    store.close()


def test_without_the_thread_a_commit_below_the_safety_net_is_left_in_the_wal(tmp_path: Path) -> None:
    """The other side of the test above: with the safety net and no thread, nothing copies those pages,
    so it is the thread that did."""
    db = tmp_path / "hub.db"
    store = SqlHubStore(f"sqlite:///{db}")
    store.migrate()
    checkpointer = WalCheckpointer(store, interval_s=3600)  # started, but its first checkpoint is an hour away
    try:
        checkpointer.start()
        _write_pages(store, "wal-")
        time.sleep(0.3)
        assert _rows_in_main_file(db, tmp_path, "wal-") == 0
        assert checkpointer.runs == 0
    finally:
        checkpointer.stop()
    store.close()


def test_off_when_the_interval_is_zero(tmp_path: Path) -> None:
    store = SqlHubStore(f"sqlite:///{tmp_path / 'hub.db'}")
    store.migrate()
    checkpointer = WalCheckpointer(store, interval_s=0)
    checkpointer.start()
    assert not checkpointer.enabled
    assert checkpointer._thread is None
    assert _autocheckpoint(store) == 1000
    checkpointer.stop()
    store.close()


def test_the_app_wires_it_from_config(tmp_path: Path) -> None:
    from central_hub.app import create_app

    store = SqlHubStore(f"sqlite:///{tmp_path / 'hub.db'}")
    store.migrate()
    app = create_app({"HUB_STORE": store, "TESTING": True, "HUB_CHECKPOINT_INTERVAL_S": 0.5})
    checkpointer = app.extensions["central_hub_checkpoint"]
    assert checkpointer.enabled and checkpointer.interval_s == 0.5
    assert checkpointer._thread is None  # only `serve` starts it
    store.close()
