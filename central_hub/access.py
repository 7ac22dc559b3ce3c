"""The service access log: one row for every request (who, what, when, outcome, how long). Never
bodies, query strings or headers, which may carry tokens or personal data."""

from __future__ import annotations

import time

from flask import Flask, Response, g, request

from .store import iso, utc_now


def set_actor(actor: str) -> None:
    g.hub_actor = actor[:100]


def set_outcome(code: str) -> None:
    g.hub_outcome = code[:64]


def init_app(app: Flask) -> None:
    @app.before_request
    def _start() -> None:
        g.hub_t0 = time.perf_counter()
        g.hub_actor = "anonymous"
        g.hub_outcome = None

    @app.after_request
    def _log(response: Response) -> Response:
        if request.path.startswith("/static/"):
            return response
        from .app import hub

        outcome = getattr(g, "hub_outcome", None) or (
            "ok" if response.status_code < 400 else f"http_{response.status_code}"
        )
        row = {
            "at": iso(utc_now()),
            "actor": getattr(g, "hub_actor", "anonymous"),
            "method": request.method[:8],
            "path": request.path[:300],
            "status": response.status_code,
            "outcome": outcome,
            "remote_addr": (request.remote_addr or "")[:64],
            "duration_ms": int((time.perf_counter() - getattr(g, "hub_t0", time.perf_counter())) * 1000),
        }
        try:
            hub().store.log_access(row)
        except Exception:  # the answer still goes out; the failure itself is reported to the operator
            app.logger.exception("could not write the access log row for %s %s", row["method"], row["path"])
        return response
