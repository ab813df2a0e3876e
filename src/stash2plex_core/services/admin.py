"""Operations the CLI and the Stash plugin's tasks share, so neither holds business rules.

Each function takes the composition root's :class:`~stash2plex_core.app.App` and returns a
frozen value that the caller formats (a table, JSON, Stash log lines).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING
from typing import Protocol

import attrs

from stash2plex_core.errors import AuthenticationError
from stash2plex_core.errors import ConfigurationError
from stash2plex_core.errors import Stash2PlexError
from stash2plex_core.errors import TransientError
from stash2plex_core.models.health import BreakerState
from stash2plex_core.models.health import OutageRecord
from stash2plex_core.models.jobs import DeadLetter
from stash2plex_core.models.jobs import DeadLetterFilter
from stash2plex_core.models.jobs import QueueCounts
from stash2plex_core.services.breaker import CircuitBreaker
from stash2plex_core.services.outages import OutageLog
from stash2plex_core.services.outages import OutageSummary
from stash2plex_core.services.reconcile import Reconciler
from stash2plex_core.services.reconcile import ReconcileReport
from stash2plex_core.services.reconcile import format_stash_time
from stash2plex_core.services.reconcile import last_report
from stash2plex_core.services.stats import StatsRecorder
from stash2plex_core.services.stats import SyncStats
from stash2plex_core.services.worker import DrainReport
from stash2plex_core.services.worker import ReviewEntry
from stash2plex_core.services.worker import SyncWorker


if TYPE_CHECKING:
    from stash2plex_core.app import App
    from stash2plex_core.ports.clock import Clock

#: Scenes per ``enqueue_many`` transaction when queueing a whole library.
ENQUEUE_CHUNK = 1000
#: How far after an outage ended its dead letters still count as the outage's.
OUTAGE_GRACE = dt.timedelta(minutes=10)


#: Seconds a command-line worker holds the drain lease between renewals (renewed every third).
DRAIN_LEASE_SECONDS = 60.0
#: Seconds between attempts to take a drain lease another process holds.
DRAIN_LEASE_POLL = 2.0
#: Seconds between a long-running worker's checks for a due scheduled reconciliation.
RECONCILE_CHECK_SECONDS = 300.0


def failure_kind(error: BaseException) -> str:
    """``"authentication"``, ``"configuration"``, ``"unavailable"`` or ``"error"``: what the user must do."""
    if isinstance(error, AuthenticationError):
        return "authentication"
    if isinstance(error, ConfigurationError):
        return "configuration"
    if isinstance(error, TransientError):
        return "unavailable"
    return "error"


@attrs.frozen
class HealthCheck:
    """One server's answer to a cheap probe."""

    service: str
    ok: bool
    latency_ms: float | None
    detail: str
    #: For a failed probe, :func:`failure_kind` of its error.
    failure: str | None = None


@attrs.frozen
class StatusReport:
    queue: QueueCounts
    breaker: BreakerState
    outages: OutageSummary
    last_outage: OutageRecord | None
    last_reconcile: ReconcileReport | None
    reviews: tuple[ReviewEntry, ...]
    stats: SyncStats


def _probe(app: App, service: str, ping: Callable[[], object]) -> HealthCheck:
    started = app.clock.monotonic()
    try:
        info = ping()
    except Stash2PlexError as exc:
        return HealthCheck(service, False, None, f"{type(exc).__name__}: {exc}", failure_kind(exc))
    latency = (app.clock.monotonic() - started) * 1000
    name = getattr(info, "name", "")
    version = getattr(info, "version", "")
    return HealthCheck(service, True, round(latency, 1), f"{name} {version}".strip())


def check_health(app: App) -> tuple[HealthCheck, HealthCheck]:
    """Probe Plex (``/identity``) and Stash (its version) and time each."""
    return _probe(app, "plex", app.plex.ping), _probe(app, "stash", app.stash.ping)


def status(app: App) -> StatusReport:
    """Queue counts, breaker, outages, the last reconciliation and matches awaiting review."""
    outages = OutageLog(app.state)
    history = outages.history()
    worker = SyncWorker.from_app(app)
    return StatusReport(
        queue=app.queue.counts(),
        breaker=CircuitBreaker(app.state, app.clock, app.settings).snapshot(),
        outages=outages.summary(),
        last_outage=history[-1] if history else None,
        last_reconcile=last_report(app.state),
        reviews=tuple(worker.reviews()),
        stats=StatsRecorder(app.state, app.clock).totals(),
    )


def outage_history(app: App) -> tuple[tuple[OutageRecord, ...], OutageSummary]:
    log = OutageLog(app.state)
    return log.history(), log.summary()


