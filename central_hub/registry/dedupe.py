"""Batch deduplication of a whole registry extract with Splink on DuckDB, reconciled with the
incremental clusters.

Splink does the blocking and the comparison vectors in SQL with the shipped model's parameters; the
person-evidence gate and the household cap are applied to the per-comparison match weights Splink
returns (the same rule as ``Matcher.score``), and clusters are then formed with union-find over the
pairs at or above the auto-link threshold. The result is compared with the clusters the incremental
matcher built (or the ``registry_id`` column of the input, when present): a batch cluster that joins
several incremental clusters is a *merge*, an incremental cluster cut into several batch clusters a
*split*. Nothing is changed in place; the report lists both for review.

On Spark: the same settings run with ``splink.backends.spark.SparkAPI`` instead of ``DuckDBAPI``
(see docs/registry.md).
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from central_hub.registry.errors import InputError
from central_hub.registry.features import COMPARISONS, prepare
from central_hub.registry.matcher import Matcher, MemoryIndex, Model, UnionFind

REQUIRED_COLUMNS = {"record_id"}
NAME_COLUMNS = {"full_name_bn", "full_name_en"}


@dataclass
class DedupeResult:
    clusters: dict[str, str]  # record id -> batch cluster id
    pairs_scored: int
    pairs_linked: int
    seconds: float
    merges: list[dict[str, Any]] = field(default_factory=list)
    splits: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        n_clusters = len(set(self.clusters.values()))
        return {"records": len(self.clusters), "clusters": n_clusters, "pairs_scored": self.pairs_scored,
                "pairs_linked": self.pairs_linked, "seconds": round(self.seconds, 2),
                "merges": len(self.merges), "splits": len(self.splits)}


def check_columns(records: list[dict[str, Any]]) -> None:
    if not records:
        raise InputError("the input has no records")
    cols = set(records[0])
    missing = REQUIRED_COLUMNS - cols
    if missing:
        raise InputError(f"missing column(s): {', '.join(sorted(missing))}")
    if not cols & NAME_COLUMNS:
        raise InputError("the input needs full_name_bn or full_name_en")
    ids = [str(r["record_id"]) for r in records]
    if len(set(ids)) != len(ids):
        raise InputError("record_id values are not unique")


def batch_dedupe(records: list[dict[str, Any]], model: Model | None = None) -> DedupeResult:
    """Cluster ``records`` with Splink on DuckDB using the shipped model."""
    import pandas as pd
    from splink import DuckDBAPI, Linker

    check_columns(records)
    model = model or Model.load()
    t0 = time.perf_counter()
    df = pd.DataFrame([prepare(r).as_row() for r in records])
    db = DuckDBAPI()
    settings = dict(model.raw["splink_settings"])
    settings["retain_matching_columns"] = True  # the gamma_* columns come with the matching columns
    linker = Linker(db.register(df), settings, log_level=logging.WARNING)
    person_cols = [f"mw_{c.name}" for c in COMPARISONS if c.role == "person"]
    house_cols = [f"mw_{c.name}" for c in COMPARISONS if c.role == "household"]
    # the same size-dependent prior as Matcher.prior_weight (the whole file is the registry here)
    prior_w = math.log2(model.prior / (1 - model.prior)) - math.log2(
        max(len(records), model.calibrated_size) / model.calibrated_size)
    # The gate below only lowers Splink's own total, so pairs under the auto-link weight can only link by
    # the exact tier, whose identifier agreement (NID/BRN: +12 bits or more) keeps them far above this cut.
    predictions = linker.inference.predict(threshold_match_weight=model.auto_link - 8)
    pdf = predictions.as_pandas_dataframe()
    uf = UnionFind(str(r["record_id"]) for r in records)
    linked = 0
    if len(pdf):
        person = sum(pdf[c].astype(float) for c in person_cols)
        if "mw_tf_adj_name" in pdf:
            person = person + pdf["mw_tf_adj_name"].astype(float).fillna(0.0).clip(-model.tf_cap, model.tf_cap)
        house = sum(pdf[c].astype(float) for c in house_cols)
        own = (pdf["gamma_name"].isin(_level_values("name", ("exact", "subset", "similar")))
               | pdf["gamma_nid"].isin(_level_values("nid", ("exact", "one_edit")))
               | pdf["gamma_brn"].isin(_level_values("brn", ("exact", "one_edit"))))
        supported = own & (person >= model.person_support)
        house_used = house.clip(upper=model.household_cap).where(supported, house.clip(upper=0.0))
        total = prior_w + person + house_used
        exact = _exact_tier(pdf)
        link = (total >= model.auto_link) | exact
        for a, b in zip(pdf.loc[link, "unique_id_l"], pdf.loc[link, "unique_id_r"], strict=True):
            uf.union(str(a), str(b))
        linked = int(link.sum())
    return DedupeResult(uf.labels(), len(pdf), linked, time.perf_counter() - t0)


def _level_values(name: str, labels: Iterable[str]) -> list[int]:
    """Splink numbers levels from the top: the first non-null level gets the highest value, ELSE is 0."""
    comp = next(c for c in COMPARISONS if c.name == name)
    non_null = [lv.label for lv in comp.levels if not lv.null]
    return [len(non_null) - 1 - non_null.index(lb) for lb in labels]


def _exact_tier(pdf: Any) -> Any:
    """The matcher's exact tier (``Matcher._exact``) on Splink's comparison vectors."""
    g = {c.name: pdf[f"gamma_{c.name}"] for c in COMPARISONS}

    def lv(name: str, *labels: str) -> Any:
        return g[name].isin(_level_values(name, labels))

    no_conflict = ~lv("sex", "else") & ~lv("nid", "else") & ~lv("brn", "else")
    name_any = lv("name", "exact", "subset", "similar", "partial")
    name_strong = lv("name", "exact", "subset", "similar")
    dob_close = lv("dob", "exact", "exact_jan1", "near")
    return no_conflict & (
        (lv("nid", "exact") & (name_any | dob_close))
        | (lv("brn", "exact") & (name_any | dob_close))
        | (lv("account", "exact") & name_strong & dob_close)
    )


def incremental_clusters(records: list[dict[str, Any]], model: Model | None = None) -> dict[str, str]:
    """The clusters the incremental matcher builds when the records arrive in file order."""
    m = Matcher(MemoryIndex(), model)
    for r in records:
        m.ingest(r)
    return m.index.clusters()


def reconcile(batch: dict[str, str], incremental: dict[str, str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Merges (one batch cluster over several incremental ones) and splits (the reverse)."""
    b_groups: dict[str, set[str]] = defaultdict(set)
    i_groups: dict[str, set[str]] = defaultdict(set)
    for rid, c in batch.items():
        b_groups[c].add(rid)
        i_groups[incremental.get(rid, rid)].add(rid)
    merges = []
    for c, members in b_groups.items():
        inc = sorted({incremental.get(r, r) for r in members})
        if len(inc) > 1:
            merges.append({"batch_cluster": c, "incremental_clusters": inc, "record_ids": sorted(members)})
    splits = []
    for c, members in i_groups.items():
        bat = sorted({batch[r] for r in members})
        if len(bat) > 1:
            splits.append({"incremental_cluster": c, "batch_clusters": bat, "record_ids": sorted(members)})
    return merges, splits


def run(records: list[dict[str, Any]], model: Model | None = None) -> DedupeResult:
    """Batch dedupe plus reconciliation with the incremental clusters (``registry_id`` column if given)."""
    model = model or Model.load()
    result = batch_dedupe(records, model)
    if records and all(r.get("registry_id") for r in records):
        incremental = {str(r["record_id"]): str(r["registry_id"]) for r in records}
    else:
        incremental = incremental_clusters(records, model)
    result.merges, result.splits = reconcile(result.clusters, incremental)
    return result
