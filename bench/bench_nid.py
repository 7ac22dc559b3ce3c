"""NID verification benchmark (not a test): worker throughput against the simulator, and a 429 storm.

Starts the simulator as a subprocess (`central-hub nid-simulator`, waitress) on a free loopback port with
50 ms latency, then:

1. throughput: the worker with the HTTP verifier at 8 / 16 / 32 threads, verifications per second;
2. 429 storm: the simulator limits to 100 requests/s and answers another 30% of requests 429 at random,
   (a) without and (b) with the client-side token bucket; throughput, 429s, retries, and whether any
   result was lost or wrong.

Every verdict is checked against the in-process oracle (the same registry the simulator serves).

    .venv/bin/python bench/bench_nid.py            # full run
    .venv/bin/python bench/bench_nid.py --quick    # smaller runs
"""

from __future__ import annotations

import argparse
import logging
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import requests

from central_hub.nid.http_client import HttpNidVerifier, HttpVerifierConfig
from central_hub.nid.memory import InMemoryNidVerifier
from central_hub.nid.population import PopulationRecord, generate, write_population
from central_hub.nid.sqlite_store import SqliteVerificationStore
from central_hub.nid.store import Status, Subject
from central_hub.nid.worker import RetryPolicy, VerificationWorker


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_simulator(population_file: Path, port: int, latency_ms: float) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-c", "from central_hub.cli import main; main()", "nid-simulator",
           "--population", str(population_file), "--port", str(port), "--latency-ms", str(latency_ms),
           "--threads", "96"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                return proc
        except requests.RequestException:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("simulator did not start")


def subjects(population: list[PopulationRecord], count: int, tag: str) -> list[Subject]:
    out = []
    for i in range(count):
        r = population[i % len(population)]
        dob = date.fromisoformat(r.date_of_birth)
        if i % 10 == 3:  # some wrong birth dates, so verdicts are not all "verified"
            dob = dob + timedelta(days=1) if dob.month < 12 else dob - timedelta(days=1)
        out.append(Subject(f"{tag}-{i:06d}", r.nid, r.name_bn if i % 2 else r.name_en, dob, r.father_name_en))
    return out


def run(
    url: str,
    items: list[Subject],
    oracle: InMemoryNidVerifier,
    db: Path,
    *,
    workers: int,
    rate_limit: float | None = None,
    max_retry_after: float = 5,
    limit_s: float = 55,
) -> dict[str, object]:
    store = SqliteVerificationStore(db)
    now = datetime.now(UTC)
    for s in items:
        store.enqueue(s, now)
    verifier = HttpNidVerifier(
        HttpVerifierConfig(url, read_timeout=5, max_attempts=4, backoff_base=0.1, backoff_cap=1, rate_limit=rate_limit,
                           burst=rate_limit and max(1.0, rate_limit / 10), pool_size=workers,
                           max_retry_after=max_retry_after)
    )  # fmt: skip
    worker = VerificationWorker(store, verifier, max_workers=workers,
                                retry=RetryPolicy(base=timedelta(seconds=0.5), cap=timedelta(seconds=2)))  # fmt: skip
    start = time.perf_counter()
    while time.perf_counter() - start < limit_s:
        worker.run_until_idle()
        counts = store.counts()
        if counts["pending"] == 0 and counts["retrying"] == 0:
            break
        time.sleep(0.02)  # retries are scheduled for later: wait for them to fall due
    elapsed = time.perf_counter() - start
    worker.close()
    verifier.close()
    wrong = lost = 0
    for s in items:
        state = store.get(s.person_id)
        if state is None or state.status in (Status.PENDING, Status.ERROR):
            lost += 1
            continue
        want = oracle.verify(s.to_request())
        if state.status.value != want.status or state.mismatch_fields != getattr(want, "fields", ()):
            wrong += 1
    counts = store.counts()
    store.close()
    stats = verifier.stats
    return {
        "workers": workers,
        "persons": len(items),
        "seconds": round(elapsed, 2),
        "per_s": round(len(items) / elapsed, 1),
        "verified": counts["verified"],
        "mismatch": counts["mismatch"],
        "unfinished": lost,
        "wrong": wrong,
        "http_attempts": stats["attempts"],
        "http_429": stats["rate_limited"],
        "client_retries": stats["retries"],
        "worker_requeues": stats["calls"] - len(items),
    }


def table(rows: list[dict[str, object]]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    logging.basicConfig(level=logging.ERROR)  # the client logs each given-up call at WARNING
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller runs")
    args = parser.parse_args()
    scale = 0.4 if args.quick else 1.0
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        population = list(generate(5000, seed=42))
        pop_file = tmpdir / "people.jsonl"
        write_population(pop_file, population)
        oracle = InMemoryNidVerifier(population)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        sim = start_simulator(pop_file, port, latency_ms=50)
        try:
            print("## Throughput at 50 ms service latency\n")
            rows = []
            for workers in (8, 16, 32):
                # about 8 s of work at the ideal rate (workers / 50 ms)
                n = int(workers * 160 * scale)
                rows.append(run(url, subjects(population, n, f"t{workers}"), oracle, tmpdir / f"t{workers}.db",
                                workers=workers))  # fmt: skip
                print(rows[-1], flush=True)
            print("\n" + table(rows) + "\n")

            print("## 429 storms, 32 workers, 50 ms latency\n")
            scenarios = [
                ("server limit 100/s, no client limit", {"rate_limit": 100, "rate_429": 0.0}, None),
                ("server limit 100/s, client bucket 95/s", {"rate_limit": 100, "rate_429": 0.0}, 95.0),
                ("+ 30% random 429, client bucket 95/s", {"rate_limit": 100, "rate_429": 0.3}, 95.0),
                # the same storm, but a 429 ends the call and the worker reschedules it (threads stay free)
                ("+ 30% random 429, bucket 95/s, max_retry_after 0", {"rate_limit": 100, "rate_429": 0.3}, 95.0),
            ]
            storm = []
            n = int(1500 * scale)
            for i, (label, faults, client_rate) in enumerate(scenarios):
                requests.post(f"{url}/admin/faults", json={**faults, "retry_after_s": 1}, timeout=5).raise_for_status()
                items = subjects(population, n, f"s{i}")
                hold = 0.0 if "max_retry_after 0" in label else 5.0
                row = {"scenario": label, **run(url, items, oracle, tmpdir / f"s{i}.db", workers=32,
                                                rate_limit=client_rate, max_retry_after=hold)}  # fmt: skip
                storm.append(row)
                print(row, flush=True)
            print("\n" + table(storm) + "\n")
        finally:
            sim.terminate()
            sim.wait(timeout=10)


if __name__ == "__main__":
    main()