def queue_all(app: App, *, reason: str = "sync-all", since: str | None = None) -> int:
    """Queue every scene (or those updated at or after ``since``) in chunked transactions."""
    total = 0
    chunk: list[str] = []
    for scene in app.stash.iter_scenes(updated_since=since):
        chunk.append(scene.id)
        if len(chunk) >= ENQUEUE_CHUNK:
            total += app.queue.enqueue_many(chunk, reason)
            chunk = []
    if chunk:
        total += app.queue.enqueue_many(chunk, reason)
    return total


def queue_recent(app: App, *, days: float = 1.0) -> int:
    """Queue the scenes Stash updated in the last ``days`` days."""
    since = format_stash_time(app.clock.now() - dt.timedelta(days=days))
    return queue_all(app, reason="sync-recent", since=since)


def dead_letters(app: App, where: DeadLetterFilter | None = None, limit: int | None = None) -> list[DeadLetter]:
    return app.queue.dead_letters(where, limit)


def retry_dead(app: App, where: DeadLetterFilter | None = None) -> int:
    return app.queue.requeue_dead(where)


def last_outage_filter(app: App) -> DeadLetterFilter | None:
    """Dead letters whose last failure fell inside the last outage (plus a short grace)."""
    history = OutageLog(app.state).history()
    if not history:
        return None
    outage = history[-1]
    end = (outage.ended_at or app.clock.now()) + OUTAGE_GRACE
    return DeadLetterFilter(failed_since=outage.started_at, failed_until=end)


def retry_last_outage(app: App) -> int:
    where = last_outage_filter(app)
    return 0 if where is None else app.queue.requeue_dead(where)


def purge_dead(app: App, *, days: float) -> int:
    if days < 0:
        raise ValueError(f"days must be >= 0, got {days}")
    return app.queue.purge_dead(dt.timedelta(days=days))


def drain(
    app: App,
    *,
    progress: Callable[[int, int], None] | None = None,
    stop: threading.Event | None = None,
    until_empty: bool = True,
    max_idle: float | None = None,
    poll: float = 0.5,
    worker: SyncWorker | None = None,
) -> DrainReport:
    """Drain the queue, calling ``progress(done, total)`` about every ``poll`` seconds.

    ``total`` is the jobs known so far (done plus still pending), so it can grow while
    hooks keep queueing. ``max_idle`` returns instead of waiting longer than that for a
    job scheduled later (a retry); the next drain picks it up.
    """
    worker = worker or SyncWorker.from_app(app)
    if progress is None:
        return worker.drain(until_empty=until_empty, stop=stop, max_idle=max_idle)
    start = app.queue.counts().pending
    result: list[DrainReport] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(worker.drain(until_empty=until_empty, stop=stop, max_idle=max_idle))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=run, name="stash2plex-drain", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(poll)
        pending = app.queue.counts().pending
        done = max(0, start - pending)
        progress(done, max(start, done + pending))
    if errors:
        raise errors[0]
    report = result[0]
    progress(report.jobs, max(report.jobs, start))
    return report


# --- the drain lease ------------------------------------------------------------------------


class DrainLeaseStore(Protocol):
    """Where the ``drain`` lease lives; shared by every process that drains one queue.

    The SQLite one (``stash2plex_integrations.cli.lease``) speaks the Stash plugin's protocol:
    a hook *reserves* the lease with an owner starting ``hook:`` before it asks Stash to run
    the drain task, and :meth:`take` also takes such a reservation over.
    """

    def take(self, owner: str, seconds: float) -> bool:
        """Take the lease if it is free, expired or only a hook's reservation (atomic)."""
        ...

    def renew(self, owner: str, seconds: float) -> bool:
        """Push the expiry out; ``False`` if ``owner`` no longer holds it."""
        ...

    def release(self, owner: str) -> bool: ...

    def holder(self) -> str | None:
        """Who holds it now, or ``None``."""
        ...


class DrainLeaseHeldError(Stash2PlexError):
    """Another process holds the drain lease: it drains the queue, so this one does not."""

    def __init__(self, holder: str | None) -> None:
        super().__init__(f"another process is draining the queue (drain lease held by {holder or 'unknown'})")
        self.holder = holder


