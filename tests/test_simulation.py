"""The seeded sync simulation (sync_protocol.simulation) and the protocol bugs it found.

CI runs 500 seeds x 10 nodes x 300 operations, split into chunks so ``pytest -n 2`` shares them out.
Long mode (``NSP_LONG=1``) runs 10,000 seeds.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sync_protocol import merge, simulation
from sync_protocol.hlc import HybridLogicalClock
from sync_protocol.hub import HubEngine, encode_cursor
from sync_protocol.memory import MemoryHubStore, MemoryReplicaStore
from sync_protocol.model import LogEntry, PullPage
from sync_protocol.replica import ReplicaEngine
from sync_protocol.signing import Signer
from sync_protocol.simulation import SimReport, SimulationFailure, crash_sweep, run

ROOT = Path(__file__).resolve().parents[1]
CHUNK = 50
CI_SEEDS = 500
LONG_SEEDS = 10_000
LONG_CHUNK = 500


def _run_chunk(start: int, count: int) -> SimReport:
    total = SimReport(-1, 10, 300)
    for seed in range(start, start + count):
        rep = run(seed, nodes=10, ops=300)
        for name in ("changes", "conflicts", "resolutions", "drops", "dups", "delays", "crashes", "pulls"):
            setattr(total, name, getattr(total, name) + getattr(rep, name))
    return total


@pytest.mark.parametrize("start", range(0, CI_SEEDS, CHUNK))
def test_seeds_converge_without_loss(start: int) -> None:
    total = _run_chunk(start, CHUNK)
    # The chunk must have exercised what it claims to: real work, real conflicts, every fault kind.
    assert total.changes > 40 * CHUNK
    assert total.conflicts > 0 and total.resolutions == total.conflicts
    assert total.drops > 0 and total.dups > 0 and total.delays > 0 and total.crashes > 0


@pytest.mark.slow
@pytest.mark.parametrize("start", range(CI_SEEDS, CI_SEEDS + LONG_SEEDS, LONG_CHUNK))
def test_long_mode_ten_thousand_seeds(start: int) -> None:
    total = _run_chunk(start, LONG_CHUNK)
    assert total.conflicts > 0 and total.crashes > 0


@pytest.mark.parametrize("seed", [3, 11])
def test_crash_at_every_commit_boundary(seed: int) -> None:
    # Each run crashes exactly once (crash_sweep checks that), before or after commit k, for every k.
    runs = crash_sweep(seed, nodes=5, ops=120)
    assert runs >= 2 * 60  # 144 and 214 crash points for these seeds


def test_same_seed_same_run_even_across_processes() -> None:
    a, b = run(5, nodes=6, ops=150), run(5, nodes=6, ops=150)
    assert a.fingerprint == b.fingerprint and a.changes == b.changes and a.crashes == b.crashes
    assert run(6, nodes=6, ops=150).fingerprint != a.fingerprint
    # Another interpreter with another string-hash seed must replay the same run (set order must not leak).
    out = subprocess.run(
        [sys.executable, "-m", "sync_protocol.simulation", "--seed", "5", "--nodes", "6", "--ops", "150"],
        cwd=ROOT,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert f"fingerprint {a.fingerprint}" in out.stdout
    assert out.stdout.strip().splitlines()[-1].startswith("OK: 1 seeds x 6 nodes x 150 ops")


def test_runs_on_the_store_factories_it_is_given() -> None:
    made: list[str] = []

    def hub_factory() -> MemoryHubStore:
        made.append("hub")
        return MemoryHubStore()

    def replica_factory(node_id: str) -> MemoryReplicaStore:
        made.append(node_id)
        return MemoryReplicaStore()

    rep = run(2, nodes=3, ops=60, hub_store_factory=hub_factory, replica_store_factory=replica_factory)
    assert made == ["hub", "node-00", "node-01", "node-02"]
    assert rep.changes > 0


class _LossyPullHub(HubEngine):
    """Deliberately broken: every pull page silently drops the entry with the highest hub_seq when a page
    holds more than one."""

    def pull(self, node_id: str, cursor: str | None, limit: int = 500) -> PullPage:
        page = super().pull(node_id, cursor, limit)
        if len(page.entries) > 1:
            return PullPage(page.entries[:-1], page.cursor, page.more)
        return page


def test_failure_names_seed_and_replay_command() -> None:
    with pytest.raises(SimulationFailure) as info:
        run(3, nodes=4, ops=80, hub_engine_cls=_LossyPullHub, drop=0.3)
    text = str(info.value)
    assert "simulation seed 3 failed" in text
    assert "replay with: python -m sync_protocol.simulation --seed 3 --nodes 4 --ops 80 --drop 0.3" in text
    assert "run(3, 4, 80, drop=0.3, with the same store factories and hub engine)" in text


def test_a_sweep_failure_names_the_crash_point() -> None:
    sim = simulation.Simulation(3, nodes=4, ops=80, options=simulation.SimOptions(crash_at=(5, "after")))
    text = str(sim.fail("boom"))
    assert "replay with: python -m sync_protocol.simulation --seed 3 --nodes 4 --ops 80" in text
    assert "sync_protocol.simulation.run(3, 4, 80, crash_at=(5, 'after'))" in text


def test_oracle_catches_a_wrong_merge_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    # Last-writer-wins instead of base revisions: no conflicts are queued, so the oracle must disagree.
    def last_writer_wins(fs: object, incoming: object, base_rev: int, node_id: str) -> merge.FieldDecision:
        if fs is None or fs.value != incoming:  # type: ignore[attr-defined]
            return merge.FieldDecision.APPLY
        return merge.FieldDecision.UNCHANGED

    monkeypatch.setattr(merge, "decide_field", last_writer_wins)
    with pytest.raises(SimulationFailure, match="simulation seed 0 failed"):
        run(0)


def test_cli_exit_status_and_summary() -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "sync_protocol.simulation", "--seeds", "2", "--nodes", "3", "--ops", "40"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    assert "OK: 2 seeds x 3 nodes x 40 ops" in ok.stdout and "crashes" in ok.stdout


# ---- regression tests for protocol bugs the simulation found ------------------------------------------


def test_hlc_never_goes_back_when_a_restarted_node_pulls_before_writing() -> None:
    """Found by seed 3: after a restart the engine only loaded its persisted clock on the first local
    write, so a pull applied first stored a lower clock value (the wall clock had been set back) and the
    next change got an HLC below earlier ones."""
    now = {"ms": 1_800_000_000_000}
    store = MemoryReplicaStore()
    signer = Signer(bytes(32))

    def engine() -> ReplicaEngine:
        return ReplicaEngine(store, "n1", signer=signer, clock=HybridLogicalClock(now_ms=lambda: now["ms"]))

    first = engine()
    with store.transaction():
        before = first.write("household", "h1", "1", {"ward": 1})
    assert before is not None
    now["ms"] -= 3_600_000  # clock set back an hour, then the process restarts
    second = engine()
    entry = LogEntry(1, "household", "h2", "1", {"ward": 2}, "node-x", 1, hlc=1)
    second.apply_pull(PullPage((entry,), encode_cursor(1), False))
    assert store.get_hlc() >= before.hlc
    with store.transaction():
        after = second.write("household", "h1", "1", {"ward": 3})
    assert after is not None and after.hlc > before.hlc


def test_simulation_module_reexports_default_memory_stores() -> None:
    sim = simulation.Simulation(1, nodes=2, ops=1)
    assert isinstance(sim.hub_store, MemoryHubStore)
    assert all(isinstance(n.store, MemoryReplicaStore) for n in sim.nodes)
    assert sim.nodes[-1].scopes == ("1", "2", "3", "4")  # the upazila node sees every union


def test_memory_replica_store_copies_stay_isolated_after_the_cheap_copy() -> None:
    """The store's records must not share mutable state with what callers get or give (the cheap copy
    that replaced ``copy.deepcopy`` for speed must keep that)."""
    from sync_protocol.store import FieldMeta, LocalRecord

    store = MemoryReplicaStore()
    flags = ["dup-1"]
    rec = LocalRecord("person", "p1", "1", {"name": "x", "flags": flags}, {"flags": FieldMeta(3, ["a"], 3, 0)})
    with store.transaction():
        store.put_local(rec)
    flags.append("given-after-put")
    rec.meta["flags"].pending = 9
    got = store.get_local("person", "p1")
    assert got is not None and got.values == {"name": "x", "flags": ["dup-1"]}
    got.values["flags"].append("mutated-copy")
    got.meta["flags"].shadow_value.append("b")
    got.meta["flags"].base_rev = 99
    again = store.get_local("person", "p1")
    assert again is not None
    assert again.values["flags"] == ["dup-1"]
    assert again.meta["flags"] == FieldMeta(3, ["a"], 3, 0)


def test_hub_runs_the_shared_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    # An invalid mobile in the value pools must reach the real validator and come back rejected, which
    # the simulation treats as a failure (the pools hold only valid values).
    pools = {**simulation.POOLS, "person": {**simulation.POOLS["person"], "mobile": ["12345"]}}
    monkeypatch.setattr(simulation, "POOLS", pools)
    with pytest.raises(SimulationFailure, match="hub rejected a change"):
        run(0, nodes=4, ops=150, drop=0.0)
    assert run(0, nodes=4, ops=150, drop=0.0, validate=False).changes > 0
