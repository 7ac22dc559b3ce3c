"""A stand-in for the Election Commission's NID verification service.

Same HTTP API as the client expects (see docs/nid.md), answering from a synthetic population, with
injectable trouble: latency, random 5xx, random 429s, a server-side rate limit answering 429 with
Retry-After, slow answers that outlast a client's timeout, and a full outage switched at runtime
(``POST /admin/outage`` or the presence of an outage file).
"""

from __future__ import annotations

import hmac
import random
import threading
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.serving import BaseWSGIServer, make_server

from central_hub.nid.errors import InvalidNidRequest
from central_hub.nid.interface import NidRequest, result_to_json
from central_hub.nid.population import PopulationRecord, read_population
from central_hub.nid.registry import NidRegistry
from central_hub.nid.resilience import TokenBucket

EXTENSION = "nid_simulator"


@dataclass
class Faults:
    """What the simulator does wrong; every field can be changed at runtime through /admin/faults."""

    latency_ms: float = 0.0
    fail_rate: float = 0.0  # fraction of requests answered 503
    rate_429: float = 0.0  # fraction answered 429 regardless of load (a "429 storm")
    timeout_rate: float = 0.0  # fraction that sleep ``timeout_sleep_s`` before answering 504
    timeout_sleep_s: float = 15.0
    rate_limit: float | None = None  # requests/s the service accepts; beyond that 429
    retry_after_s: float = 1.0  # what 429 answers put in Retry-After
    outage: bool = False

    def update(self, changes: dict[str, Any]) -> dict[str, list[str]]:
        """Apply validated changes; answer field errors (and change nothing) if any is bad."""
        errors: dict[str, list[str]] = {}
        known = {f.name for f in fields(self)}
        clean: dict[str, Any] = {}
        for key, value in changes.items():
            if key not in known:
                errors[key] = ["unknown setting"]
            elif key == "outage":
                if not isinstance(value, bool):
                    errors[key] = ["must be true or false"]
                else:
                    clean[key] = value
            elif key == "rate_limit" and value is None:
                clean[key] = None
            elif isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                errors[key] = ["must be a number >= 0"]
            elif key in ("fail_rate", "rate_429", "timeout_rate") and value > 1:
                errors[key] = ["must be a fraction between 0 and 1"]
            elif key == "rate_limit" and value == 0:
                errors[key] = ["must be positive (or null for no limit)"]
            else:
                clean[key] = float(value)
        if not errors:
            for key, value in clean.items():
                setattr(self, key, value)
        return errors