class DrainLease:
    """One process's hold on the drain lease: so hooks start no second drain while it works.

    :meth:`acquire` takes it (or waits for it), :meth:`keep_alive` renews it in the
    background every third of its length, :meth:`release` gives it up. Renewal is
    decided by :meth:`renew_if_due` on the clock's monotonic time, so it is testable with
    a manual clock.
    """

    def __init__(
        self, store: DrainLeaseStore, owner: str, clock: Clock, *, seconds: float = DRAIN_LEASE_SECONDS
    ) -> None:
        if owner.startswith("hook:"):
            raise ValueError("owner must not look like a hook's reservation ('hook:...')")
        self.store = store
        self.owner = owner
        self.clock = clock
        self.seconds = seconds
        self.held = False
        self._renewed_at = 0.0
        self._done = threading.Event()

    def take(self) -> bool:
        """One attempt; ``True`` if this process holds the lease now."""
        if self.store.take(self.owner, self.seconds):
            self.held = True
            self._renewed_at = self.clock.monotonic()
        return self.held

    def acquire(
        self,
        *,
        wait: bool,
        stop: threading.Event | None = None,
        poll: float = DRAIN_LEASE_POLL,
        on_wait: Callable[[str | None], None] | None = None,
    ) -> bool:
        """Take the lease; when another process holds it, raise or wait for it.

        :param wait: retry every ``poll`` seconds until taken or ``stop`` is set (then
            return ``False``); without it, raise :class:`DrainLeaseHeldError`.
        :param on_wait: called once, with the holder, before the first wait.
        """
        stop = stop or threading.Event()
        told = False
        while not self.take():
            holder = self.store.holder()
            if not wait:
                raise DrainLeaseHeldError(holder)
            if not told and on_wait is not None:
                on_wait(holder)
                told = True
            if stop.wait(poll):
                return False
        return True

    def renew_if_due(self) -> bool:
        """Renew when a third of the lease has passed; ``False`` once it is lost."""
        if not self.held:
            return False
        if self.clock.monotonic() - self._renewed_at < self.seconds / 3:
            return True
        if self.store.renew(self.owner, self.seconds):
            self._renewed_at = self.clock.monotonic()
            return True
        self.held = False
        return False

    def keep_alive(self, on_lost: Callable[[], None]) -> threading.Thread:
        """Renew in a daemon thread until :meth:`release`; ``on_lost()`` if the lease is lost."""
        done = self._done = threading.Event()

        def run() -> None:
            while not done.wait(max(0.05, self.seconds / 12)):
                try:
                    alive = self.renew_if_due()
                except Exception:  # noqa: BLE001 - a busy database: the next tick retries
                    alive = True
                if not alive:
                    on_lost()
                    return

        thread = threading.Thread(target=run, name="stash2plex-drain-lease", daemon=True)
        thread.start()
        return thread

    def release(self) -> None:
        """Stop renewing and give the lease up (harmless when not held)."""
        self._done.set()
        if self.held:
            self.held = False
            self.store.release(self.owner)


@contextmanager
def holding_drain_lease(
    lease: DrainLease | None,
    *,
    wait: bool,
    stop: threading.Event | None = None,
    on_wait: Callable[[str | None], None] | None = None,
    on_lost: Callable[[], None] | None = None,
) -> Iterator[bool]:
    """Hold ``lease`` (renewed) for the block; yields ``False`` if ``stop`` ended the wait.

    ``lease=None`` (a queue no other process shares) holds nothing and yields ``True``.
    """
    if lease is None:
        yield True
        return
    if not lease.acquire(wait=wait, stop=stop, on_wait=on_wait):
        yield False
        return
    lease.keep_alive(on_lost or (lambda: None))
    try:
        yield True
    finally:
        lease.release()


# --- the long-running worker -----------------------------------------------------------------


@attrs.frozen
class ServiceReport:
    """What :meth:`QueueService.run` did before it returned."""

    outcomes: Mapping[str, int]
    drains: int
    reconciliations: int
    #: ``"stop_requested"``, ``"empty"`` (``until_empty``) or ``"stopped"`` (the worker stopped itself).
    reason: str
    stop_reason: str | None
    elapsed_seconds: float

    @property
    def jobs(self) -> int:
        return sum(self.outcomes.values())


