"""Time-sortable UUIDv7 ids, generated offline without collisions (RFC 9562)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable


def uuid7(unix_ms: int | None = None, rand: Callable[[int], bytes] = os.urandom) -> str:
    """A new UUIDv7 as a string.

    ``unix_ms`` and ``rand`` are injectable so the deterministic simulation can replay ids exactly.
    """
    ms = int(time.time() * 1000) if unix_ms is None else unix_ms
    tail = int.from_bytes(rand(10), "big")
    rand_a = tail >> 68 & 0xFFF
    rand_b = tail & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    return str(uuid.UUID(int=value))


def uuid7_ms(value: str) -> int:
    """The millisecond timestamp embedded in a UUIDv7."""
    return uuid.UUID(value).int >> 80
