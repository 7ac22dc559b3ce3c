"""The payment account a person is matched on, taken from their enrolments.

At the hub a person record has no account: the mobile wallet or bank account an allowance is paid into is
a field of the enrolment (DESIGN section 5). The matcher's exact tier (the same wallet, the same name, a
close birth date) and its household account comparison need it on the person, so the registry job and
the batch extract read it from the person's live enrolments. A person with several accounts is matched on
one of them: a mobile wallet (bKash, Nagad, Rocket) before a bank or post office account, then the
enrolment with the smallest id, so the choice does not change between runs.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select

from central_hub.registry.hub_schema import registry_enrolments as enrol_t
from central_hub.store import SqlHubStore
from sync_protocol.model import RecordState

WALLETS = frozenset({"bkash", "nagad", "rocket"})
_IN = 500


def accounts_of(
    hub_store: SqlHubStore, person_ids: Iterable[str], read: dict[tuple[str, str], RecordState] | None = None
) -> dict[str, str]:
    """person id -> the account number to match on, for those of ``person_ids`` that have one.
    ``read``: the enrolment records it had to read are added here, so a caller in the same transaction
    (the job's publication) need not read them again."""
    ids = sorted(set(person_ids))
    owner: dict[str, str] = {}
    with hub_store._conn() as conn:
        for i in range(0, len(ids), _IN):
            rows = conn.execute(select(enrol_t.c.enrolment_id, enrol_t.c.person_id)
                                .where(enrol_t.c.person_id.in_(ids[i:i + _IN])))  # fmt: skip
            owner.update({r.enrolment_id: r.person_id for r in rows})
    best: dict[str, tuple[bool, str, str]] = {}
    enrolments = hub_store.load_records([("enrolment", e) for e in owner])
    if read is not None:
        read.update(enrolments)
    for (_entity, eid), rec in enrolments.items():
        values = rec.values()
        account = str(values.get("account_number") or "").strip()
        if rec.deleted or not account or str(values.get("person_id") or "") != owner[eid]:
            continue
        rank = (str(values.get("payment_channel") or "") not in WALLETS, eid, account)
        pid = owner[eid]
        if pid not in best or rank < best[pid]:
            best[pid] = rank
    return {pid: rank[2] for pid, rank in best.items()}
