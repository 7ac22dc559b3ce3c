"""In-memory verifier for tests: the registry's verdicts with scriptable outages and counters."""

from __future__ import annotations

import threading
from collections.abc import Iterable

from central_hub.nid.interface import NidRequest, NidResult, VerificationFailed
from central_hub.nid.population import PopulationRecord
from central_hub.nid.registry import NidRegistry


class InMemoryNidVerifier:
    """Implements ``NidVerifier``. ``down = True`` answers every call with a retryable failure, the way
    the HTTP client reports an unreachable service."""

    def __init__(self, records: Iterable[PopulationRecord] | NidRegistry) -> None:
        self.registry = records if isinstance(records, NidRegistry) else NidRegistry(records)
        self.down = False
        self.calls = 0
        self._lock = threading.Lock()

    def verify(self, request: NidRequest) -> NidResult:
        with self._lock:
            self.calls += 1
        if self.down:
            return VerificationFailed(retryable=True, reason="service unavailable (simulated)", code="server_error")
        return self.registry.verify(request)
