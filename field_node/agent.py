"""The background sync agent of ``field-node serve``: push then pull on an interval, back off with jitter
while the hub is unreachable, a "Sync now" trigger, and a status an operator can read.

The agent knows nothing about HTTP or the database. It depends on a small interface:

* ``sync``: a callable that performs one sync round (push everything pending, then pull) and returns a
  summary (anything with ``to_json()`` or a dict). It raises on failure; an exception's ``code`` and
  ``message`` attributes, when present, choose the plain-words message shown to the operator.
* ``state``: a ``StateStore`` (``load() -> dict | None``, ``save(dict)``), so the status survives restarts;
  on a node it lives inside the encrypted database (``NodeStateStore``).
* ``probe`` (optional): ``() -> (acked_through, last_seq)``, read while a round runs to show progress.
* ``clock``, ``rng``: injectable, so backoff, jitter and state are tested without sleeping.

Scheduling: ``start()`` runs an APScheduler ``BackgroundScheduler`` job that ticks every ``tick_s`` and
calls ``tick()``, which syncs only when the next attempt is due. ``sync_now()`` (the UI button and
``POST /api/v1/sync``) runs a round at once, in the caller's thread; one lock keeps rounds from overlapping.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Protocol

DEFAULT_INTERVAL_S = 300.0
DEFAULT_BATCH_SIZE = 500  # ReplicaEngine.next_envelope's default: used to count batches for progress
INTERVAL_ENV = "FIELD_NODE_SYNC_INTERVAL"
STATE_KEY = "agent_status"


class StateStore(Protocol):
    def load(self) -> dict[str, Any] | None: ...

    def save(self, state: dict[str, Any]) -> None: ...


class MemoryStateStore:
    """For tests and for a node whose database is still locked."""

    def __init__(self, initial: dict[str, Any] | None = None) -> None:
        self.state = dict(initial) if initial else None
        self.saves = 0

    def load(self) -> dict[str, Any] | None:
        return dict(self.state) if self.state is not None else None

    def save(self, state: dict[str, Any]) -> None:
        self.state = json.loads(json.dumps(state))  # what a real store would keep: JSON only
        self.saves += 1


# ---- plain-words messages ---------------------------------------------------------------------------

# code -> (English, Bangla). Words from the project glossary (সিঙ্ক, অপেক্ষমাণ পরিবর্তন, সংযুক্ত, অফলাইন).
MESSAGES: dict[str, tuple[str, str]] = {
    "unreachable": (
        "Cannot reach the central hub. The node is offline; it will try again by itself.",
        "কেন্দ্রীয় হাবের সাথে সংযোগ করা যাচ্ছে না। নোডটি অফলাইন; এটি নিজে থেকেই আবার চেষ্টা করবে।",
    ),
    "not_enrolled": (
        "This node is not enrolled at the hub yet. Ask for an enrolment token and run field-node enroll.",
        "এই নোডটি এখনও হাবে নিবন্ধিত হয়নি। একটি নিবন্ধন টোকেন নিয়ে field-node enroll চালান।",
    ),
    "unknown_node": (
        "The hub does not know this node. Enrol it again with a new token.",
        "হাব এই নোডটিকে চেনে না। নতুন টোকেন দিয়ে আবার নিবন্ধন করুন।",
    ),
    "bad_signature": (
        "The hub refused this node's signature. Enrol the node again with a new token.",
        "হাব এই নোডের স্বাক্ষর গ্রহণ করেনি। নতুন টোকেন দিয়ে নোডটি আবার নিবন্ধন করুন।",
    ),
    "revoked_node": (
        "The hub has blocked this node. Contact the hub administrator.",
        "হাব এই নোডটি বন্ধ করে দিয়েছে। হাব প্রশাসকের সাথে যোগাযোগ করুন।",
    ),
    "unsupported_version": (
        "The hub and this node run different software versions. Update the older one.",
        "হাব ও এই নোডে সফটওয়্যারের ভিন্ন সংস্করণ চলছে। পুরনোটি হালনাগাদ করুন।",
    ),
    "out_of_scope": (
        "The hub refused changes outside this node's union. Contact the hub administrator.",
        "এই নোডের ইউনিয়নের বাইরের পরিবর্তন হাব গ্রহণ করেনি। হাব প্রশাসকের সাথে যোগাযোগ করুন।",
    ),
    "sequence_reused": (
        "The hub already holds changes with the numbers this node is using: its database looks restored from "
        "an older backup. Do not keep working on it; export its changes and ask the hub administrator to "
        "enrol the node again.",
        "এই নোড যে নম্বরগুলো ব্যবহার করছে, সেই নম্বরের পরিবর্তন হাবে আগেই আছে: নোডের ডাটাবেস সম্ভবত পুরনো ব্যাকআপ "
        "থেকে ফেরানো হয়েছে। এতে আর কাজ করবেন না; এর পরিবর্তনগুলো এক্সপোর্ট করুন এবং নোডটি আবার নিবন্ধনের জন্য "
        "হাব প্রশাসকের সাথে যোগাযোগ করুন।",
    ),
    "locked": (
        "The node database is locked. An operator must log in before it can sync.",
        "নোডের ডাটাবেস তালাবদ্ধ। সিঙ্কের আগে একজন অপারেটরকে লগ ইন করতে হবে।",
    ),
    "hub_error": (
        "The hub had a problem and did not finish the sync. It will be tried again.",
        "হাবে একটি সমস্যা হয়েছে, সিঙ্ক শেষ হয়নি। আবার চেষ্টা করা হবে।",
    ),
    "other": (
        "Sync did not finish. It will be tried again.",
        "সিঙ্ক শেষ হয়নি। আবার চেষ্টা করা হবে।",
    ),
}

# Failures that more attempts will not cure: the agent keeps trying, but slowly (at the backoff cap).
PERMANENT_CODES = frozenset(
    {
        "not_enrolled",
        "unknown_node",
        "bad_signature",
        "revoked_node",
        "unsupported_version",
        "out_of_scope",
        "sequence_reused",
    }
)


def classify(exc: BaseException) -> str:
    code = str(getattr(exc, "code", "") or "")
    if code in MESSAGES:
        return code
    if type(exc).__name__ == "NodeLockedError":
        return "locked"
    if code.startswith("http_5") or code in ("bad_answer", "truncated_batch", "sequence_gap", "invalid_cursor"):
        return "hub_error"
    if isinstance(exc, ConnectionError | TimeoutError | OSError):
        return "unreachable"
    return "other"


def describe_error(exc: BaseException) -> dict[str, str]:
    kind = classify(exc)
    en, bn = MESSAGES[kind]
    detail = str(getattr(exc, "message", "") or exc)
    return {"code": str(getattr(exc, "code", "") or kind), "kind": kind, "en": en, "bn": bn, "detail": detail}


# ---- state ------------------------------------------------------------------------------------------


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass
class AgentStatus:
    """What the status endpoint and the UI show; persisted as JSON after every change."""

    running: bool = False
    last_attempt_at: str | None = None
    last_success_at: str | None = None
    last_error: dict[str, str] | None = None  # describe_error(): code, kind, en, bn, detail
    consecutive_failures: int = 0
    next_attempt_at: str | None = None
    next_attempt_ts: float | None = None
    pending_changes: int = 0
    batches_sent: int = 0
    batches_total: int = 0
    rounds: int = 0
    last_summary: dict[str, Any] = field(default_factory=dict)
    progress_start_acked: int = 0

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> AgentStatus:
        if not data:
            return cls()
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# ---- the agent --------------------------------------------------------------------------------------


def interval_from_env(environ: dict[str, str] | None = None) -> float:
    """``FIELD_NODE_SYNC_INTERVAL`` in seconds; 0 turns the background agent off. Bad values are refused."""
    raw = (environ if environ is not None else dict(os.environ)).get(INTERVAL_ENV, "")
    if raw.strip() == "":
        return DEFAULT_INTERVAL_S
    try:
        value = float(raw)
    except ValueError as exc:
        raise ValueError(f"{INTERVAL_ENV} must be a number of seconds (0 turns the agent off), not {raw!r}") from exc
    if value < 0 or math.isnan(value):
        raise ValueError(f"{INTERVAL_ENV} must be 0 or more seconds, not {raw!r}")
    return value


class SyncAgent:
    def __init__(
        self,
        sync: Callable[[], Any],
        state: StateStore,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        probe: Callable[[], tuple[int, int]] | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        initial_backoff_s: float = 5.0,
        max_backoff_s: float = 900.0,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        tick_s: float = 1.0,
        ready: Callable[[], bool] = lambda: True,
    ) -> None:
        self.sync = sync
        self.state = state
        self.interval_s = float(interval_s)
        self.probe = probe
        self.batch_size = batch_size
        self.initial_backoff_s = initial_backoff_s
        self.max_backoff_s = max(max_backoff_s, initial_backoff_s)
        self.clock = clock
        self.rng = rng or random.Random()
        self.tick_s = tick_s
        self.ready = ready
        self._lock = threading.Lock()
        self._scheduler: Any = None
        self.status = AgentStatus()
        self._loaded = False
        self._load()

    def _load(self) -> None:
        """Read the persisted status; a node still locked at start is read once an operator logs in."""
        if self._loaded:
            return
        try:
            data = self.state.load()
        except Exception:
            return
        self.status = AgentStatus.from_json(data)
        # A process killed mid-round left running=True behind; nothing runs in a fresh process.
        self.status.running = False
        self._loaded = True

    @property
    def enabled(self) -> bool:
        return self.interval_s > 0

    # ---- backoff ----------------------------------------------------------------------------------

    def backoff_s(self, failures: int, permanent: bool = False) -> float:
        """Wait after the ``failures``-th consecutive failure: doubling from ``initial_backoff_s`` up to
        ``max_backoff_s``, scaled by a random factor in [0.5, 1] so many nodes coming back after one outage
        do not all knock on the hub in the same second."""
        if permanent:
            ceiling = self.max_backoff_s
        else:
            ceiling = min(self.max_backoff_s, self.initial_backoff_s * 2 ** max(0, failures - 1))
        return ceiling * (0.5 + 0.5 * self.rng.random())

    # ---- rounds -----------------------------------------------------------------------------------

    def due(self) -> bool:
        nxt = self.status.next_attempt_ts
        return nxt is None or self.clock() >= nxt

    def tick(self) -> bool:
        """The scheduler's job: one round if due. Never raises (a scheduler job must not die)."""
        if not self.enabled or not self.ready():
            return False  # e.g. the database is locked until an operator logs in: no attempt, no backoff
        self._load()
        if not self.due():
            return False
        if not self._lock.acquire(blocking=False):
            return False  # a "Sync now" is running; it reschedules
        try:
            self._round()
        finally:
            self._lock.release()
        return True

    def sync_now(self) -> dict[str, Any]:
        """Run a round at once (waiting for one already running) and return the status. Raises what the
        round raised, so an API can answer with the error; the status records it either way."""
        with self._lock:
            error = self._round()
        if error is not None:
            raise error
        return self.snapshot()

    def _round(self) -> BaseException | None:
        self._load()
        now = self.clock()
        st = self.status
        st.running = True
        st.last_attempt_at = _iso(now)
        st.batches_sent = 0
        self._fill_progress_start()
        self._save()
        error: BaseException | None = None
        try:
            summary = self.sync()
        except Exception as exc:
            error = exc
            st.consecutive_failures += 1
            st.last_error = describe_error(exc)
            wait = self.backoff_s(st.consecutive_failures, st.last_error["kind"] in PERMANENT_CODES)
        else:
            data = summary.to_json() if hasattr(summary, "to_json") else dict(summary or {})
            st.last_summary = data
            st.last_success_at = _iso(self.clock())
            st.last_error = None
            st.consecutive_failures = 0
            st.batches_sent = int(data.get("batches_pushed", st.batches_sent) or 0)
            st.batches_total = max(st.batches_total, st.batches_sent)
            wait = self.interval_s
        st.rounds += 1
        st.running = False
        self._refresh_pending()
        if self.enabled:
            st.next_attempt_ts = self.clock() + wait
            st.next_attempt_at = _iso(st.next_attempt_ts)
        else:
            st.next_attempt_ts = st.next_attempt_at = None
        self._save()
        return error

    def _fill_progress_start(self) -> None:
        st = self.status
        if self.probe is None:
            st.batches_total = 0
            return
        try:
            acked, last = self.probe()
        except Exception:
            return
        st.progress_start_acked = acked
        st.pending_changes = max(0, last - acked)
        st.batches_total = math.ceil(st.pending_changes / self.batch_size)

    def _refresh_pending(self) -> None:
        if self.probe is None:
            return
        try:
            acked, last = self.probe()
        except Exception:
            return
        self.status.pending_changes = max(0, last - acked)

    def snapshot(self) -> dict[str, Any]:
        """The status as JSON; while a round runs, batches sent are read live from the store."""
        st = self.status
        out = st.to_json()
        if st.running and self.probe is not None:
            try:
                acked, last = self.probe()
            except Exception:
                acked, last = st.progress_start_acked, st.progress_start_acked + st.pending_changes
            out["batches_sent"] = min(
                st.batches_total, math.ceil(max(0, acked - st.progress_start_acked) / self.batch_size)
            )
            out["pending_changes"] = max(0, last - acked)
        out["enabled"] = self.enabled
        out["ready"] = bool(self.ready())
        out["interval_s"] = self.interval_s
        out.pop("progress_start_acked", None)
        out.pop("next_attempt_ts", None)
        return out

    def _save(self) -> None:
        with contextlib.suppress(Exception):
            self.state.save(self.status.to_json())

    # ---- scheduler --------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the background job (no-op when the interval is 0: sync only on request)."""
        if not self.enabled or self._scheduler is not None:
            return
        from apscheduler.schedulers.background import BackgroundScheduler

        scheduler = BackgroundScheduler(daemon=True)
        scheduler.add_job(
            self.tick, "interval", seconds=self.tick_s, id="field-node-sync", max_instances=1, coalesce=True
        )
        scheduler.start()
        self._scheduler = scheduler

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None


