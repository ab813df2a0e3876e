"""The Clock contract."""

from __future__ import annotations

import datetime as dt

import pytest

from stash2plex_core.ports.clock import Clock


class ClockContract:
    """Subclass, and provide a ``clock`` fixture. Sleeps are short, so real clocks pass quickly."""

    @pytest.fixture
    def clock(self) -> Clock:
        raise NotImplementedError("provide a `clock` fixture")

    def test_is_a_clock(self, clock: Clock) -> None:
        assert isinstance(clock, Clock)

    def test_now_is_aware_utc(self, clock: Clock) -> None:
        now = clock.now()
        assert now.tzinfo is not None
        assert now.utcoffset() == dt.timedelta(0)

    def test_time_never_goes_backwards(self, clock: Clock) -> None:
        readings = [(clock.now(), clock.monotonic()) for _ in range(50)]
        assert [r[0] for r in readings] == sorted(r[0] for r in readings)
        assert [r[1] for r in readings] == sorted(r[1] for r in readings)

    def test_sleep_moves_time_forward(self, clock: Clock) -> None:
        before_now, before_mono = clock.now(), clock.monotonic()
        clock.sleep(0.02)
        assert clock.monotonic() - before_mono >= 0.02
        assert clock.now() - before_now >= dt.timedelta(seconds=0.015)

    def test_negative_sleep_is_an_error(self, clock: Clock) -> None:
        with pytest.raises(ValueError, match="negative"):
            clock.sleep(-1)


__all__ = ["ClockContract"]