class QueueService:
    """The worker as a service: drain under the drain lease, and run the scheduled
    reconciliation (``reconcile_schedule``) on its own cadence, so no cron is needed.

    Every ``reconcile_every`` seconds (and at start) the current drain is interrupted
    between jobs, :meth:`Reconciler.due` is read (cheap) and, if a pass is due,
    :meth:`Reconciler.run_if_due` runs it; its repairs are drained next. A lost drain
    lease also ends the current drain, and the service waits to take it again.
    ``request_stop`` (a signal handler's call) ends it after the jobs in hand.
    """

    def __init__(
        self,
        app: App,
        *,
        lease: DrainLease | None = None,
        reconcile_every: float | None = RECONCILE_CHECK_SECONDS,
        notify: Callable[[str], None] | None = None,
        lease_poll: float = DRAIN_LEASE_POLL,
    ) -> None:
        self.app = app
        self.lease = lease
        self.reconcile_every = reconcile_every if reconcile_every and reconcile_every > 0 else None
        self.notify = notify or (lambda message: None)
        self.lease_poll = lease_poll
        self._stop = threading.Event()
        self._round = threading.Event()

    def request_stop(self) -> None:
        """Stop after the jobs in hand (safe from another thread)."""
        self._stop.set()
        self._round.set()

    def _end_round(self) -> None:
        self._round.set()

    def _maybe_reconcile(self, reconciler: Reconciler) -> bool:
        try:
            if reconciler.due() is None:
                return False
            report = reconciler.run_if_due()
        except Stash2PlexError as exc:
            self.notify(f"scheduled reconciliation failed: {type(exc).__name__}: {exc}")
            return False
        if report is None:
            return False
        self.notify(report.summary_lines()[0])
        return True

    def _hold_lease(self, wait: bool) -> bool:
        """Hold the drain lease (if there is one); ``False`` if a stop ended the wait."""
        lease = self.lease
        if lease is None or lease.held:
            return True

        def waiting(holder: str | None) -> None:
            self.notify(f"waiting for the drain lease (held by {holder or 'unknown'})")

        if not lease.acquire(wait=wait, stop=self._stop, poll=self.lease_poll, on_wait=waiting):
            return False
        self.notify(f"holding the drain lease as {lease.owner}")
        lease.keep_alive(self._end_round)
        return True

    def _drain_round(self, worker: SyncWorker, *, until_empty: bool, until: float | None) -> DrainReport:
        """One drain, ended by a stop, a lost lease or (without ``until_empty``) the monotonic time ``until``."""
        round_stop = threading.Event()
        self._round = round_stop
        if self._stop.is_set():  # a stop requested before the swap above
            round_stop.set()
        timer = None
        if not until_empty and until is not None:
            timer = threading.Timer(max(0.0, until - self.app.clock.monotonic()), round_stop.set)
            timer.daemon = True
            timer.start()
        try:
            return worker.drain(until_empty=until_empty, stop=round_stop)
        finally:
            if timer is not None:
                timer.cancel()

    def run(self, *, until_empty: bool = False, wait_for_lease: bool = True) -> ServiceReport:
        """Work until :meth:`request_stop` (or, with ``until_empty``, until nothing is due).

        :raises DrainLeaseHeldError: another process holds the drain lease and
            ``wait_for_lease`` is false.
        """
        clock = self.app.clock
        started = clock.monotonic()
        worker = SyncWorker.from_app(self.app)
        reconciler = Reconciler.from_app(self.app, owner=self.lease.owner if self.lease else None)
        totals: dict[str, int] = {}
        drains = reconciliations = 0
        reason = "stop_requested"
        next_check = started
        try:
            while not self._stop.is_set() and self._hold_lease(wait_for_lease):
                if self.reconcile_every is not None and clock.monotonic() >= next_check:
                    next_check = clock.monotonic() + self.reconcile_every
                    reconciliations += self._maybe_reconcile(reconciler)
                until = next_check if self.reconcile_every is not None else None
                report = self._drain_round(worker, until_empty=until_empty, until=until)
                drains += 1
                for kind, count in report.outcomes.items():
                    totals[kind] = totals.get(kind, 0) + count
                if report.stop_reason:
                    reason = "stopped"
                    break
                if self._stop.is_set():
                    break
                if self.lease is not None and not self.lease.held:
                    self.notify("lost the drain lease; waiting to take it again")
                elif until_empty:
                    reason = "empty"
                    break
        finally:
            if self.lease is not None:
                self.lease.release()
        return ServiceReport(
            outcomes=totals,
            drains=drains,
            reconciliations=reconciliations,
            reason=reason,
            stop_reason=worker.stop_reason,
            elapsed_seconds=clock.monotonic() - started,
        )


__all__ = [
    "DRAIN_LEASE_SECONDS",
    "RECONCILE_CHECK_SECONDS",
    "DrainLease",
    "DrainLeaseHeldError",
    "DrainLeaseStore",
    "HealthCheck",
    "QueueService",
    "ServiceReport",
    "StatusReport",
    "check_health",
    "dead_letters",
    "drain",
    "failure_kind",
    "holding_drain_lease",
    "last_outage_filter",
    "outage_history",
    "purge_dead",
    "queue_all",
    "queue_recent",
    "retry_dead",
    "retry_last_outage",
    "status",
]