# ---- adapters for a real node -----------------------------------------------------------------------


class NodeStateStore:
    """The agent's status in the node's encrypted database (``sync_state``), through the replica
    store's ``get_state``/``set_state``."""

    def __init__(self, node: Any) -> None:
        self.node = node

    def load(self) -> dict[str, Any] | None:
        _, store, _ = self.node.require()  # raises while locked: the agent loads again after a login
        raw = store.get_state(STATE_KEY)
        if not raw:
            return None
        data: dict[str, Any] = json.loads(raw) if isinstance(raw, str) else dict(raw)
        return data

    def save(self, state: dict[str, Any]) -> None:
        database, store, _ = self.node.require()
        with database.transaction():
            store.set_state(STATE_KEY, json.dumps(state, ensure_ascii=False))


def node_probe(node: Any) -> Callable[[], tuple[int, int]]:
    def probe() -> tuple[int, int]:
        _, store, _ = node.require()
        return int(store.acked_through()), int(store.last_seq())

    return probe


def retrying_session(attempts: int = 3) -> Any:
    """A ``requests`` session that retries a dropped or cut connection a few times within one round.
    Safe for the push too: a batch sent again gets the hub's stored answer and changes nothing."""
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    retry = Retry(total=attempts, connect=attempts, read=attempts, status=0, other=0, backoff_factor=0.3,
                  allowed_methods=None, raise_on_status=False)
    session = requests.Session()
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    return session


