"""The Clock port: every time-dependent rule asks it, so tests can drive time."""

from __future__ import annotations

import datetime as dt
from typing import Protocol
from typing import runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """A source of time.

    Promises a third-party implementation must keep (the clock contract checks them):

    * :meth:`now` returns a timezone-aware datetime in UTC and never goes backwards;
    * :meth:`monotonic` returns seconds from an arbitrary origin, never decreasing;
    * :meth:`sleep` blocks (or, for a fake, advances time) by ``seconds`` and raises
      :class:`ValueError` for a negative value; after ``sleep(s)`` both :meth:`now` and
      :meth:`monotonic` have moved forward by at least ``s``.
    """

    def now(self) -> dt.datetime: ...

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


__all__ = ["Clock"]
