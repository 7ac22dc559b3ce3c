"""One contract for the hub store, run against SQLite and PostgreSQL: every ``HubStore`` method, the
engine's push / pull / resolve through the store (compared with the in-memory reference store),
rollback on exception and serialised writers."""

from __future__ import annotations

import itertools
import json
import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, select

from central_hub import schema as t
from central_hub.schema import metadata
from central_hub.store import SqlHubStore
from sync_protocol.errors import BatchReplayMismatchError, SequenceGapError, SequenceReuseError
from sync_protocol.hlc import HybridLogicalClock
from sync_protocol.hub import HubEngine
from sync_protocol.memory import MemoryHubStore
from sync_protocol.model import ChangeResult, Conflict, FieldState, LogEntry, RecordState, UniformFields
from sync_protocol.store import NodeRecord, StoredBatch

from .helpers import FakeNode, person


def test_migrations_create_exactly_the_schema_and_are_idempotent(sql_store: SqlHubStore) -> None:
    sql_store.migrate()  # a second run is a no-op
    sql_store.check_schema()
    with sql_store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    # Python-side defaults are not server defaults; anything else would be drift.
    assert [d for d in diff if d[0] != "modify_default"] == []


def test_0005_moves_the_person_view_into_records_and_keeps_older_rows_readable(db_url: str) -> None:
    """A hub database with data at revision 0004, upgraded: the persons' search values land in
    ``records`` (read through the ``person_view`` view), and older states and results still read."""
    from alembic import command

    from central_hub import db

    store = SqlHubStore(db_url)
    try:
        db.upgrade(store.engine, "0004")
        old = _state("p1", "1", person(1), 3)
        with store.engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO records (entity, entity_id, scope, state) VALUES ('person', 'p1', '1', "
                + ("?" if store.dialect == "sqlite" else "%s")
                + ")",
                (json.dumps(old.to_json(), ensure_ascii=False),),
            )
            conn.exec_driver_sql(
                "INSERT INTO person_view (id, scope, household_id, nid, full_name_en, full_name_bn, deleted) "
                "VALUES ('p1', '1', 'h-1', '1000000001', 'Person 1', 'ব্যক্তি 1', false)"
            )
            conn.exec_driver_sql(
                "INSERT INTO change_results (node_id, node_seq, result, digest) "
                """VALUES ('n1', 1, '{"seq":1,"result":"applied","hub_seq":3}', 'aa')"""
            )
        store.migrate()
        store.check_schema()
        assert store.person_ids_by_nid("1000000001", None) == ["p1"]
        with store.engine.connect() as conn:
            row = conn.execute(select(t.records.c.household_id, t.records.c.full_name_bn, t.records.c.deleted)).one()
        assert tuple(row) == ("h-1", "ব্যক্তি 1", False)
        assert store.get_record("person", "p1") == old
        assert store.get_change_results("n1", 1, 1) == {1: ChangeResult(1, "applied", hub_seq=3)}
        assert store.get_change_digests("n1", 1, 1) == {1: "aa"}
        cfg = db._alembic_config()  # and back: the view becomes a table again, with the same row
        with store.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0004")
        assert db.current_revision(store.engine) == "0004"
        with store.engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT id, nid, deleted FROM person_view").all()
        assert [tuple(r) for r in rows] == [("p1", "1000000001", False)]
    finally:
        store.close()


def test_sqlite_commits_are_durable(sqlite_url: str) -> None:
    """WAL with synchronous=FULL: an acknowledged push survives a power cut (NORMAL would not fsync at
    commit, and a node never resends changes the hub acknowledged)."""
    store = SqlHubStore(sqlite_url)
    try:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    finally:
        store.close()


def test_nodes(sql_store: SqlHubStore) -> None:
    assert sql_store.get_node("n1") is None
    sql_store.add_node(NodeRecord("n1", b"k" * 32, frozenset({"1", "2"}), label="Subil"), union_id="1")
    node = sql_store.get_node("n1")
    assert node == NodeRecord("n1", b"k" * 32, frozenset({"1", "2"}), 0, False, "Subil")
    with sql_store.transaction():
        sql_store.set_node_last_seq("n1", 42)
    assert sql_store.get_node("n1").last_seq == 42  # type: ignore[union-attr]
    assert sql_store.set_node_revoked("n1")
    assert sql_store.get_node("n1").revoked  # type: ignore[union-attr]
    assert [i.node.node_id for i in sql_store.list_nodes()] == ["n1"]
    assert sql_store.node_labels(["n1", "nope"]) == {"n1": "Subil"}


