"""Chaos with real processes: a hub and three nodes on loopback, each node behind its own FaultProxy
(dropped connections, responses cut halfway, delay, a throttled link), ``kill -9`` of a node and of the
hub during push and during pull, restarts on the same data. After healing:

* every node shows exactly the hub's values for every person in its scope (node API vs staff API),
  and holds no record the hub does not;
* zero lost and zero duplicated changes: the hub's last sequence per node equals the number of writes
  the node made, every (node, seq) has exactly one stored result, and no (node, seq) is in the log twice;
* the conflict queue holds exactly what the oracle predicts.

The oracle is exact because of how the operations are laid out: phase 0 creates records and syncs on a
clean network, so every node knows the same base; in phase 1 every node makes all of its edits before
any phase-1 sync, so two nodes editing the same field of the same record always edit from the same base
and exactly one of the two (the later to arrive, whichever it is) becomes a conflict, while edits of
distinct fields or records never conflict, in any arrival order.

Nodes: A = Subil union office (union 1), B = Debidwar upazila office (unions 1 and 2),
C = North Gunaighor union office (union 2).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from central_hub.store import SqlHubStore
from sync_protocol.entities import ENTITIES
from tests.support.faultproxy import FaultProxy

from .harness import ApiError, HubProc, NodeProc, stop_all

pytestmark = pytest.mark.e2e

SUBIL, GUNAIGHOR, DEBIDWAR = "1", "2", "1"
K = 24  # shared persons per union, made in phase 0
BULK = 120  # households A and C each register during phase 1 (2 changes each): pushes worth killing
UNTHROTTLED = 10**12
FAULTS = {"drop_rate": 0.25, "cut_rate": 0.25, "delay_s": 0.002}


def new_household(node: NodeProc, union: str, i: int, tag: str) -> str:
    hh = node.api.post(
        "/api/v1/households",
        {
            "union_id": union,
            "ward": str(i % 9 + 1),
            "village": "Gunaighor" if union == GUNAIGHOR else "Subil",
            "address": f"{tag} house {i}",
            "house_type": "kutcha",
            "monthly_income_bdt": 5000 + i,
            "confirm_duplicate": True,
            "members": [
                {
                    "full_name_en": f"{tag} Person {i}",
                    "full_name_bn": f"{tag} ব্যক্তি {i}",
                    "sex": "female" if i % 2 else "male",
                    "date_of_birth": f"{1950 + i % 50}-0{1 + i % 9}-1{i % 9}",
                    "relation_to_head": "head",
                }
            ],
        },
    )
    return str(hh["members"][0]["id"])


def sync_until_ok(node: NodeProc, attempts: int = 60) -> dict[str, Any]:
    last: Exception | None = None
    for _ in range(attempts):
        try:
            return node.sync()
        except (ApiError, OSError) as exc:  # a fault on the link: the round failed, try again
            last = exc
            time.sleep(0.05)
        except Exception as exc:  # requests' own connection errors
            last = exc
            time.sleep(0.05)
    raise AssertionError(f"{node.name} could not sync in {attempts} attempts: {last}")


def kill_midway(proxy: FaultProxy, start: Callable[[], Any], counter: str, at_bytes: int, kill: Callable[[], None]):
    """Run ``start`` (a sync) in a thread over a throttled link and ``kill`` once ``at_bytes`` more bytes
    went ``counter`` ("bytes_up": push, "bytes_down": pull). Returns whether the kill hit mid-transfer."""
    base = getattr(proxy.stats, counter)
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = start()
        except Exception as exc:
            outcome["error"] = exc

    proxy.configure(bandwidth_bps=160_000)
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    deadline = time.monotonic() + 60
    while getattr(proxy.stats, counter) - base < at_bytes and worker.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    hit = worker.is_alive()
    kill()
    proxy.configure(bandwidth_bps=UNTHROTTLED)  # never None mid-transfer: FaultProxy reads it per slice
    worker.join(90)
    return hit, outcome


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[dict[str, Any]]:
    hub = HubProc(tmp_path / "hub").init().start()
    proxies = {name: FaultProxy(hub.port, seed=seed).start() for seed, name in enumerate("ABC", start=7)}
    nodes = {
        "A": NodeProc("A-subil", tmp_path, SUBIL, proxies["A"].url),
        "B": NodeProc("B-upazila", tmp_path, SUBIL, proxies["B"].url),
        "C": NodeProc("C-gunaighor", tmp_path, GUNAIGHOR, proxies["C"].url),
    }
    try:
        tokens = {"A": hub.token(union=SUBIL), "B": hub.token(upazila=DEBIDWAR), "C": hub.token(union=GUNAIGHOR)}
        for name, node in nodes.items():
            node.init()
            node.enroll(tokens[name])
            node.start()
        yield {"hub": hub, "nodes": nodes, "proxies": proxies}
    finally:
        stop_all([n.proc for n in nodes.values()] + [hub.proc])
        for p in proxies.values():
            p.stop()


def test_chaos_converges_with_exact_conflicts(cluster: dict[str, Any]) -> None:
    hub: HubProc = cluster["hub"]
    A, B, C = (cluster["nodes"][k] for k in "ABC")
    pa, pb, pc = (cluster["proxies"][k] for k in "ABC")
    writes = {"A": 0, "B": 0, "C": 0}  # changes each node made: the hub must end with exactly these

    # ---- phase 0: shared records, clean network -----------------------------------------------------
    p1 = [new_household(A, SUBIL, i, "Subil") for i in range(K)]
    p2 = [new_household(C, GUNAIGHOR, i, "Gunaighor") for i in range(K)]
    writes["A"] += 2 * K
    writes["C"] += 2 * K
    for node in (A, C, B, A, C):
        sync_until_ok(node)

    # ---- phase 1: every edit first (bases known to all), then syncs through chaos ---------------------
    edits: dict[tuple[str, str], dict[str, Any]] = {}  # (person, field) -> {node: value}

    def edit(node: NodeProc, key: str, pid: str, field: str, value: str) -> None:
        node.api.patch(f"/api/v1/persons/{pid}", {field: value})
        writes[key] += 1
        edits.setdefault((pid, field), {})[key] = value

    for i, pid in enumerate(p1):
        edit(A, "A", pid, "occupation", f"A occupation {i}")
        if i < K // 2:
            edit(B, "B", pid, "occupation", f"B occupation {i}")  # contested with A
        else:
            edit(B, "B", pid, "spouse_name", f"B spouse {i}")  # same record, other field: merges
    for i, pid in enumerate(p2):
        edit(C, "C", pid, "mother_name", f"C mother {i}")
        if i < K // 2:
            edit(B, "B", pid, "father_name", f"B father {i}")
        if i < K // 4:
            edit(C, "C", pid, "father_name", f"C father {i}")  # contested with B
    bulk_a = [new_household(A, SUBIL, K + i, "Subil bulk") for i in range(BULK)]
    bulk_c = [new_household(C, GUNAIGHOR, K + i, "Gunaighor bulk") for i in range(BULK)]
    writes["A"] += 2 * BULK
    writes["C"] += 2 * BULK

    hits = {}
    # kill -9 a node during its push, restart it on the same data.
    hits["node during push"], _ = kill_midway(pa, A.sync, "bytes_up", 4_000, A.proc.kill9)
    A.start()
    sync_until_ok(A)
    # kill -9 a node during its pull (B has A's ~300 changes to fetch).
    hits["node during pull"], _ = kill_midway(pb, B.sync, "bytes_down", 8_000, B.proc.kill9)
    B.start()
    # kill -9 the hub during a push (C's bulk), restart it on the same database.
    hits["hub during push"], _ = kill_midway(pc, C.sync, "bytes_up", 4_000, hub.proc.kill9)
    hub.start()
    # kill -9 the hub during a pull (the upazila node B fetches C's bulk).
    sync_until_ok(C)
    hits["hub during pull"], _ = kill_midway(pb, B.sync, "bytes_down", 8_000, hub.proc.kill9)
    hub.start()
    assert all(hits.values()), hits  # every kill landed while bytes were moving

    # A storm of dropped and cut connections.
    for proxy in (pa, pb, pc):
        proxy.configure(**FAULTS)
    storm: list[FaultProxy] = [pa, pb, pc]
    for _ in range(12):  # rounds reuse kept-alive connections: go on until both faults have struck
        for node in (A, B, C):
            sync_until_ok(node)
        if sum(p.stats.dropped for p in storm) >= 2 and sum(p.stats.cut for p in storm) >= 2:
            break
    assert sum(p.stats.dropped for p in (pa, pb, pc)) > 0
    assert sum(p.stats.cut for p in (pa, pb, pc)) > 0

    # ---- heal -----------------------------------------------------------------------------------------
    for proxy in (pa, pb, pc):
        proxy.configure(drop_rate=0.0, cut_rate=0.0, delay_s=0.0)
    for _ in range(2):
        for node in (A, B, C):
            sync_until_ok(node)

    # ---- zero lost, zero duplicated ---------------------------------------------------------------
    ids = {k: n.status()["node_id"] for k, n in zip("ABC", (A, B, C), strict=True)}
    for k, node in zip("ABC", (A, B, C), strict=True):
        assert node.status()["pending_changes"] == 0, k
    store = SqlHubStore(hub.db_url)
    try:
        log = store.read_log(0, None, 1_000_000)
        for k, node_id in ids.items():
            assert store.get_node(node_id).last_seq == writes[k], k
            results = store.get_change_results(node_id, 1, writes[k])
            assert sorted(results) == list(range(1, writes[k] + 1)), k
        origins = [(e.origin, e.origin_seq) for e in log if e.origin_seq is not None]
        assert len(origins) == len(set(origins)), "a change was applied twice"
    finally:
        store.close()

    # ---- the conflict queue equals the oracle -------------------------------------------------------
    contested = {key: vals for key, vals in edits.items() if len(vals) == 2}
    assert len(contested) == K // 2 + K // 4
    queue = hub.conflicts()
    assert len(queue) == len(contested)
    for c in queue:
        key = (c["entity_id"], c["field"])
        assert key in contested, key
        assert {c["hub_value"], c["incoming_value"]} == set(contested[key].values())
    assert len({(c["entity_id"], c["field"]) for c in queue}) == len(queue)

    # ---- every node equals the hub in its scope ---------------------------------------------------
    staff = hub.staff()
    union_of = {pid: SUBIL for pid in p1 + bulk_a} | {pid: GUNAIGHOR for pid in p2 + bulk_c}
    fields = sorted(ENTITIES["person"].fields)
    hub_view = {pid: staff.get(f"/api/v1/persons/{pid}") for pid in union_of}
    for node, scope in ((A, {SUBIL}), (B, {SUBIL, GUNAIGHOR}), (C, {GUNAIGHOR})):
        listed = {p["id"]: p for p in node.all("persons")}
        assert set(listed) == {pid for pid, u in union_of.items() if u in scope}, node.name
        for pid, mine in listed.items():
            theirs = hub_view[pid]
            assert {f: mine.get(f) for f in fields} == {f: theirs.get(f) for f in fields}, (node.name, pid)
    # Uncontested edits won everywhere; contested fields show the hub's kept value.
    for (pid, field), vals in edits.items():
        if len(vals) == 1:
            assert hub_view[pid][field] == next(iter(vals.values()))
