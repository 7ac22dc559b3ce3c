"""The sync agent's backoff, jitter, scheduling and persisted status, with a fake clock: no sleeping."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest

from field_node.agent import (
    MESSAGES,
    AgentStatus,
    MemoryStateStore,
    SyncAgent,
    describe_error,
    interval_from_env,
)


class FakeClock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


class HubDown(Exception):
    code = "unreachable"
    message = "cannot reach the hub at http://127.0.0.1:9: ConnectionError"


class Revoked(Exception):
    code = "revoked_node"
    message = "node has been revoked"


class FakeSync:
    """Fails while ``down``; on success answers a summary like sync_client.SyncSummary.to_json()."""

    def __init__(self) -> None:
        self.down = False
        self.error: Exception = HubDown()
        self.calls = 0

    def __call__(self) -> dict[str, Any]:
        self.calls += 1
        if self.down:
            raise self.error
        return {"batches_pushed": 3, "changes_acked": 1200, "pulled": 7, "pending_after": 0}


def make(interval: float = 60.0, *, seed: int = 1, state: MemoryStateStore | None = None, **kw: Any):
    clock = FakeClock()
    sync = FakeSync()
    store = state or MemoryStateStore()
    agent = SyncAgent(sync, store, interval_s=interval, clock=clock, rng=random.Random(seed), **kw)
    return agent, sync, clock, store


def test_first_tick_syncs_then_waits_for_the_interval() -> None:
    agent, sync, clock, _store = make(60)
    assert agent.tick() is True
    assert sync.calls == 1
    assert agent.tick() is False  # not due yet
    clock.now += 59.9
    assert agent.tick() is False
    clock.now += 0.2
    assert agent.tick() is True
    assert sync.calls == 2
    snap = agent.snapshot()
    assert snap["last_error"] is None
    assert snap["batches_sent"] == 3
    assert snap["last_summary"]["changes_acked"] == 1200
    assert snap["rounds"] == 2


def test_backoff_doubles_with_jitter_up_to_the_cap_and_resets_on_success() -> None:
    agent, sync, clock, _ = make(600, initial_backoff_s=5, max_backoff_s=80)
    sync.down = True
    waits = []
    for _ in range(8):
        before = clock.now
        assert agent.tick() is True
        waits.append(agent.status.next_attempt_ts - before)
        clock.now = agent.status.next_attempt_ts  # jump straight to the next attempt
    ceilings = [5, 10, 20, 40, 80, 80, 80, 80]
    for wait, ceiling in zip(waits, ceilings, strict=True):
        assert ceiling * 0.5 <= wait <= ceiling, (wait, ceiling)
    assert len(set(waits)) == len(waits), "jitter must vary the waits"
    assert agent.status.consecutive_failures == 8
    sync.down = False
    agent.tick()
    assert agent.status.consecutive_failures == 0
    assert agent.status.next_attempt_ts == pytest.approx(clock.now + 600)


def test_jitter_spreads_nodes_that_fail_together() -> None:
    waits = []
    for seed in range(20):
        agent, sync, clock, _ = make(600, seed=seed, initial_backoff_s=5)
        sync.down = True
        for _ in range(4):
            agent.tick()
            clock.now = agent.status.next_attempt_ts
        waits.append(round(agent.backoff_s(5), 3))
    assert len(set(waits)) == 20


def test_permanent_refusals_wait_the_longest() -> None:
    agent, sync, clock, _ = make(60, initial_backoff_s=5, max_backoff_s=900)
    sync.down, sync.error = True, Revoked()
    agent.tick()
    wait = agent.status.next_attempt_ts - clock.now
    assert 450 <= wait <= 900


def test_error_is_recorded_in_plain_english_and_bangla() -> None:
    agent, sync, _, store = make(60)
    sync.down = True
    agent.tick()
    err = agent.snapshot()["last_error"]
    assert err["kind"] == "unreachable"
    assert err["en"] == MESSAGES["unreachable"][0]
    assert "হাব" in err["bn"] and "অফলাইন" in err["bn"]
    assert "127.0.0.1:9" in err["detail"]
    assert store.state is not None and store.state["last_error"]["code"] == "unreachable"


def test_status_survives_a_restart() -> None:
    agent, sync, clock, store = make(60)
    agent.tick()
    success = agent.status.last_success_at
    sync.down = True
    clock.now += 61
    agent.tick()
    # A new process over the same store: same last success, same error, same backoff position.
    agent2 = SyncAgent(sync, store, interval_s=60, clock=clock, rng=random.Random(2))
    assert agent2.status.last_success_at == success
    assert agent2.status.last_error is not None and agent2.status.last_error["kind"] == "unreachable"
    assert agent2.status.consecutive_failures == 1
    assert agent2.status.next_attempt_ts == agent.status.next_attempt_ts
    assert agent2.due() is False


def test_a_process_killed_mid_round_does_not_stay_running() -> None:
    store = MemoryStateStore(AgentStatus(running=True, rounds=4).to_json())
    agent, _, _, _ = make(60, state=store)
    assert agent.status.running is False
    assert agent.status.rounds == 4


def test_sync_now_runs_at_once_and_raises_the_failure() -> None:
    agent, sync, _clock, _ = make(0)  # background agent off: sync only on request
    assert agent.enabled is False
    assert agent.tick() is False and sync.calls == 0
    snap = agent.sync_now()
    assert sync.calls == 1 and snap["last_success_at"] is not None
    assert snap["next_attempt_at"] is None and snap["enabled"] is False
    sync.down = True
    with pytest.raises(HubDown):
        agent.sync_now()
    assert agent.status.last_error is not None


def test_progress_counts_batches_from_the_store_probe() -> None:
    acked, last = [0], [1234]
    seen: list[dict[str, Any]] = []

    def sync() -> dict[str, Any]:
        # Midway: the store has acknowledged two batches of 500.
        acked[0] = 1000
        seen.append(agent.snapshot())
        acked[0] = 1234
        return {"batches_pushed": 3}

    clock = FakeClock()
    agent = SyncAgent(sync, MemoryStateStore(), interval_s=60, clock=clock, probe=lambda: (acked[0], last[0]))
    agent.tick()
    mid = seen[0]
    assert mid["running"] is True
    assert mid["batches_total"] == 3
    assert mid["batches_sent"] == 2
    assert mid["pending_changes"] == 234
    done = agent.snapshot()
    assert done["running"] is False and done["batches_sent"] == 3 and done["pending_changes"] == 0


def test_a_broken_state_store_does_not_stop_syncing() -> None:
    class Broken(MemoryStateStore):
        def save(self, state: dict[str, Any]) -> None:
            raise RuntimeError("database is locked")

    agent, sync, _, _ = make(60, state=Broken())
    assert agent.tick() is True and sync.calls == 1
    assert agent.status.last_success_at is not None


def test_interval_from_env() -> None:
    assert interval_from_env({}) == 300
    assert interval_from_env({"FIELD_NODE_SYNC_INTERVAL": "0"}) == 0
    assert interval_from_env({"FIELD_NODE_SYNC_INTERVAL": "2.5"}) == 2.5
    for bad in ("soon", "-1"):
        with pytest.raises(ValueError, match="FIELD_NODE_SYNC_INTERVAL"):
            interval_from_env({"FIELD_NODE_SYNC_INTERVAL": bad})


def test_describe_error_classifies_locked_and_hub_errors() -> None:
    class NodeLockedError(Exception):
        pass

    class Http500(Exception):
        code = "http_500"

    assert describe_error(NodeLockedError("locked"))["kind"] == "locked"
    assert describe_error(Http500("boom"))["kind"] == "hub_error"
    assert describe_error(ConnectionRefusedError())["kind"] == "unreachable"
    assert describe_error(ValueError("x"))["kind"] == "other"


def test_scheduler_runs_rounds_in_the_background() -> None:
    # The one test with real time: the APScheduler job must actually fire (tick every 50 ms).
    sync = FakeSync()
    agent = SyncAgent(sync, MemoryStateStore(), interval_s=0.05, tick_s=0.05)
    agent.start()
    try:
        deadline = time.monotonic() + 5
        while sync.calls < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        agent.stop()
    assert sync.calls >= 2
    calls = sync.calls
    time.sleep(0.15)
    assert sync.calls == calls, "stop() must end the background job"


def test_a_locked_store_is_loaded_after_unlock_and_not_overwritten() -> None:
    class Lockable(MemoryStateStore):
        locked = True

        def load(self) -> dict[str, Any] | None:
            if self.locked:
                raise RuntimeError("locked")
            return super().load()

    store = Lockable(AgentStatus(rounds=7, last_success_at="2026-11-24T10:00:00Z").to_json())
    clock = FakeClock()
    sync = FakeSync()
    agent = SyncAgent(sync, store, interval_s=60, clock=clock, ready=lambda: not store.locked)
    assert agent.tick() is False and sync.calls == 0  # locked: no attempt, no failure counted
    assert agent.status.consecutive_failures == 0
    store.locked = False
    assert agent.tick() is True
    assert agent.status.rounds == 8  # continued from the persisted status


def test_the_node_session_retries_a_dropped_connection_within_a_round() -> None:
    import socket
    import threading

    from field_node.agent import retrying_session

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    port = server.getsockname()[1]
    seen: list[bytes] = []

    def serve() -> None:
        first, _ = server.accept()
        first.close()  # the link drops the first attempt
        conn, _ = server.accept()
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(4096)
        seen.append(data)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        conn.close()

    worker = threading.Thread(target=serve, daemon=True)
    worker.start()
    try:
        r = retrying_session().post(f"http://127.0.0.1:{port}/sync/v1/push", data=b"envelope", timeout=5)
    finally:
        worker.join(5)
        server.close()
    assert r.status_code == 200 and r.text == "ok"
    assert len(seen) == 1 and seen[0].startswith(b"POST /sync/v1/push")
