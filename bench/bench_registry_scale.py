"""The hub's registry job against a large registry (issue 7's aim: ingest-time matching >= 4,000 records/s
against 1,000,000 persons; a single-record check p95 <= 50 ms).

    nice -n 19 .venv/bin/python bench/bench_registry_scale.py --registry 1000000 --new 20000

    nice -n 19 .venv/bin/python bench/bench_registry_scale.py --db sqlite:////tmp/x/hub.db --registry 0 \
        --new 10000 --seed 7 --id-prefix Y7     # more new persons against a registry built before

1. ``--registry + --new`` synthetic persons are generated (``central_hub.registry.synth``, with repeat
   registrations, twins, namesakes and moves); the first ``--registry`` reach the hub as signed pushes of
   250 from one node, each person with its enrolment when ``--enrolments`` (untimed).
2. The registry job (``RegistryService.scan_until_done``, the same code the hub schedules) matches,
   indexes and publishes them: the registry is built the way a hub builds it, and that run's rate is
   reported too. Then the ``--new`` persons are pushed (from a second node).
3. Timed: the job over the last ``--new`` persons, matched against the full registry (match + index +
   publication of registry ids and flags, one writer transaction per chunk). The time spent in matching
   and indexing (``_match_person``) is reported apart from the rest.
4. Single-record check: ``Matcher.match_features`` of 1,000 of the new persons against the registry,
   p50 / p95 / max.
5. Quality of the timed part: auto-link precision (edges made for the new persons whose two records are
   the same true person) and recall with review (new persons with an earlier record of the same person
   that got an auto-link or review edge to one).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import random
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from central_hub.checkpoint import WalCheckpointer
from central_hub.registry import service as service_mod
from central_hub.registry.features import prepare
from central_hub.registry.service import RegistryService
from central_hub.registry.synth import generate
from central_hub.store import SqlHubStore
from sync_protocol import wire
from sync_protocol.hub import HubEngine
from sync_protocol.ids import uuid7
from sync_protocol.model import Batch, Change
from sync_protocol.signing import Signer
from sync_protocol.store import NodeRecord

FIELDS = ("full_name_bn", "full_name_en", "sex", "date_of_birth", "nid", "brn", "father_name", "mother_name",
          "spouse_name", "mobile")  # fmt: skip


def push_all(store: SqlHubStore, people: list[dict[str, Any]], enrolments: bool = False) -> float:
    signer = Signer.generate()
    node_id = str(uuid.uuid4())
    store.add_node(NodeRecord(node_id, signer.public_bytes, frozenset({p["union_id"] for p in people}), label="bench"))
    engine = HubEngine(store)
    t0 = time.perf_counter()
    seq, hlc = 0, 1 << 41
    for i in range(0, len(people), 250):
        changes = []
        for p in people[i : i + 250]:
            seq += 1
            hlc += 1
            fields = {k: p[k] for k in FIELDS if p[k]}
            changes.append(
                Change(node_id, seq, hlc, "person", p["record_id"], p["union_id"], "upsert", fields, {}, "op")
            )
            if enrolments and p.get("programme"):
                seq += 1
                hlc += 1
                enrolment = {"person_id": p["record_id"], "programme": p["programme"], "status": "active"}
                if p.get("account_number"):
                    enrolment.update(payment_channel=p["payment_channel"], account_number=p["account_number"])
                changes.append(Change(node_id, seq, hlc, "enrolment", "E" + p["record_id"], p["union_id"], "upsert",
                                      enrolment, {}, "op"))  # fmt: skip
        engine.push(wire.encode_batch(Batch(node_id, uuid7(), tuple(changes)), signer))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--registry", type=int, default=1_000_000)
    ap.add_argument("--new", type=int, default=20_000)
    ap.add_argument("--chunk", type=int, default=100, help="log entries per writer transaction (the hub's default)")
    ap.add_argument("--build-chunk", type=int, default=1000, help="chunk while building the registry (untimed)")
    ap.add_argument("--db", default=None, help="hub database URL (default: a fresh SQLite file under /tmp)")
    ap.add_argument("--seed", type=int, default=43)
    ap.add_argument(
        "--id-prefix", default="", help="prefix for the record ids, to add new persons to a database built before"
    )
    ap.add_argument("--synth-ids", action="store_true",
                    help="keep the generator's ids (R00000001...) in shuffled order: every insert keyed by person "
                         "id lands at a random place (the bench's layout before session 4)")
    ap.add_argument("--pragma", action="append", default=[],
                    help="SQLite: a PRAGMA for the hub's connections, e.g. --pragma mmap_size=4000000000 (repeatable)")
    ap.add_argument("--profile", default=None, help="write a cProfile of the timed job to this file")
    ap.add_argument("--no-checkpointer", action="store_true",
                    help="SQLite: leave WAL checkpoints to the commits, as before session 5 (central-hub serve "
                         "runs them on a thread of their own: central_hub/checkpoint.py)")
    ap.add_argument("--enrolments", action="store_true",
                    help="push each person's enrolment (programme, wallet or account) with it, as offices do")
    args = ap.parse_args()
    url = args.db or f"sqlite:///{tempfile.mkdtemp()}/hub.db"
    store = SqlHubStore(url)
    store.migrate()
    if args.pragma and store.dialect == "sqlite":
        from sqlalchemy import event

        @event.listens_for(store.engine, "checkout")
        def _pragma(dbapi_conn: Any, _rec: Any, _proxy: Any) -> None:
            for p in args.pragma:
                dbapi_conn.execute(f"PRAGMA {p}")
    t0 = time.perf_counter()
    people = generate(args.registry + args.new, seed=args.seed)
    random.Random(args.seed).shuffle(people)  # repeat registrations of one person arrive apart, as in the field
    if not args.synth_ids:
        # Offices give every record a time-sortable UUIDv7 when it is registered (DESIGN), so a hub receives
        # ids in roughly increasing order and every table keyed by person id grows at its end. Here ids are
        # given in arrival order, one millisecond apart, ending now (so a later run's ids come after).
        rng = random.Random(args.seed + 1)
        start_ms = int(time.time() * 1000) - len(people)
        for i, p in enumerate(people):
            p["record_id"] = uuid7(start_ms + i, rng.randbytes)
    for p in people:
        p["record_id"] = args.id_prefix + p["record_id"]
    registry, new = people[: args.registry], people[args.registry :]
    print(f"generated {len(people):,} records in {time.perf_counter() - t0:.0f} s", flush=True)
    print(f"pushed the registry's persons in {push_all(store, registry, args.enrolments):.0f} s", flush=True)

    # as `central-hub serve` runs the hub: WAL checkpoints on a thread of their own (SQLite)
    checkpointer = WalCheckpointer(store, 0 if args.no_checkpointer else 0.2)
    checkpointer.start()
    engine = HubEngine(store)
    service = RegistryService(store, engine, chunk=args.build_chunk)
    # step 2: the registry, built by the job itself (which also reads past its own publications)
    t0 = time.perf_counter()
    service.scan_until_done()
    build_s = time.perf_counter() - t0
    print(
        f"registry of {len(registry):,} built by the job in {build_s:.0f} s = {len(registry) / build_s:,.0f}/s",
        flush=True,
    )
    # the new persons arrive after the build, as they would on a running hub
    print(f"pushed the new persons in {push_all(store, new, args.enrolments):.0f} s", flush=True)

    # step 3: timed (with the job's copy of the index loaded first, as a running hub has it)
    t0 = time.perf_counter()
    with store.transaction():
        registry_size = service.job_index.size()
    print(f"copy of the index ready in {time.perf_counter() - t0:.0f} s", flush=True)
    service.chunk = args.chunk
    # where the job's time goes: matching and indexing, the index's rows written, publication, and (the
    # remainder) reading the log and records, the enrolment table and COMMIT
    stages = {"match": 0.0, "flush": 0.0, "publish": 0.0}

    def timed(name: str, fn: Any) -> Any:
        def wrapper(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                stages[name] += time.perf_counter() - t

        return wrapper

    service._match_person = timed("match", service._match_person)  # type: ignore[method-assign]
    service.job_index.flush = timed("flush", service.job_index.flush)  # type: ignore[method-assign]
    service.publish = timed("publish", service.publish)  # type: ignore[method-assign]
    chunks: list[float] = []
    # the cyclic garbage collector's full passes over the process's objects (the copy is millions of them)
    gc_passes: list[float] = []
    gc_start = [0.0]

    def gc_watch(phase: str, info: dict[str, int]) -> None:
        if info["generation"] == 2:
            if phase == "start":
                gc_start[0] = time.perf_counter()
            else:
                gc_passes.append(time.perf_counter() - gc_start[0])

    gc.callbacks.append(gc_watch)
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    t0 = time.perf_counter()
    while True:
        c0 = time.perf_counter()
        report = service.scan_once()
        if report.entries == 0:
            break
        chunks.append(time.perf_counter() - c0)
    job_s = time.perf_counter() - t0
    gc.callbacks.remove(gc_watch)
    if profiler:
        profiler.disable()
        profiler.dump_stats(args.profile)
        pstats.Stats(args.profile).sort_stats("cumulative").print_stats(40)

    # step 4: single-record checks against the registry (in a writer transaction: the job's copy)
    times = []
    with store.transaction():
        for p in new[:1000]:
            f = prepare({**p, "id": p["record_id"], "district_id": service_mod._district(p["union_id"])})
            t = time.perf_counter()
            service.matcher.match_features(f)
            times.append(time.perf_counter() - t)
    times.sort()

    # step 5: quality of the timed part
    truth = {p["record_id"]: p["true_person_id"] for p in people}
    new_ids = {p["record_id"] for p in new}
    # edges of the new persons whose both records this run generated (a reused database's older persons
    # have no ground truth here)
    edges = [e for e in service.index.edges_of(sorted(new_ids)) if e.a in truth and e.b in truth]
    auto = [e for e in edges if e.band == "auto_link"]
    precision = sum(truth[e.a] == truth[e.b] for e in auto) / len(auto) if auto else float("nan")
    seen_person: set[str] = {p["true_person_id"] for p in registry}
    linked = {x for e in edges if truth[e.a] == truth[e.b] for x in (e.a, e.b)}
    repeats = [p["record_id"] for p in new if p["true_person_id"] in seen_person]
    recall = sum(r in linked for r in repeats) / len(repeats) if repeats else float("nan")
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print()
    print(
        "| registry | new persons | job (match + index + publish) | matching and indexing alone | "
        f"writer transaction per chunk of {args.chunk} (median / max) | single-record check p50 / p95 / max | "
        "auto-link precision | recall with review | peak RSS |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    median_ms, max_ms = sorted(chunks)[len(chunks) // 2] * 1000, max(chunks) * 1000
    p50, p95 = times[len(times) // 2] * 1000, times[int(len(times) * 0.95)] * 1000
    print(
        f"| {registry_size:,} ({store.dialect}) | {len(new):,} | {len(new) / job_s:,.0f} persons/s | "
        f"{len(new) / stages['match']:,.0f} persons/s | {median_ms:.0f} / {max_ms:.0f} ms | "
        f"{p50:.2f} / {p95:.2f} / {times[-1] * 1000:.2f} ms | "
        f"{precision:.4f} ({len(auto):,} edges) | {recall:.4f} ({len(repeats):,} repeats) | {rss_gb:.1f} GB |"
    )
    per = {k: v / len(new) * 1000 for k, v in stages.items()}
    rest = (job_s - stages["match"] - stages["flush"] - stages["publish"]) / len(new) * 1000
    print(
        f"per person: matching {per['match']:.3f} ms, index rows written {per['flush']:.3f} ms, "
        f"publication {per['publish']:.3f} ms, the rest (log and record reads, COMMIT) {rest:.3f} ms"
    )
    print(f"full garbage-collector passes during the job: {len(gc_passes)}, {sum(gc_passes):.2f} s")
    print(f"(copy loads: {service.job_index.loads}; registry build {build_s:.0f} s; "
          f"background WAL checkpoints: {'on' if checkpointer.enabled else 'off'})")
    checkpointer.stop()
    store.close()


if __name__ == "__main__":
    main()
