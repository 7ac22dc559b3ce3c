"""Background jobs of ``central-hub serve`` (NID verification, registry matching): one place that says
how they are scheduled, so every job behaves the same (one run at a time, missed runs coalesced, the
first run at start)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any


def start_interval_job(func: Callable[[], Any], interval_s: float, job_id: str, name: str) -> Any:
    """Start a daemon APScheduler running ``func`` every ``interval_s`` seconds; returns the scheduler
    (call ``shutdown(wait=True)`` to stop it)."""
    from apscheduler.schedulers.background import BackgroundScheduler

    scheduler = BackgroundScheduler(daemon=True)
    scheduler.add_job(
        func,
        "interval",
        seconds=interval_s,
        id=job_id,
        name=name,
        max_instances=1,
        coalesce=True,
        replace_existing=True,
        next_run_time=datetime.now(),
    )
    scheduler.start()
    return scheduler
