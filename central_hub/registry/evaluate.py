"""Pairwise precision / recall / F1 of registry clusters against synthetic ground truth, by slice.

A pair of records is a true pair when both belong to one person. Predicted pairs are the pairs inside a
predicted cluster built from auto-link edges; "auto_link+review" adds the review pairs themselves (each
is decided by a reviewer on its own, so they are not closed transitively): its recall is what a perfect
reviewer reaches, its precision the share of review items that are real duplicates. Slices:

- cross_script: true pairs where one record is written only in Bangla and the other only in English;
- nid_missing: true pairs where at least one record has no NID;
- married_women: true pairs of a married or widowed woman (husband may stand where the father was);
- nicknames: true pairs where at least one record uses the nickname;
- hard_negatives: pairs of *different* persons planted to look alike (twins, a son named after his
  father) plus different persons with the same name key in the same union; reported as the number and
  share of them wrongly put together (lower is better).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from central_hub.registry.features import prepare
from central_hub.registry.matcher import REVIEW, Matcher, MemoryIndex, Model

SLICES = ("cross_script", "nid_missing", "married_women", "nicknames", "name_typos")


@dataclass
class Scores:
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {"precision": round(self.precision, 4), "recall": round(self.recall, 4), "f1": round(self.f1, 4),
                "tp": self.tp, "fp": self.fp, "fn": self.fn}


def _pairs_of(groups: Iterable[list[str]]) -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for g in groups:
        if len(g) > 1:
            out.update((a, b) if a < b else (b, a) for a, b in combinations(sorted(g), 2))
    return out


def cluster_pairs(labels: dict[str, str]) -> set[tuple[str, str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for rid, c in labels.items():
        groups[c].append(rid)
    return _pairs_of(groups.values())


def pair_slices(records: list[dict[str, Any]]) -> tuple[set[tuple[str, str]], dict[str, set[tuple[str, str]]]]:
    """True pairs, and for each slice its subset of true pairs (or, for hard_negatives, the planted
    look-alike pairs of different persons)."""
    by_person: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_person[r["true_person_id"]].append(r)
    true: set[tuple[str, str]] = set()
    sl: dict[str, set[tuple[str, str]]] = {s: set() for s in (*SLICES, "hard_negatives")}
    for recs in by_person.values():
        for a, b in combinations(recs, 2):
            ra, rb = a["record_id"], b["record_id"]
            p = (ra, rb) if ra < rb else (rb, ra)
            true.add(p)
            if {a["tag_script"], b["tag_script"]} == {"bn", "en"}:
                sl["cross_script"].add(p)
            if not a["nid"] or not b["nid"]:
                sl["nid_missing"].add(p)
            if _truthy(a["tag_married_woman"]):
                sl["married_women"].add(p)
            if _truthy(a["tag_nickname"]) or _truthy(b["tag_nickname"]):
                sl["nicknames"].add(p)
            if _truthy(a.get("tag_name_typo")) or _truthy(b.get("tag_name_typo")):
                sl["name_typos"].add(p)
    look_alike: dict[tuple[str, str], list[str]] = defaultdict(list)
    for r in records:
        if r["tag_twin_group"]:
            look_alike[("twin", r["tag_twin_group"])].append(r["record_id"])
        if r["tag_namesake_group"]:
            look_alike[("namesake", r["tag_namesake_group"])].append(r["record_id"])
        f = prepare(r)
        if f.name_key:
            look_alike[("union_name", f"{r['union_id']}|{f.name_key}")].append(r["record_id"])
    hn = _pairs_of(look_alike.values())
    sl["hard_negatives"] = {p for p in hn if p not in true}
    return true, sl


def _truthy(v: Any) -> bool:
    return v is True or str(v).lower() in ("true", "1")


def run_incremental(records: list[dict[str, Any]], model: Model | None = None) -> tuple[Matcher, float]:
    m = Matcher(MemoryIndex(), model)
    t0 = time.perf_counter()
    for r in records:
        m.ingest(r)
    return m, time.perf_counter() - t0


def review_pairs(m: Matcher) -> set[tuple[str, str]]:
    """Pairs put in front of a reviewer (review edges, not closed transitively: each is decided alone)."""
    return {(e.a, e.b) if e.a < e.b else (e.b, e.a) for e in m.index.edges() if e.band == REVIEW}


def evaluate(records: list[dict[str, Any]], model: Model | None = None) -> dict[str, Any]:
    """Ingest ``records`` one by one into a fresh index and score the clusters against the truth."""
    m, secs = run_incremental(records, model)
    true, sl = pair_slices(records)
    out: dict[str, Any] = {"records": len(records), "persons": len({r["true_person_id"] for r in records}),
                           "true_pairs": len(true), "ingest_seconds": round(secs, 2),
                           "ingest_records_per_second": round(len(records) / secs, 1) if secs else None,
                           "model_version": m.model.version}
    auto_pairs = cluster_pairs(m.index.clusters())
    for mode, pred in (("auto_link", auto_pairs), ("auto_link+review", auto_pairs | review_pairs(m))):
        res: dict[str, Any] = {"overall": score_pairs(pred, true).as_dict()}
        for s in SLICES:
            sub = sl[s]
            found = len(sub & pred)
            res[s] = {"true_pairs": len(sub), "recall": round(found / len(sub), 4) if sub else None}
        hn = sl["hard_negatives"]
        wrong = len(hn & pred)
        res["hard_negatives"] = {"pairs": len(hn), "wrongly_linked": wrong,
                                 "share_wrongly_linked": round(wrong / len(hn), 4) if hn else None}
        out[mode] = res
    return out


def score_pairs(pred: set[tuple[str, str]], true: set[tuple[str, str]]) -> Scores:
    tp = len(pred & true)
    return Scores(tp, len(pred) - tp, len(true) - tp)


def format_report(res: dict[str, Any]) -> str:
    lines = [f"records {res['records']}  persons {res['persons']}  true pairs {res['true_pairs']}  "
             f"model {res['model_version']}  ingest {res['ingest_records_per_second']} records/s"]
    for mode in ("auto_link", "auto_link+review"):
        r = res[mode]
        o = r["overall"]
        lines.append(f"{mode:>17}: precision {o['precision']:.4f}  recall {o['recall']:.4f}  F1 {o['f1']:.4f}  "
                     f"(tp {o['tp']}, fp {o['fp']}, fn {o['fn']})")
        for s in SLICES:
            lines.append(f"{'':>19}{s:<15} recall {r[s]['recall']}  ({r[s]['true_pairs']} true pairs)")
        h = r["hard_negatives"]
        lines.append(f"{'':>19}hard_negatives wrongly linked {h['wrongly_linked']} of {h['pairs']} "
                     f"({h['share_wrongly_linked']})")
    return "\n".join(lines)
