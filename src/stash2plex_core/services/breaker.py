"""The circuit breaker in front of Plex, persisted so a restarted worker does not hammer a dead server.

Why a failure-*rate* window rather than "N failures in a row" (reliability reference 8.2):
under 30 % random 5xx a run of five failures is only a matter of time (pybreaker made 18
spurious trips in 14,300 calls), while more than 60 % of the last 50 calls almost never
fails by chance. The window opens only once it holds ``breaker_min_failures`` failures:
counting *failures* rather than calls keeps a young window (just after start-up or a
close) from tripping on a lucky streak — a simulated 0.38 % chance per 1,000 calls of
30 % errors with "at least 20 calls", 0.08 % with "at least 20 failures" — and a total
outage still opens it at call 20. ``breaker_consecutive_failures`` (20) guarantees that
bound even when the window is full of old successes, and ``breaker_refusals`` refused
connections in a row (the server process is gone) open it sooner.

Only :class:`~stash2plex_core.errors.BackendUnavailableError` (unreachable, 5xx) counts as a
failure. Permanent errors, 404s, 429s and 401s say nothing about whether Plex is up, so
they are ignored: they count neither for nor against.

While open, the worker claims nothing (jobs wait instead of burning attempts) and probes
Plex's ``/identity`` (:meth:`~stash2plex_core.ports.plex.PlexGateway.ping`) after
``breaker_probe_base_seconds``, doubling to ``breaker_probe_max_seconds`` (5 s → 60 s).
The first successful probe half-opens it: one trial job at a time goes through (the next
as soon as the last one finished), probes continue every
``breaker_half_open_probe_seconds``, and ``breaker_close_after_probes`` successes in a row
close it, counting both probes and trial jobs that Plex answered. Counting real jobs is
what lets draining resume within a second of the first successful probe (the probe and
two quick trials) instead of after two more idle probes a second apart, while still only
one job at a time tests a server that just came back. A failed probe or a failed trial
re-opens it.

When a refused connection opened the breaker (or failed its last probe), Plex's process is
gone and its return is cheap to see: the worker then checks four times a second whether
Plex accepts TCP connections (:meth:`~stash2plex_core.ports.plex.PlexGateway.listening`, no
HTTP request) and, when it does, calls :meth:`CircuitBreaker.probe_now`. A restarted Plex is
probed within a second of listening again instead of at the next backoff step, and the
requests sent during the outage stay the probes'.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import deque
from collections.abc import Callable
from enum import StrEnum

import attrs

from stash2plex_core.errors import AuthenticationError
from stash2plex_core.errors import BackendUnavailableError
from stash2plex_core.models.health import BreakerState
from stash2plex_core.models.health import BreakerStatus
from stash2plex_core.ports.clock import Clock
from stash2plex_core.ports.state import StateStore
from stash2plex_core.serde import from_document
from stash2plex_core.serde import to_document
from stash2plex_core.settings import Settings


log = logging.getLogger("stash2plex.breaker")

NAMESPACE = "health"
KEY = "breaker"
_MAX_ERROR_TEXT = 500


class Transition(StrEnum):
    """A change of the breaker's state, returned so callers can react (outage log, ramp)."""

    OPENED = "opened"
    HALF_OPENED = "half_opened"
    REOPENED = "reopened"
    CLOSED = "closed"


def counts_as_failure(error: BaseException) -> bool:
    """Whether ``error`` says Plex itself is down (and so feeds the breaker)."""
    return isinstance(error, BackendUnavailableError)


