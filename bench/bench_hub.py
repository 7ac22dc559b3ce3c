"""Hub benchmark (not a test): ingest of signed 500-change batches versus a raw ``executemany`` insert of
the same rows into the same database in the same run, on SQLite and PostgreSQL; then pull throughput
for a node bootstrapping its union (default 50,000 persons) through the HTTP API.

    .venv/bin/python bench/bench_hub.py                 # SQLite and PostgreSQL (127.0.0.1:5432)
    .venv/bin/python bench/bench_hub.py --backends sqlite --batches 20

Ingest goes through ``HubEngine.push`` exactly as the push endpoint does: header, signature, inflate,
schema, validation of every change, merge rule, then records + log + change results + batch in one
transaction. The raw baseline inserts (entity, entity_id, scope, fields JSON) rows, 500 per transaction.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import Column, MetaData, String, Table, Text, insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from central_hub.app import create_app, default_validator
from central_hub.store import SqlHubStore
from sync_protocol import wire
from sync_protocol.auth import sign_request
from sync_protocol.hub import HubEngine
from sync_protocol.ids import uuid7
from sync_protocol.merge import merge_change
from sync_protocol.model import Batch, Change
from sync_protocol.signing import Signer
from sync_protocol.store import NodeRecord

BATCH = 500
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def person(i: int) -> dict[str, Any]:
    return {
        "household_id": f"h-{i // 4}",
        "full_name_en": f"Person {i}",
        "full_name_bn": f"ব্যক্তি {i}",
        "sex": "female" if i % 2 else "male",
        "date_of_birth": f"19{50 + i % 49}-0{1 + i % 9}-1{i % 9}",
        "nid": f"{1000000000 + i}",
        "mobile": f"017{i % 100000000:08d}",
        "father_name": f"Father {i}",
        "mother_name": f"Mother {i}",
        "occupation": "farmer",
    }


def envelopes(node_id: str, signer: Signer, batches: int, start: int = 0) -> list[bytes]:
    out = []
    hlc = 1 << 40
    for b in range(batches):
        changes = []
        for k in range(BATCH):
            i = start + b * BATCH + k
            hlc += 1
            changes.append(Change(node_id, i + 1, hlc, "person", uuid7(), "1", "upsert", person(i), {}, "op1"))
        out.append(wire.encode_batch(Batch(node_id, uuid7(), tuple(changes)), signer))
    return out


def update_envelopes(
    node_id: str, signer: Signer, created: list[bytes], responses: list[Any], first_seq: int
) -> list[bytes]:
    """A new mobile and occupation for every person of ``created``, each based on the hub revision its
    registration was acknowledged with."""
    out = []
    seq, hlc = first_seq, 1 << 41
    for env, response in zip(created, responses, strict=True):
        batch = wire.decode_batch(env, signer.public_bytes)
        changes = []
        for change, result in zip(batch.changes, response.results, strict=True):
            rev = result.hub_seq
            fields = {"mobile": f"018{seq % 100000000:08d}", "occupation": "day labourer"}
            changes.append(
                Change(
                    node_id,
                    seq,
                    hlc,
                    "person",
                    change.entity_id,
                    "1",
                    "upsert",
                    fields,
                    dict.fromkeys(fields, rev),
                    "op1",
                )
            )
            seq += 1
            hlc += 1
        out.append(wire.encode_batch(Batch(node_id, uuid7(), tuple(changes)), signer))
    return out


def raw_rate(store: SqlHubStore, envs: list[bytes], public_key: bytes) -> float:
    """Rows/s of a plain executemany of the same rows, one transaction per 500."""
    table = Table(
        "bench_raw",
        MetaData(),
        Column("entity", String(32)),
        Column("entity_id", String(64)),
        Column("scope", String(32)),
        Column("fields", Text),
    )
    table.create(store.engine, checkfirst=True)
    batches = []
    for env in envs:
        batch = wire.decode_batch(env, public_key)
        batches.append(
            [
                {
                    "entity": c.entity,
                    "entity_id": c.entity_id,
                    "scope": c.scope,
                    "fields": json.dumps(dict(c.fields), ensure_ascii=False),
                }
                for c in batch.changes
            ]
        )
    t0 = time.perf_counter()
    for rows in batches:
        with store.engine.begin() as conn:
            conn.execute(insert(table), rows)
    return sum(len(r) for r in batches) / (time.perf_counter() - t0)


def stage_costs(envs: list[bytes], public_key: bytes, ingest_per_s: float) -> dict[str, float]:
    """Microseconds per change spent in each stage of a push, measured separately on the same batches;
    what is left of the whole push is the store plus the engine's own bookkeeping."""
    validator = default_validator()
    n = len(envs) * BATCH
    t0 = time.perf_counter()
    batches = [wire.decode_batch(env, public_key) for env in envs]
    decode = (time.perf_counter() - t0) / n * 1e6
    t0 = time.perf_counter()
    if validator is not None:
        for batch in batches:
            for c in batch.changes:
                validator(c.entity, c.fields, None)
    validate = (time.perf_counter() - t0) / n * 1e6
    t0 = time.perf_counter()
    for batch in batches:
        for c in batch.changes:
            merge_change(c, None, hub_seq=1)
    merge = (time.perf_counter() - t0) / n * 1e6
    total = 1e6 / ingest_per_s
    return {
        "push": round(total),
        "wire_decode": round(decode),
        "validate": round(validate),
        "merge": round(merge),
        "store_and_rest": round(total - decode - validate - merge),
    }


