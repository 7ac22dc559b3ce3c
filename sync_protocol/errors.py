"""One exception hierarchy for the sync protocol.

Every error carries a message a person can act on and a stable machine ``code`` that the hub puts in
its JSON answers (``{"error": {"code": ..., "message": ...}}``), so a node can react to the code and an
operator can read the message.
"""

from __future__ import annotations

from typing import Any


class SyncProtocolError(Exception):
    """Base class of everything this package raises."""

    code = "sync_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.details}


class WireError(SyncProtocolError):
    """The bytes are not a well-formed batch."""

    code = "malformed_batch"


class MalformedBatchError(WireError):
    code = "malformed_batch"


class TruncatedBatchError(WireError):
    code = "truncated_batch"


class OversizedBatchError(WireError):
    code = "oversized_batch"


class NonCanonicalBatchError(WireError):
    code = "non_canonical_batch"


class UnsupportedVersionError(SyncProtocolError):
    """The batch speaks a protocol or schema version this side does not."""

    code = "unsupported_version"


class SignatureError(SyncProtocolError):
    code = "bad_signature"


class ClockSkewError(SyncProtocolError):
    code = "clock_skew"


class SyncRefusedError(SyncProtocolError):
    """The hub refuses the whole batch; nothing was applied."""

    code = "refused"


class UnknownNodeError(SyncRefusedError):
    code = "unknown_node"


class RevokedNodeError(SyncRefusedError):
    code = "revoked_node"


class ScopeError(SyncRefusedError):
    code = "out_of_scope"


class SequenceGapError(SyncRefusedError):
    code = "sequence_gap"

    def __init__(self, message: str, *, resend_from: int) -> None:
        super().__init__(message, resend_from=resend_from)
        self.resend_from = resend_from


class BatchReplayMismatchError(SyncRefusedError):
    code = "batch_replay_mismatch"


class SequenceReuseError(SyncRefusedError):
    """The batch carries, under a seq the hub already holds, a change other than the one stored there:
    the node's database went back in time (restored from an older backup) and is numbering new edits
    again. Answering with the stored results would mark the new edits acknowledged and lose them."""

    code = "sequence_reused"

    def __init__(self, message: str, *, seq: int, hub_last_seq: int) -> None:
        super().__init__(message, seq=seq, hub_last_seq=hub_last_seq)
        self.seq = seq
        self.hub_last_seq = hub_last_seq


class InvalidCursorError(SyncProtocolError):
    code = "invalid_cursor"


class ConflictError(SyncProtocolError):
    """A conflict cannot be resolved as asked."""

    code = "conflict_resolution_error"


class ConflictNotFoundError(ConflictError):
    code = "conflict_not_found"


class ConflictAlreadyResolvedError(ConflictError):
    code = "conflict_already_resolved"


class LocalWriteError(SyncProtocolError):
    """A node-side write that the protocol forbids (unknown entity/field, hub-owned field...)."""

    code = "invalid_local_write"
