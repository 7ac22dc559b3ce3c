"""Field node benchmark (not a test): latency of registering a person and of searching by name / NID
with many persons in the encrypted database, resident memory of ``field-node serve``, and database
size per 1,000 persons.

    .venv/bin/python bench/bench_node.py --persons 300000

The bulk load bypasses the UI (one transaction of ``executemany`` into the same tables and the same
FTS index); every measured operation goes through ``field_node.services.Registry``, the code the UI and
API use, including validation, the duplicate check, the outbox change and the commit.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from field_node.node import Node  # noqa: E402
from field_node.replica_store import person_search_text  # noqa: E402
from field_node.services import Registry  # noqa: E402
from sync_protocol.ids import uuid7  # noqa: E402
from sync_protocol.validation import bangla_digits, normalize_name  # noqa: E402

OPERATOR, PASSWORD = "bench", "bench password"
GIVEN_EN = [
    "Rahima",
    "Karim",
    "Abdul",
    "Salma",
    "Jamal",
    "Fatema",
    "Rafiq",
    "Nasrin",
    "Habib",
    "Shirin",
    "Mizanur",
    "Ayesha",
    "Kamal",
    "Rokeya",
    "Shahidul",
    "Taslima",
    "Anwar",
    "Morium",
    "Delwar",
    "Josna",
    "Harun",
    "Beauty",
    "Selim",
    "Laila",
    "Mofiz",
    "Parvin",
    "Babul",
    "Rupa",
    "Sohel",
    "Mukta",
]
GIVEN_BN = [
    "রহিমা",
    "করিম",
    "আব্দুল",
    "সালমা",
    "জামাল",
    "ফাতেমা",
    "রফিক",
    "নাসরিন",
    "হাবিব",
    "শিরিন",
    "মিজানুর",
    "আয়েশা",
    "কামাল",
    "রোকেয়া",
    "শহিদুল",
    "তাসলিমা",
    "আনোয়ার",
    "মরিয়ম",
    "দেলোয়ার",
    "জোসনা",
    "হারুন",
    "বিউটি",
    "সেলিম",
    "লায়লা",
    "মফিজ",
    "পারভীন",
    "বাবুল",
    "রূপা",
    "সোহেল",
    "মুক্তা",
]
FAMILY_EN = [
    "Khatun",
    "Mia",
    "Hossain",
    "Begum",
    "Uddin",
    "Akter",
    "Islam",
    "Rahman",
    "Ali",
    "Sarkar",
    "Mondal",
    "Sheikh",
    "Talukder",
    "Chowdhury",
    "Bhuiyan",
    "Molla",
    "Howlader",
    "Khan",
    "Das",
    "Roy",
]
FAMILY_BN = [
    "খাতুন",
    "মিয়া",
    "হোসেন",
    "বেগম",
    "উদ্দিন",
    "আক্তার",
    "ইসলাম",
    "রহমান",
    "আলী",
    "সরকার",
    "মণ্ডল",
    "শেখ",
    "তালুকদার",
    "চৌধুরী",
    "ভূঁইয়া",
    "মোল্লা",
    "হাওলাদার",
    "খান",
    "দাস",
    "রায়",
]
PERSON_COLS = [
    "id",
    "scope",
    "household_id",
    "full_name_bn",
    "full_name_en",
    "sex",
    "date_of_birth",
    "nid",
    "mobile",
    "relation_to_head",
    "life_status",
    "father_name",
    "name_key_bn",
    "name_key_en",
    "created_at",
    "updated_at",
]


def _person(rng: random.Random, hh: str, i: int) -> dict[str, Any]:
    g, f = rng.randrange(len(GIVEN_EN)), rng.randrange(len(FAMILY_EN))
    # a unique-ish middle token makes names realistic in their spread (a union has many "Rahima Khatun")
    mid_en = f"{GIVEN_EN[rng.randrange(len(GIVEN_EN))]}{i % 997}"
    year = rng.randint(1940, 2020)
    nid = f"{year}{rng.randrange(10**13):013d}" if rng.random() < 0.5 else f"{rng.randrange(10**9, 10**10)}"
    return {
        "id": uuid7(),
        "scope": "1",
        "household_id": hh,
        "full_name_bn": f"{GIVEN_BN[g]} {FAMILY_BN[f]}",
        "full_name_en": f"{GIVEN_EN[g]} {mid_en} {FAMILY_EN[f]}",
        "sex": rng.choice(["female", "male"]),
        "date_of_birth": f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "nid": nid if year <= 2007 else None,
        "mobile": f"01{rng.choice('3456789')}{rng.randrange(10**8):08d}",
        "relation_to_head": "head" if i % 4 == 0 else "son",
        "life_status": "alive",
        "father_name": f"{GIVEN_EN[rng.randrange(len(GIVEN_EN))]} {FAMILY_EN[f]}",
    }


def bulk_load(node: Node, n: int, seed: int = 1) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    database, _, _ = node.require()
    conn = database.conn
    now = "2026-01-01T00:00:00Z"
    sample: list[dict[str, Any]] = []
    with database.transaction():
        batch_h, batch_p = [], []
        for i in range(n):
            if i % 4 == 0:
                hh = uuid7()
                batch_h.append((hh, "1", "1", f"{rng.randint(1, 9)}", f"Village {rng.randrange(40)}", now, now))
            p = _person(rng, hh, i)
            p["name_key_bn"], p["name_key_en"] = normalize_name(p["full_name_bn"]), normalize_name(p["full_name_en"])
            p["created_at"] = p["updated_at"] = now
            batch_p.append(tuple(p[c] for c in PERSON_COLS))
            if rng.random() < 0.002:
                sample.append(p)
            if len(batch_p) >= 20_000:
                _flush(conn, batch_h, batch_p)
                batch_h, batch_p = [], []
        _flush(conn, batch_h, batch_p)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("ANALYZE")
    return sample


def _flush(conn: Any, households: list[tuple[Any, ...]], persons: list[tuple[Any, ...]]) -> None:
    conn.executemany(
        "INSERT INTO household (id, scope, union_id, ward, village, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        households,
    )
    cols = ", ".join(PERSON_COLS)
    conn.executemany(f"INSERT INTO person ({cols}) VALUES ({', '.join('?' * len(PERSON_COLS))})", persons)
    ids = [p[0] for p in persons]
    # the same index rows put_local writes: rowid of the person row, names and numbers
    rows = conn.execute(
        "SELECT rowid, full_name_bn, full_name_en, father_name, nid, mobile FROM person WHERE id IN "
        "(SELECT value FROM json_each(?))",
        (json.dumps(ids),),
    ).fetchall()
    conn.executemany(
        "INSERT INTO person_fts (rowid, names, numbers) VALUES (?, ?, ?)",
        [
            (
                r[0],
                *person_search_text(
                    {"full_name_bn": r[1], "full_name_en": r[2], "father_name": r[3], "nid": r[4], "mobile": r[5]}
                ),
            )
            for r in rows
        ],
    )


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def timed(fn: Any, samples: int) -> list[float]:
    out = []
    for i in range(samples):
        t = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - t) * 1000)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_rss(data_dir: Path, queries: list[str]) -> tuple[float, float]:
    """RSS and peak RSS (MB) of `field-node serve` after login and some searches/registrations."""
    port = free_port()
    env = {
        **os.environ,
        "FIELD_NODE_OPERATOR": OPERATOR,
        "FIELD_NODE_OPERATOR_PASSWORD": PASSWORD,
        "FIELD_NODE_SYNC_INTERVAL": "0",
    }
    exe = shutil.which("field-node", path=str(Path(sys.executable).parent)) or "field-node"
    proc = subprocess.Popen(
        [exe, "serve", "--data-dir", str(data_dir), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                urllib.request.urlopen(base + "/login", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)

        def call(method: str, path: str, body: Any = None, token: str = "") -> Any:
            req = urllib.request.Request(
                base + path,
                method=method,
                data=json.dumps(body).encode() if body else None,
                headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})},
            )
            return json.loads(urllib.request.urlopen(req, timeout=30).read())

        token = call("POST", "/api/v1/session", {"username": OPERATOR, "password": PASSWORD})["token"]
        for q in queries:
            call("GET", "/api/v1/persons?q=" + urllib.request.quote(q), token=token)
        hh = call(
            "POST",
            "/api/v1/households",
            {"members": [{"full_name_en": "Rss Probe", "sex": "male", "date_of_birth": "1990-01-01"}]},
            token=token,
        )
        assert hh["id"]
        status = Path(f"/proc/{proc.pid}/status").read_text()
        fields = {line.split(":")[0]: line.split()[1] for line in status.splitlines() if line.startswith("Vm")}
        return int(fields["VmRSS"]) / 1024, int(fields["VmHWM"]) / 1024
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def size_mb(d: Path) -> float:
    return sum(p.stat().st_size for p in d.iterdir() if p.name.startswith("node.db")) / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--persons", type=int, default=300_000)
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument(
        "--operator-path-persons",
        type=int,
        default=1000,
        help="persons registered through the services to measure size with outbox and sync metadata",
    )
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-node-"))
    try:
        d = work / "node"
        Node.create(d, union_id="1", hub_url="http://127.0.0.1:9", operator=OPERATOR, password=PASSWORD)
        node = Node(d)
        node.login(OPERATOR, PASSWORD)
        reg = Registry(node)
        t = time.perf_counter()
        sample = bulk_load(node, args.persons)
        load_s = time.perf_counter() - t
        print(f"bulk load of {args.persons} persons: {load_s:.1f} s", file=sys.stderr)
        bulk_size = size_mb(d)
        rng = random.Random(7)
        hh_id = sample[0]["household_id"]
        names = [s["full_name_en"].split()[0] + " " + s["full_name_en"].split()[-1] for s in sample]
        bn_names = [s["full_name_bn"] for s in sample]
        nids = [s["nid"] for s in sample if s["nid"]]

        def register(i: int) -> None:
            # distinct names, so the duplicate check runs (as for every registration) but finds nothing
            bn_name = f"পরীক্ষা {bangla_digits(str(i))}"
            reg.create_person(
                {
                    "household_id": hh_id,
                    "full_name_en": f"Bench Person {i}",
                    "full_name_bn": bn_name,
                    "sex": "female",
                    "date_of_birth": f"19{50 + i % 50}-01-01",
                    "mobile": f"0171{i:07d}",
                },
                actor=OPERATOR,
            )

        counts: list[int] = []
        reg_ms = timed(register, args.samples)
        name_ms = timed(lambda i: counts.append(len(reg.search_persons(rng.choice(names)))), args.samples)
        bn_ms = timed(lambda i: counts.append(len(reg.search_persons(rng.choice(bn_names)))), args.samples)
        nid_ms = timed(lambda i: counts.append(len(reg.search_persons(rng.choice(nids)))), args.samples)
        node.close()
        rss, peak = serve_rss(d, [rng.choice(names) for _ in range(50)] + [rng.choice(nids) for _ in range(50)])
        # size through the operator path (outbox, field_meta, FTS), in a fresh node
        d2 = work / "node2"
        Node.create(d2, union_id="1", hub_url="http://127.0.0.1:9", operator=OPERATOR, password=PASSWORD)
        node2 = Node(d2)
        node2.login(OPERATOR, PASSWORD)
        empty = size_mb(d2)
        r2 = Registry(node2)
        per_hh = 4
        for i in range(0, args.operator_path_persons, per_hh):
            r2.create_household(
                {"village": "Subil"},
                [
                    {
                        "full_name_en": f"Op {i + k} Khatun",
                        "full_name_bn": "রহিমা খাতুন",
                        "sex": "female",
                        "date_of_birth": f"19{50 + (i + k) % 50}-0{1 + k}-01",
                        "nid": f"{4000000000 + i + k}",
                        "mobile": f"0181{i + k:07d}",
                    }
                    for k in range(per_hh)
                ],
                actor=OPERATOR,
                confirm_duplicates=True,
            )
        node2.require()[0].conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        op_size = size_mb(d2) - empty
        node2.close()
        result = {
            "persons": args.persons,
            "bulk_load_s": round(load_s, 1),
            "register_p50_ms": round(pct(reg_ms, 50), 2),
            "register_p95_ms": round(pct(reg_ms, 95), 2),
            "search_name_en_p50_ms": round(pct(name_ms, 50), 2),
            "search_name_en_p95_ms": round(pct(name_ms, 95), 2),
            "search_name_bn_p50_ms": round(pct(bn_ms, 50), 2),
            "search_name_bn_p95_ms": round(pct(bn_ms, 95), 2),
            "search_nid_p50_ms": round(pct(nid_ms, 50), 2),
            "search_nid_p95_ms": round(pct(nid_ms, 95), 2),
            "serve_rss_mb": round(rss, 1),
            "serve_peak_rss_mb": round(peak, 1),
            "db_mb_per_1000_bulk": round(bulk_size / (args.persons / 1000), 3),
            "db_mb_per_1000_operator_path": round(op_size / (args.operator_path_persons / 1000), 3),
            "samples": args.samples,
            "mean_hits_per_search": round(statistics.mean(counts), 1),
        }
        print(json.dumps(result, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
