"""Operations the CLI and the Stash plugin's tasks share, so neither holds business rules.

Each function takes the composition root's :class:`~stash2plex_core.app.App` and returns a
frozen value that the caller formats (a table, JSON, Stash log lines).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs

from stash2plex_core.errors import Stash2PlexError
from stash2plex_core.models.health import BreakerState
from stash2plex_core.models.health import OutageRecord
from stash2plex_core.models.jobs import DeadLetter
from stash2plex_core.models.jobs import DeadLetterFilter
from stash2plex_core.models.jobs import QueueCounts
from stash2plex_core.services.breaker import CircuitBreaker
from stash2plex_core.services.outages import OutageLog
from stash2plex_core.services.outages import OutageSummary
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

#: Scenes per ``enqueue_many`` transaction when queueing a whole library.
ENQUEUE_CHUNK = 1000
#: How far after an outage ended its dead letters still count as the outage's.
OUTAGE_GRACE = dt.timedelta(minutes=10)


@attrs.frozen
class HealthCheck:
    """One server's answer to a cheap probe."""

    service: str
    ok: bool
    latency_ms: float | None
    detail: str


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
        return HealthCheck(service, False, None, f"{type(exc).__name__}: {exc}")
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


__all__ = [
    "HealthCheck",
    "StatusReport",
    "check_health",
    "dead_letters",
    "drain",
    "last_outage_filter",
    "outage_history",
    "purge_dead",
    "queue_all",
    "queue_recent",
    "retry_dead",
    "retry_last_outage",
    "status",
]
