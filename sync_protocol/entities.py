"""The synced entities and who may write which field (DESIGN section 3).

This table is the schema that ``SCHEMA_VERSION`` names: adding an entity or a field is a schema change.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

SCHEMA_VERSION = 1

# Pseudo-field that carries a record's deletion through the same per-field machinery as any value,
# so "update vs delete" is detected with base revisions like every other conflict.
DELETED = "_deleted"

HUB_ORIGIN = "hub"


@dataclass(frozen=True)
class EntitySpec:
    name: str
    fields: frozenset[str]
    hub_owned: frozenset[str] = frozenset()
    append_only: bool = False

    @cached_property
    def all_fields(self) -> frozenset[str]:
        return self.fields | self.hub_owned


ENTITIES: dict[str, EntitySpec] = {
    spec.name: spec
    for spec in (
        EntitySpec(
            "household",
            frozenset(
                {
                    "union_id",
                    "ward",
                    "village",
                    "address",
                    "head_person_id",
                    "land_decimals",
                    "house_type",
                    "monthly_income_bdt",
                    "pmt_score",
                }
            ),
        ),
        EntitySpec(
            "person",
            frozenset(
                {
                    "household_id",
                    "full_name_bn",
                    "full_name_en",
                    "sex",
                    "date_of_birth",
                    "dob_estimated",
                    "nid",
                    "brn",
                    "father_name",
                    "mother_name",
                    "spouse_name",
                    "mobile",
                    "relation_to_head",
                    "disability",
                    "occupation",
                    "marital_status",
                    "life_status",
                    "date_of_death",
                }
            ),
            hub_owned=frozenset(
                {"nid_status", "nid_checked_at", "nid_mismatch_fields", "registry_id", "duplicate_flags"}
            ),
        ),
        EntitySpec(
            "enrolment",
            frozenset(
                {
                    "person_id",
                    "programme",
                    "status",
                    "applied_on",
                    "status_changed_on",
                    "payment_channel",
                    "account_number",
                    "benefit_amount_bdt",
                }
            ),
            hub_owned=frozenset({"double_dipping_flags"}),
        ),
        EntitySpec(
            "grievance",
            frozenset(
                {
                    "tracking_number",
                    "complainant_person_id",
                    "complainant_name",
                    "complainant_mobile",
                    "programme",
                    "category",
                    "description",
                    "tier",
                    "status",
                    "due_on",
                }
            ),
        ),
        # Grievance state changes are immutable events: two offices acting on one grievance append two
        # events instead of overwriting one status field, so they can never conflict.
        EntitySpec(
            "grievance_event",
            frozenset({"grievance_id", "type", "note", "tier", "actor", "occurred_at"}),
            append_only=True,
        ),
    )
}
