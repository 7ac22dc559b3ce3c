"""Glue between hub person records and the verification queue (pure functions; the hub wires them).

``subject_from_person`` turns a hub person record's fields into what the queue checks; ``hub_fields``
(in ``worker``) turns a verification state into the hub-owned fields that flow to nodes by pull.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from central_hub.nid.store import Subject

#: person fields whose change must re-queue verification
VERIFICATION_FIELDS = frozenset({"nid", "full_name_bn", "full_name_en", "date_of_birth", "father_name", "mother_name"})


def subject_from_person(person_id: str, fields: Mapping[str, Any]) -> Subject | None:
    """The subject to verify for a person record, or None when there is nothing to ask the EC about
    (no NID: a child with only a birth registration number; no usable birth date; no name).

    The Bangla name is asked when present, since it is the EC's primary record; the simulator and the
    real service accept either script.
    """
    nid = fields.get("nid")
    name = fields.get("full_name_bn") or fields.get("full_name_en")
    raw_dob = fields.get("date_of_birth")
    if not nid or not name or not raw_dob:
        return None
    try:
        dob = raw_dob if isinstance(raw_dob, date) else date.fromisoformat(str(raw_dob))
    except ValueError:
        return None
    return Subject(
        person_id=person_id,
        nid=str(nid),
        name=str(name),
        date_of_birth=dob,
        father_name=fields.get("father_name") or None,
        mother_name=fields.get("mother_name") or None,
    )
