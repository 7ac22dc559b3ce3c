"""File bundles: a node's pending signed batches on a USB stick, for a union with no link at all.

* ``export``: the batches a node would push next (``ReplicaEngine.next_envelope`` first, so the online
  sync later re-sends that very batch), written with ``sync_protocol.wire.encode_bundle``. Nothing is
  marked acknowledged: the node keeps every change pending until the hub's answer reaches it.
* ``import`` at an upazila node: store and forward. The envelopes are checked (shape, versions, scope)
  and kept in the node's encrypted database; the next sync pushes them to the hub unchanged, still
  signed by their ORIGIN node, so the hub verifies the origin's key. The origin learns the results on its
  own next online sync, which replays the same batch and gets the hub's stored answer.
* ``bundle-import`` at the hub: every batch is verified first; one bad batch refuses the whole bundle.

Importing a bundle twice changes nothing (batch ids are remembered; the hub answers a replay from its
store). An upazila node cannot check signatures (it does not hold other nodes' keys); a changed byte in a
payload still fails its zlib checksum or canonical form here, and any tampering fails at the hub.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import click

from sync_protocol import wire
from sync_protocol.errors import SyncProtocolError
from sync_protocol.hub import HubEngine
from sync_protocol.model import Batch, PushResponse
from sync_protocol.replica import ReplicaEngine

from .db import BUNDLE_FORWARD_DDL


class BundleError(click.ClickException):
    """A bundle that cannot be used, with a message a person can act on."""


# ---- export -----------------------------------------------------------------------------------------


def export_envelopes(engine: ReplicaEngine, batch_size: int = 500) -> list[bytes]:
    """Every pending change of the node as signed envelopes, oldest first.

    The first is the batch the online sync would send next (built and kept by ``next_envelope``); later
    ones are built here with fresh batch ids but are not kept: the hub answers the same sequence numbers
    from its per-change results whichever batch carries them, so nothing is applied twice."""
    if engine.signer is None:
        raise BundleError("this node has no signing key; it cannot export a bundle")
    with engine.store.transaction():
        nxt = engine.next_envelope(batch_size)
        if nxt is None:
            return []
        pending, _ = nxt
        envelopes = [pending.envelope]
        after = pending.last_seq
        while True:
            changes = engine.store.outbox(after, batch_size)
            if not changes:
                break
            batch = Batch(engine.node_id, engine.new_id(), tuple(changes))
            envelopes.append(wire.encode_batch(batch, engine.signer))
            after = changes[-1].node_seq
    return envelopes


def write_bundle(path: str | Path, envelopes: list[bytes]) -> int:
    """Write atomically (a half-written file on a pulled USB stick must not look like a bundle)."""
    data = wire.encode_bundle(envelopes)
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return len(data)


# ---- checks without the origin's key ------------------------------------------------------------------


def read_bundle(data: bytes) -> list[bytes]:
    try:
        return wire.decode_bundle(data)
    except SyncProtocolError as exc:
        raise BundleError(f"bundle refused: {exc}") from exc


def inspect_envelope(envelope: bytes) -> Batch:
    """Header, versions, payload checksum, schema and canonical form; not the signature (the hub checks
    that with the origin's enrolled key)."""
    header = wire.read_header(envelope)
    # The payload decoder is the protocol's own; only the signature check needs a key we do not have.
    return wire._decode_payload(header, envelope[header.payload_offset : header.signed_len])


def describe_refusal(index: int, total: int, exc: SyncProtocolError) -> str:
    return f"bundle refused: batch {index} of {total} is not valid ({exc.code}: {exc}). Nothing was imported."


# ---- store and forward at an upazila node ---------------------------------------------------------------


@dataclass
class QueuedBatch:
    batch_id: str
    origin: str
    first_seq: int
    last_seq: int
    envelope: bytes
    status: str = "stored"  # stored -> forwarded | refused
    answer: dict[str, Any] | None = None


class ForwardQueue(Protocol):
    def transaction(self) -> AbstractContextManager[None]: ...

    def add(self, item: QueuedBatch) -> bool: ...  # False: already known

    def waiting(self) -> list[QueuedBatch]: ...

    def mark(self, batch_id: str, status: str, answer: dict[str, Any]) -> None: ...

    def counts(self) -> dict[str, int]: ...


class SqlForwardQueue:
    """The queue in the node's (SQLCipher) database. Its table belongs to the node's migrations
    (``db._m003_bundle_forward``); creating it here too keeps the queue usable on a bare connection."""

    def __init__(self, conn: sqlite3.Connection | Any, transaction: Callable[[], AbstractContextManager[None]]) -> None:
        self.conn = conn
        self._transaction = transaction
        with self._transaction():
            self.conn.execute(BUNDLE_FORWARD_DDL)

    def transaction(self) -> AbstractContextManager[None]:
        return self._transaction()

    def add(self, item: QueuedBatch) -> bool:
        cur = self.conn.execute(
            "INSERT OR IGNORE INTO bundle_forward (batch_id, origin, first_seq, last_seq, envelope, status,"
            " imported_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (item.batch_id, item.origin, item.first_seq, item.last_seq, item.envelope, item.status, _now()),
        )
        return bool(cur.rowcount)

    def waiting(self) -> list[QueuedBatch]:
        rows = self.conn.execute(
            "SELECT batch_id, origin, first_seq, last_seq, envelope FROM bundle_forward WHERE status = 'stored'"
            " ORDER BY origin, first_seq"
        ).fetchall()
        return [QueuedBatch(r[0], r[1], int(r[2]), int(r[3]), bytes(r[4])) for r in rows]

    def mark(self, batch_id: str, status: str, answer: dict[str, Any]) -> None:
        self.conn.execute(
            "UPDATE bundle_forward SET status = ?, answer = ?, updated_at = ? WHERE batch_id = ?",
            (status, json.dumps(answer, ensure_ascii=False), _now(), batch_id),
        )

    def counts(self) -> dict[str, int]:
        return {str(s): int(n) for s, n in self.conn.execute("SELECT status, count(*) FROM bundle_forward GROUP BY 1")}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class ImportReport:
    batches: int = 0
    new: int = 0
    already_known: int = 0
    changes: int = 0
    origins: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return (
            f"{self.batches} batch(es) with {self.changes} change(s) from {len(self.origins)} node(s): "
            f"{self.new} stored for forwarding, {self.already_known} already known"
        )


def import_for_forwarding(
    queue: ForwardQueue, data: bytes, *, own_node_id: str, scopes: frozenset[str]
) -> ImportReport:
    """Check every batch first, then store them all in one transaction (all or nothing)."""
    envelopes = read_bundle(data)
    if not envelopes:
        raise BundleError("bundle refused: it holds no batches")
    batches: list[Batch] = []
    for i, env in enumerate(envelopes, start=1):
        try:
            batch = inspect_envelope(env)
        except SyncProtocolError as exc:
            raise BundleError(describe_refusal(i, len(envelopes), exc)) from exc
        if batch.node_id == own_node_id:
            raise BundleError("bundle refused: it was exported by this node itself; take it to the upazila office")
        outside = sorted({c.scope for c in batch.changes} - scopes)
        if outside:
            raise BundleError(
                f"bundle refused: batch {i} writes union(s) {', '.join(outside)}, outside this node's scope "
                f"({', '.join(sorted(scopes))}). Nothing was imported."
            )
        batches.append(batch)
    report = ImportReport(batches=len(batches))
    with queue.transaction():
        for env, batch in zip(envelopes, batches, strict=True):
            item = QueuedBatch(batch.batch_id, batch.node_id, batch.first_seq, batch.last_seq, env)
            if queue.add(item):
                report.new += 1
            else:
                report.already_known += 1
            report.changes += len(batch.changes)
            if batch.node_id not in report.origins:
                report.origins.append(batch.node_id)
    return report


# Hub refusals that will never turn into acceptance for these exact bytes.
_FINAL_REFUSALS = frozenset(
    {
        "bad_signature",
        "malformed_batch",
        "truncated_batch",
        "non_canonical_batch",
        "unsupported_version",
        "oversized_batch",
        "unknown_node",
        "revoked_node",
        "out_of_scope",
        "batch_replay_mismatch",
        "sequence_reused",
    }
)


def forward(queue: ForwardQueue, push: Callable[[bytes], PushResponse]) -> int:
    """Push every stored batch, origin by origin in sequence order. Returns how many the hub answered.

    A sequence gap (the origin's earlier changes are not at the hub yet) leaves that origin's batches
    stored for a later round; a final refusal marks the batch refused with the hub's words; anything else
    (the hub unreachable) propagates, so the caller's round fails and is retried."""
    done = 0
    blocked: set[str] = set()
    for item in queue.waiting():
        if item.origin in blocked:
            continue
        try:
            response = push(item.envelope)
        except Exception as exc:
            code = str(getattr(exc, "code", "") or "")
            if code == "sequence_gap":
                blocked.add(item.origin)
                continue
            if code in _FINAL_REFUSALS:
                with queue.transaction():
                    queue.mark(item.batch_id, "refused", {"code": code, "message": str(getattr(exc, "message", exc))})
                continue
            raise
        with queue.transaction():
            queue.mark(item.batch_id, "forwarded", response.to_json())
        done += 1
    return done


def node_queue(node: Any) -> SqlForwardQueue:
    database, _, _ = node.require()
    return SqlForwardQueue(database.conn, database.transaction)


def node_scopes(node: Any) -> frozenset[str]:
    raw = node.config.get("scopes")
    scopes = json.loads(raw) if isinstance(raw, str) and raw else []
    return frozenset(str(s) for s in scopes) or frozenset({node.union_id})


def forward_pending(node: Any, client: Any = None) -> int:
    """Forward what bundles left at this node (the sync agent calls this before each round)."""
    queue = node_queue(node)
    if not queue.waiting():
        return 0
    from .sync_client import HubClient

    client = client or HubClient(node.hub_url)
    return forward(queue, client.push)


# ---- at the hub ---------------------------------------------------------------------------------------


@dataclass
class HubImportReport:
    batches: int = 0
    changes: int = 0
    applied: int = 0
    merged: int = 0
    conflicts: int = 0
    rejected: int = 0
    replayed: int = 0  # changes the hub already had (from an earlier import or an online sync)
    gaps: list[str] = field(default_factory=list)

    def describe(self) -> str:
        text = (
            f"{self.batches} batch(es), {self.changes} change(s): {self.applied} applied, {self.merged} merged, "
            f"{self.conflicts} conflict(s), {self.rejected} rejected, {self.replayed} already known"
        )
        if self.gaps:
            text += "; not applied (earlier changes missing): " + "; ".join(self.gaps)
        return text


def apply_at_hub(engine: HubEngine, data: bytes) -> HubImportReport:
    """Verify every batch with its origin's enrolled key, then push them in order. Refuses the whole
    bundle, applying nothing, when any batch fails verification."""
    envelopes = read_bundle(data)
    if not envelopes:
        raise BundleError("bundle refused: it holds no batches")
    batches: list[Batch] = []
    for i, env in enumerate(envelopes, start=1):
        try:
            node = engine.node_for(env)
            batch = wire.decode_batch(env, node.public_key)
        except SyncProtocolError as exc:
            raise BundleError(describe_refusal(i, len(envelopes), exc)) from exc
        batches.append(batch)
    report = HubImportReport(batches=len(batches))
    order = sorted(range(len(batches)), key=lambda k: (batches[k].node_id, batches[k].first_seq))
    for k in order:
        batch = batches[k]
        last_before = (engine.store.get_node(batch.node_id) or engine.node_for(envelopes[k])).last_seq
        try:
            response = engine.push(envelopes[k])
        except SyncProtocolError as exc:
            if exc.code == "sequence_gap":
                report.gaps.append(f"node {batch.node_id} seq {batch.first_seq}-{batch.last_seq}: {exc}")
                continue
            raise BundleError(f"batch {k + 1} refused by the hub: {exc}") from exc
        report.changes += len(response.results)
        for result in response.results:
            if result.node_seq <= last_before:
                report.replayed += 1
            elif result.outcome == "applied":
                report.applied += 1
            elif result.outcome == "merged":
                report.merged += 1
            elif result.outcome == "conflict":
                report.conflicts += 1
            else:
                report.rejected += 1
    return report


# ---- command line -------------------------------------------------------------------------------------


def _open_node(data_dir: str) -> Any:
    """Open and unlock a node with FIELD_NODE_OPERATOR / FIELD_NODE_OPERATOR_PASSWORD, or prompts."""
    from .errors import FieldNodeError
    from .node import Node

    try:
        node = Node(data_dir)
        user = os.environ.get("FIELD_NODE_OPERATOR") or click.prompt("Operator")
        password = os.environ.get("FIELD_NODE_OPERATOR_PASSWORD") or click.prompt("Password", hide_input=True)
        node.login(user, password)
    except FieldNodeError as exc:
        raise click.ClickException(exc.message) from exc
    return node


@click.group(
    "bundle",
    help="File bundles: carry a node's signed changes on a USB stick when there is no link.\n\n"
    "Example: field-node bundle export --data-dir /srv/node --out /media/usb/subil.nspbundle",
)
def bundle_group() -> None:
    pass


@bundle_group.command(
    "export",
    help="Write every change not yet acknowledged by the hub to FILE; nothing is marked sent.\n\n"
    "Example: field-node bundle export --data-dir /srv/node --out subil-2026-11-24.nspb",
)
@click.option("--data-dir", required=True, type=click.Path(file_okay=False), help="The node's data directory.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="Bundle file to write.")
def export_command(data_dir: str, out: str) -> None:
    node = _open_node(data_dir)
    try:
        _, _, engine = node.require()
        envelopes = export_envelopes(engine)
        if not envelopes:
            raise click.ClickException("nothing to export: every change has been acknowledged by the hub")
        size = write_bundle(out, envelopes)
        click.echo(f"wrote {len(envelopes)} batch(es), {size} bytes, to {out}")
    finally:
        node.close()


@bundle_group.command(
    "import",
    help="Store a bundle from another node of this upazila; the next sync forwards it to the hub.\n\n"
    "Example: field-node bundle import --data-dir /srv/upazila-node subil-2026-11-24.nspb",
)
@click.option("--data-dir", required=True, type=click.Path(file_okay=False), help="The node's data directory.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def import_command(data_dir: str, file: str) -> None:
    node = _open_node(data_dir)
    try:
        report = import_for_forwarding(
            node_queue(node), Path(file).read_bytes(), own_node_id=node.node_id, scopes=node_scopes(node)
        )
        click.echo(report.describe())
    finally:
        node.close()


@click.command(
    "bundle-import",
    help="Verify and apply a node's bundle directly at the hub; importing it again changes nothing.\n\n"
    "Example: central-hub bundle-import --db sqlite:///hub.db subil-2026-11-24.nspb",
)
@click.option("--db", "db_url", default="sqlite:///hub.db", show_default=True, help="Hub database URL.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def hub_import_command(db_url: str, file: str) -> None:
    from central_hub.app import default_validator
    from central_hub.store import SqlHubStore

    store = SqlHubStore(db_url)
    try:
        store.check_schema()
        report = apply_at_hub(HubEngine(store, validator=default_validator()), Path(file).read_bytes())
    finally:
        store.close()
    click.echo(report.describe())


def iter_envelopes(data: bytes) -> Iterator[Batch]:
    """For tools and tests: the batches of a bundle, checked as an upazila node checks them."""
    for env in read_bundle(data):
        yield inspect_envelope(env)
