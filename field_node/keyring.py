"""Operators' wrapped copies of the database key, and the login throttle.

The database key is 32 random bytes. Each operator keeps a copy of it encrypted (AES-256-GCM) under a
key derived from their password with scrypt; ``keyring.json`` holds only salts, scrypt parameters and
those wrapped copies, so the file is safe to leave next to the database. Changing a password re-wraps
the same key; the database is never re-encrypted.

Failed logins are throttled per operator name with a lockout window that doubles after each further
failure; the counters live in ``login-throttle.json`` so restarting the process does not reset them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import LoginThrottledError, OperatorExistsError, WrongPasswordError

KEYRING_FILE = "keyring.json"
THROTTLE_FILE = "login-throttle.json"
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
FREE_ATTEMPTS = 3  # failures before the lockout window starts
BASE_LOCK_S = 2.0
MAX_LOCK_S = 15 * 60.0


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=256 * 1024 * 1024, dklen=32)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    # Write-then-rename, so a crash never leaves half a keyring (which would lock everyone out).
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


@dataclass
class Keyring:
    path: Path
    operators: dict[str, dict[str, Any]]

    @classmethod
    def load(cls, data_dir: Path) -> Keyring:
        path = Path(data_dir) / KEYRING_FILE
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(path, dict(data.get("operators", {})))

    @classmethod
    def create(cls, data_dir: Path) -> Keyring:
        ring = cls(Path(data_dir) / KEYRING_FILE, {})
        return ring

    def save(self) -> None:
        _write_json(self.path, {"version": 1, "kdf": "scrypt", "cipher": "AES-256-GCM", "operators": self.operators})

    def add(self, username: str, password: str, db_key: bytes, *, replace: bool = False, n: int = SCRYPT_N) -> None:
        if username in self.operators and not replace:
            raise OperatorExistsError(f"operator {username!r} already exists")
        salt, nonce = os.urandom(16), os.urandom(12)
        kek = _derive(password, salt, n, SCRYPT_R, SCRYPT_P)
        wrapped = AESGCM(kek).encrypt(nonce, db_key, username.encode("utf-8"))
        self.operators[username] = {
            "salt": _b64(salt),
            "n": n,
            "r": SCRYPT_R,
            "p": SCRYPT_P,
            "nonce": _b64(nonce),
            "wrapped_key": _b64(wrapped),
        }
        self.save()

    def unwrap(self, username: str, password: str) -> bytes:
        """The database key, if ``password`` is right for ``username``; else ``WrongPasswordError``."""
        entry = self.operators.get(username)
        if entry is None:
            # Spend the same time as a real check, so timing does not reveal which names exist.
            _derive(password, b"\0" * 16, SCRYPT_N, SCRYPT_R, SCRYPT_P)
            raise WrongPasswordError("wrong operator name or password")
        kek = _derive(password, _unb64(entry["salt"]), int(entry["n"]), int(entry["r"]), int(entry["p"]))
        try:
            return AESGCM(kek).decrypt(_unb64(entry["nonce"]), _unb64(entry["wrapped_key"]), username.encode("utf-8"))
        except InvalidTag as exc:
            raise WrongPasswordError("wrong operator name or password") from exc


class LoginThrottle:
    """Per-operator failed-login counter with a doubling lockout window, persisted in a small file."""

    def __init__(self, data_dir: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(data_dir) / THROTTLE_FILE
        self.clock = clock

    def _load(self) -> dict[str, dict[str, float]]:
        try:
            data: dict[str, dict[str, float]] = json.loads(self.path.read_text(encoding="utf-8"))
            return data
        except (FileNotFoundError, ValueError):
            return {}

    def check(self, username: str) -> None:
        entry = self._load().get(username)
        if entry is None:
            return
        wait = float(entry.get("locked_until", 0)) - self.clock()
        if wait > 0:
            raise LoginThrottledError(
                f"too many failed logins for {username!r}; try again in {int(wait) + 1} seconds", retry_after=wait
            )

    def failed(self, username: str) -> None:
        data = self._load()
        entry = data.setdefault(username, {"failures": 0, "locked_until": 0})
        entry["failures"] = int(entry["failures"]) + 1
        over = int(entry["failures"]) - FREE_ATTEMPTS
        if over >= 0:
            entry["locked_until"] = self.clock() + min(BASE_LOCK_S * 2**over, MAX_LOCK_S)
        _write_json(self.path, data)

    def succeeded(self, username: str) -> None:
        data = self._load()
        if data.pop(username, None) is not None:
            _write_json(self.path, data)
