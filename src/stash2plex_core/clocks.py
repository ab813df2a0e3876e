"""The two clocks: the real one, and a manual one that tests (and the contracts) drive."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import TYPE_CHECKING
from typing import ClassVar
from typing import Self


if TYPE_CHECKING:
    from stash2plex_core.ports.clock import Clock
    from stash2plex_core.settings import Settings


class SystemClock:
    """Wall-clock time in UTC and real sleeps."""

    id: ClassVar[str] = "system"
    priority: ClassVar[int] = 1

    @classmethod
    def viable(cls) -> bool:
        return True

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock | None = None) -> Self:
        return cls()

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"cannot sleep a negative time ({seconds})")
        time.sleep(seconds)


class ManualClock:
    """A clock that only moves when told to: :meth:`advance`, or :meth:`sleep` (which advances).

    Thread-safe, so a test can advance it while a worker thread sleeps on it.
    """

    id: ClassVar[str] = "memory"
    priority: ClassVar[int] = 0
    EPOCH: ClassVar[dt.datetime] = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    def __init__(self, start: dt.datetime | None = None) -> None:
        if start is not None and start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self._now = (start or self.EPOCH).astimezone(dt.UTC)
        self._elapsed = 0.0
        self._lock = threading.Lock()
        #: Every duration passed to :meth:`sleep`, for assertions about back-off.
        self.sleeps: list[float] = []

    @classmethod
    def viable(cls) -> bool:
        return True

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock | None = None) -> Self:
        return cls()

    def now(self) -> dt.datetime:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        with self._lock:
            return self._elapsed

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"a clock cannot go backwards ({seconds})")
        with self._lock:
            self._now += dt.timedelta(seconds=seconds)
            self._elapsed += seconds

    def sleep(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"cannot sleep a negative time ({seconds})")
        self.sleeps.append(seconds)
        self.advance(seconds)


__all__ = ["ManualClock", "SystemClock"]
