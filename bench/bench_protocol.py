"""Protocol throughput and bytes on the wire (not a test; run on demand).

    .venv/bin/python bench/bench_protocol.py            # full run (a few seconds)
    .venv/bin/python bench/bench_protocol.py --quick    # fewer repetitions

Measures, for batches of 500 changes: encode (canonical JSON + zlib + Ed25519 sign), decode (verify +
inflate + schema check + canonical check), apply on ``MemoryHubStore`` (merge + log + results, inside one
transaction), and the whole ``HubEngine.push``; and the compressed bytes per change of (a) new persons
with 15 realistic fields and (b) one-field mobile updates of existing persons with realistic base
revisions. The results go to docs/simulation.md by hand, with the command that produced them.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from sync_protocol import wire
from sync_protocol.hlc import pack
from sync_protocol.hub import HubEngine
from sync_protocol.ids import uuid7
from sync_protocol.memory import MemoryHubStore
from sync_protocol.merge import Validator
from sync_protocol.model import Batch, Change
from sync_protocol.signing import Signer
from sync_protocol.store import NodeRecord
from sync_protocol.validation_fast import validate_change  # the hub's validator

BATCH = 500
AIM_NEW_PERSON = 200
AIM_ONE_FIELD = 60

NAMES_JSON = Path(__file__).resolve().parents[1] / "central_hub" / "registry" / "data" / "names.json"
FALLBACK = [[["Rahima"], "রহিমা"], [["Karim"], "করিম"], [["Khatun"], "খাতুন"], [["Hossain"], "হোসেন"]]
OCCUPATIONS = ["farmer", "day_labourer", "housewife", "student", "fisher", "rickshaw_puller", "none"]


def _pools() -> dict[str, list[tuple[str, str]]]:
    """(English, Bangla) name parts from the registry's name pools (the same the synthetic population
    uses), drawn uniformly here, which is harder on compression than real, Zipf-like registers."""
    raw = json.loads(NAMES_JSON.read_text("utf-8")) if NAMES_JSON.exists() else {}

    def pairs(key: str) -> list[tuple[str, str]]:
        return [(en[0], bn) for en, bn in raw.get(key, FALLBACK)]

    return {
        "male": pairs("muslim_male_given") + pairs("hindu_male_given"),
        "female": pairs("muslim_female_given") + pairs("hindu_female_given"),
        "surname": pairs("muslim_surname") + pairs("hindu_surname"),
        "suffix": pairs("muslim_female_suffix"),
    }


POOLS = _pools()


def _name(rng: random.Random, sex: str) -> tuple[str, str]:
    given = rng.choice(POOLS[sex])
    last = rng.choice(POOLS["suffix"] if sex == "female" and rng.random() < 0.7 else POOLS["surname"])
    return f"{given[0]} {last[0]}", f"{given[1]} {last[1]}"


def _mobile(rng: random.Random) -> str:
    return "01" + rng.choice("3456789") + "".join(rng.choice("0123456789") for _ in range(8))


def _nid(rng: random.Random, year: int) -> str:
    """A smart-card NID (10 digits) or an old 17-digit one, which starts with the year of birth."""
    if rng.random() < 0.6:
        return "".join(rng.choice("0123456789") for _ in range(10))
    return str(year) + "".join(rng.choice("0123456789") for _ in range(13))


def new_person(rng: random.Random, household_id: str) -> dict[str, object]:
    """15 fields as an enumerator fills them in at the door."""
    sex = rng.choice(["female", "male"])
    name_en, name_bn = _name(rng, sex)
    father = _name(rng, "male")
    mother = _name(rng, "female")
    year = rng.randint(1940, 2010)
    return {
        "household_id": household_id,
        "full_name_bn": name_bn,
        "full_name_en": name_en,
        "sex": sex,
        "date_of_birth": f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "dob_estimated": rng.random() < 0.3,
        "nid": _nid(rng, year),
        "father_name": father[rng.random() < 0.5],  # typed in English or in Bangla
        "mother_name": mother[rng.random() < 0.5],
        "mobile": _mobile(rng),
        "relation_to_head": rng.choice(
            ["head", "spouse", "daughter", "mother"] if sex == "female" else ["head", "spouse", "son", "father"]
        ),
        "disability": rng.random() < 0.1,
        "occupation": rng.choice(OCCUPATIONS),
        "marital_status": rng.choice(["married", "widowed", "never_married", "divorced"]),
        "life_status": "alive",
    }


class Clock:
    """A field day: one change every few seconds, HLC stamps as the replica engine makes them."""

    def __init__(self, rng: random.Random, start_ms: int = 1_780_000_000_000) -> None:
        self.rng = rng
        self.ms = start_ms

    def tick(self) -> int:
        self.ms += self.rng.randint(2_000, 40_000)
        return pack(self.ms, 0)


def new_person_batch(rng: random.Random, node: str, first_seq: int = 1) -> Batch:
    clock = Clock(rng)
    changes = []
    household = uuid7(clock.ms, rng.randbytes)
    for i in range(BATCH):
        if i % 5 == 0:  # about five people per household
            household = uuid7(clock.ms, rng.randbytes)
        hlc = clock.tick()
        pid = uuid7(clock.ms, rng.randbytes)
        changes.append(
            Change(
                node, first_seq + i, hlc, "person", pid, "1", "upsert", new_person(rng, household), {}, "op-subil-01"
            )
        )
    return Batch(node, uuid7(clock.ms, rng.randbytes), tuple(changes))


def mobile_update_batch(rng: random.Random, node: str, persons: list[tuple[str, int]], first_seq: int) -> Batch:
    """One-field updates of known persons; each carries the hub revision its edit was based on."""
    clock = Clock(rng, 1_781_000_000_000)
    chosen = rng.sample(persons, BATCH)
    changes = [
        Change(
            node,
            first_seq + i,
            clock.tick(),
            "person",
            pid,
            "1",
            "upsert",
            {"mobile": _mobile(rng)},
            {"mobile": rev},
            "op-subil-01",
        )
        for i, (pid, rev) in enumerate(chosen)
    ]
    return Batch(node, uuid7(clock.ms, rng.randbytes), tuple(changes))


def best_of(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def measure(quick: bool) -> dict[str, float]:
    rng = random.Random(2026)
    repeat = 3 if quick else 9
    signer = Signer(rng.randbytes(32))
    node = "node-subil-01"
    out: dict[str, float] = {}

    # Bytes on the wire: (a) new persons into a hub that already holds 200,000 log entries' worth of
    # history (only the ids and values matter for the size), (b) mobile changes based on real revisions.
    persons_batch = new_person_batch(rng, node)
    env_new = wire.encode_batch(persons_batch, signer)
    out["bytes_new_person"] = len(env_new) / BATCH
    persons = [(c.entity_id, rng.randint(150_000, 250_000)) for c in persons_batch.changes]
    updates = mobile_update_batch(rng, node, persons, BATCH + 1)
    env_upd = wire.encode_batch(updates, signer)
    out["bytes_one_field"] = len(env_upd) / BATCH

    # Throughput: encode, decode + verify, apply, whole push.
    for label, batch, env in (("new_person", persons_batch, env_new), ("one_field", updates, env_upd)):
        out[f"encode_{label}"] = BATCH / best_of(partial(wire.encode_batch, batch, signer), repeat)
        out[f"decode_{label}"] = BATCH / best_of(partial(wire.decode_batch, env, signer.public_bytes), repeat)

    def fresh_hub(validator: Validator | None = None) -> HubEngine:
        store = MemoryHubStore()
        store.add_node(NodeRecord(node, signer.public_bytes, frozenset({"1"})))
        return HubEngine(store, validator=validator)

    digests = {id(b): tuple(wire.change_digest(c) for c in b.changes) for b in (persons_batch, updates)}

    def apply_only(hub: HubEngine, batch: Batch, last: int) -> None:
        with hub.store.transaction():
            hub._apply_batch(batch, last, digests[id(batch)])  # merge/log/results part of push, no wire

    apply_times, push_times, upd_apply, upd_push, val_push, val_upd = [], [], [], [], [], []
    for _ in range(repeat):
        hub = fresh_hub()
        t = time.perf_counter()
        apply_only(hub, persons_batch, 0)
        apply_times.append(time.perf_counter() - t)
        hub = fresh_hub()
        t = time.perf_counter()
        hub.push(env_new)
        push_times.append(time.perf_counter() - t)
        # updates on a hub that holds the persons (revisions here are the hub's own)
        t = time.perf_counter()
        hub.push(env_upd)
        upd_push.append(time.perf_counter() - t)
        hub2 = fresh_hub()
        hub2.push(env_new)
        t = time.perf_counter()
        apply_only(hub2, updates, BATCH)
        upd_apply.append(time.perf_counter() - t)
        # the real hub also validates every change (sync_protocol.validation); none may be rejected
        hub3 = fresh_hub(validate_change)
        t = time.perf_counter()
        answers = [hub3.push(env_new)]
        val_push.append(time.perf_counter() - t)
        t = time.perf_counter()
        answers.append(hub3.push(env_upd))
        val_upd.append(time.perf_counter() - t)
        rejected = [r for a in answers for r in a.results if r.outcome == "rejected"]
        assert not rejected, f"benchmark data fails validation: {rejected[:3]}"
    out["apply_new_person"] = BATCH / min(apply_times)
    out["push_new_person"] = BATCH / min(push_times)
    out["apply_one_field"] = BATCH / min(upd_apply)
    out["push_one_field"] = BATCH / min(upd_push)
    out["vpush_new_person"] = BATCH / min(val_push)
    out["vpush_one_field"] = BATCH / min(val_upd)
    out["median_push_new_person_ms"] = statistics.median(push_times) * 1000
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    r = measure(args.quick)
    load = os.getloadavg()[0]
    print(f"batch of {BATCH} changes, best of {3 if args.quick else 9} runs, one core, load average {load:.1f}:")
    print(f"{'':24}{'new person (15 fields)':>24}{'one-field update':>20}")
    for step, name in (
        ("encode", "encode + sign"),
        ("decode", "verify + decode"),
        ("apply", "apply (MemoryHubStore)"),
        ("push", "whole HubEngine.push"),
        ("vpush", "push with validation"),
    ):
        print(f"{name:24}{r[f'{step}_new_person']:>24,.0f}{r[f'{step}_one_field']:>20,.0f}")
    print("bytes on the wire per change (whole signed, compressed envelope / 500):")
    ok_new = "meets" if r["bytes_new_person"] <= AIM_NEW_PERSON else "MISSES"
    ok_upd = "meets" if r["bytes_one_field"] <= AIM_ONE_FIELD else "MISSES"
    print(f"  new person, 15 fields : {r['bytes_new_person']:6.1f} B  ({ok_new} the aim of <= {AIM_NEW_PERSON} B)")
    print(f"  one-field update      : {r['bytes_one_field']:6.1f} B  ({ok_upd} the aim of <= {AIM_ONE_FIELD} B)")


if __name__ == "__main__":
    main()
