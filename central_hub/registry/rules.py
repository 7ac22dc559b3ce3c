"""Double dipping: rules over one identity's enrolments (pure).

The rules table ships as ``data/double_dipping_rules.csv`` (seeded from the ``excludes`` column of the
programme reference, plus "same programme twice"); another table can be loaded with ``load_rules``.
Two kinds:

- ``duplicate``: the same programme more than once for one person (``programmes`` = ``*`` for every
  programme, or a ``;`` list to limit it);
- ``exclusive``: any two of the listed programmes held together.

Only live enrolments count (applied / approved / active); suspended or exited ones do not draw benefits.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from itertools import combinations
from pathlib import Path
from typing import Any

from central_hub.registry.errors import RulesError

LIVE_STATUSES = frozenset({"applied", "approved", "active"})


@dataclass(frozen=True)
class Rule:
    rule: str
    kind: str  # "duplicate" | "exclusive"
    programmes: frozenset[str]  # empty = every programme (duplicate rules only)
    description: str = ""


@dataclass(frozen=True)
class Flag:
    rule: str
    programmes: tuple[str, ...]
    record_ids: tuple[str, ...]  # enrolment ids

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "programmes": list(self.programmes), "record_ids": list(self.record_ids)}


def parse_rules(text: str) -> list[Rule]:
    rules = []
    reader = csv.DictReader(io.StringIO(text))
    for n, row in enumerate(reader, start=2):
        name, kind, progs = (row.get("rule") or "").strip(), (row.get("kind") or "").strip(), row.get("programmes")
        if not name:
            raise RulesError(f"line {n}: rule: a name is required")
        if kind not in ("duplicate", "exclusive"):
            raise RulesError(f"line {n}: kind: must be duplicate or exclusive, got {kind!r}")
        codes = frozenset(p.strip() for p in (progs or "").split(";") if p.strip() and p.strip() != "*")
        if kind == "exclusive" and len(codes) < 2:
            raise RulesError(f"line {n}: programmes: an exclusive rule needs two or more programmes")
        rules.append(Rule(name, kind, codes, (row.get("description") or "").strip()))
    return rules


def load_rules(path: Path | None = None) -> list[Rule]:
    if path is None:
        text = resources.files("central_hub.registry").joinpath("data/double_dipping_rules.csv").read_text("utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    return parse_rules(text)


def rules_from_programmes(programmes_csv: str) -> list[Rule]:
    """Seed rules from a programme reference with an ``excludes`` column (``OAA,...,WA;DA``)."""
    pairs: set[tuple[str, str]] = set()
    for row in csv.DictReader(io.StringIO(programmes_csv)):
        for other in (row.get("excludes") or "").split(";"):
            if other.strip():
                a, b = sorted((row["code"].strip(), other.strip()))
                pairs.add((a, b))
    out = [Rule("same_programme_twice", "duplicate", frozenset(), "one person enrolled twice in the same programme")]
    out += [Rule(f"{a}_excludes_{b}", "exclusive", frozenset({a, b})) for a, b in sorted(pairs)]
    return out


def flags_for(enrolments: Iterable[Mapping[str, Any]], rules: list[Rule] | None = None) -> list[Flag]:
    """Flags for the enrolments of one identity (a cluster). Each enrolment: ``id``, ``programme``,
    ``status`` (missing status counts as live)."""
    rules = load_rules() if rules is None else rules
    by_prog: dict[str, list[str]] = defaultdict(list)
    for e in enrolments:
        status = str(e.get("status") or "active")
        if status in LIVE_STATUSES:
            by_prog[str(e["programme"])].append(str(e["id"]))
    flags: list[Flag] = []
    for rule in rules:
        if rule.kind == "duplicate":
            for prog, ids in sorted(by_prog.items()):
                if len(ids) > 1 and (not rule.programmes or prog in rule.programmes):
                    flags.append(Flag(rule.rule, (prog,), tuple(sorted(ids))))
        else:
            held = sorted(p for p in rule.programmes if p in by_prog)
            for a, b in combinations(held, 2):
                flags.append(Flag(rule.rule, (a, b), tuple(sorted(by_prog[a] + by_prog[b]))))
    return flags


def flags_for_clusters(clusters: Mapping[str, str], enrolments: Iterable[Mapping[str, Any]],
                       rules: list[Rule] | None = None) -> dict[str, list[Flag]]:
    """Group enrolments by the cluster of their ``person_id`` and flag each cluster."""
    rules = load_rules() if rules is None else rules
    groups: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for e in enrolments:
        pid = str(e["person_id"])
        groups[clusters.get(pid, pid)].append(e)
    out = {}
    for cid, es in groups.items():
        f = flags_for(es, rules)
        if f:
            out[cid] = f
    return out