def test_batches_and_change_results(sql_store: SqlHubStore) -> None:
    assert sql_store.get_batch("b1") is None
    stored = StoredBatch("b1", "n1", "d" * 64, {"node_id": "n1", "results": [{"seq": 1, "result": "applied"}]})
    results = [
        ChangeResult(1, "applied", hub_seq=1),
        ChangeResult(2, "conflict", hub_seq=None, conflict_ids=("c1",)),
        ChangeResult(3, "rejected", reason="bad", errors={"nid": ["Invalid"]}),
        ChangeResult(4, "merged", hub_seq=2, written=("mobile",)),
    ]
    with sql_store.transaction():
        sql_store.save_batch(stored)
        sql_store.save_change_results("n1", results)
        sql_store.save_change_results("n2", [ChangeResult(2, "applied", hub_seq=3)])
    assert sql_store.get_batch("b1") == stored
    assert sql_store.get_change_results("n1", 2, 3) == {2: results[1], 3: results[2]}
    assert sql_store.get_change_results("n1", 1, 10) == {r.node_seq: r for r in results}
    assert sql_store.get_change_results("n2", 1, 1) == {}


def test_change_digests(sql_store: SqlHubStore) -> None:
    with sql_store.transaction():
        sql_store.save_change_results("n1", [ChangeResult(1, "applied", hub_seq=1)])  # no digest: not compared
        sql_store.save_change_results(
            "n1", [ChangeResult(2, "applied", hub_seq=2), ChangeResult(3, "merged")], {2: "a" * 32, 3: "b" * 32}
        )
        sql_store.save_change_results("n2", [ChangeResult(2, "applied", hub_seq=3)], {2: "c" * 32})
    assert sql_store.get_change_digests("n1", 1, 10) == {2: "a" * 32, 3: "b" * 32}
    assert sql_store.get_change_digests("n1", 3, 3) == {3: "b" * 32}
    assert sql_store.get_change_digests("n2", 1, 5) == {2: "c" * 32}
    assert sql_store.get_change_results("n1", 1, 3)[3] == ChangeResult(3, "merged")


def test_sequence_reuse_is_refused_on_every_store(sql_store: SqlHubStore) -> None:
    """A resend of held seqs with the same changes is answered; a different change under a held seq (a node
    restored from an older backup) refuses the whole batch and changes nothing, on both stores alike."""
    mem = MemoryHubStore()
    a = FakeNode("node-a")
    for store in (mem, sql_store):
        store.add_node(a.record())
    engines = (_engine(sql_store), _engine(mem))
    held = [a.change(f"p{i}", person(i)) for i in range(3)]
    for eng in engines:
        eng.push(a.envelope(held))
    # the answer was lost; the node resends seqs 2-3 with one new change, under a new batch id
    new = a.change("p3", person(3))
    resend = a.envelope([*held[1:], new])
    answers = [eng.push(resend) for eng in engines]
    assert answers[0] == answers[1]
    assert [r.node_seq for r in answers[0].results] == [2, 3, 4]
    # restored from a backup taken after seq 2: its next edit is numbered 3 again
    a.seq = 2
    reused = a.envelope([a.change("p9", person(9))])
    for eng, store in zip(engines, (sql_store, mem), strict=True):
        before = (store.last_hub_seq(), store.get_node("node-a"), store.get_change_results("node-a", 1, 10))
        with pytest.raises(SequenceReuseError) as caught:
            eng.push(reused)
        assert caught.value.seq == 3 and caught.value.hub_last_seq == 4
        assert (store.last_hub_seq(), store.get_node("node-a"), store.get_change_results("node-a", 1, 10)) == before
        assert store.load_records([("person", "p9")]) == {}
    assert sql_store.get_change_digests("node-a", 1, 10) == mem.get_change_digests("node-a", 1, 10)
    assert len(sql_store.get_change_digests("node-a", 1, 10)) == 4