def run_backend(name: str, url: str, batches: int, pull_persons: int) -> dict[str, Any]:
    store = SqlHubStore(url)
    store.migrate()
    signer = Signer.generate()
    node_id = str(uuid.uuid4())
    store.add_node(NodeRecord(node_id, signer.public_bytes, frozenset({"1"}), label="bench"))
    engine = HubEngine(store, validator=default_validator())
    total_batches = max(batches, pull_persons // BATCH)
    envs = envelopes(node_id, signer, total_batches)
    timed = envs[:batches]
    responses = []
    t0 = time.perf_counter()
    for env in timed:
        responses.append(engine.push(env))
    ingest = batches * BATCH / (time.perf_counter() - t0)
    for env in envs[batches:]:  # the rest of the union for the pull test, untimed
        engine.push(env)
    raw = raw_rate(store, timed, signer.public_bytes)
    stages = stage_costs(timed, signer.public_bytes, ingest)
    assert store.last_hub_seq() == total_batches * BATCH

    app = create_app({"HUB_STORE": store, "TESTING": True})
    client = app.test_client()
    cursor, entries, pages = None, 0, 0
    t0 = time.perf_counter()
    while True:
        query = {"limit": "5000"} if cursor is None else {"cursor": cursor, "limit": "5000"}
        resp = client.get(
            "/sync/v1/pull", query_string=query, headers=sign_request(signer, node_id, "GET", "/sync/v1/pull", query)
        )
        assert resp.status_code == 200, resp.json
        page = resp.json
        entries += len(page["entries"])
        pages += 1
        cursor = page["cursor"]
        if not page["more"]:
            break
    pull_s = time.perf_counter() - t0

    # Then the same node edits two fields of each person it registered in the timed batches, based on
    # the revision it was acknowledged: the merge rule's real work, on records read back from the store.
    updates = update_envelopes(node_id, signer, timed, responses, first_seq=total_batches * BATCH + 1)
    t0 = time.perf_counter()
    for env in updates:
        assert all(r.outcome == "applied" for r in engine.push(env).results)
    update_rate = len(updates) * BATCH / (time.perf_counter() - t0)
    raw_updates = raw_rate(store, updates, signer.public_bytes)
    store.close()
    return {
        "backend": name,
        "changes_timed": batches * BATCH,
        "ingest_per_s": ingest,
        "raw_per_s": raw,
        "ratio": ingest / raw,
        "update_per_s": update_rate,
        "raw_update_per_s": raw_updates,
        "update_ratio": update_rate / raw_updates,
        "pull_entries": entries,
        "pull_pages": pages,
        "pull_s": pull_s,
        "pull_per_s": entries / pull_s,
        "us_per_change": stages,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--batches", type=int, default=20, help="timed 500-change batches per backend")
    parser.add_argument("--persons", type=int, default=50_000, help="union size for the pull bootstrap")
    args = parser.parse_args()
    results = []
    for name in args.backends.split(","):
        if name == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                results.append(run_backend("sqlite", f"sqlite:///{tmp}/hub.db", args.batches, args.persons))
        elif name == "postgres":
            import psycopg

            db = f"bench_hub_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'create database "{db}"')
            try:
                results.append(
                    run_backend("postgres", PG_ADMIN.rsplit("/", 1)[0] + f"/{db}", args.batches, args.persons)
                )
            finally:
                with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                    conn.execute("select pg_terminate_backend(pid) from pg_stat_activity where datname = %s", (db,))
                    conn.execute(f'drop database if exists "{db}"')
        print(json.dumps(results[-1]), flush=True)
    print()
    print("| backend | ingest (changes/s) | raw executemany (rows/s) | ratio | pull: entries | pages | s | entries/s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(
            f"| {r['backend']} | {r['ingest_per_s']:,.0f} | {r['raw_per_s']:,.0f} | {r['ratio']:.0%} | "
            f"{r['pull_entries']:,} | {r['pull_pages']} | {r['pull_s']:.1f} | {r['pull_per_s']:,.0f} |"
        )
    print()
    print("| backend | two-field updates (changes/s) | raw executemany of the same rows (rows/s) | ratio |")
    print("| --- | --- | --- | --- |")
    for r in results:
        print(f"| {r['backend']} | {r['update_per_s']:,.0f} | {r['raw_update_per_s']:,.0f} | {r['update_ratio']:.0%} |")
    print()
    print("| backend | push µs/change | wire decode | validate | merge | store + rest |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in results:
        s = r["us_per_change"]
        print(
            f"| {r['backend']} | {s['push']} | {s['wire_decode']} | {s['validate']} | {s['merge']} | "
            f"{s['store_and_rest']} |"
        )


if __name__ == "__main__":
    main()