def agent_for_node(node: Any, *, interval_s: float | None = None, timeout_s: float = 30.0, **kw: Any) -> SyncAgent:
    """The agent of a ``field_node.node.Node``: one round forwards batches left by imported bundles (an
    upazila node) and then runs ``field_node.sync_client.sync_once``. The interval defaults to
    ``FIELD_NODE_SYNC_INTERVAL``; while the database is locked the agent waits without counting failures."""
    from . import bundles, sync_client

    def one_round() -> dict[str, Any]:
        client = sync_client.HubClient(node.hub_url, timeout=timeout_s, session=retrying_session())
        forwarded = bundles.forward_pending(node, client)
        data = sync_client.sync_once(node, client).to_json()
        data["bundle_batches_forwarded"] = forwarded
        return data

    return SyncAgent(
        one_round,
        NodeStateStore(node),
        interval_s=interval_from_env() if interval_s is None else interval_s,
        probe=node_probe(node),
        ready=lambda: not node.locked,
        **kw,
    )


AGENT_EXTENSION = "field_node_agent"
_create_lock = threading.Lock()


def agent_of(app: Any) -> SyncAgent:
    """The one agent of a field node Flask app (the background job, the UI button and the API share it).
    ``SYNC_INTERVAL_S`` in the app config overrides the environment; ``HUB_TIMEOUT_S`` bounds each request."""
    with _create_lock:
        agent: SyncAgent | None = app.extensions.get(AGENT_EXTENSION)
        if agent is None:
            node = app.extensions["field_node"].node
            agent = agent_for_node(
                node,
                interval_s=app.config.get("SYNC_INTERVAL_S"),
                timeout_s=float(app.config.get("HUB_TIMEOUT_S", 30.0)),
            )
            app.extensions[AGENT_EXTENSION] = agent
        return agent


def error_text(exc: BaseException, lang: str) -> str:
    """The plain-words message of a failed sync in the operator's language."""
    err = describe_error(exc)
    return err["bn"] if lang == "bn" else err["en"]