def _state(entity_id: str, scope: str, values: dict, rev: int, entity: str = "person") -> RecordState:
    return RecordState(entity, entity_id, scope, {k: FieldState(v, rev, "n1", {"n1": rev}) for k, v in values.items()})


def test_records_and_person_view(sql_store: SqlHubStore) -> None:
    a = _state("p1", "1", person(1), 1)
    b = _state("p2", "2", person(2), 2)
    h = _state("h1", "1", {"village": "Subil", "ward": "3"}, 3, entity="household")
    with sql_store.transaction():
        sql_store.save_records([a, b, h])
    got = sql_store.load_records([("person", "p1"), ("person", "p2"), ("household", "h1"), ("person", "zz")])
    assert got == {("person", "p1"): a, ("person", "p2"): b, ("household", "h1"): h}
    a2 = _state("p1", "1", {**person(1), "nid": "1999999999"}, 4)
    with sql_store.transaction():
        sql_store.save_records([a2])  # upsert replaces the state
    assert sql_store.get_record("person", "p1") == a2
    assert sql_store.person_ids_by_nid("1999999999", None) == ["p1"]
    assert sql_store.person_ids_by_nid(person(1)["nid"], None) == []
    assert sql_store.person_ids_by_nid("1999999999", frozenset({"2"})) == []


def _raw_state(store: SqlHubStore, entity_id: str) -> object:
    with store.engine.connect() as conn:
        text = conn.execute(select(t.records.c.state).where(t.records.c.entity_id == entity_id)).scalar_one()
    return json.loads(text)


def test_record_states_are_stored_compactly_and_read_back_whole(sql_store: SqlHubStore) -> None:
    mixed = RecordState(
        "person",
        "p1",
        "1",
        {
            "nid": FieldState("1000000001", 4, "n1", {"n1": 4}),
            "sex": FieldState("female", 4, "n1", {"n1": 4, "n2": 4}),  # n2 sent the same value: it has seen it
            "mobile": FieldState("01711111111", 9, "hub", {}),
            "_deleted": FieldState(False, 12, "n2", {"n2": 12, "n1": 3}),
        },
    )
    created = RecordState("person", "p2", "1", UniformFields({"nid": "1000000002", "sex": "male"}, 5, "n1"))
    with sql_store.transaction():
        sql_store.save_records([mixed, created])  # no log entry of p2 in this transaction: values kept inline
    assert sql_store.load_records([("person", "p1"), ("person", "p2")]) == {
        ("person", "p1"): mixed,
        ("person", "p2"): created,
    }
    assert _raw_state(sql_store, "p2") == [[5, "n1", None, {"nid": "1000000002", "sex": "male"}]]
    groups = _raw_state(sql_store, "p1")
    assert isinstance(groups, list) and len(groups) == 4  # (4, n1, seen n1), (4, n1, seen n1+n2), hub, delete

    # A record created by a push is one pointer to the log entry holding its values.
    node = FakeNode("node-a")
    sql_store.add_node(node.record())
    engine = _engine(sql_store)
    engine.push(node.envelope([node.change("p3", person(3))]))
    assert _raw_state(sql_store, "p3") == [[1, "node-a", None]]
    assert sql_store.get_record("person", "p3").values() == person(3)  # type: ignore[union-attr]
    assert sql_store.person_ids_by_nid(person(3)["nid"], None) == ["p3"]
    engine.push(node.envelope([node.change("p3", {"mobile": "01999999999"}, base={"mobile": 1})]))
    after = sql_store.get_record("person", "p3")
    assert after is not None and after.values() == {**person(3), "mobile": "01999999999"}
    assert after.fields["nid"] == FieldState(person(3)["nid"], 1, "node-a", {"node-a": 1})
    assert after.fields["mobile"] == FieldState("01999999999", 2, "node-a", {"node-a": 2})
    # An edited record: the pointer to its first entry, less what was written since, plus a group per edit.
    assert _raw_state(sql_store, "p3") == [[1, "node-a", None], [2, "node-a", None, {"mobile": "01999999999"}]]
    other = FakeNode("node-b")
    sql_store.add_node(other.record())
    engine.push(other.envelope([other.change("p3", {"mobile": "01999999999", "sex": "male"}, base={"sex": 1})]))
    again = sql_store.get_record("person", "p3")
    assert again is not None and again.values() == {**person(3), "mobile": "01999999999", "sex": "male"}
    # node-b sent the value the hub already had: it has now seen revision 2 of mobile
    assert again.fields["mobile"] == FieldState("01999999999", 2, "node-a", {"node-a": 2, "node-b": 2})
    assert again.fields["sex"] == FieldState("male", 3, "node-b", {"node-a": 1, "node-b": 3})
    assert again.fields["nid"] == FieldState(person(3)["nid"], 1, "node-a", {"node-a": 1})
    assert _raw_state(sql_store, "p3") == [
        [1, "node-a", None],
        [2, "node-a", {"node-a": 2, "node-b": 2}, {"mobile": "01999999999"}],
        [3, "node-b", {"node-a": 1, "node-b": 3}, {"sex": "male"}],
    ]