def is_refusal(error: BaseException) -> bool:
    """Whether ``error`` is a refused connection: the server process is not listening.

    Adapters chain the original exception (``raise ... from exc``), so the chain is searched
    for :class:`ConnectionRefusedError`; an adapter may also set ``refused = True``.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError) or getattr(current, "refused", False) is True:
            return True
        if "connection refused" in str(current).lower():
            return True
        current = current.__cause__ or current.__context__
    return False


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:_MAX_ERROR_TEXT]


class CircuitBreaker:
    """A persisted, thread-safe circuit breaker.

    Its state lives in the :class:`StateStore` (namespace ``"health"``, key ``"breaker"``):
    written on every state change and probe, and every ``save_every`` recorded calls in
    between, so a restart loses at most a few window entries but never an open state.
    """

    def __init__(
        self,
        state: StateStore,
        clock: Clock,
        settings: Settings,
        *,
        namespace: str = NAMESPACE,
        key: str = KEY,
        save_every: int = 50,
    ) -> None:
        self.store = state
        self.clock = clock
        self.settings = settings
        self.namespace = namespace
        self.key = key
        self.save_every = max(1, save_every)
        self._lock = threading.RLock()
        self._unsaved = 0
        self._trial_in_flight = False
        #: Bumped on every half-open, so a trial that began before a reopen cannot count.
        self._generation = 0
        self._trial_generation = -1
        #: When the current run of failures began (``None`` after a success); the outage start.
        self.failing_since: dt.datetime | None = None
        #: When Plex was last seen back (the first successful probe of a recovery).
        self.recovered_at: dt.datetime | None = None
        self._load()

    # -- persistence

    def _load(self) -> None:
        document = self.store.get(self.namespace, self.key)
        loaded = (
            BreakerState()
            if document is None
            else from_document(BreakerState, document, source=f"state {self.namespace}/{self.key}")
        )
        with self._lock:
            self._state = attrs.evolve(loaded, window=())
            self._window: deque[bool] = deque(loaded.window, maxlen=self.settings.breaker_window)
            self._consecutive = 0
            for failed in reversed(self._window):
                if not failed:
                    break
                self._consecutive += 1

    def reload(self) -> None:
        """Re-read the persisted state (another process may have changed it)."""
        self._load()

    def save(self) -> None:
        """Persist the current state now."""
        with self._lock:
            document = to_document(self.snapshot())
            self._unsaved = 0
        self.store.put(self.namespace, self.key, document)

    def _touch(self, *, force: bool = False) -> None:
        self._unsaved += 1
        if force or self._unsaved >= self.save_every:
            self.save()

    # -- reading

    def snapshot(self) -> BreakerState:
        """The state as persisted, window included."""
        with self._lock:
            return attrs.evolve(self._state, window=tuple(self._window))

    @property
    def status(self) -> BreakerStatus:
        return self._state.status

    def failure_rate(self) -> float:
        """Share of failures among the calls in the window (0.0 when empty)."""
        with self._lock:
            return sum(self._window) / len(self._window) if self._window else 0.0

    def seconds_until_probe(self) -> float | None:
        """Seconds until the next probe is due (0 if due now); ``None`` while closed."""
        with self._lock:
            due = self._state.next_probe_at
            if self._state.status is BreakerStatus.CLOSED or due is None:
                return None
            return max(0.0, (due - self.clock.now()).total_seconds())

    def probe_due(self) -> bool:
        wait = self.seconds_until_probe()
        return wait is not None and wait <= 0

    # -- permits

    def ready(self) -> bool:
        """Whether a job could reach Plex now (without taking the permit)."""
        with self._lock:
            if self._state.status is BreakerStatus.CLOSED:
                return True
            if self._state.status is BreakerStatus.HALF_OPEN:
                return not self._trial_in_flight
            return False

    def try_acquire(self) -> bool:
        """Take a permit for one job: always while closed, one trial at a time while half-open, none while open."""
        with self._lock:
            if not self.ready():
                return False
            if self._state.status is BreakerStatus.HALF_OPEN:
                self._trial_in_flight = True
                self._trial_generation = self._generation
            return True

    def release(self, *, used: bool = True, ok: bool = True) -> Transition | None:
        """Give back a permit.

        :param used: ``False`` when the job never reached Plex (its trial told nothing).
        :param ok: whether Plex answered the job well. A used, ok trial counts as one
            half-open success (and may close the breaker: :attr:`Transition.CLOSED` is
            returned); a used trial that was not ok (a ``429``, a ``400``) counts for
            nothing, and the next trial may go. A failed call already re-opened it.
        """
        with self._lock:
            if not self._trial_in_flight:
                return None
            self._trial_in_flight = False
            if self._state.status is not BreakerStatus.HALF_OPEN or self._trial_generation != self._generation:
                return None
            if not (used and ok):
                return None
            return self._half_open_success(self.clock.now(), probe=False)

    # -- recording calls

    def record(self, error: BaseException | None) -> Transition | None:
        """Record one Plex call's outcome (``None`` = success); ignored errors change nothing."""
        if error is None:
            return self.record_success()
        if counts_as_failure(error):
            return self.record_failure(error)
        return None

    def record_success(self) -> Transition | None:
        with self._lock:
            self.failing_since = None
            if self._state.status is not BreakerStatus.CLOSED:
                return None  # a straggler; only probes move an open breaker
            self._window.append(False)
            self._consecutive = 0
            if self._state.consecutive_refusals:
                self._state = attrs.evolve(self._state, consecutive_refusals=0)
            self._touch()
            return None

    def record_failure(self, error: BaseException) -> Transition | None:
        """Record a counted failure; returns :attr:`Transition.OPENED` or ``REOPENED`` if it tripped."""
        with self._lock:
            now = self.clock.now()
            if self.failing_since is None:
                self.failing_since = now
            status = self._state.status
            if status is BreakerStatus.OPEN:
                return None
            if status is BreakerStatus.HALF_OPEN:
                return self._open(now, f"trial failed: {_describe(error)}", reopened=True, refused=is_refusal(error))
            self._window.append(True)
            self._consecutive += 1
            refusals = self._state.consecutive_refusals + (1 if is_refusal(error) else 0)
            self._state = attrs.evolve(self._state, consecutive_refusals=refusals, last_error=_describe(error))
            cause = self._trip_cause()
            if cause is not None:
                return self._open(
                    now, f"{cause}; last error {_describe(error)}", reopened=False, refused=is_refusal(error)
                )
            self._touch(force=refusals > 0)
            return None

    def _trip_cause(self) -> str | None:
        s = self.settings
        if self._state.consecutive_refusals >= s.breaker_refusals:
            return f"connection refused {self._state.consecutive_refusals} times in a row"
        if self._consecutive >= s.breaker_consecutive_failures:
            return f"{self._consecutive} consecutive failures"
        failures = sum(self._window)
        if failures >= s.breaker_min_failures and failures / len(self._window) > s.breaker_failure_rate:
            return f"{failures} of the last {len(self._window)} calls failed"
        return None

    # -- transitions

    def _open(self, now: dt.datetime, cause: str, *, reopened: bool, refused: bool) -> Transition:
        self._trial_in_flight = False
        self._generation += 1
        self._state = attrs.evolve(
            self._state,
            status=BreakerStatus.OPEN,
            opened_at=self._state.opened_at if reopened and self._state.opened_at else now,
            next_probe_at=now + dt.timedelta(seconds=self.settings.breaker_probe_base_seconds),
            probe_failures=0,
            probe_successes=0,
            last_error=cause[:_MAX_ERROR_TEXT],
            refused=refused,
        )
        self._touch(force=True)
        transition = Transition.REOPENED if reopened else Transition.OPENED
        log.warning(
            "circuit breaker %s: %s",
            transition.value,
            cause,
            extra={"event": f"breaker_{transition.value}", "breaker_cause": cause},
        )
        return transition

    def _close(self) -> Transition:
        self._window.clear()
        self._consecutive = 0
        self._trial_in_flight = False
        self._generation += 1
        self._state = BreakerState()
        self._touch(force=True)
        log.info("circuit breaker closed: Plex is back", extra={"event": "breaker_closed"})
        return Transition.CLOSED

    def probe(self, ping: Callable[[], object]) -> Transition | None:
        """Probe Plex with ``ping`` if a probe is due; returns the transition it caused.

        :raises AuthenticationError: the probe was refused for credentials (not a health issue).
        """
        if not self.probe_due():
            return None
        try:
            ping()
        except AuthenticationError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failed probe means "not healthy yet"
            return self.probe_failed(exc)
        return self.probe_succeeded()

    def probe_failed(self, error: BaseException) -> Transition | None:
        with self._lock:
            now = self.clock.now()
            if self._state.status is BreakerStatus.HALF_OPEN:
                return self._open(now, f"probe failed: {_describe(error)}", reopened=True, refused=is_refusal(error))
            failures = self._state.probe_failures + 1
            wait = min(
                self.settings.breaker_probe_max_seconds,
                self.settings.breaker_probe_base_seconds * 2.0 ** min(failures, 32),
            )
            self._state = attrs.evolve(
                self._state,
                probe_failures=failures,
                probe_successes=0,
                next_probe_at=now + dt.timedelta(seconds=wait),
                last_error=f"probe failed: {_describe(error)}",
                refused=is_refusal(error),
            )
            self._touch(force=True)
            return None

    def awaiting_listener(self) -> bool:
        """Whether the breaker is open on a refused connection, so Plex's return can be watched for."""
        with self._lock:
            return self._state.status is BreakerStatus.OPEN and self._state.refused

    def probe_now(self) -> bool:
        """Plex accepts connections again: make the next probe due now and restart its backoff.

        Returns ``False`` (and changes nothing) unless the breaker is open. The probe, not
        this, decides whether Plex is back; a Plex still starting (``503``) fails it, and
        the probes then back off from ``breaker_probe_base_seconds`` again.
        """
        with self._lock:
            if self._state.status is not BreakerStatus.OPEN:
                return False
            self._state = attrs.evolve(self._state, next_probe_at=self.clock.now(), probe_failures=0, refused=False)
            self._touch(force=True)
            return True

    def probe_succeeded(self) -> Transition | None:
        with self._lock:
            return self._half_open_success(self.clock.now(), probe=True)

    def _half_open_success(self, now: dt.datetime, *, probe: bool) -> Transition | None:
        """One success of a probe (any state but closed) or of a half-open trial job."""
        if self._state.status is BreakerStatus.CLOSED:
            return None
        successes = self._state.probe_successes + 1
        if self._state.status is BreakerStatus.OPEN:
            self.recovered_at = now
        if successes >= self.settings.breaker_close_after_probes:
            return self._close()
        transition = Transition.HALF_OPENED if self._state.status is BreakerStatus.OPEN else None
        if transition is not None:
            self._trial_in_flight = False
            self._generation += 1
            log.info("circuit breaker half-open: Plex answered a probe", extra={"event": "breaker_half_opened"})
        next_probe = (
            now + dt.timedelta(seconds=self.settings.breaker_half_open_probe_seconds)
            if probe or self._state.next_probe_at is None
            else self._state.next_probe_at
        )
        self._state = attrs.evolve(
            self._state,
            status=BreakerStatus.HALF_OPEN,
            probe_successes=successes,
            probe_failures=0,
            next_probe_at=next_probe,
        )
        self._touch(force=True)
        return transition

    def reset(self) -> None:
        """Force the breaker closed (an operator's override)."""
        with self._lock:
            self._close()


__all__ = ["KEY", "NAMESPACE", "CircuitBreaker", "Transition", "counts_as_failure", "is_refusal"]
