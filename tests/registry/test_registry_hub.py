"""Registry merging wired into the hub: the SQL identity index against the in-memory reference (SQLite and
PostgreSQL), the log scan that matches at ingest and publishes registry ids and double-dipping flags as
hub writes, review decisions (audited, published, never destructive)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from central_hub.registry.features import prepare
from central_hub.registry.hub_schema import registry_decisions, registry_edges
from central_hub.registry.index_cache import CachedSqlIndex
from central_hub.registry.matcher import AUTO, Edge, Matcher, MemoryIndex, Model
from central_hub.registry.service import DecisionError, RegistryService
from central_hub.registry.sql_index import SqlIndex
from central_hub.registry.synth import generate
from central_hub.store import SqlHubStore
from sync_protocol.hub import HubEngine


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def hub_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlHubStore]:
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else f"sqlite:///{tmp_path / 'hub.db'}"
    store = SqlHubStore(str(url))
    store.migrate()
    yield store
    store.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return str(request.getfixturevalue("pg_url")) if request.param == "postgres" else f"sqlite:///{tmp_path / 'hub.db'}"


@pytest.fixture(scope="module")
def model() -> Model:
    return Model.load()


def test_sql_index_behaves_like_the_memory_index(hub_db: SqlHubStore, model: Model) -> None:
    """Same records in the same order: same candidates, scores, bands, edges and clusters; unlink splits
    the same way and keeps the edge as history."""
    records = generate(300, seed=21)
    mem, sql = Matcher(MemoryIndex(), model), Matcher(SqlIndex(hub_db), model)
    with hub_db.transaction():
        for r in records:
            got_m = [(c.record_id, c.band, round(c.score, 6)) for c in mem.ingest(r)]
            got_s = [(c.record_id, c.band, round(c.score, 6)) for c in sql.ingest(r)]
            assert got_s == got_m, r["record_id"]
    assert sql.index.size() == mem.index.size() == 300
    clusters = mem.index.clusters()
    assert sql.index.clusters() == clusters
    assert len(set(clusters.values())) < 300  # the data set has repeat registrations that linked
    f = mem.index.get(records[0]["record_id"])
    assert f is not None and sql.index.get(f.record_id) == f
    assert sql.index.name_frequency(f.name_key or "", f.district_id) == mem.index.name_frequency(
        f.name_key or "", f.district_id
    )
    assert sql.index.district_size(f.district_id) == mem.index.district_size(f.district_id)
    edges_m = sorted((e.a, e.b, e.band, e.score) for e in mem.index.edges())
    assert sorted((e.a, e.b, e.band, e.score) for e in sql.index.edges()) == edges_m

    linked = next(e for e in mem.index.edges() if e.band == AUTO)
    with hub_db.transaction():
        assert sql.unlink(linked.a, linked.b, "test") is True
    assert mem.unlink(linked.a, linked.b, "test") is True
    assert sql.index.clusters() == mem.index.clusters()
    removed = [e for e in sql.index.edges(active_only=False) if not e.active]
    assert [(e.a, e.b, e.removed_reason) for e in removed] == [(linked.a, linked.b, "test")]
    assert isinstance(sql.index, SqlIndex)
    for rid in (linked.a, linked.b):
        expect = {r for r, c in mem.index.clusters().items() if c == mem.index.clusters()[rid]}
        assert sql.index.component(rid) == expect


def test_the_job_index_behaves_like_the_memory_index_and_writes_what_sql_index_writes(
    hub_db: SqlHubStore, model: Model
) -> None:
    """The registry job's in-memory copy (``CachedSqlIndex``): the same candidates, scores and bands as the
    reference while records are added in chunks; the tables it flushes read back, through a plain
    ``SqlIndex``, as the same index (records, frequencies, edges, clusters)."""
    records = generate(300, seed=21)
    mem, job = Matcher(MemoryIndex(), model), Matcher(CachedSqlIndex(hub_db), model)
    for start in range(0, len(records), 70):  # chunks, one writer transaction each, as the job runs
        with hub_db.transaction():
            for r in records[start : start + 70]:
                got_m = [(c.record_id, c.band, round(c.score, 6)) for c in mem.ingest(r)]
                got_j = [(c.record_id, c.band, round(c.score, 6)) for c in job.ingest(r)]
                assert got_j == got_m, r["record_id"]
            assert job.index.size() == mem.index.size()
            job.index.flush()  # type: ignore[attr-defined]
    sql = SqlIndex(hub_db)
    assert sql.size() == 300 and sql.clusters() == mem.index.clusters()
    f = mem.index.get(records[5]["record_id"])
    assert f is not None and sql.get(f.record_id) == f
    assert sql.name_frequency(f.name_key or "", f.district_id) == mem.index.name_frequency(
        f.name_key or "", f.district_id
    )
    assert sorted((e.a, e.b, e.band, e.score) for e in sql.edges()) == sorted(
        (e.a, e.b, e.band, e.score) for e in mem.index.edges()
    )
    assert job.index.loads == 1  # type: ignore[attr-defined]  # loaded once, then kept in step


def test_the_job_index_reloads_after_a_rollback_or_another_writer(hub_db: SqlHubStore, model: Model) -> None:
    records = generate(40, seed=5)
    job = CachedSqlIndex(hub_db)
    matcher = Matcher(job, model)
    with hub_db.transaction():
        for r in records[:20]:
            matcher.ingest(r)
        job.flush()
    with pytest.raises(RuntimeError), hub_db.transaction():
        for r in records[20:30]:
            matcher.ingest(r)
        assert job.size() == 30
        raise RuntimeError("the chunk failed")
    with hub_db.transaction():
        assert job.size() == 20  # the copy took the rolled-back records; it was dropped and loaded again
    assert job.loads == 2
    other = CachedSqlIndex(hub_db)  # another hub process's job
    with hub_db.transaction():
        Matcher(other, model).ingest(records[35])
        other.flush()
    with hub_db.transaction():
        assert job.size() == 21 and job.get(records[35]["record_id"]) is not None
    assert job.loads == 3


def test_a_large_copy_is_kept_out_of_the_garbage_collectors_passes(
    hub_db: SqlHubStore, model: Model, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc

    from central_hub.registry import index_cache

    records = generate(30, seed=6)
    with hub_db.transaction():
        loader = Matcher(CachedSqlIndex(hub_db), model)
        for r in records[:20]:
            loader.ingest(r)
        loader.index.flush()  # type: ignore[attr-defined]
    monkeypatch.setattr(index_cache, "FREEZE_MIN", 20)  # a "large" copy, at test size
    gc.unfreeze()
    try:
        job = CachedSqlIndex(hub_db)
        with hub_db.transaction():
            assert job.size() == 20
        assert gc.get_freeze_count() > 0
        copy = job._copy
        assert copy is not None
        walked = {id(o) for o in gc.get_objects()}  # what the collector's passes go over
        assert id(copy.records) not in walked and id(copy.blocks) not in walked
        with hub_db.transaction():  # matching and indexing go on as before
            assert Matcher(job, model).ingest(records[20]) is not None
            job.flush()
            assert job.size() == 21
        # a registry that grows is frozen again each time it has grown by a tenth
        gc.unfreeze()
        job.keep_out_of_gc()
        assert gc.get_freeze_count() == 0  # 21 < 1.1 x 20
        with hub_db.transaction():
            for r in records[21:30]:
                Matcher(job, model).ingest(r)
            job.flush()
        job.keep_out_of_gc()
        assert gc.get_freeze_count() > 0 and id(copy.records) not in {id(o) for o in gc.get_objects()}
        small = CachedSqlIndex(hub_db)
        monkeypatch.setattr(index_cache, "FREEZE_MIN", 50_000)
        gc.unfreeze()
        with hub_db.transaction():
            assert small.size() == 30
        small.keep_out_of_gc()
        assert gc.get_freeze_count() == 0  # a small copy is left to the collector
        assert small._copy is not None and id(small._copy.records) in {id(o) for o in gc.get_objects()}
    finally:
        gc.unfreeze()


def test_the_job_freezes_its_growing_copy_after_a_chunk(
    hub_db: SqlHubStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc

    from central_hub.registry import index_cache

    engine = HubEngine(hub_db)
    service = RegistryService(hub_db, engine, chunk=5)
    for r in generate(12, seed=8):
        engine.hub_write("person", r["record_id"], {k: r[k] for k in ("full_name_en", "sex", "date_of_birth") if r[k]},
                         scope=r["union_id"])  # fmt: skip
    monkeypatch.setattr(index_cache, "FREEZE_MIN", 10)
    gc.unfreeze()
    try:
        service.scan_once()  # 5 persons: small, left to the collector
        assert gc.get_freeze_count() == 0
        service.scan_until_done()  # 10 and more: frozen once the chunk has committed
        copy = service.job_index._copy
        assert gc.get_freeze_count() > 0 and copy is not None and len(copy.records) >= 10
    finally:
        gc.unfreeze()


AMINA_BN = {"full_name_bn": "মোসাম্মৎ আমিনা খাতুন", "sex": "female", "date_of_birth": "1950-06-12",
            "nid": "1950269123456789".rjust(17, "1")[:17], "father_name": "মোঃ আব্দুল করিম",
            "mother_name": "রহিমা বেগম"}  # fmt: skip


def amina(**kw: Any) -> dict[str, Any]:
    return {**AMINA_BN, **kw}


def test_scan_links_publishes_and_flags_double_dipping(hub_db: SqlHubStore) -> None:
    engine = HubEngine(hub_db)
    service = RegistryService(hub_db, engine)
    nid17 = "1950" + "2691234567890"
    engine.hub_write("person", "pa", amina(nid=nid17), scope="1")
    english = {"full_name_en": "Mst. Amina Khatun", "sex": "female", "date_of_birth": "1950-06-12",
               "nid": nid17[4:], "father_name": "Md. Abdul Karim"}  # fmt: skip
    engine.hub_write("person", "pb", english, scope="2")
    engine.hub_write("enrolment", "ea", {"person_id": "pa", "programme": "OAA", "status": "active"}, scope="1")
    engine.hub_write("enrolment", "eb", {"person_id": "pb", "programme": "WA", "status": "active"}, scope="2")
    report = service.scan_until_done()
    assert report.persons == 2 and report.enrolments == 2 and report.auto_links == 1
    pa, pb = (hub_db.get_record("person", p) for p in ("pa", "pb"))
    assert pa is not None and pb is not None
    assert pa.values()["registry_id"] == pb.values()["registry_id"] == "pa"
    flag = {"rule": "exclusive_OAA_WA", "programmes": ["OAA", "WA"], "record_ids": ["ea", "eb"]}
    for eid in ("ea", "eb"):
        rec = hub_db.get_record("enrolment", eid)
        assert rec is not None
        flags = rec.values()["double_dipping_flags"]
        assert [f["programmes"] for f in flags] == [["OAA", "WA"]] and flags[0]["record_ids"] == flag["record_ids"]
    assert [f["type"] for f in pa.values()["duplicate_flags"]] == ["double_dipping"]
    # the published values are hub writes in the log (they reach the offices by pull) ...
    last = hub_db.last_hub_seq()
    assert {e.entity_id for e in hub_db.read_log(4, None, 100)} >= {"pa", "pb", "ea", "eb"}
    # ... and re-scanning our own writes changes nothing
    assert service.scan_until_done().persons == 0 and hub_db.last_hub_seq() == last

    # a correction that does not change the match re-matches but publishes nothing new
    engine.hub_write("person", "pb", {"mobile": "01711000000"})
    assert service.scan_until_done().published == 0

    # twins: same parents and birth date, other given name: never linked
    engine.hub_write("person", "pt", amina(full_name_bn="মোসাম্মৎ জমিলা খাতুন", nid=""), scope="1")
    service.scan_until_done()
    pt = hub_db.get_record("person", "pt")
    assert pt is not None and pt.values()["registry_id"] == "pt"

    # a reviewer splits pb off: registry ids and flags follow, the edge stays as history, audited
    ids = service.decide("pa", "pb", "unmerge", "reviewer1", note="two women, checked at the office")
    assert ids == {"pa": "pa", "pb": "pb"}
    assert hub_db.get_record("person", "pb").values()["registry_id"] == "pb"  # type: ignore[union-attr]
    assert hub_db.get_record("enrolment", "ea").values()["double_dipping_flags"] == []  # type: ignore[union-attr]
    with hub_db._conn() as conn:
        edges = registry_edges.c
        edge = conn.execute(select(registry_edges).where(edges.a == "pb", edges.b == "pa")).first()
        audit = conn.execute(select(registry_decisions)).all()
    assert edge is not None and not edge.active and edge.removed_by == "reviewer1"
    assert "two women" in edge.removed_reason
    note = "two women, checked at the office"
    assert [(a.actor, a.decision, a.note) for a in audit] == [("reviewer1", "unmerge", note)]
    # and links them again
    assert service.decide("pa", "pb", "same", "reviewer2")["pb"] == "pa"
    assert hub_db.get_record("person", "pb").values()["registry_id"] == "pa"  # type: ignore[union-attr]

    with pytest.raises(DecisionError) as err:
        service.decide("pa", "nobody", "maybe", "reviewer1")
    assert set(err.value.errors) == {"decision", "b"}


def test_a_shared_mobile_wallet_links_through_the_enrolments(hub_db: SqlHubStore) -> None:
    """At the hub the wallet is on the enrolment, not the person. The same bKash number with the same name
    (Bangla in one union, English in another district) and a birth date with day and month swapped links in
    the exact tier once the second enrolment gets that wallet, and the exclusive programmes are flagged."""
    engine = HubEngine(hub_db)
    service = RegistryService(hub_db, engine)
    wallet = {"payment_channel": "bkash", "account_number": "01711223344", "status": "active"}
    engine.hub_write("person", "pa", {"full_name_bn": "আমিনা খাতুন", "sex": "female", "date_of_birth": "1950-06-12"},
                     scope="1")  # fmt: skip
    engine.hub_write("enrolment", "ea", {"person_id": "pa", "programme": "OAA", **wallet}, scope="1")
    engine.hub_write("person", "pb", {"full_name_en": "Amina Khatun", "sex": "female", "date_of_birth": "1950-12-06"},
                     scope="1000")  # Sirajganj  # fmt: skip
    engine.hub_write("enrolment", "eb", {"person_id": "pb", "programme": "WA", "status": "applied"}, scope="1000")
    service.scan_until_done()
    pb = hub_db.get_record("person", "pb")
    assert pb is not None and pb.values()["registry_id"] == "pb"  # name and a near date alone: no link

    engine.hub_write("enrolment", "eb", wallet)  # the office adds the wallet: only the account changes
    report = service.scan_until_done()
    assert report.auto_links == 1
    (edge,) = [e for e in service.index.edges_of(["pb"]) if e.band == AUTO]
    assert (edge.evidence["rule"], edge.evidence["account"]) == ("account+name", "exact")
    for pid in ("pa", "pb"):
        rec = hub_db.get_record("person", pid)
        assert rec is not None and rec.values()["registry_id"] == "pa"
    eb = hub_db.get_record("enrolment", "eb")
    assert eb is not None and [f["programmes"] for f in eb.values()["double_dipping_flags"]] == [["OAA", "WA"]]


def test_a_failing_publication_leaves_the_chunk_to_the_next_scan(tmp_path: Path) -> None:
    store = SqlHubStore(f"sqlite:///{tmp_path / 'hub.db'}")
    store.migrate()
    engine = HubEngine(store)
    service = RegistryService(store, engine)
    engine.hub_write("person", "pa", amina(), scope="1")
    real = engine.hub_write_many  # publication writes a chunk's ids with one call

    def broken(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("disk full")

    engine.hub_write_many = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        service.scan_once()
    assert service.cursor() == 0 and service.index.size() == 0  # index and cursor rolled back together
    engine.hub_write_many = real  # type: ignore[method-assign]
    assert service.scan_until_done().persons == 1
    assert store.get_record("person", "pa").values()["registry_id"] == "pa"  # type: ignore[union-attr]
    store.close()


def test_entries_needing_no_work_are_passed_over_without_a_chunk_each(tmp_path: Path) -> None:
    """The job's own publications (and other hub writes that touch no matching field) are read past:
    one scan covers up to SKIP_LIMIT chunks of them, and the persons among them are still matched."""
    from central_hub.registry import service as service_mod

    store = SqlHubStore(f"sqlite:///{tmp_path / 'hub.db'}")
    store.migrate()
    engine = HubEngine(store)
    service = RegistryService(store, engine, chunk=10)
    people = generate(40, seed=8)
    fields = ("full_name_bn", "full_name_en", "sex", "date_of_birth", "nid", "father_name", "mother_name", "mobile")
    for r in people:
        engine.hub_write("person", r["record_id"], {k: r[k] for k in fields if r[k]}, scope=r["union_id"])
    service.scan_until_done()
    # 304 hub writes of fields the matcher does not read, then one new person
    engine.hub_write_many([("person", r["record_id"], {"nid_status": f"checked-{i}"})
                           for i in range(8) for r in people[:38]])  # fmt: skip
    engine.hub_write("person", "late", amina(), scope="1")
    service.chunk = 5
    before = service.cursor()
    first = service.scan_once()
    assert first.entries == 5 * service_mod.SKIP_LIMIT < 304 and first.persons == 0
    assert service.cursor() == before + first.entries
    second = service.scan_once()
    assert second.persons == 1 and second.entries == 304 + 1 - first.entries
    assert store.get_record("person", "late").values()["registry_id"] == "late"  # type: ignore[union-attr]
    store.close()


def test_review_queue_is_ranked_by_review_weight_and_scoped(hub_db: SqlHubStore) -> None:
    """The queue's first pair is the one with the highest review weight, not the highest gated score;
    a pair without a weight (a reviewer's own) comes last; a reviewer's unions filter it in SQL."""
    index = SqlIndex(hub_db)
    with hub_db.transaction():
        for rid in "abcdef":
            index.add(prepare({"record_id": rid, "full_name_en": f"Rahim Uddin {rid}", "union_id": "1"}))
        index.add_edge(Edge("a", "b", -2.0, "review", "m", {"review_weight": -1.0}, 0))
        index.add_edge(Edge("c", "d", -4.8, "review", "m", {"review_weight": 5.2}, 0))
        index.add_edge(Edge("e", "f", 0.0, "review", "reviewer", {"reason": "linked by a reviewer"}, 0))
        index.add_edge(Edge("a", "c", 9.0, "auto_link", "m", {"review_weight": 9.0}, 0))
    assert [(e.a, e.b) for e in index.review_edges()] == [("c", "d"), ("a", "b"), ("e", "f")]
    # a reviewer's scope is applied in the query: pairs with a person registered in one of their unions
    engine = HubEngine(hub_db)
    for rid, union in (("a", "1"), ("b", "2"), ("c", "3"), ("d", "3"), ("e", "4")):
        engine.hub_write("person", rid, {"full_name_en": f"Rahim Uddin {rid}"}, scope=union)
    assert [(e.a, e.b) for e in index.review_edges(unions={"2"})] == [("a", "b")]
    assert [(e.a, e.b) for e in index.review_edges(unions={"1", "3"})] == [("c", "d"), ("a", "b")]
    assert [(e.a, e.b) for e in index.review_edges(unions={"4"})] == [("e", "f")]
    assert index.review_edges(unions=set()) == [] and index.review_edges(unions={"9"}) == []


def test_0006_ranks_review_pairs_written_before_it(empty_db_url: str) -> None:
    """A database at 0005 with review pairs scored before the review weight existed: upgraded, each gets
    the weight back from its evidence; a pair without weights stays unranked; and back down."""
    from alembic import command

    from central_hub import db

    store = SqlHubStore(empty_db_url)
    try:
        db.upgrade(store.engine, "0005")
        old = {"household_used": 0.0, "household_weight": 33.17, "person_weight": 10.13}
        with store.engine.begin() as conn:
            for seq, score, band, evidence in ((1, -4.78, "review", old), (2, -1.0, "review", {"reason": "x"}),
                                               (3, 12.0, "auto_link", old)):  # fmt: skip
                conn.execute(registry_edges.insert().values(
                    seq=seq, a=f"a{seq}", b=f"b{seq}", score=score, band=band, model_version="fs-old",
                    evidence=json.dumps(evidence), active=True, created_at="2026-11-24T00:00:00Z"))  # fmt: skip
        store.migrate()
        store.check_schema()
        with store.engine.connect() as conn:
            got = dict(conn.execute(select(registry_edges.c.seq, registry_edges.c.review_weight)).all())
        assert got == {1: pytest.approx(5.22), 2: None, 3: None}
        assert [e.seq for e in SqlIndex(store).review_edges()] == [1, 2]
        cfg = db._alembic_config()
        with store.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0005")
        assert db.current_revision(store.engine) == "0005"
    finally:
        store.close()


def test_dedupe_reads_the_hub_store_and_reports_an_unmerge_as_a_merge(tmp_path: Path) -> None:
    """``central-hub dedupe --db``: the batch run over the hub's persons, reconciled with the clusters the
    incremental job built. A pair a reviewer split is linked again by the batch: reported, nothing changed."""
    import json

    from click.testing import CliRunner

    from central_hub.cli import main

    url = f"sqlite:///{tmp_path / 'hub.db'}"
    store = SqlHubStore(url)
    store.migrate()
    engine = HubEngine(store)
    service = RegistryService(store, engine)
    nid17 = "1950" + "2691234567890"
    engine.hub_write("person", "pa", amina(nid=nid17), scope="1")
    engine.hub_write("person", "pb", amina(nid=nid17[4:], full_name_bn="", full_name_en="Mst. Amina Khatun"), scope="2")
    people = generate(120, seed=4)
    for r in people:
        fields = {k: r[k] for k in ("full_name_bn", "full_name_en", "sex", "date_of_birth", "nid", "brn",
                                    "father_name", "mother_name", "spouse_name", "mobile") if r[k]}  # fmt: skip
        engine.hub_write("person", r["record_id"], fields, scope=r["union_id"])
    service.scan_until_done()
    service.decide("pa", "pb", "unmerge", "reviewer1", note="test")
    last = store.last_hub_seq()
    store.close()

    out = tmp_path / "clusters.csv"
    result = CliRunner().invoke(main, ["dedupe", "--db", url, "--output", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.splitlines()[0])
    assert summary["records"] == len(people) + 2 and summary["not_yet_matched_at_the_hub"] == 0
    report = json.loads(out.with_suffix(".report.json").read_text())
    assert {"batch_cluster": "pa", "incremental_clusters": ["pa", "pb"], "record_ids": ["pa", "pb"]} in report["merges"]
    store = SqlHubStore(url)
    assert store.last_hub_seq() == last  # reading changed nothing
    store.close()
    both = CliRunner().invoke(main, ["dedupe", "--db", url, "--input", str(out)])
    assert both.exit_code != 0 and "exactly one" in both.output


def test_features_read_back_from_their_json_equal_the_ones_written() -> None:
    """``SqlIndex.replace`` decides "nothing changed" by comparing the stored features with the new ones."""
    from central_hub.registry.features import prepare
    from central_hub.registry.service import _district
    from central_hub.registry.sql_index import _parse_features, features_json

    for r in generate(300, seed=17):
        f = prepare({**r, "id": r["record_id"], "district_id": _district(r["union_id"])})
        assert _parse_features(features_json(f)) == f
