"""Hybrid logical clock (Kulkarni et al. 2014).

A timestamp is one integer: ``wall_ms << 16 | counter``. It never goes backwards, even when the wall
clock does, and it absorbs timestamps received from other replicas. A received timestamp further ahead
of our wall clock than ``max_skew_ms`` is refused (``ClockSkewError``) or, with ``strict=False``,
ignored and reported, so one node with a wrong clock cannot drag every other clock into the future.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from .errors import ClockSkewError

COUNTER_BITS = 16
COUNTER_MAX = (1 << COUNTER_BITS) - 1
DEFAULT_MAX_SKEW_MS = 48 * 3600 * 1000


def pack(wall_ms: int, counter: int) -> int:
    return wall_ms << COUNTER_BITS | counter


def unpack(ts: int) -> tuple[int, int]:
    return ts >> COUNTER_BITS, ts & COUNTER_MAX


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class ReceiveResult:
    timestamp: int
    skewed: bool = False


class HybridLogicalClock:
    def __init__(
        self,
        now_ms: Callable[[], int] = wall_clock_ms,
        *,
        last: int = 0,
        max_skew_ms: int = DEFAULT_MAX_SKEW_MS,
    ) -> None:
        self._now_ms = now_ms
        self.last = last
        self.max_skew_ms = max_skew_ms

    def now(self) -> int:
        """A new timestamp, strictly greater than every one issued or received before."""
        wall = self._now_ms()
        last_wall, counter = unpack(self.last)
        if wall > last_wall:
            self.last = pack(wall, 0)
        elif counter < COUNTER_MAX:
            self.last = pack(last_wall, counter + 1)
        else:
            # Counter exhausted within one millisecond: borrow the next millisecond rather than wrap.
            self.last = pack(last_wall + 1, 0)
        return self.last

    def receive(self, remote: int, *, strict: bool = True) -> ReceiveResult:
        """Merge a timestamp seen on a message; the result is greater than both clocks."""
        wall = self._now_ms()
        remote_wall, remote_counter = unpack(remote)
        if remote_wall - wall > self.max_skew_ms:
            if strict:
                raise ClockSkewError(
                    f"timestamp is {(remote_wall - wall) / 3_600_000:.1f} h ahead of this clock "
                    f"(limit {self.max_skew_ms / 3_600_000:.1f} h); check the sender's date and time",
                    ahead_ms=remote_wall - wall,
                )
            return ReceiveResult(self.now(), skewed=True)
        last_wall, last_counter = unpack(self.last)
        new_wall = max(wall, last_wall, remote_wall)
        if new_wall == last_wall == remote_wall:
            counter = max(last_counter, remote_counter) + 1
        elif new_wall == last_wall:
            counter = last_counter + 1
        elif new_wall == remote_wall:
            counter = remote_counter + 1
        else:
            counter = 0
        if counter > COUNTER_MAX:
            new_wall, counter = new_wall + 1, 0
        self.last = pack(new_wall, counter)
        return ReceiveResult(self.last)
