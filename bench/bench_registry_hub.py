"""Registry matching job at the hub: how fast the log scan matches, indexes and publishes.

    nice -n 19 .venv/bin/python bench/bench_registry_hub.py --count 5000 [--db postgresql://...] [--out FILE]

Writes ``--count`` synthetic persons into an empty hub store (as hub writes, like ingested pushes), then
times ``RegistryService.scan_until_done()`` (chunks of ``--chunk`` log entries, each one writer
transaction) and a single decision. Appends the figures to ``bench/results-registry-hub.md``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from central_hub.registry.service import RegistryService
from central_hub.registry.synth import generate
from central_hub.store import SqlHubStore
from sync_protocol.hub import HubEngine

FIELDS = ("full_name_bn", "full_name_en", "sex", "date_of_birth", "nid", "brn", "father_name", "mother_name",
          "spouse_name", "mobile")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=5000)
    ap.add_argument("--chunk", type=int, default=100)
    ap.add_argument("--db", default=None, help="hub database URL (default: a fresh SQLite file)")
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("results-registry-hub.md"))
    args = ap.parse_args()
    url = args.db or f"sqlite:///{tempfile.mkdtemp()}/hub.db"
    store = SqlHubStore(url)
    store.migrate()
    engine = HubEngine(store)
    people = generate(args.count, seed=31)
    t = time.perf_counter()
    with store.transaction():
        for r in people:
            engine.hub_write("person", r["record_id"], {k: r[k] for k in FIELDS if r[k]}, scope=r["union_id"])
    load_s = time.perf_counter() - t
    service = RegistryService(store, engine, chunk=args.chunk)
    chunk_times = []
    t = time.perf_counter()
    while True:
        c0 = time.perf_counter()
        report = service.scan_once()
        if report.entries == 0:
            break
        chunk_times.append(time.perf_counter() - c0)
    scan_s = time.perf_counter() - t
    clusters = len(set(service.index.clusters().values()))
    edges = service.index.edges()
    truth = {r["record_id"]: r["true_person_id"] for r in people}
    auto = [e for e in edges if e.band == "auto_link"]
    tp = sum(truth[e.a] == truth[e.b] for e in auto)
    lines = [
        f"\n## {time.strftime('%Y-%m-%d %H:%M')} - {len(people)} persons, {store.dialect}, chunk {args.chunk}\n",
        f"- loading the persons as hub writes: {load_s:.1f} s",
        f"- matching job over the log: {scan_s:.1f} s = {len(people) / scan_s:.0f} persons/s "
        f"(match + index + publish, one writer transaction per chunk)",
        f"- writer transaction per chunk: median {sorted(chunk_times)[len(chunk_times) // 2] * 1000:.0f} ms, "
        f"max {max(chunk_times) * 1000:.0f} ms",
        f"- clusters {clusters}, auto-link edges {len(auto)} (same true person: {tp}), "
        f"review edges {sum(e.band == 'review' for e in edges)}",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    with args.out.open("a", encoding="utf-8") as f:
        f.write(text)
    store.close()


if __name__ == "__main__":
    main()
