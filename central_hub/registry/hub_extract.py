"""Read the hub store as a registry extract for the batch dedupe (``central-hub dedupe --db URL``).

Every live person record becomes a row with the person fields, ``union_id`` (the record's scope),
``district_id``, ``account_number`` (from the person's enrolments, ``wallets.py``) and ``registry_id``:
the cluster the incremental matcher holds in the SQL index (what the hub publishes), so the batch result
is reconciled against exactly the clusters staff and offices see. Persons the matching job has not
reached yet keep their published ``registry_id`` or their own id.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from central_hub import schema as hub_tables
from central_hub.registry.sql_index import SqlIndex
from central_hub.registry.wallets import accounts_of
from central_hub.store import SqlHubStore
from sync_protocol import geo

PERSON_COLUMNS = ("full_name_bn", "full_name_en", "sex", "date_of_birth", "nid", "brn", "father_name",
                  "mother_name", "spouse_name", "mobile")  # fmt: skip


def read_hub(hub_store: SqlHubStore) -> tuple[list[dict[str, Any]], int]:
    """(records, how many of them the matching job has not indexed yet)."""
    pv = hub_tables.person_view.c
    with hub_store._conn() as conn:
        ids = [r[0] for r in conn.execute(select(pv.id).where(pv.deleted.is_(False)).order_by(pv.id))]
    clusters = SqlIndex(hub_store).clusters()
    out: list[dict[str, Any]] = []
    unindexed = 0
    for i in range(0, len(ids), 500):
        accounts = accounts_of(hub_store, ids[i:i + 500])
        for (_, pid), rec in sorted(hub_store.load_records([("person", p) for p in ids[i:i + 500]]).items()):
            if rec.deleted:
                continue
            values = rec.values()
            try:
                district = geo.union_path(rec.scope)[1].id
            except KeyError:
                district = None
            if pid not in clusters:
                unindexed += 1
            row = {"record_id": pid, **{c: values.get(c) or "" for c in PERSON_COLUMNS}, "union_id": rec.scope,
                   "district_id": district or "", "account_number": accounts.get(pid, ""),
                   "registry_id": clusters.get(pid) or values.get("registry_id") or pid}  # fmt: skip
            out.append(row)
    return out, unindexed