def test_bulk_writes_span_statements_and_the_last_row_of_a_key_wins(sql_store: SqlHubStore) -> None:
    """More rows than one statement may bind (SQLite: 32,766 parameters), and a key given twice."""
    many = [_state(f"h{i:05d}", "1", {"village": f"V{i}"}, i + 1, entity="household") for i in range(4000)]
    first, again = _state("p1", "1", person(1), 1), _state("p1", "1", {**person(1), "nid": "1888888888"}, 2)
    with sql_store.transaction():
        sql_store.save_records([*many, first, again])
    keys = [("household", r.entity_id) for r in many]
    assert sql_store.load_records(keys) == {("household", r.entity_id): r for r in many}
    assert sql_store.get_record("person", "p1") == again
    assert sql_store.person_ids_by_nid("1888888888", None) == ["p1"]


def test_a_rebatched_resend_gets_the_results_kept_with_the_first_batch(sql_store: SqlHubStore) -> None:
    """Results are kept once, in the stored answer of the batch that brought them; a node that lost that
    answer and sends the same changes again under a new batch id (with one more) gets them back."""
    node = FakeNode("node-a")
    sql_store.add_node(node.record())
    engine = _engine(sql_store)
    changes = [node.change(f"p{i}", person(i)) for i in range(3)]
    first = engine.push(node.envelope(changes))
    extra = node.change("p9", {"shoe_size": 41})  # rejected: results of every kind come back
    second = engine.push(node.envelope([*changes, extra]))
    assert second.results[:3] == first.results
    assert second.results[3].outcome == "rejected"
    with sql_store.engine.connect() as conn:
        rows = conn.execute(select(t.change_ranges.c.results, t.change_ranges.c.batch_id)).all()
    assert [(r.results, r.batch_id) for r in rows] == [(None, first.batch_id), (None, second.batch_id)]
    assert sql_store.get_change_results("node-a", 1, 4) == {r.node_seq: r for r in second.results}
    assert sorted(sql_store.get_change_digests("node-a", 1, 4)) == [1, 2, 3, 4]


def test_rows_written_before_0005_are_still_read(sql_store: SqlHubStore) -> None:
    """States as ``{field: {v, r, o, s}}`` and one ``change_results`` row per change, as 0001-0004 wrote."""
    old = _state("p9", "1", person(9), 7)
    with sql_store.transaction():
        conn = sql_store._writer()
        conn.execute(
            insert(t.records).values(
                entity="person", entity_id="p9", scope="1", state=json.dumps(old.to_json(), ensure_ascii=False)
            )
        )
        conn.execute(
            insert(t.change_results).values(
                node_id="n1",
                node_seq=1,
                result=json.dumps({"seq": 1, "result": "applied", "hub_seq": 7}),
                digest="a" * 32,
            )
        )
        sql_store.save_change_results("n1", [ChangeResult(2, "merged", hub_seq=8)], {2: "b" * 32})
    assert sql_store.get_record("person", "p9") == old
    assert sql_store.get_change_results("n1", 1, 5) == {
        1: ChangeResult(1, "applied", hub_seq=7),
        2: ChangeResult(2, "merged", hub_seq=8),
    }
    assert sql_store.get_change_digests("n1", 1, 5) == {1: "a" * 32, 2: "b" * 32}


