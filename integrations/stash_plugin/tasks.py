"""The plugin's tasks: build the app from Stash's connection and settings, then run one job.

Each task reports progress through Stash's stderr protocol and returns a small JSON-able
result (shown in Stash's log at debug level); the human-readable summary goes to the log.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import IO
from typing import Any

import attrs

from stash2plex_core.app import App
from stash2plex_core.app import build_app
from stash2plex_core.errors import ConfigurationError
from stash2plex_core.models.jobs import DeadLetterFilter
from stash2plex_core.plugin import build_registry
from stash2plex_core.services import admin
from stash2plex_core.settings import Settings
from stash2plex_core.settings import resolve_settings
from stash2plex_integrations.cli.render import to_jsonable
from stash2plex_integrations.stash_plugin import protocol
from stash2plex_integrations.stash_plugin.hook import PLUGIN_ID
from stash2plex_integrations.stash_plugin.hook import data_dir
from stash2plex_integrations.stash_plugin.hook import database_path
from stash2plex_integrations.stash_plugin.stash_logging import StashLogHandler


log = logging.getLogger("stash2plex_integrations.stash_plugin")
#: Seconds a draining task holds the drain lease between renewals.
DRAIN_LEASE_SECONDS = 300.0
#: A task drains what is due within this many seconds; later retries wait for the next drain.
DRAIN_MAX_IDLE = 30.0
LOGGERS = ("stash2plex_core", "stash2plex_backends", "stash2plex_integrations")


def _attach_logging(stream: IO[str]) -> None:
    handler = StashLogHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name in LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(logging.INFO)
        logger.propagate = False


def build_plugin_app(data: dict[str, Any]) -> tuple[App, dict[str, Any]]:
    """The app, from Stash's plugin settings, the environment and the plugin folder.

    Also returns the raw plugin settings, which hold task parameters (the dead-letter
    error class and purge age) besides settings.
    """
    from stash2plex_backends.stash import StashApiGateway

    connection = data.get("server_connection") or {}
    if not connection:
        raise ConfigurationError("no server_connection in the plugin input; is this running inside Stash?")
    bootstrap = StashApiGateway.from_server_connection(connection, Settings())
    plugin_values = bootstrap.plugin_settings(PLUGIN_ID)
    bootstrap.close()
    settings = resolve_settings(
        explicit={"data_dir": data_dir(connection)},
        environ=os.environ,
        plugin_values=plugin_values,
    )
    stash = StashApiGateway.from_server_connection(connection, settings)
    app = build_app(settings, registry=build_registry(environ=os.environ), overrides={"stash": stash})
    return app, dict(plugin_values)


def _progress(stream: IO[str]) -> Callable[[int, int], None]:
    def report(done: int, total: int) -> None:
        protocol.progress(1.0 if total <= 0 else done / total, stream)

    return report


def _drain(app: App, data: dict[str, Any], stream: IO[str]) -> dict[str, Any]:
    """Drain under the drain lease, so hooks start no second worker; re-check after releasing.

    Returns the outcomes and ``windows``: the ``[start, end]`` wall-clock times during
    which this task held the lease and drained (what "one drain at a time" is about).
    """
    import time

    from stash2plex_backends.sqlite import hookpath

    db = database_path(data.get("server_connection") or {})
    owner = f"task:{os.getpid()}"
    totals: dict[str, int] = {}
    windows: list[list[float]] = []
    if not hookpath.take_drain(db, owner, DRAIN_LEASE_SECONDS):
        log.info("another worker is draining the queue; nothing to do")
        return {"drained": 0, "note": "another worker holds the drain lease"}
    progress = _progress(stream)

    def report(done: int, total: int) -> None:
        progress(done, total)
        hookpath.renew_lease(db, owner, DRAIN_LEASE_SECONDS)

    stop_reason = None
    try:
        while True:
            started = time.time()
            result = admin.drain(app, progress=report, max_idle=DRAIN_MAX_IDLE)
            for kind, count in result.outcomes.items():
                totals[kind] = totals.get(kind, 0) + count
            stop_reason = result.stop_reason
            windows.append([started, time.time()])
            hookpath.release_lease(db, owner)
            if stop_reason or app.queue.counts().ready == 0 or not hookpath.take_drain(db, owner, DRAIN_LEASE_SECONDS):
                break
    finally:
        hookpath.release_lease(db, owner)
    log.info("drain finished: %s", ", ".join(f"{k} {v}" for k, v in sorted(totals.items())) or "nothing to do")
    if stop_reason:
        raise ConfigurationError(stop_reason)
    return {"outcomes": totals, "windows": windows}


def _status(app: App) -> dict[str, Any]:
    report = admin.status(app)
    q = report.queue
    log.info("queue: %d ready, %d waiting, %d in progress, %d dead", q.ready, q.waiting, q.leased, q.dead)
    log.info("breaker: %s", report.breaker.status.value)
    if report.last_outage is not None:
        log.info(
            "last outage: %s (%s jobs affected)",
            report.last_outage.started_at.isoformat(),
            report.last_outage.jobs_affected,
        )
    if report.last_reconcile is not None:
        log.info("%s", report.last_reconcile.summary_lines()[0])
    log.info("low-confidence matches waiting for review: %d", len(report.reviews))
    for review in report.reviews[:20]:
        log.info("  scene %s (%s): %d candidates", review.scene_id, review.scene_title, len(review.candidates))
    return dict(to_jsonable(report))


def _health(app: App) -> dict[str, Any]:
    checks = admin.check_health(app)
    for check in checks:
        level = logging.INFO if check.ok else logging.ERROR
        log.log(level, "%s: %s %s ms %s", check.service, "ok" if check.ok else "FAIL", check.latency_ms, check.detail)
    return {c.service: attrs.asdict(c) for c in checks}


def _outages(app: App) -> dict[str, Any]:
    history, summary = admin.outage_history(app)
    for record in history:
        log.info(
            "outage %s → %s, %s jobs affected", record.started_at.isoformat(), record.ended_at, record.jobs_affected
        )
    log.info("MTTR %s, MTBF %s, availability %s", summary.mttr, summary.mtbf, summary.availability)
    return dict(to_jsonable({"summary": summary, "history": history}))


def _plugin_number(app_values: dict[str, Any], key: str, default: float) -> float:
    raw = app_values.get(key)
    try:
        return float(raw) if raw not in (None, "") else default
    except (TypeError, ValueError):
        raise ConfigurationError(f"plugin setting {key}: expected a number, got {raw!r}") from None


Task = Callable[[App, dict[str, Any], IO[str], dict[str, Any]], Any]


def _task_process(app: App, data: dict[str, Any], stream: IO[str], values: dict[str, Any]) -> Any:
    return _drain(app, data, stream)


def _task_sync_all(app: App, data: dict[str, Any], stream: IO[str], values: dict[str, Any]) -> Any:
    log.info("queued %d scene(s)", admin.queue_all(app))
    return _drain(app, data, stream)


def _task_sync_recent(app: App, data: dict[str, Any], stream: IO[str], values: dict[str, Any]) -> Any:
    days = _plugin_number(values, "days", 1.0)
    log.info("queued %d scene(s) updated in the last %g day(s)", admin.queue_recent(app, days=days), days)
    return _drain(app, data, stream)


def _task_reconcile(app: App, data: dict[str, Any], stream: IO[str], values: dict[str, Any]) -> Any:
    from stash2plex_core.services.reconcile import Reconciler

    report = Reconciler.from_app(app).run("full")
    for line in report.summary_lines():
        log.info("%s", line)
    if report.enqueued:
        _drain(app, data, stream)
    return {"gaps": dict(report.counts), "enqueued": report.enqueued}


def _task_dlq_list(app: App, data: dict[str, Any], stream: IO[str], values: dict[str, Any]) -> Any:
    letters = admin.dead_letters(app, limit=200)
    for letter in letters:
        log.info(
            "scene %s: %s after %d attempts: %s",
            letter.scene_id,
            letter.error_class,
            letter.attempts,
            letter.message[:200],
        )
    log.info("%d dead letter(s)", len(letters))
    return {"dead_letters": len(letters)}


def _requeued(app: App, data: dict[str, Any], stream: IO[str], count: int) -> Any:
    log.info("queued %d dead letter(s) again", count)
    return {"requeued": count, **_drain(app, data, stream)} if count else {"requeued": 0}


def _task_dlq_retry(app: App, data: dict[str, Any], stream: IO[str], values: dict[str, Any]) -> Any:
    return _requeued(app, data, stream, admin.retry_dead(app))


def _task_dlq_retry_class(app: App, data: dict[str, Any], stream: IO[str], values: dict[str, Any]) -> Any:
    error_class = str(values.get("dlq_retry_error_class") or "").strip()
    if not error_class:
        raise ConfigurationError("set 'Dead letters: error class to retry' (e.g. BackendUnavailableError)")
    return _requeued(app, data, stream, admin.retry_dead(app, DeadLetterFilter(error_class=error_class)))


def _task_dlq_retry_outage(app: App, data: dict[str, Any], stream: IO[str], values: dict[str, Any]) -> Any:
    return _requeued(app, data, stream, admin.retry_last_outage(app))


def _task_dlq_purge(app: App, data: dict[str, Any], stream: IO[str], values: dict[str, Any]) -> Any:
    days = _plugin_number(values, "dlq_purge_days", 30.0)
    purged = admin.purge_dead(app, days=days)
    log.info("purged %d dead letter(s) older than %g days", purged, days)
    return {"purged": purged}


def _task_clear_queue(app: App, data: dict[str, Any], stream: IO[str], values: dict[str, Any]) -> Any:
    dropped = app.queue.clear_pending()
    log.info("dropped %d pending job(s)", dropped)
    return {"dropped": dropped}


#: Task name (the manifest's ``defaultArgs.task``) → implementation.
TASKS: dict[str, Task] = {
    "process": _task_process,
    "sync_all": _task_sync_all,
    "sync_recent": _task_sync_recent,
    "reconcile": _task_reconcile,
    "status": lambda app, data, stream, values: _status(app),
    "health": lambda app, data, stream, values: _health(app),
    "outages": lambda app, data, stream, values: _outages(app),
    "dlq_list": _task_dlq_list,
    "dlq_retry": _task_dlq_retry,
    "dlq_retry_class": _task_dlq_retry_class,
    "dlq_retry_outage": _task_dlq_retry_outage,
    "dlq_purge": _task_dlq_purge,
    "clear_queue": _task_clear_queue,
}


def run_task(data: dict[str, Any], stream: IO[str]) -> Any:
    """Run the task named by ``args.task``; return its JSON-able result."""
    args = data.get("args") or {}
    task = TASKS.get(str(args.get("task")))
    if task is None:
        raise ConfigurationError(f"unknown task {args.get('task')!r}; tasks are {', '.join(TASKS)}")
    _attach_logging(stream)
    app, values = build_plugin_app(data)
    values.update({k: v for k, v in args.items() if k != "task"})  # explicit task args win
    with app:
        return task(app, data, stream, values)


__all__ = ["TASKS", "build_plugin_app", "run_task"]
