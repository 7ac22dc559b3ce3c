"""A/B of the registry job's settings against a registry built before, in one process.

On the shared two-core machines the job's rate drifts by a third between runs minutes apart (session 5:
661-930 persons/s with nothing changed), more than most single changes are worth. This loads the job's
copy of the index once, then runs the variants in turn, round after round, each on a fresh batch of new
persons pushed just before it, so drift falls on every variant alike. It prints each run and the median per
variant.

    .venv/bin/python bench/bench_registry_ab.py --db sqlite:////tmp/x/hub.db --new 4000 --rounds 4 \
        --variant base --variant 'bg-checkpoint:checkpointer' \
        --variant 'chunk500:chunk=500'

A variant is ``NAME`` followed by ``:``-separated settings: ``chunk=N`` (log entries per writer
transaction), ``pragma=P`` (an SQLite PRAGMA on every connection the hub opens, repeatable) and
``checkpointer`` (while the variant runs, ``central_hub.checkpoint.WalCheckpointer`` as ``central-hub
serve`` runs it: passive checkpoints on a thread of their own every 0.2 s, the connections' own checkpoint
raised to 10,000 pages; a ``pragma=wal_autocheckpoint=N`` of the variant is applied after and wins).

Two settings are what-ifs that measure a part of the job by leaving it out of the timed run, not modes of
the hub: ``keys-after`` (the blocking-key rows are held back and written in one transaction after the
timing) and ``publish-after`` (publication of registry ids and flags likewise: one ``publish`` of every
person concerned after the timing). Both leave the database as the job would have.

The database must hold a registry built by ``bench_registry_scale.py``; every run adds ``--new`` persons
to it (ids prefixed per run).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_registry_scale import push_all
from sqlalchemy import event

from central_hub.checkpoint import WalCheckpointer
from central_hub.registry.hub_schema import registry_keys as keys_t
from central_hub.registry.service import RegistryService
from central_hub.registry.synth import generate
from central_hub.store import SqlHubStore
from sync_protocol.hub import HubEngine
from sync_protocol.ids import uuid7


@dataclass
class Variant:
    name: str
    chunk: int = 100
    pragmas: list[str] = field(default_factory=list)
    checkpointer: bool = False
    keys_after: bool = False
    publish_after: bool = False


def parse_variant(text: str) -> Variant:
    name, *settings = text.split(":")
    v = Variant(name)
    for s in settings:
        if s == "checkpointer":
            v.checkpointer = True
        elif s == "keys-after":
            v.keys_after = True
        elif s == "publish-after":
            v.publish_after = True
        elif s.startswith("chunk="):
            v.chunk = int(s[6:])
        elif s.startswith("pragma="):
            v.pragmas.append(s[7:])
        else:
            raise SystemExit(f"unknown setting {s!r} in variant {text!r}")
    return v


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", required=True, help="SQLite hub database URL holding a registry")
    ap.add_argument("--new", type=int, default=4000, help="new persons per run")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--variant", action="append", required=True,
                    help="NAME[:chunk=N][:pragma=P][:checkpointer][:keys-after][:publish-after]")
    ap.add_argument("--seed", type=int, default=None, help="first batch's seed (default: from the clock)")
    args = ap.parse_args()
    variants = [parse_variant(v) for v in args.variant]
    store = SqlHubStore(args.db)
    if store.dialect != "sqlite":
        raise SystemExit("SQLite only")
    pragmas: list[str] = []

    @event.listens_for(store.engine, "checkout")
    def _pragma(dbapi_conn: Any, _rec: Any, _proxy: Any) -> None:
        for p in pragmas:
            dbapi_conn.execute(f"PRAGMA {p}")

    checkpointer = WalCheckpointer(store, 0.2)  # what `central-hub serve` runs
    service = RegistryService(store, HubEngine(store))
    held_keys: list[tuple[Any, ...]] = []
    held_persons: set[str] = set()
    hold = {"keys": False, "publish": False}
    bulk, publish = store._bulk, service.publish

    def bulk_holding_keys(table: Any, rows: list[tuple[Any, ...]], keys: list[str] | None = None) -> None:
        if hold["keys"] and table is keys_t:
            held_keys.extend(rows)
        else:
            bulk(table, rows, keys)

    def publish_later(persons: Any, loaded: Any = None) -> int:
        if not hold["publish"]:
            return publish(persons, loaded)
        held_persons.update(persons)
        return 0

    store._bulk = bulk_holding_keys  # type: ignore[method-assign]
    service.publish = publish_later  # type: ignore[method-assign]
    t0 = time.perf_counter()
    with store.transaction():
        size = service.job_index.size()
    print(f"copy of {size:,} persons loaded in {time.perf_counter() - t0:.0f} s", flush=True)
    seed = args.seed if args.seed is not None else int(time.time()) % 1_000_000
    rates: dict[str, list[float]] = {v.name: [] for v in variants}
    for r in range(args.rounds):
        for v in variants:
            seed += 1
            people = generate(args.new, seed=seed)
            rng = random.Random(seed)
            start_ms = int(time.time() * 1000) - len(people)
            for i, p in enumerate(people):
                p["record_id"] = f"AB{seed}-" + uuid7(start_ms + i, rng.randbytes)
            push_all(store, people)
            pragmas[:] = v.pragmas
            store.engine.dispose()  # the next connections are opened with this variant's pragmas
            service.chunk = v.chunk
            if v.checkpointer:
                checkpointer.start()
            hold.update(keys=v.keys_after, publish=v.publish_after)
            t = time.perf_counter()
            service.scan_until_done()
            dt = time.perf_counter() - t
            checkpointer.stop()
            hold.update(keys=False, publish=False)
            if held_keys or held_persons:
                with store.transaction():
                    bulk(keys_t, sorted(held_keys))
                    publish(set(held_persons))
                held_keys.clear()
                held_persons.clear()
            rates[v.name].append(len(people) / dt)
            print(f"round {r + 1} {v.name}: {len(people) / dt:,.0f} persons/s", flush=True)
    print()
    print("| variant | median persons/s | runs |")
    print("| --- | --- | --- |")
    for v in variants:
        xs = rates[v.name]
        print(f"| {v.name} | {statistics.median(xs):,.0f} | {', '.join(f'{x:,.0f}' for x in xs)} |")
    store.close()


if __name__ == "__main__":
    main()
