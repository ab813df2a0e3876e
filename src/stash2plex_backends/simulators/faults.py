"""Request recording and fault injection shared by both simulators.

A :class:`Fault` matches requests by method and a regular expression on the path (the
query string excluded), optionally skipping the first ``after`` matches, firing at most
``times`` times and only with a given ``probability``, so a test can say "the third detail
GET answers 503 twice" or "30 % of requests answer 503".
"""

from __future__ import annotations

import random
import re
import threading
import time
from typing import Literal

import attrs


FaultAction = Literal["status", "delay", "hang", "reset", "malformed"]


@attrs.frozen
class RecordedRequest:
    """One request as the simulator received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float


@attrs.define
class Fault:
    """A fault to inject into matching requests.

    ``action``:

    * ``"status"``: answer ``status`` with ``body`` and ``headers`` (for example 429 with
      ``{"Retry-After": "3"}``);
    * ``"delay"``: wait ``delay`` seconds, then answer normally;
    * ``"hang"``: wait ``delay`` seconds (default 30) without answering, then drop the
      connection; use it past the client's read timeout;
    * ``"reset"``: close the connection without answering;
    * ``"malformed"``: answer 200 with a truncated, unparseable body.

    ``probability`` (0-1) makes the fault fire on that share of the matching requests
    (drawn from the injector's seeded random source); when it does not fire, the next
    matching fault is considered, so a random 503 can sit in front of a steady delay.

    ``fired_at`` holds the wall-clock time (:func:`time.time`, the clock the system
    clock reads) at which each firing was decided, in order, so a test can check that a
    client waited at least ``Retry-After`` after the answer it was given.
    """

    path: str = ".*"
    action: FaultAction = "status"
    method: str | None = None
    status: int = 500
    headers: dict[str, str] = attrs.field(factory=dict)
    body: bytes = b""
    delay: float = 0.0
    after: int = 0
    times: int | None = None
    probability: float = 1.0
    seen: int = 0
    fired: int = 0
    fired_at: list[float] = attrs.field(factory=list)
    _regex: re.Pattern[str] = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"probability must be within [0, 1], got {self.probability!r}")
        self._regex = re.compile(self.path)

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self._regex.search(path) is not None

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times


class FaultInjector:
    """Thread-safe list of faults; the first live matching fault that fires wins.

    ``seed`` seeds the random source of probabilistic faults (see :attr:`Fault.probability`).
    """

    def __init__(self, seed: int | None = 0) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._rng = random.Random(seed)

    def reseed(self, seed: int | None) -> None:
        with self._lock:
            self._rng = random.Random(seed)

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pick(self, method: str, path: str) -> Fault | None:
        """Return the fault to apply to this request, counting it, or ``None``."""
        with self._lock:
            for fault in self._faults:
                if fault.exhausted or not fault.matches(method, path):
                    continue
                fault.seen += 1
                if fault.seen <= fault.after:
                    continue
                if fault.probability < 1.0 and self._rng.random() >= fault.probability:
                    continue
                fault.fired += 1
                fault.fired_at.append(time.time())
                return fault
        return None


class RequestLog:
    """Every request a simulator received, in order (thread-safe)."""

    def __init__(self) -> None:
        self._items: list[RecordedRequest] = []
        self._lock = threading.Lock()

    def append(self, request: RecordedRequest) -> None:
        with self._lock:
            self._items.append(request)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def all(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._items)

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """Count requests, optionally by method and a regex searched in the path."""
        regex = re.compile(path) if path is not None else None
        return sum(
            1
            for r in self.all()
            if (method is None or r.method == method.upper()) and (regex is None or regex.search(r.path))
        )

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


def now() -> float:
    return time.time()


__all__ = ["Fault", "FaultAction", "FaultInjector", "RecordedRequest", "RequestLog"]
