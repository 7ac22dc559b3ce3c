"""Incremental identity matching: an exact tier, a Fellegi-Sunter tier, and an identity index.

``Matcher.match(record)`` scores one incoming record against the registry (what a field check or the
hub's ingest does); ``Matcher.ingest(record)`` also adds it and records link edges. Edges are never
deleted: unlinking marks an edge removed, and clusters (registry identities) are recomputed from the
active edges with union-find, so an unmerge splits a cluster exactly as it was built.

The index is behind the ``IdentityIndex`` protocol so the hub's SQL store can implement the same thing;
``MemoryIndex`` is the reference implementation used by the tests, the evaluation and the benchmark.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from central_hub.registry.errors import ModelError
from central_hub.registry.features import COMPARISONS, FEATURES_VERSION, Features, gammas, prepare

AUTO, REVIEW, NEW = "auto_link", "review", "new_identity"


# --- model ---------------------------------------------------------------------------------------------


@dataclass
class Model:
    """Fellegi-Sunter parameters exported from the trained Splink model, plus thresholds (match weights,
    in bits) and term-frequency settings."""

    version: str
    prior: float
    weights: list[list[float]]  # per comparison, per level (0 for null levels)
    u_exact_name: float
    auto_link: float
    review: float
    person_support: float
    household_cap: float
    calibrated_size: int
    tf_min_registry: int
    tf_min_district: int
    tf_cap: float
    raw: dict[str, Any]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Model:
        try:
            if d.get("features_version") != FEATURES_VERSION:
                raise ModelError(f"model built for features {d.get('features_version')!r}, "
                                 f"code computes {FEATURES_VERSION!r}: retrain with `central-hub registry-train`")
            by_name = {c["name"]: c for c in d["comparisons"]}
            weights: list[list[float]] = []
            u_exact_name = 0.0
            for comp in COMPARISONS:
                spec = by_name[comp.name]
                labels = [lv["label"] for lv in spec["levels"]]
                if labels != [lv.label for lv in comp.levels]:
                    raise ModelError(f"comparison {comp.name}: model levels {labels} differ from the code's")
                row = []
                for lv, ml in zip(comp.levels, spec["levels"], strict=True):
                    row.append(0.0 if lv.null else math.log2(float(ml["m"]) / float(ml["u"])))
                    if comp.name == "name" and lv.label == "exact":
                        u_exact_name = float(ml["u"])
                weights.append(row)
            th = d["thresholds"]
            tf = d.get("term_frequency", {})
            return cls(
                version=str(d["model_version"]), prior=float(d["prior"]), weights=weights,
                u_exact_name=u_exact_name, auto_link=float(th["auto_link"]), review=float(th["review"]),
                person_support=float(th["person_support"]), household_cap=float(th.get("household_cap", 10.0)),
                calibrated_size=int(d.get("calibrated_on", {}).get("records", 100_000)),
                tf_min_registry=int(tf.get("min_registry", 5000)), tf_min_district=int(tf.get("min_district", 500)),
                tf_cap=float(tf.get("cap_bits", 6.0)), raw=dict(d),
            )
        except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
            raise ModelError(f"malformed registry model: {exc}") from exc

    @classmethod
    def load(cls, path: Path | None = None) -> Model:
        if path is None:
            text = resources.files("central_hub.registry").joinpath("model.json").read_text(encoding="utf-8")
        else:
            text = Path(path).read_text(encoding="utf-8")
        return cls.from_dict(json.loads(text))


# --- index ---------------------------------------------------------------------------------------------


@dataclass
class Edge:
    a: str
    b: str
    score: float
    band: str
    model_version: str
    evidence: dict[str, Any]
    seq: int
    active: bool = True
    removed_reason: str | None = None
    confirmed_by: str | None = None


class IdentityIndex(Protocol):
    """What the matcher needs from a registry store."""

    def add(self, f: Features) -> None: ...

    def get(self, record_id: str) -> Features | None: ...

    def candidates(self, keys: Iterable[str], limit_per_key: int) -> Iterator[Features]: ...

    def name_frequency(self, name_key: str, district_id: str | None) -> tuple[float, float | None]: ...

    def district_size(self, district_id: str | None) -> int: ...

    def size(self) -> int: ...

    def add_edge(self, edge: Edge) -> None: ...

    def remove_edge(self, a: str, b: str, reason: str) -> bool: ...

    def edges(self, active_only: bool = True) -> list[Edge]: ...

    def clusters(self) -> dict[str, str]: ...


def blocking_keys(f: Features, query: bool = False) -> list[str]:
    """Keys under which a record is filed (``query=False``) or looked up (``query=True``).

    Name + birth year is kept per district so that a common name stays a small block at national scale
    (moves across districts are still met by NID, BRN, phone or account). A date heaped on 1 January is an
    estimate that drifts by years: such a record is filed under, or looks up, two years either side, and
    its date is not used as an exact key (half a birth cohort shares it).
    """
    keys: list[str] = []
    if f.nid13:
        keys.append(f"nid13:{f.nid13}")
    if f.nid10:
        keys.append(f"nid10:{f.nid10}")
    if f.brn:
        keys.append(f"brn:{f.brn}")
    if f.mobile:
        keys.append(f"mob:{f.mobile}")
    if f.account and f.account != f.mobile:
        keys.append(f"acct:{f.account}")
    if f.name_key and f.dob_year:
        years = range(f.dob_year - 2, f.dob_year + 3) if f.dob_heaped else (f.dob_year,)
        keys.extend(f"ny:{f.name_key}:{y}:{f.district_id}" for y in years)
    if f.dob and not f.dob_heaped:
        keys.extend(f"td:{t}:{f.dob}" for t in f.name_keys)
        if f.district_id:
            keys.append(f"dd:{f.dob}:{f.district_id}")
    return keys


class MemoryIndex:
    """In-memory ``IdentityIndex`` (reference implementation)."""

    def __init__(self) -> None:
        self._records: dict[str, Features] = {}
        self._blocks: dict[str, list[str]] = defaultdict(list)
        self._names: Counter[str] = Counter()
        self._names_by_district: dict[str, Counter[str]] = defaultdict(Counter)
        self._district_size: Counter[str] = Counter()
        self._edges: dict[tuple[str, str], list[Edge]] = defaultdict(list)
        self._seq = 0

    def add(self, f: Features) -> None:
        if f.record_id in self._records:
            return
        self._records[f.record_id] = f
        for k in blocking_keys(f):
            self._blocks[k].append(f.record_id)
        if f.name_key:
            self._names[f.name_key] += 1
            if f.district_id:
                self._names_by_district[f.district_id][f.name_key] += 1
        if f.district_id:
            self._district_size[f.district_id] += 1

    def get(self, record_id: str) -> Features | None:
        return self._records.get(record_id)

    def candidates(self, keys: Iterable[str], limit_per_key: int) -> Iterator[Features]:
        seen: set[str] = set()
        for k in keys:
            ids = self._blocks.get(k)
            if not ids or len(ids) > limit_per_key:
                continue  # an oversized block carries no identifying information; other keys cover it
            for rid in ids:
                if rid not in seen:
                    seen.add(rid)
                    yield self._records[rid]

    def name_frequency(self, name_key: str, district_id: str | None) -> tuple[float, float | None]:
        n = len(self._records)
        nat = self._names.get(name_key, 0) / n if n else 0.0
        if district_id and self._district_size[district_id]:
            return nat, self._names_by_district[district_id].get(name_key, 0) / self._district_size[district_id]
        return nat, None

    def district_size(self, district_id: str | None) -> int:
        return self._district_size[district_id] if district_id else 0

    def size(self) -> int:
        return len(self._records)

    def add_edge(self, edge: Edge) -> None:
        self._seq += 1
        edge.seq = self._seq
        self._edges[_pair(edge.a, edge.b)].append(edge)

    def remove_edge(self, a: str, b: str, reason: str) -> bool:
        changed = False
        for e in self._edges.get(_pair(a, b), []):
            if e.active:
                e.active = False
                e.removed_reason = reason
                changed = True
        return changed

    def edges(self, active_only: bool = True) -> list[Edge]:
        return [e for es in self._edges.values() for e in es if e.active or not active_only]

    def clusters(self) -> dict[str, str]:
        """record id -> cluster id (the smallest record id of the cluster), from active linking edges."""
        uf = UnionFind(self._records)
        for e in self.edges():
            if e.band == AUTO or e.confirmed_by:
                uf.union(e.a, e.b)
        return uf.labels()


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


class UnionFind:
    def __init__(self, items: Iterable[str] = ()) -> None:
        self.parent: dict[str, str] = {i: i for i in items}

    def find(self, x: str) -> str:
        p = self.parent.setdefault(x, x)
        while p != self.parent[p]:
            self.parent[p] = self.parent[self.parent[p]]
            p = self.parent[p]
        self.parent[x] = p
        return p

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            # keep the smaller id as root so cluster ids are stable and deterministic
            if rb < ra:
                ra, rb = rb, ra
            self.parent[rb] = ra

    def labels(self) -> dict[str, str]:
        roots: dict[str, str] = {}
        out = {}
        for x in self.parent:
            r = self.find(x)
            roots[r] = min(roots.get(r, x), x)
        for x in self.parent:
            out[x] = roots[self.find(x)]
        return out


# --- matcher -------------------------------------------------------------------------------------------


@dataclass
class Candidate:
    record_id: str
    score: float  # match weight in bits (prior included)
    band: str
    evidence: dict[str, Any] = field(default_factory=dict)
    review_weight: float = 0.0  # what the review band is cut on (unrounded; the evidence holds it rounded)

    @property
    def probability(self) -> float:
        return 1.0 / (1.0 + 2.0 ** (-self.score))


class Matcher:
    """Scores records against an ``IdentityIndex`` with a trained ``Model``."""

    def __init__(self, index: IdentityIndex | None = None, model: Model | None = None,
                 max_block: int = 400) -> None:
        self.index: IdentityIndex = index if index is not None else MemoryIndex()
        self.model = model if model is not None else Model.load()
        self.max_block = max_block
        self._prior_w = math.log2(self.model.prior / (1 - self.model.prior))
        self._person = [i for i, c in enumerate(COMPARISONS) if c.role == "person"]
        self._house = [i for i, c in enumerate(COMPARISONS) if c.role == "household"]

    # exact tier: identifiers that name one person, each backed by a second, person-specific agreement and
    # contradicted by no other identifier
    def _exact(self, g: list[int]) -> str | None:
        name_strong = g[0] in (1, 2, 3)  # exact / subset / similar
        name_any = g[0] in (1, 2, 3, 4)
        dob_close = g[1] in (1, 2, 3)  # exact / exact on 1 January / near
        no_conflict = g[4] != 2 and g[2] != 3 and g[3] != 3  # sex, NID, BRN do not disagree
        if not no_conflict:
            return None
        if g[2] == 1 and (name_any or dob_close):
            return "nid"
        if g[3] == 1 and (name_any or dob_close):
            return "brn"
        if g[9] == 1 and name_strong and dob_close:
            return "account+name"
        return None

    def _person_supported(self, g: list[int], person: float) -> bool:
        """Own-name agreement or an own identifier must be there; date of birth alone is shared by twins."""
        own = g[0] in (1, 2, 3) or g[2] in (1, 2) or g[3] in (1, 2)
        return own and person >= self.model.person_support

    def score(self, a: Features, b: Features, keep_new: bool = True, *, prior: float | None = None,
              tf_exact: float | None = None) -> Candidate | None:
        """Score a pair. With ``keep_new=False`` a pair in the new-identity band returns None (cheaper).
        ``prior`` and ``tf_exact`` (``prior_weight()`` and ``a``'s term-frequency adjustment) depend only
        on ``a`` and the registry: ``match_features`` works them out once per record, not once per pair."""
        g = gammas(a, b)
        w = self.model.weights
        person = 0.0
        for i in self._person:
            person += w[i][g[i]]
        tf_adj = 0.0
        if g[0] == 1 and a.name_key:
            tf_adj = self._tf_adjustment(a.name_key, a.district_id) if tf_exact is None else tf_exact
            person += tf_adj
        house = 0.0
        for i in self._house:
            house += w[i][g[i]]
        # Household evidence may only add to what person evidence already supports, and only so much:
        # siblings and twins share all of it.
        supported = self._person_supported(g, person)
        house_capped = min(house, self.model.household_cap)
        house_used = house_capped if supported else min(house, 0.0)
        if prior is None:
            prior = self.prior_weight()
        total = prior + person + house_used
        # The gate above decides what may link on its own. Whether a pair is worth a reviewer's time is
        # judged on all the evidence: the same parents, phone and union under another given name is a
        # nickname as often as a twin, and only a person can tell them apart.
        review_w = prior + person + house_capped
        rule = self._exact(g)
        if rule:
            band = AUTO
            total = max(total, self.model.auto_link)
        else:
            band = AUTO if total >= self.model.auto_link else REVIEW if review_w >= self.model.review else NEW
            if band == NEW and not keep_new:
                return None
        evidence: dict[str, Any] = {c.name: c.levels[g[i]].label for i, c in enumerate(COMPARISONS)}
        evidence.update(person_weight=round(person, 2), household_weight=round(house, 2),
                        household_used=round(house_used, 2), tf_adjustment=round(tf_adj, 2),
                        review_weight=round(review_w, 2), tier="exact" if rule else "probabilistic")
        if rule:
            evidence["rule"] = rule
        return Candidate(b.record_id, total, band, evidence, review_w)

    def prior_weight(self, registry_size: int | None = None) -> float:
        """Log2 prior odds that a record matches one given candidate. The chance that an incoming record
        is a given one of N falls as 1/N, so beyond the registry size the thresholds were calibrated at,
        the prior drops by log2(N / N_calibrated): the same evidence is worth less in a bigger registry."""
        n = self.index.size() if registry_size is None else registry_size
        return self._prior_w - math.log2(max(n, self.model.calibrated_size) / self.model.calibrated_size)

    def _tf_adjustment(self, name_key: str, district_id: str | None) -> float:
        """Splink-style term-frequency adjustment of exact name agreement: log2(u_exact / tf), using the
        larger of the national and the district frequency (a name common locally is weak locally)."""
        m = self.model
        if self.index.size() < m.tf_min_registry:
            return 0.0
        nat, dist = self.index.name_frequency(name_key, district_id)
        tf = nat
        if dist is not None and self.index.district_size(district_id) >= m.tf_min_district:
            tf = max(tf, dist)
        tf = max(tf, 1.0 / max(self.index.size(), 1))
        adj = math.log2(m.u_exact_name / tf)
        return max(-m.tf_cap, min(m.tf_cap, adj))

    def match_features(self, f: Features) -> list[Candidate]:
        out = []
        prior = self.prior_weight()
        tf_exact: float | None = None
        for other in self.index.candidates(blocking_keys(f, query=True), self.max_block):
            if other.record_id == f.record_id:
                continue
            if tf_exact is None and f.name_key:
                tf_exact = self._tf_adjustment(f.name_key, f.district_id)
            c = self.score(f, other, keep_new=False, prior=prior, tf_exact=tf_exact)
            if c is not None:
                out.append(c)
        out.sort(key=lambda c: (-c.score, c.record_id))
        return out

    def match(self, record: Mapping[str, Any]) -> list[Candidate]:
        """Candidates for one record (auto-link and review bands), best first. Does not change the index."""
        return self.match_features(prepare(record))

    def ingest(self, record: Mapping[str, Any] | Features) -> list[Candidate]:
        """Match, add the record, and record an edge for every auto-link and review candidate."""
        f = record if isinstance(record, Features) else prepare(record)
        cands = self.match_features(f)
        self.index.add(f)
        for c in cands:
            self.index.add_edge(Edge(f.record_id, c.record_id, round(c.score, 3), c.band, self.model.version,
                                     c.evidence, 0))
        return cands

    def confirm(self, a: str, b: str, reviewer: str) -> bool:
        """A reviewer accepts a review edge: it now links the two records."""
        done = False
        for e in self.index.edges():
            if {e.a, e.b} == {a, b}:
                e.confirmed_by = reviewer
                done = True
        return done

    def unlink(self, a: str, b: str, reason: str) -> bool:
        """Remove the link between two records (kept in history); clusters split accordingly."""
        return self.index.remove_edge(a, b, reason)
