"""NID verification inside the hub process: configuration, the publisher, and the scheduled job.

``init_app`` always attaches the queue (``SqlVerificationStore``) so the staff dashboard can read it; the
verifier and worker exist only when ``HUB_NID_URL`` is configured (unset: verification is off and persons
stay pending). ``central-hub serve`` calls ``start`` to run the job on an APScheduler
``BackgroundScheduler``; tests call ``run_once`` directly.

Configuration (Flask config, defaults from the environment):

- ``HUB_NID_URL``: base URL of the EC service (or the simulator); empty = off.
- ``HUB_NID_API_KEY_ENV``: name of the environment variable holding the API key (default ``HUB_NID_API_KEY``);
  the key itself is read from the environment, never from config files.
- ``HUB_NID_INTERVAL_S`` (30), ``HUB_NID_CONCURRENCY`` (8), ``HUB_NID_RATE_LIMIT`` (requests/s, 0 = none).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Flask, current_app

from central_hub.jobs import start_interval_job
from central_hub.nid.errors import NidConfigError
from central_hub.nid.http_client import HttpNidVerifier, HttpVerifierConfig
from central_hub.nid.interface import NidVerifier
from central_hub.nid.sql_store import Publish, SqlVerificationStore
from central_hub.nid.store import Status, VerificationState
from central_hub.nid.worker import BatchReport, RetryPolicy, VerificationWorker, hub_fields, utc_now
from central_hub.store import SqlHubStore
from sync_protocol.hub import HubEngine

log = logging.getLogger(__name__)

VERDICTS = (Status.VERIFIED, Status.MISMATCH, Status.NOT_FOUND)


def make_publisher(engine: HubEngine) -> Publish:
    """Write a recorded state as the person's hub-owned fields (runs inside the store's transaction).

    A retry that changes nothing a node shows (still ``pending``, no fields) is not published: otherwise
    every failed attempt during an outage would add a log entry for every waiting person."""

    def publish(state: VerificationState) -> None:
        key = ("person", state.person_id)
        record = engine.store.load_records([key]).get(key)
        if record is None:
            return  # the queue only holds persons taken from hub records; nothing to annotate
        fields = hub_fields(state)
        current = record.values()
        if fields["nid_status"] == Status.PENDING.value and current.get("nid_status") == Status.PENDING.value:
            return
        engine.hub_write("person", state.person_id, fields)

    return publish


@dataclass
class NidService:
    """The verification queue of one hub, and (when configured) the worker that drains it."""

    store: SqlVerificationStore
    worker: VerificationWorker | None = None
    interval_s: float = 30.0
    now: Callable[[], datetime] = utc_now

    def __post_init__(self) -> None:
        self._scheduler: Any = None
        self._lock = threading.Lock()
        self.last_run: BatchReport | None = None
        self.last_run_error: str | None = None

    @property
    def enabled(self) -> bool:
        return self.worker is not None

    def run_once(self) -> BatchReport:
        """Queue persons changed since the last scan, then verify until nothing is due."""
        if self.worker is None:
            return BatchReport()
        with self._lock:
            try:
                self.store.scan_until_done(self.now())
                report = self.worker.run_until_idle()
            except Exception as exc:  # the scheduler must keep running; the next run retries
                log.exception("NID verification run failed")
                self.last_run_error = type(exc).__name__
                raise
            self.last_run, self.last_run_error = report, None
            return report

    def start(self) -> None:
        if self.worker is None or self._scheduler is not None:
            return
        if requeued := self.store.retry_service_errors(self.now()):
            log.info("asking the NID service again for %d person(s) it failed for before", requeued)
        self._scheduler = start_interval_job(self.run_once, self.interval_s, "nid-verification", "NID verification")

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None
        if self.worker is not None:
            self.worker.close()

    def health(self) -> dict[str, Any]:
        """For the dashboard: on/off, circuit breaker, last verdict and last failure (from the database, so
        they survive restarts), and the verifier's counters."""
        last_ok = self.store.last_checked(VERDICTS)
        last_error = self.store.last_checked((Status.ERROR,))
        out: dict[str, Any] = {
            "enabled": self.enabled,
            "circuit": None,
            "last_success_at": last_ok.isoformat() if last_ok else None,
            "last_error_at": last_error.isoformat() if last_error else None,
            "last_run_error": self.last_run_error,
            "stats": {},
        }
        verifier = self.worker.verifier if self.worker is not None else None
        breaker = getattr(verifier, "breaker", None)
        if breaker is not None:
            out["circuit"] = breaker.state
        if isinstance(verifier, HttpNidVerifier):
            out["stats"] = verifier.stats
        return out


def verifier_from_config(config: dict[str, Any] | Any) -> NidVerifier | None:
    url = (config.get("HUB_NID_URL") or "").strip()
    if not url:
        return None
    key_env = config.get("HUB_NID_API_KEY_ENV") or "HUB_NID_API_KEY"
    rate = float(config.get("HUB_NID_RATE_LIMIT") or 0)
    try:
        return HttpNidVerifier(HttpVerifierConfig(
            base_url=url, api_key=os.environ.get(key_env) or None, rate_limit=rate or None,
            pool_size=max(4, int(config.get("HUB_NID_CONCURRENCY") or 8)),
        ))  # fmt: skip
    except (TypeError, ValueError) as exc:
        raise NidConfigError(f"bad NID verifier settings: {exc}") from exc


def init_app(app: Flask, hub_store: SqlHubStore, engine: HubEngine) -> NidService:
    app.config.setdefault("HUB_NID_URL", os.environ.get("HUB_NID_URL", ""))
    app.config.setdefault("HUB_NID_API_KEY_ENV", os.environ.get("HUB_NID_API_KEY_ENV", "HUB_NID_API_KEY"))
    app.config.setdefault("HUB_NID_INTERVAL_S", float(os.environ.get("HUB_NID_INTERVAL_S", "30")))
    app.config.setdefault("HUB_NID_CONCURRENCY", int(os.environ.get("HUB_NID_CONCURRENCY", "8")))
    app.config.setdefault("HUB_NID_RATE_LIMIT", float(os.environ.get("HUB_NID_RATE_LIMIT", "0")))
    store = SqlVerificationStore(hub_store, publish=make_publisher(engine))
    verifier: NidVerifier | None = app.config.get("HUB_NID_VERIFIER") or verifier_from_config(app.config)
    worker = None
    if verifier is not None:
        worker = VerificationWorker(
            store, verifier, max_workers=int(app.config["HUB_NID_CONCURRENCY"]),
            retry=app.config.get("HUB_NID_RETRY") or RetryPolicy(),
        )  # fmt: skip
    service = NidService(store, worker, float(app.config["HUB_NID_INTERVAL_S"]))
    app.extensions["central_hub_nid"] = service
    return service


def nid_service() -> NidService:
    found: NidService = current_app.extensions["central_hub_nid"]
    return found
