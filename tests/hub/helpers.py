"""Builders shared by the hub tests: enrolled nodes with real Ed25519 keys and real signed batches."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from sync_protocol import wire
from sync_protocol.ids import uuid7
from sync_protocol.model import Batch, Change
from sync_protocol.signing import Signer
from sync_protocol.store import NodeRecord

_hlc = itertools.count(1 << 40)


@dataclass
class FakeNode:
    """Just enough of a field node to produce valid signed batches."""

    node_id: str
    signer: Signer = field(default_factory=Signer.generate)
    union: str = "1"
    seq: int = 0
    label: str = "Subil UP office"

    def record(self, scopes: frozenset[str] | None = None) -> NodeRecord:
        return NodeRecord(self.node_id, self.signer.public_bytes, scopes or frozenset({self.union}), label=self.label)

    def change(
        self,
        entity_id: str,
        values: dict[str, Any],
        *,
        entity: str = "person",
        base: dict[str, int] | None = None,
        op: str = "upsert",
        scope: str | None = None,
        actor: str = "operator1",
    ) -> Change:
        self.seq += 1
        return Change(
            node_id=self.node_id,
            node_seq=self.seq,
            hlc=next(_hlc),
            entity=entity,
            entity_id=entity_id,
            scope=scope or self.union,
            op=op,
            fields=values,
            base=base or {},
            actor=actor,
        )

    def batch(self, changes: list[Change], batch_id: str | None = None) -> Batch:
        return Batch(self.node_id, batch_id or uuid7(), tuple(changes))

    def envelope(self, changes: list[Change], batch_id: str | None = None) -> bytes:
        return wire.encode_batch(self.batch(changes, batch_id), self.signer)


def person(i: int, **extra: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "household_id": f"h-{i}",
        "full_name_en": f"Person {i}",
        "full_name_bn": f"ব্যক্তি {i}",
        "sex": "female" if i % 2 else "male",
        "date_of_birth": "1970-01-01",
        "nid": f"{1000000000 + i}",
        "mobile": f"0171{i:07d}",
    }
    values.update(extra)
    return values
