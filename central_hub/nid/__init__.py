"""NID verification against the Election Commission's service (issue 6).

Layers, each in its own module:

- ``interface``: the request/result types and the ``NidVerifier`` protocol every implementation follows.
- ``numbers`` / ``names``: NID number forms (10/13/17 digits) and bilingual name matching.
- ``registry``: the matching rules of the (simulated) Election Commission over a population.
- ``memory`` / ``http_client``: an in-memory verifier for tests and the production HTTP client (retries, backoff,
  Retry-After, token bucket, circuit breaker).
- ``simulator`` / ``population``: a Flask stand-in for the EC service and its synthetic population.
- ``worker`` / ``store`` / ``sqlite_store`` / ``hub_bridge``: the hub's background verification queue.
"""

from central_hub.nid.interface import (
    Mismatch,
    NidRequest,
    NidResult,
    NidVerifier,
    NotFound,
    VerificationFailed,
    Verified,
)

__all__ = [
    "Mismatch",
    "NidRequest",
    "NidResult",
    "NidVerifier",
    "NotFound",
    "VerificationFailed",
    "Verified",
]