@dataclass
class SimulatorState:
    registry: NidRegistry
    faults: Faults = field(default_factory=Faults)
    api_key: str | None = None
    api_key_header: str = "X-Api-Key"
    outage_file: Path | None = None
    seed: int | None = None
    counters: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(self.seed)
        self._bucket: TokenBucket | None = None
        self._bucket_rate: float | None = None

    def count(self, name: str) -> None:
        with self._lock:
            self.counters[name] = self.counters.get(name, 0) + 1

    def roll(self, rate: float) -> bool:
        if rate <= 0:
            return False
        with self._lock:
            return self._rng.random() < rate

    def is_down(self) -> bool:
        return self.faults.outage or (self.outage_file is not None and self.outage_file.exists())

    def admit(self) -> bool:
        """Server-side rate limit: False when over the limit."""
        rate = self.faults.rate_limit
        if rate is None:
            return True
        with self._lock:
            if self._bucket is None or self._bucket_rate != rate:
                self._bucket, self._bucket_rate = TokenBucket(rate, burst=rate), rate
            bucket = self._bucket
        return bucket.try_acquire()


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Config keys: NID_POPULATION (list of PopulationRecord, or a path to a JSON-lines file), NID_FAULTS
    (dict of ``Faults`` settings), NID_API_KEY, NID_API_KEY_HEADER, NID_OUTAGE_FILE, NID_SEED."""
    app = Flask(__name__)
    app.config.update(config or {})
    population = app.config.get("NID_POPULATION", [])
    records: list[PopulationRecord] = (
        read_population(Path(population)) if isinstance(population, str | Path) else list(population)
    )
    faults = Faults()
    if errors := faults.update(dict(app.config.get("NID_FAULTS", {}))):
        raise ValueError(f"bad simulator settings: {errors}")
    outage_file = app.config.get("NID_OUTAGE_FILE")
    state = SimulatorState(
        registry=NidRegistry(records),
        faults=faults,
        api_key=app.config.get("NID_API_KEY"),
        api_key_header=app.config.get("NID_API_KEY_HEADER", "X-Api-Key"),
        outage_file=Path(outage_file) if outage_file else None,
        seed=app.config.get("NID_SEED"),
    )
    init_app(app, state)
    return app


def init_app(app: Flask, state: SimulatorState) -> None:
    app.extensions[EXTENSION] = state
    app.register_blueprint(bp)


bp = Blueprint("nid_simulator", __name__)


def _state() -> SimulatorState:
    state: SimulatorState = current_app.extensions[EXTENSION]
    return state


def _authorised(state: SimulatorState) -> bool:
    if state.api_key is None:
        return True
    given = request.headers.get(state.api_key_header, "")
    return hmac.compare_digest(given.encode(), state.api_key.encode())


def _retry_after(seconds: float) -> str:
    # Whole seconds per RFC 9110 unless a test asked for less than one: then the fraction, which our
    # client accepts, keeps test runs short.
    return str(int(seconds)) if seconds >= 1 and seconds == int(seconds) else f"{seconds:g}"


@bp.post("/v1/verify")
def verify() -> ResponseReturnValue:
    state = _state()
    faults = state.faults
    state.count("requests")
    if state.is_down():
        state.count("outage")
        return jsonify(error={"code": "unavailable", "message": "service unavailable"}), 503
    if not _authorised(state):
        state.count("unauthorised")
        return jsonify(error={"code": "unauthorised", "message": "missing or wrong API key"}), 401
    if not state.admit() or state.roll(faults.rate_429):
        state.count("rate_limited")
        body = jsonify(error={"code": "rate_limited", "message": "too many requests"})
        return body, 429, {"Retry-After": _retry_after(faults.retry_after_s)}
    if state.roll(faults.timeout_rate):
        state.count("timeouts")
        time.sleep(faults.timeout_sleep_s)
        return jsonify(error={"code": "gateway_timeout", "message": "upstream timed out"}), 504
    if faults.latency_ms > 0:
        time.sleep(faults.latency_ms / 1000)
    if state.roll(faults.fail_rate):
        state.count("server_errors")
        return jsonify(error={"code": "unavailable", "message": "injected failure"}), 503
    try:
        nid_request = NidRequest.from_json(request.get_json(silent=True))
    except InvalidNidRequest as exc:
        state.count("invalid")
        return jsonify(errors=exc.errors), 400
    result = state.registry.verify(nid_request)
    state.count(result.status)
    return jsonify(result_to_json(result))


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    state = _state()
    return jsonify(status="outage" if state.is_down() else "ok", population=len(state.registry))


@bp.get("/admin/state")
def admin_state() -> ResponseReturnValue:
    state = _state()
    if not _authorised(state):
        return jsonify(error={"code": "unauthorised", "message": "missing or wrong API key"}), 401
    faults = {f.name: getattr(state.faults, f.name) for f in fields(state.faults)}
    return jsonify(faults=faults, down=state.is_down(), counters=dict(state.counters))


@bp.post("/admin/outage")
def admin_outage() -> ResponseReturnValue:
    return _update_faults(lambda body: {"outage": body.get("down")} if isinstance(body, dict) else None)


@bp.post("/admin/faults")
def admin_faults() -> ResponseReturnValue:
    return _update_faults(lambda body: body if isinstance(body, dict) else None)


def _update_faults(extract: Any) -> ResponseReturnValue:
    state = _state()
    if not _authorised(state):
        return jsonify(error={"code": "unauthorised", "message": "missing or wrong API key"}), 401
    changes = extract(request.get_json(silent=True))
    if changes is None:
        return jsonify(errors={"_body": ["expected a JSON object"]}), 400
    if errors := state.faults.update(changes):
        return jsonify(errors=errors), 400
    return admin_state()


class ServerThread:
    """The simulator on a loopback port in a background thread (tests, benchmarks)."""

    def __init__(self, app: Flask, host: str = "127.0.0.1", port: int = 0) -> None:
        self.server: BaseWSGIServer = make_server(host, port, app, threaded=True)
        self.url = f"http://{host}:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="nid-simulator", daemon=True)

    def __enter__(self) -> ServerThread:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

