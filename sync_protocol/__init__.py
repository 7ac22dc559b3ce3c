"""sync_protocol: the pure library both the field node and the hub use (DESIGN section 4).

Modules, by what they own:

* ``model``     changes, batches, results, hub log entries, conflicts (plain data)
* ``entities``  synced entities, node-writable vs hub-owned fields, ``SCHEMA_VERSION``
* ``wire``      canonical encoding, compression, Ed25519 signing, marshmallow wire schemas, bundles
* ``hlc``       hybrid logical clock
* ``merge``     the per-field apply rule and staff resolutions (pure functions)
* ``hub``       ``HubEngine``: push / pull / resolve over a ``HubStore``
* ``replica``   ``ReplicaEngine``: a node's writes, outbox, acks and pulls over a ``ReplicaStore``
* ``store``     the two store interfaces; ``memory`` implements them in memory
* ``errors``    the one exception hierarchy
"""

from .entities import DELETED, ENTITIES, HUB_ORIGIN, SCHEMA_VERSION
from .errors import SyncProtocolError
from .model import PROTOCOL_VERSION, Batch, Change, ChangeResult, Conflict, LogEntry, Op, Outcome, PullPage

__all__ = [
    "DELETED",
    "ENTITIES",
    "HUB_ORIGIN",
    "PROTOCOL_VERSION",
    "SCHEMA_VERSION",
    "Batch",
    "Change",
    "ChangeResult",
    "Conflict",
    "LogEntry",
    "Op",
    "Outcome",
    "PullPage",
    "SyncProtocolError",
]
