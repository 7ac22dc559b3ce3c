"""Every business write and its outbox change commit together or not at all."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from field_node.node import Node
from field_node.services import Registry

from .conftest import OPERATOR, PASSWORD, member


class Crash(Exception):
    pass


def _invariants(node: Node) -> dict[str, int]:
    """Rows, outbox and search index agree with each other."""
    conn = node.require()[0].conn
    counts: dict[str, int] = {}
    for entity in ("household", "person", "enrolment", "grievance", "grievance_event"):
        rows = {r[0] for r in conn.execute(f"SELECT id FROM {entity}")}
        changed = {r[0] for r in conn.execute("SELECT DISTINCT entity_id FROM outbox WHERE entity = ?", (entity,))}
        assert rows == changed, entity
        metas = {r[0] for r in conn.execute("SELECT DISTINCT entity_id FROM field_meta WHERE entity = ?", (entity,))}
        assert metas == rows, entity
        counts[entity] = len(rows)
    (fts,) = conn.execute("SELECT count(*) FROM person_fts").fetchone()
    assert fts == counts["person"]
    seqs = [r[0] for r in conn.execute("SELECT node_seq FROM outbox ORDER BY node_seq")]
    assert seqs == list(range(1, len(seqs) + 1))  # gapless: the hub refuses gaps
    # each pending counter equals the number of outbox changes touching that field
    touched: dict[tuple[str, str, str], int] = {}
    for entity, eid, fields in conn.execute("SELECT entity, entity_id, fields FROM outbox"):
        for f in json.loads(fields):
            touched[(entity, eid, f)] = touched.get((entity, eid, f), 0) + 1
    pending = {(e, i, f): p for e, i, f, p in conn.execute("SELECT entity, entity_id, field, pending FROM field_meta")}
    assert pending == touched
    return counts


@pytest.mark.parametrize("where", ["after_row", "after_outbox"])
def test_crash_between_statements_leaves_neither(node: Node, registry: Registry, monkeypatch: Any, where: str) -> None:
    registry.create_household({"village": "A"}, [member()], actor=OPERATOR)
    before = _invariants(node)
    _, store, _ = node.require()
    if where == "after_row":

        def boom(change: Any) -> None:
            raise Crash()

        monkeypatch.setattr(store, "append_outbox", boom)
    else:
        original = store.append_outbox

        def late_boom(change: Any) -> None:
            original(change)
            if change.entity == "person":
                raise Crash()

        monkeypatch.setattr(store, "append_outbox", late_boom)
    with pytest.raises(Crash):
        registry.create_household(
            {"village": "B"},
            [member(full_name_en="Other Person", full_name_bn="অন্য", nid="1234567890", date_of_birth="1970-01-01")],
            actor=OPERATOR,
        )
    monkeypatch.undo()
    assert _invariants(node) == before
    assert registry.search_persons("Other") == []
    # the node keeps working after the failed transaction
    registry.create_household(
        {"village": "C"},
        [member(full_name_en="Third Person", full_name_bn="তৃতীয়", date_of_birth="1971-01-01")],
        actor=OPERATOR,
    )
    assert _invariants(node)["person"] == before["person"] + 1


WRITER = r"""
import sys, itertools
from field_node.node import Node
from field_node.services import Registry
node = Node(sys.argv[1]); node.login(sys.argv[2], sys.argv[3]); reg = Registry(node)
for i in itertools.count():
    hh = reg.create_household({"village": f"V{i}"}, [
        {"full_name_en": f"Person {i} A", "sex": "female", "date_of_birth": "1990-01-01"},
        {"full_name_en": f"Person {i} B", "sex": "male", "date_of_birth": "1991-01-01"}],
        actor="w", confirm_duplicates=True)
    pid = hh["members"][0]["id"]
    reg.update_person(pid, {"mobile": "017" + str(10000000 + i)}, actor="w")
    reg.create_enrolment({"person_id": pid, "programme": "OAA"}, actor="w")
    print(i, flush=True)
"""


def test_kill_minus_9_at_random_points_never_splits_a_write(node_dir: Path) -> None:
    rng = random.Random(20261124)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    total = 0
    for _round in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(node_dir), OPERATOR, PASSWORD], stdout=subprocess.PIPE, env=env
        )
        assert proc.stdout is not None
        first = proc.stdout.readline()  # it is writing
        assert first.strip(), "writer did not start"
        time.sleep(rng.uniform(0.05, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        node = Node(node_dir)
        node.login(OPERATOR, PASSWORD)
        counts = _invariants(node)
        node.close()
        assert counts["person"] > total  # every round got some writes in
        total = counts["person"]
