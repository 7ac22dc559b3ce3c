"""The hybrid logical clock (``sync_protocol.hlc``): never backwards, absorbs remote time within the skew
limit, borrows a millisecond when its counter runs out, and refuses or flags timestamps from the future."""

from __future__ import annotations

import datetime as dt

import pytest
from freezegun import freeze_time
from hypothesis import example, given
from hypothesis import strategies as st
from protocol_support import FakeWall, props

from sync_protocol.errors import ClockSkewError
from sync_protocol.hlc import COUNTER_MAX, HybridLogicalClock, pack, unpack

SKEW = 1_000  # ms; small so generated timestamps land on both sides of the limit

walls = st.integers(min_value=0, max_value=20_000)
counters = st.sampled_from([0, 1, COUNTER_MAX - 1, COUNTER_MAX]) | st.integers(min_value=0, max_value=COUNTER_MAX)
# ("now", wall) | ("recv", wall, remote_wall, remote_counter, strict)
steps = st.one_of(
    st.tuples(st.just("now"), walls),
    st.tuples(st.just("recv"), walls, walls, counters, st.booleans()),
)


@props(300)
@given(st.lists(steps, min_size=1, max_size=40))
@example([("now", 10), ("now", 5), ("recv", 5, 10, COUNTER_MAX, True), ("now", 0)])
@example([("recv", 100, 1101, 0, False), ("now", 100)])
def test_clock_is_strictly_monotonic_whatever_the_wall_clock_does(ops: list[tuple]) -> None:
    wall = FakeWall(0)
    clock = HybridLogicalClock(wall, max_skew_ms=SKEW)
    issued = 0
    for op in ops:
        wall.ms = op[1]
        if op[0] == "now":
            ts = clock.now()
            assert ts > issued
            assert unpack(ts)[0] >= wall.ms  # never behind the wall clock either
        else:
            _, _, remote_wall, remote_counter, strict = op
            remote = pack(remote_wall, remote_counter)
            before = clock.last
            ahead = remote_wall - wall.ms > SKEW
            if ahead and strict:
                with pytest.raises(ClockSkewError):
                    clock.receive(remote, strict=True)
                assert clock.last == before  # refused: nothing absorbed
                continue
            result = clock.receive(remote, strict=strict)
            ts = result.timestamp
            assert ts > issued
            assert ts == clock.last
            if ahead:
                # flagged, and the remote time is not absorbed: the clock only ticked on its own
                assert result.skewed
                assert ts == HybridLogicalClock(FakeWall(wall.ms), last=before).now()
            else:
                assert not result.skewed
                assert ts > remote
        issued = ts


@props(200)
@given(walls, walls, counters, walls, counters)
def test_receive_is_greater_than_both_clocks(wall_ms: int, last_wall: int, last_counter: int, rw: int, rc: int) -> None:
    wall = FakeWall(wall_ms)
    clock = HybridLogicalClock(wall, last=pack(last_wall, last_counter), max_skew_ms=10**9)
    local_before = clock.last
    result = clock.receive(pack(rw, rc))
    assert result.timestamp > local_before
    assert result.timestamp > pack(rw, rc)
    assert not result.skewed


def test_wall_clock_jumping_back_an_hour_keeps_the_clock_ahead() -> None:
    wall = FakeWall(10_000_000)
    clock = HybridLogicalClock(wall)
    first = clock.now()
    wall.ms -= 3_600_000
    second = clock.now()
    assert second > first
    assert unpack(second) == (10_000_000, 1)


def test_counter_overflow_borrows_the_next_millisecond() -> None:
    wall = FakeWall(5_000)
    clock = HybridLogicalClock(wall, last=pack(5_000, COUNTER_MAX - 1))
    assert unpack(clock.now()) == (5_000, COUNTER_MAX)
    assert unpack(clock.now()) == (5_001, 0)  # not a wrap to (5_000, 0)
    assert unpack(clock.now()) == (5_001, 1)


@pytest.mark.parametrize(
    ("last", "remote", "expected"),
    [
        (pack(5_000, COUNTER_MAX), pack(5_000, 3), (5_001, 0)),  # all three walls equal, local counter full
        (pack(5_000, 3), pack(5_000, COUNTER_MAX), (5_001, 0)),  # remote counter full
        (pack(4_000, 0), pack(5_000, COUNTER_MAX), (5_001, 0)),  # remote ahead of local, equal to wall
        (pack(5_000, COUNTER_MAX), pack(4_000, 0), (5_001, 0)),  # local ahead of remote
    ],
)
def test_receive_borrows_a_millisecond_on_counter_overflow(last: int, remote: int, expected: tuple) -> None:
    clock = HybridLogicalClock(FakeWall(5_000), last=last)
    assert unpack(clock.receive(remote).timestamp) == expected


def test_timestamp_beyond_max_skew_is_refused_when_strict() -> None:
    wall = FakeWall(1_000_000)
    clock = HybridLogicalClock(wall, max_skew_ms=3_600_000)
    clock.now()
    before = clock.last
    far = pack(wall.ms + 3_600_001, 0)
    with pytest.raises(ClockSkewError) as caught:
        clock.receive(far)
    assert caught.value.code == "clock_skew"
    assert caught.value.details["ahead_ms"] == 3_600_001
    assert "check the sender's date and time" in caught.value.message
    assert clock.last == before
    # exactly at the limit is still accepted and absorbed
    at_limit = pack(wall.ms + 3_600_000, 0)
    assert clock.receive(at_limit).timestamp > at_limit


def test_timestamp_beyond_max_skew_is_flagged_and_not_absorbed_when_lenient() -> None:
    wall = FakeWall(1_000_000)
    clock = HybridLogicalClock(wall, max_skew_ms=3_600_000)
    far = pack(wall.ms + 10 * 3_600_000, 0)
    result = clock.receive(far, strict=False)
    assert result.skewed
    assert unpack(result.timestamp) == (1_000_000, 0)
    # later timestamps stay on this clock's own time, not dragged into the future
    wall.advance(5)
    assert unpack(clock.now()) == (1_000_005, 0)


def test_default_wall_clock_under_freezegun_going_backwards() -> None:
    with freeze_time("2026-03-01 10:00:00") as frozen:
        clock = HybridLogicalClock()
        a = clock.now()
        assert unpack(a)[0] == int(dt.datetime(2026, 3, 1, 10, tzinfo=dt.UTC).timestamp() * 1000)
        frozen.move_to("2026-03-01 09:00:00")  # NTP correction or a laptop with a wrong date fixed
        b = clock.now()
        frozen.move_to("2026-03-01 10:00:00.005")
        c = clock.now()
    assert a < b < c
    assert unpack(b) == (unpack(a)[0], 1)
    assert unpack(c) == (unpack(a)[0] + 5, 0)
