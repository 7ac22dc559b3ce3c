"""WAL checkpoints of the hub's SQLite database on a thread of their own, while ``central-hub serve`` runs.

SQLite in WAL mode appends every commit to the ``-wal`` file and copies those pages back into the database
(a checkpoint) once the WAL passes ``wal_autocheckpoint`` pages (default 1,000), inside the ``COMMIT`` of
whichever connection crossed the line. At a million persons a chunk of the registry job dirties about 820
pages, so nearly every chunk paid a checkpoint in its own ``COMMIT``: measured in session 5, 550 blocking
keys committed in 32-38 ms with that, 12-15 ms without. Here a thread with its own connection runs
``PRAGMA wal_checkpoint(PASSIVE)`` every ``interval_s``; a passive checkpoint waits for no one and blocks
no writer, and SQLite releases the GIL while it copies, so on a second core it overlaps the job's
matching. The hub's own connections then checkpoint only as a safety net, past ``SAFETY_NET_PAGES``
(if this thread stalls or dies, the WAL still stays bounded). Measured with ``bench/bench_registry_ab.py``
on a million-person registry: the job 623 -> 775 persons/s (chunks of 100), 799 -> 1,031 (chunks of 500),
every run with the thread above every run without.

Durability is unchanged: a checkpoint only copies committed pages, and with ``synchronous=FULL`` each
commit is already on disk in the WAL. Only ``serve`` starts the thread (``HUB_CHECKPOINT_INTERVAL_S``,
default 0.2; 0 = off): other processes (the CLI's one-off commands, tests) keep SQLite's default.
PostgreSQL: nothing to do.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from typing import Any

from flask import Flask, current_app
from sqlalchemy import event

from .store import SqlHubStore

log = logging.getLogger(__name__)

#: wal_autocheckpoint of the hub's connections while the thread runs (pages of 4 KiB: 40 MB)
SAFETY_NET_PAGES = 10_000


class WalCheckpointer:
    """Background passive checkpoints of one SQLite hub database (no-op on other databases)."""

    def __init__(self, store: SqlHubStore, interval_s: float = 0.2) -> None:
        self.store = store
        self.interval_s = interval_s
        database = store.engine.url.database
        # an in-memory database has no WAL, and a second connection would open another database
        self.enabled = store.dialect == "sqlite" and interval_s > 0 and bool(database) and database != ":memory:"
        self.runs = 0  # checkpoints run (tests and the bench read these)
        # after the latest checkpoint: frames in the WAL, and how many of them are in the database now
        self.wal_frames = 0
        self.checkpointed = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listening = False

    def _raise_autocheckpoint(self, dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute(f"PRAGMA wal_autocheckpoint={SAFETY_NET_PAGES}")

    def start(self) -> None:
        if not self.enabled or self._thread is not None:
            return
        if not self._listening:
            event.listen(self.store.engine, "connect", self._raise_autocheckpoint)
            self._listening = True
        # connections opened before this keep SQLite's default; new ones get the safety net
        self.store.engine.dispose()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="hub-wal-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        thread.join()
        if self._listening:
            event.remove(self.store.engine, "connect", self._raise_autocheckpoint)
            self._listening = False
        self.store.engine.dispose()  # back to SQLite's own checkpoints for whoever uses the store next

    def checkpoint_once(self, conn: sqlite3.Connection) -> None:
        # (busy, frames in the WAL, frames of it checkpointed so far); busy only for the blocking modes
        _busy, wal_frames, checkpointed = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.runs += 1
        self.wal_frames, self.checkpointed = wal_frames, checkpointed

    def _run(self) -> None:
        path = str(self.store.engine.url.database)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        try:
            while not self._stop.wait(self.interval_s):
                try:
                    self.checkpoint_once(conn)
                    self.last_error = None
                except sqlite3.Error as exc:
                    # the hub's own connections still checkpoint past SAFETY_NET_PAGES; try again next time
                    if self.last_error is None:
                        log.warning("WAL checkpoint failed: %s", type(exc).__name__)
                    self.last_error = type(exc).__name__
        finally:
            conn.close()


def init_app(app: Flask, store: SqlHubStore) -> WalCheckpointer:
    app.config.setdefault("HUB_CHECKPOINT_INTERVAL_S", float(os.environ.get("HUB_CHECKPOINT_INTERVAL_S", "0.2")))
    checkpointer = WalCheckpointer(store, float(app.config["HUB_CHECKPOINT_INTERVAL_S"]))
    app.extensions["central_hub_checkpoint"] = checkpointer
    return checkpointer


def wal_checkpointer() -> WalCheckpointer:
    found: WalCheckpointer = current_app.extensions["central_hub_checkpoint"]
    return found
