"""Train the matching model with Splink (DuckDB) on synthetic data and write ``model.json``.

m probabilities come from the ground-truth labels (``estimate_m_from_label_column``), u probabilities
from random sampling of record pairs, both over the comparison levels of ``features.COMPARISONS``. The
thresholds (match weights in bits) are then calibrated on a second, independently seeded synthetic set
by running the incremental matcher over it:

- ``auto_link``: the lowest weight above which probabilistic links reach the target precision;
- ``review``: the lowest review weight (``Matcher.score``: all the evidence, the household's without the
  person-first gate) that still keeps the target share of the true pairs the blocking finds.
"""

from __future__ import annotations

import json
import logging
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from central_hub.registry.features import COMPARISONS, FEATURES_VERSION, prepare, splink_settings
from central_hub.registry.normalize import NORMALISATION_VERSION

DEFAULT_THRESHOLDS = {"auto_link": 12.0, "review": 0.0, "person_support": 4.0, "household_cap": 10.0}
TERM_FREQUENCY = {"min_registry": 5000, "min_district": 500, "cap_bits": 6.0}


def _true_pairs(labels: list[str]) -> int:
    from collections import Counter

    return sum(n * (n - 1) // 2 for n in Counter(labels).values())


def train_splink(records: list[dict[str, Any]], seed: int = 1, max_pairs: float = 2e6) -> dict[str, Any]:
    """Fit m/u with Splink on DuckDB; return our model dictionary (thresholds still the defaults)."""
    import pandas as pd
    from splink import DuckDBAPI, Linker

    rows = []
    for r in records:
        row = prepare(r).as_row()
        row["true_person_id"] = r["true_person_id"]
        rows.append(row)
    df = pd.DataFrame(rows)
    n = len(df)
    prior = _true_pairs(list(df["true_person_id"])) / (n * (n - 1) / 2)
    db = DuckDBAPI()
    sdf = db.register(df)
    linker = Linker(sdf, splink_settings(prior), log_level=logging.WARNING)
    linker.training.estimate_u_using_random_sampling(max_pairs=max_pairs, seed=seed, min_count_per_level=None)
    linker.training.estimate_m_from_label_column("true_person_id")
    return _export(linker.misc.save_model_to_json(), prior, n, "central_hub.registry.synth")


def train_unsupervised(records: list[dict[str, Any]], source: str, seed: int = 1, max_pairs: float = 1e6,
                       link_probability: float = 0.9) -> dict[str, Any]:
    """Fit the same comparison levels to a file without labels, the way a plain Splink model is fitted:
    prior from a deterministic rule (name key + birth date, assumed to find 70% of the matches), u by
    random sampling, m by expectation maximisation blocked on the name key and on the birth date. The
    auto-link threshold is the match weight of ``link_probability`` at the file's own size (no
    calibration: there are no labels to calibrate on). Used to compare the matcher with a plain Splink
    model on data it was not built for (FEBRL)."""
    import pandas as pd
    from splink import DuckDBAPI, Linker, block_on

    df = pd.DataFrame([prepare(r).as_row() for r in records])
    linker = Linker(DuckDBAPI().register(df), splink_settings(1e-4), log_level=logging.WARNING)
    linker.training.estimate_probability_two_random_records_match([block_on("name_key", "dob")], recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=max_pairs, seed=seed)
    for rule in (block_on("name_key"), block_on("dob")):
        linker.training.estimate_parameters_using_expectation_maximisation(rule)
    splink_model = linker.misc.save_model_to_json()
    model = _export(splink_model, float(splink_model["probability_two_random_records_match"]), len(df), source)
    auto = math.log2(link_probability / (1 - link_probability))
    model["thresholds"] = {**model["thresholds"], "auto_link": auto, "review": auto - 10}
    model["model_version"] = f"em-{source}"
    model["calibrated_on"] = {"records": len(df)}
    return model


def _export(splink_model: dict[str, Any], prior: float, n: int, source: str) -> dict[str, Any]:
    """Our model dictionary from a trained Splink model over ``features.COMPARISONS`` (thresholds still
    the defaults)."""
    comparisons = []
    for comp, sc in zip(COMPARISONS, splink_model["comparisons"], strict=True):
        levels: list[dict[str, Any]] = []
        for lv, sl in zip(comp.levels, sc["comparison_levels"], strict=True):
            if lv.null:
                levels.append({"label": lv.label, "m": None, "u": None})
                continue
            # A level never seen among matches (or non-matches) gets a floor rather than log(0); one seen
            # in neither carries no evidence.
            m_raw, u_raw = sl.get("m_probability") or 0.0, sl.get("u_probability") or 0.0
            m, u = (1.0, 1.0) if not m_raw and not u_raw else (max(m_raw, 1e-4), max(u_raw, 1e-6))
            levels.append({"label": lv.label, "m": m, "u": u})
            sl["m_probability"], sl["u_probability"] = m, u  # batch Splink scores with the same numbers
        comparisons.append({"name": comp.name, "role": comp.role, "levels": levels})
    return {
        "model_version": "",
        "normalisation_version": NORMALISATION_VERSION,
        "features_version": FEATURES_VERSION,
        "trained_on": {"records": n, "source": source, "splink": _splink_version()},
        "prior": prior,
        "comparisons": comparisons,
        "thresholds": dict(DEFAULT_THRESHOLDS),
        "term_frequency": dict(TERM_FREQUENCY),
        "splink_settings": splink_model,
    }


def _splink_version() -> str:
    import splink

    return str(splink.__version__)


def calibrate(model: dict[str, Any], records: list[dict[str, Any]], precision: float = 0.999,
              review_recall: float = 0.99) -> dict[str, float]:
    """Pick thresholds from the scores the matcher gives to candidate pairs of a labelled set."""
    from central_hub.registry.matcher import Matcher, MemoryIndex, Model

    probe = dict(model)
    probe["thresholds"] = {**model["thresholds"], "auto_link": 1e9, "review": -1e9}
    probe["calibrated_on"] = {"records": len(records)}
    m = Matcher(MemoryIndex(), Model.from_dict(probe))
    truth = {r["record_id"]: r["true_person_id"] for r in records}
    scored: list[tuple[float, float, bool]] = []  # (match weight, review weight, same person)
    for r in records:
        f = prepare(r)
        for c in m.match_features(f):
            if c.evidence.get("tier") == "exact":
                continue  # the exact tier links regardless of thresholds
            scored.append((c.score, c.review_weight, truth[c.record_id] == r["true_person_id"]))
        m.index.add(f)
    scored.sort(key=lambda x: -x[0])
    total_true = sum(1 for *_, t in scored if t)
    auto = max(scored[0][0] + 1 if scored else 20.0, 0.0)
    tp = fp = 0
    for s, _, t in scored:
        tp += t
        fp += not t
        if tp / (tp + fp) >= precision:
            auto = s
    # review is judged on the review weight (household evidence counted without the gate, see
    # Matcher.score): the lowest one that still keeps ``review_recall`` of the true pairs
    tp = 0
    review = auto
    for _, rw, t in sorted(scored, key=lambda x: -x[1]):
        tp += t
        if total_true and tp / total_true >= review_recall:
            review = rw
            break
    # rounded away from the side each threshold protects: links keep their precision, review its recall
    return {**model["thresholds"], "auto_link": math.ceil(auto * 100) / 100,
            "review": math.floor(min(review, auto) * 100) / 100}


def build(train_count: int = 30000, calib_count: int = 100000, seed: int = 11) -> dict[str, Any]:
    from central_hub.registry.synth import generate

    model = train_splink(generate(train_count, seed=seed), seed=seed)
    model["thresholds"] = calibrate(model, generate(calib_count, seed=seed + 1))
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M")
    model["model_version"] = f"fs-{stamp}"
    model["calibrated_on"] = {"records": calib_count, "seed": seed + 1}
    return model


def write(model: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(model, ensure_ascii=False, indent=1, default=_nan_safe) + "\n", encoding="utf-8")


def _nan_safe(x: Any) -> Any:
    if isinstance(x, float) and math.isnan(x):
        return None
    return str(x)