def test_log(sql_store: SqlHubStore) -> None:
    assert sql_store.last_hub_seq() == 0
    entries = [
        LogEntry(i, "person", f"p{i}", str(i % 3), {"n": i, "bn": "নাম"}, "n1", i, 1000 + i) for i in range(1, 11)
    ]
    entries.append(LogEntry(11, "person", "p1", "1", {"registry_id": "R1"}, "hub", None, 5))
    with sql_store.transaction():
        sql_store.append_log(entries)
    assert sql_store.last_hub_seq() == 11
    assert sql_store.read_log(0, None, 100) == entries
    assert sql_store.read_log(3, None, 2) == entries[3:5]
    assert sql_store.read_log(0, frozenset({"1"}), 100) == [e for e in entries if e.scope == "1"]
    assert (
        sql_store.read_log(4, frozenset({"1", "2"}), 3) == [e for e in entries if e.scope in "12" and e.hub_seq > 4][:3]
    )
    assert sql_store.read_log(0, frozenset(), 10) == []
    assert sql_store.log_entries([2, 11, 99]) == {2: entries[1], 11: entries[10]}


def _conflict(cid: str, scope: str = "1", status: str = "open", entity: str = "person") -> Conflict:
    return Conflict(
        cid,
        entity,
        "p1",
        scope,
        "mobile",
        "017",
        "018",
        "019",
        1,
        2,
        "n2",
        3,
        "op",
        7,
        f"2026-01-0{cid[-1]}T00:00:00Z",
        status,
        "n1",
        None,
        None,
    )


def test_conflicts(sql_store: SqlHubStore) -> None:
    c1, c2, c3 = _conflict("c1"), _conflict("c2", scope="2"), _conflict("c3", entity="household")
    with sql_store.transaction():
        sql_store.add_conflicts([c1, c2, c3])
    assert sql_store.get_conflict("c2") == c2
    assert sql_store.get_conflict("nope") is None
    resolved = Conflict.from_json({**c1.to_json(), "status": "resolved", "resolution": {"choice": "hub"}})
    with sql_store.transaction():
        sql_store.save_conflict(resolved)
    assert sql_store.get_conflict("c1") == resolved
    assert sql_store.list_conflicts("open") == [c2, c3]
    assert sql_store.list_conflicts() == [resolved, c2, c3]
    page = sql_store.conflict_page
    assert page(status="open", unions=None) == [c2, c3]
    assert page(status="open", unions=frozenset({"1"})) == [c3]
    assert page(status=None, unions=None, entity="person") == [resolved, c2]
    assert page(status=None, unions=None, union="2") == [c2]
    assert page(status=None, unions=None, after_id="c1", limit=1) == [c2]
    assert page(status=None, unions=None, created_before="2026-01-02T00:00:00Z") == [resolved]


def test_rollback_on_exception(sql_store: SqlHubStore) -> None:
    sql_store.add_node(NodeRecord("n1", b"k" * 32, frozenset({"1"})))
    with pytest.raises(RuntimeError, match="boom"), sql_store.transaction():
        sql_store.save_records([_state("p1", "1", person(1), 1)])
        sql_store.append_log([LogEntry(1, "person", "p1", "1", {"a": 1}, "n1", 1, 1)])
        sql_store.add_conflicts([_conflict("c1")])
        sql_store.save_batch(StoredBatch("b1", "n1", "d", {}))
        sql_store.save_change_results("n1", [ChangeResult(1, "applied", hub_seq=1)])
        sql_store.set_node_last_seq("n1", 1)
        assert sql_store.last_hub_seq() == 1  # visible inside the transaction
        raise RuntimeError("boom")
    assert sql_store.last_hub_seq() == 0
    assert sql_store.load_records([("person", "p1")]) == {}
    assert sql_store.list_conflicts() == []
    assert sql_store.get_batch("b1") is None
    assert sql_store.get_change_results("n1", 1, 1) == {}
    assert sql_store.get_node("n1").last_seq == 0  # type: ignore[union-attr]
    assert sql_store.person_ids_by_nid(person(1)["nid"], None) == []


def test_write_outside_transaction_is_refused(sql_store: SqlHubStore) -> None:
    with pytest.raises(RuntimeError, match="outside a transaction"):
        sql_store.append_log([LogEntry(1, "person", "p1", "1", {}, "n1", 1, 1)])


