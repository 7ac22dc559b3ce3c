"""Bearer tokens for the JSON API (kept in memory: a restart logs every client out, as it locks the
database too) and the login step shared by the UI and the API."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class TokenInfo:
    operator: str
    expires_at: float


class TokenStore:
    def __init__(self, ttl_s: float = 12 * 3600) -> None:
        self.ttl_s = ttl_s
        self._tokens: dict[str, TokenInfo] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(token: str) -> str:
        # Only digests are kept, so a memory dump of the process does not hand out live tokens.
        return hashlib.sha256(token.encode("utf-8")).hexdigest()

    def issue(self, operator: str) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[self._key(token)] = TokenInfo(operator, time.time() + self.ttl_s)
        return token

    def operator(self, token: str) -> str | None:
        with self._lock:
            info = self._tokens.get(self._key(token))
            if info is None:
                return None
            if info.expires_at < time.time():
                self._tokens.pop(self._key(token), None)
                return None
            return info.operator
