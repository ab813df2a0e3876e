"""The recovery ramp: 10 % at once, full rate after the window, halving on errors."""

from __future__ import annotations

import pytest

from stash2plex_backends.memory import MemoryStateStore
from stash2plex_core.clocks import ManualClock
from stash2plex_core.services.ramp import MIN_MULTIPLIER
from stash2plex_core.services.ramp import RecoveryRamp
from stash2plex_core.settings import Settings


def make(**overrides: float) -> tuple[RecoveryRamp, ManualClock, MemoryStateStore]:
    """A ramp starting at 10 % (the issue's minimum; the default has a margin above it)."""
    clock = ManualClock()
    store = MemoryStateStore(clock)
    settings = Settings(**{"ramp_start_fraction": 0.1, **overrides})  # type: ignore[arg-type]
    return RecoveryRamp(settings, clock, store), clock, store


def test_no_ramp_means_no_limit() -> None:
    ramp, _, _ = make()
    assert not ramp.active
    assert ramp.rate() is None
    assert all(ramp.acquire() == 0.0 for _ in range(100))


def test_first_job_goes_at_once_at_ten_percent() -> None:
    ramp, _, _ = make()
    ramp.start()
    assert ramp.active
    assert ramp.rate() == pytest.approx(5.0)  # 10 % of 50 jobs/s
    assert ramp.acquire() == 0.0
    assert ramp.acquire() == pytest.approx(0.2)


def test_rate_climbs_linearly_and_the_ramp_ends_at_full_rate() -> None:
    ramp, clock, store = make()
    ramp.start()
    clock.advance(30)
    assert ramp.rate() == pytest.approx(25.0)
    clock.advance(29)
    assert ramp.rate() == pytest.approx(50 * 59 / 60)
    clock.advance(1)
    assert ramp.rate() is None
    assert not ramp.active
    assert store.get("health", "ramp") is None


def test_pacing_over_the_whole_window() -> None:
    """Simulate a drain: starts within a second, speeds up, never exceeds the ramp's rate."""
    ramp, clock, _ = make()
    ramp.start()
    starts: list[float] = []
    while clock.monotonic() < 70:
        wait = ramp.acquire()
        clock.advance(wait if wait > 0 else 0.0005)  # once unlimited, jobs take 0.5 ms each
        starts.append(clock.monotonic())
    assert starts[0] == 0.0005  # the first job did not wait
    first_second = sum(1 for t in starts if t < 1.0)
    last_second = sum(1 for t in starts if 68.0 <= t < 69.0)
    assert 5 <= first_second <= 6
    assert last_second > 1000  # ramp over: unlimited
    assert sum(1 for t in starts if 59.0 <= t < 60.0) <= 51


def test_errors_above_thirty_percent_halve_the_rate_and_recovery_restores_it() -> None:
    ramp, clock, store = make()
    ramp.start()
    clock.advance(30)
    before = ramp.rate()
    for ok in [True] * 6 + [False] * 4:  # 40 % errors
        ramp.record(ok)
    assert ramp.multiplier == 0.5
    assert ramp.rate() == pytest.approx(before / 2)  # type: ignore[operator]
    assert store.get("health", "ramp")["multiplier"] == 0.5  # type: ignore[index]
    for _ in range(10):
        ramp.record(True)
    assert ramp.multiplier == 1.0


def test_thirty_percent_exactly_does_not_halve() -> None:
    ramp, _, _ = make()
    ramp.start()
    for ok in [True] * 7 + [False] * 3:
        ramp.record(ok)
    assert ramp.multiplier == 1.0


def test_ramp_outlasts_its_window_while_errors_keep_the_rate_down() -> None:
    ramp, clock, _ = make()
    ramp.start()
    for _ in range(10):
        ramp.record(False)
    clock.advance(120)
    assert ramp.active
    assert ramp.rate() == pytest.approx(25.0)
    for _ in range(10):
        ramp.record(True)
    assert not ramp.active


def test_halving_has_a_floor() -> None:
    ramp, _, _ = make()
    ramp.start()
    for _ in range(200):
        ramp.record(False)
    assert ramp.multiplier == MIN_MULTIPLIER
    assert ramp.rate() == pytest.approx(5.0 * MIN_MULTIPLIER)


def test_ramp_survives_a_restart() -> None:
    ramp, clock, store = make()
    ramp.start()
    clock.advance(15)
    again = RecoveryRamp(Settings(), clock, store)
    assert again.active
    assert again.rate() == pytest.approx(12.5)


def test_zero_window_disables_the_ramp() -> None:
    ramp, _, _ = make(ramp_window_seconds=0)
    ramp.start()
    assert not ramp.active
    assert ramp.acquire() == 0.0


def test_stop_ends_it() -> None:
    ramp, _, _ = make()
    ramp.start()
    ramp.stop()
    assert ramp.rate() is None


def drain_at(ramp: RecoveryRamp, clock: ManualClock, rate: float, jobs: int) -> None:
    for _ in range(jobs):
        clock.advance(1 / rate)
        ramp.record(True)


def test_full_rate_is_the_throughput_measured_before_the_outage() -> None:
    ramp, clock, store = make(ramp_full_rate=1.0)
    drain_at(ramp, clock, 174.0, 2000)
    assert ramp.measured_rate() == pytest.approx(174.0)
    assert ramp.capture() == pytest.approx(174.0)
    clock.advance(20)  # the outage
    ramp.start()
    assert ramp.rate() == pytest.approx(17.4)  # 10 % of what the drain really did, not of a constant
    assert RecoveryRamp(Settings(ramp_full_rate=1.0, ramp_start_fraction=0.1), clock, store).rate() == pytest.approx(
        17.4
    )
    assert store.get("health", "ramp-baseline") == {"jobs_per_second": pytest.approx(174.0)}


def test_the_setting_is_the_floor_and_the_fallback() -> None:
    ramp, clock, _ = make()
    drain_at(ramp, clock, 20.0, 200)
    ramp.capture()
    ramp.start()
    assert ramp.rate() == pytest.approx(5.0)  # 10 % of ramp_full_rate (50), higher than 20 jobs/s
    fresh, _, _ = make(ramp_full_rate=30.0)
    assert fresh.capture() is None  # nothing measured
    fresh.start()
    assert fresh.rate() == pytest.approx(3.0)


def test_a_throttled_ramp_does_not_become_the_next_full_rate() -> None:
    ramp, clock, _ = make(ramp_full_rate=1.0)
    drain_at(ramp, clock, 100.0, 500)
    ramp.capture()
    ramp.start()
    drain_at(ramp, clock, 10.0, 100)  # a second outage hits during the ramp
    assert ramp.measured_rate() is None
    assert ramp.capture() == pytest.approx(100.0)  # the last unthrottled measurement is kept


def test_the_ramp_can_start_at_the_moment_recovery_was_seen() -> None:
    ramp, clock, _ = make()
    seen = clock.now()
    clock.advance(30)
    ramp.start(at=seen)
    assert ramp.rate() == pytest.approx(25.0)  # half-way through the 60 s window already
