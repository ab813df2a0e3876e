"""Graduated drain after an outage: do not greet a server that just came back with the whole backlog.

Modelled on Envoy's slow start and AIMD (reliability reference 8.4): as soon as Plex is
seen back (the breaker's first successful probe), the rate starts at
``ramp_start_fraction`` (10 %) of the *full rate* with the first job allowed at once,
climbs linearly to the full rate over ``ramp_window_seconds`` (60 s), and halves whenever
more than ``ramp_error_rate`` (30 %) of the recent jobs failed against Plex; it doubles
back once they succeed again. When the window has passed at full multiplier the ramp ends
and draining is unlimited again.

The full rate is what the worker actually managed before the outage: successful jobs per
second over the last ``THROUGHPUT_WINDOW`` seconds before it (measured only while no ramp
limits the drain), or ``ramp_full_rate`` when that is higher or nothing was measured. A
fixed constant would start a fast drain (about 174 jobs/s on the reference machine) at
3 % of its real rate. The ramp and the measured rate are persisted, so a worker restarted
mid-ramp or mid-outage does not jump straight to full speed.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import deque

import attrs

from stash2plex_core.ports.clock import Clock
from stash2plex_core.ports.state import StateStore
from stash2plex_core.serde import from_document
from stash2plex_core.serde import to_document
from stash2plex_core.settings import Settings


NAMESPACE = "health"
KEY = "ramp"
#: Where the measured pre-outage throughput is kept between the outage and the ramp.
BASELINE_KEY = "ramp-baseline"
#: Seconds of successful jobs (ending at the last one) the pre-outage rate is taken over,
#: and the fewest successes that make a measurement.
THROUGHPUT_WINDOW = 10.0
THROUGHPUT_MIN_SAMPLES = 20
#: Outcomes a verdict on the error rate needs, and how many are kept.
MIN_SAMPLES = 10
SAMPLES = 20
#: The lowest the multiplier goes: halving stops at 1/32 of the ramp's rate.
MIN_MULTIPLIER = 1 / 32


@attrs.frozen
class RampState:
    """A ramp in progress: when recovery began and the current error multiplier."""

    started_at: dt.datetime
    multiplier: float = 1.0
    #: Jobs per second the ramp climbs to (``None``: ``ramp_full_rate``).
    full_rate: float | None = None


class RecoveryRamp:
    """A token bucket (capacity 1, no bursts) whose rate follows the recovery ramp.

    :meth:`acquire` returns how long to wait before the next job may start; it is ``0``
    whenever no ramp is running.
    """

    def __init__(self, settings: Settings, clock: Clock, state: StateStore | None = None) -> None:
        self.settings = settings
        self.clock = clock
        self.store = state
        self._lock = threading.Lock()
        self._outcomes: deque[bool] = deque(maxlen=SAMPLES)
        self._next_slot: float | None = None
        self._ramp: RampState | None = None
        #: Monotonic times of successful jobs while no ramp was running (for the full rate).
        self._successes: deque[float] = deque(maxlen=4096)
        self._baseline: float | None = None
        if state is not None:
            document = state.get(NAMESPACE, KEY)
            if document is not None:
                self._ramp = from_document(RampState, document, source=f"state {NAMESPACE}/{KEY}")
            baseline = state.get(NAMESPACE, BASELINE_KEY)
            if baseline is not None and isinstance(baseline.get("jobs_per_second"), int | float):
                self._baseline = float(baseline["jobs_per_second"])

    def _save(self) -> None:
        if self.store is None:
            return
        if self._ramp is None:
            self.store.delete(NAMESPACE, KEY)
        else:
            self.store.put(NAMESPACE, KEY, to_document(self._ramp))

    @property
    def active(self) -> bool:
        with self._lock:
            return self._current() is not None

    @property
    def multiplier(self) -> float:
        with self._lock:
            return self._ramp.multiplier if self._ramp is not None else 1.0

    def measured_rate(self) -> float | None:
        """Successful jobs per second over the last :data:`THROUGHPUT_WINDOW` of unthrottled work."""
        with self._lock:
            return self._measured()

    def _measured(self) -> float | None:
        if not self._successes:
            return None
        last = self._successes[-1]
        recent = [t for t in self._successes if t >= last - THROUGHPUT_WINDOW]
        span = last - recent[0]
        if len(recent) < THROUGHPUT_MIN_SAMPLES or span <= 0:
            return None
        return (len(recent) - 1) / span

    def capture(self) -> float | None:
        """An outage began: keep the rate measured before it as the next ramp's full rate.

        Without a fresh measurement (too few jobs since the last ramp) the previous one is kept.
        """
        with self._lock:
            measured = self._measured()
            if measured is not None:
                self._baseline = measured
                if self.store is not None:
                    self.store.put(NAMESPACE, BASELINE_KEY, {"jobs_per_second": measured})
            return self._baseline

    def full_rate(self) -> float:
        """The rate a ramp starting now would climb to."""
        with self._lock:
            return self._full_rate()

    def _full_rate(self) -> float:
        return max(self._baseline or 0.0, self.settings.ramp_full_rate)

    def start(self, at: dt.datetime | None = None) -> None:
        """Recovery began ``at`` (default now): restart the ramp from its lowest rate."""
        with self._lock:
            if self.settings.ramp_window_seconds <= 0:
                self._ramp = None
            else:
                self._ramp = RampState(started_at=at or self.clock.now(), full_rate=self._full_rate())
            self._outcomes.clear()
            self._successes.clear()
            self._next_slot = None
            self._save()

    def stop(self) -> None:
        """End any ramp (full rate from now on)."""
        with self._lock:
            self._ramp = None
            self._next_slot = None
            self._save()

    def _current(self) -> RampState | None:
        """The ramp if still running; ends it once the window passed at full multiplier."""
        ramp = self._ramp
        if ramp is None:
            return None
        elapsed = (self.clock.now() - ramp.started_at).total_seconds()
        if elapsed >= self.settings.ramp_window_seconds and ramp.multiplier >= 1.0:
            self._ramp = None
            self._next_slot = None
            self._save()
            return None
        return ramp

    def rate(self) -> float | None:
        """Jobs per second allowed now; ``None`` when unlimited."""
        with self._lock:
            return self._rate()

    def _rate(self) -> float | None:
        ramp = self._current()
        if ramp is None:
            return None
        s = self.settings
        elapsed = max(0.0, (self.clock.now() - ramp.started_at).total_seconds())
        fraction = max(s.ramp_start_fraction, min(1.0, elapsed / s.ramp_window_seconds))
        full = ramp.full_rate if ramp.full_rate is not None else s.ramp_full_rate
        return full * fraction * ramp.multiplier

    def acquire(self) -> float:
        """Reserve the next start slot; returns the seconds to wait for it (0 = go now)."""
        with self._lock:
            rate = self._rate()
            if rate is None:
                return 0.0
            now = self.clock.monotonic()
            slot = now if self._next_slot is None else max(now, self._next_slot)
            self._next_slot = slot + 1.0 / rate
            return slot - now

    def record(self, ok: bool) -> None:
        """One job's outcome against Plex: halves a running ramp's rate when errors climb.

        Outside a ramp, successes measure the throughput a later ramp climbs back to.
        """
        with self._lock:
            ramp = self._current()
            if ramp is None:
                if ok:
                    self._successes.append(self.clock.monotonic())
                return
            self._outcomes.append(ok)
            if len(self._outcomes) < MIN_SAMPLES:
                return
            errors = self._outcomes.count(False) / len(self._outcomes)
            multiplier = ramp.multiplier
            if errors > self.settings.ramp_error_rate:
                multiplier = max(MIN_MULTIPLIER, multiplier / 2)
            elif errors < self.settings.ramp_error_rate / 3 and multiplier < 1.0:
                multiplier = min(1.0, multiplier * 2)
            else:
                return
            self._outcomes.clear()
            if multiplier != ramp.multiplier:
                self._ramp = attrs.evolve(ramp, multiplier=multiplier)
                self._save()


__all__ = ["BASELINE_KEY", "KEY", "MIN_MULTIPLIER", "NAMESPACE", "RampState", "RecoveryRamp"]