def _engine(store: object) -> HubEngine:
    ids = (f"c{i:04d}" for i in itertools.count(1))
    return HubEngine(
        store,
        clock=HybridLogicalClock(lambda: 1),
        new_id=lambda: next(ids),  # type: ignore[arg-type]
        now_iso=lambda: "2026-11-24T00:00:00Z",
    )


def test_engine_through_the_store_matches_the_memory_store(sql_store: SqlHubStore) -> None:
    """The same pushes, pulls and resolution give the same answers on the SQL store as on the reference."""
    mem = MemoryHubStore()
    a, b = FakeNode("node-a"), FakeNode("node-b", union="2")
    b_scopes = frozenset({"1", "2"})
    for store in (mem, sql_store):
        store.add_node(a.record())
        store.add_node(b.record(b_scopes))
    eng_sql, eng_mem = _engine(sql_store), _engine(mem)

    def both(envelope: bytes) -> dict:
        got, want = eng_sql.push(envelope), eng_mem.push(envelope)
        assert got == want
        return got.to_json()

    first = both(a.envelope([a.change(f"p{i}", person(i)) for i in range(5)]))
    assert [r["result"] for r in first["results"]] == ["applied"] * 5
    # node b edits p1 from base 0 concurrently with node a's second edit: conflict on mobile only
    both(a.envelope([a.change("p1", {"mobile": "01811111111"}, base={"mobile": 2})]))
    second = both(
        b.envelope([b.change("p1", {"mobile": "01922222222", "occupation": "farmer"}, scope="1", base={"mobile": 2})])
    )
    result = second["results"][0]
    assert result["result"] == "conflict" and result["written"] == ["occupation"]
    # replay: identical answer, nothing changes
    envelope = b.envelope([b.change("h1", {"village": "Subil"}, entity="household")])
    assert both(envelope) == both(envelope)
    with pytest.raises(BatchReplayMismatchError):
        eng_sql.push(b.envelope([b.change("h2", {"village": "X"}, entity="household")], batch_id=second["batch_id"]))
    b.seq += 3
    with pytest.raises(SequenceGapError) as gap:
        eng_sql.push(b.envelope([b.change("h3", {"village": "Y"}, entity="household")]))
    assert gap.value.resend_from == 3
    conflict_id = result["conflict_ids"][0]
    res_sql = eng_sql.resolve(conflict_id, "value", value="01700000000", note="called", actor="staff1")
    res_mem = eng_mem.resolve(conflict_id, "value", value="01700000000", note="called", actor="staff1")
    assert res_sql[1] == res_mem[1]
    assert res_sql[0].to_json() == res_mem[0].to_json()
    assert sql_store.list_conflicts("open") == []
    assert sql_store.log_entries(range(1, 20)) == mem.log_entries(range(1, 20))
    keys = list(mem.records)
    assert sql_store.load_records(keys) == mem.load_records(keys)
    for node, scopes in ((a, frozenset({"1"})), (b, b_scopes)):
        page1 = eng_sql.pull(node.node_id, None, limit=3)
        assert page1 == eng_mem.pull(node.node_id, None, limit=3)
        assert page1.more
        rest = eng_sql.pull(node.node_id, page1.cursor, limit=5000)
        assert not rest.more
        assert all(e.scope in scopes for e in page1.entries + rest.entries)
    assert sql_store.get_record("person", "p1").fields["mobile"].value == "01700000000"  # type: ignore[union-attr]


def test_writers_are_serialised(sql_store: SqlHubStore) -> None:
    """Concurrent pushes from several nodes get gapless, unique hub_seq values."""
    nodes = [FakeNode(f"node-{i}") for i in range(4)]
    for n in nodes:
        sql_store.add_node(n.record())
    engine = HubEngine(sql_store)
    envelopes = {
        n.node_id: [n.envelope([n.change(f"{n.node_id}-p{k}-{j}", person(j)) for j in range(5)]) for k in range(3)]
        for n in nodes
    }
    errors: list[BaseException] = []

    def run(node_id: str) -> None:
        try:
            for env in envelopes[node_id]:
                engine.push(env)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n.node_id,)) for n in nodes]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    log = sql_store.read_log(0, None, 1000)
    assert [e.hub_seq for e in log] == list(range(1, 61))
    assert len({(e.origin, e.origin_seq) for e in log}) == 60
