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
from stash2plex_core.errors import AuthenticationError
from stash2plex_core.errors import BackendUnavailableError
from stash2plex_core.errors import ConfigurationError
from stash2plex_core.errors import InvalidSettingsError
from stash2plex_core.errors import PermanentError
from stash2plex_core.errors import SettingProblem
from stash2plex_core.models.jobs import DeadLetterFilter
from stash2plex_core.plugin import BackendRegistry
from stash2plex_core.plugin import build_registry
from stash2plex_core.services import admin
from stash2plex_core.settings import SETTING_NAMES
from stash2plex_core.settings import Settings
from stash2plex_core.settings import merge_sources
from stash2plex_core.settings import resolve_settings
from stash2plex_core.settings import settings_from_env
from stash2plex_integrations.cli.render import to_jsonable
from stash2plex_integrations.stash_plugin import hook
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
#: Seconds to wait for Stash's answer when reading the plugin's settings.
SETTINGS_TIMEOUT = 30.0
LOGGERS = ("stash2plex_core", "stash2plex_backends", "stash2plex_integrations")
SETTINGS_QUERY = "query Stash2PlexPluginSettings($ids: [ID!]) { configuration { plugins(include: $ids) } }"
#: Settings a task that talks to Plex cannot do without (Stash has no defaults for them).
#: The queue backend the hook path writes (stash2plex_backends.sqlite.hookpath).
HOOK_QUEUE_BACKEND = "sqlite"
REQUIRED_FOR_PLEX = ("plex_url", "plex_token")
#: Tasks that write to Plex, so need :data:`REQUIRED_FOR_PLEX`. Health and the read-only
#: admin tasks run without them (health then reports Plex as not configured).
PLEX_TASKS = frozenset(
    {"process", "sync_all", "sync_recent", "reconcile", "dlq_retry", "dlq_retry_class", "dlq_retry_outage"}
)


def _attach_logging(stream: IO[str]) -> None:
    handler = StashLogHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name in LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(logging.INFO)
        logger.propagate = False


def read_plugin_settings(connection: dict[str, Any], timeout: float = SETTINGS_TIMEOUT) -> dict[str, Any]:
    """The plugin's saved settings, in one small request through the plugin's session.

    Uses the hook's standard-library client rather than a stashapi gateway: the settings
    decide how the gateway is built, and stashapi's constructor costs three requests (one
    a 0.5 MB schema introspection), so one gateway per process means reading them first.
    """
    scheme, host, port = hook.endpoint(connection)
    where = f"Stash at {scheme}://{host}:{port}"
    try:
        data = hook.stash_graphql(connection, SETTINGS_QUERY, {"ids": [PLUGIN_ID]}, timeout)
    except hook.StashCallError as exc:
        message = f"{where}: reading the plugin settings: {exc}"
        if exc.status in (401, 403):
            raise AuthenticationError(f"{message} (the plugin's session was refused)") from None
        if exc.status is not None and (exc.status >= 500 or exc.status == 429):
            raise BackendUnavailableError(message) from None
        raise PermanentError(message) from None
    except (OSError, ValueError) as exc:
        raise BackendUnavailableError(f"{where} is unreachable ({type(exc).__name__}: {exc})") from None
    plugins = (data.get("configuration") or {}).get("plugins") or {}
    found = plugins.get(PLUGIN_ID) if isinstance(plugins, dict) else None
    return dict(found) if isinstance(found, dict) else {}


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _number_problem(values: dict[str, Any], key: str, minimum: float) -> SettingProblem | None:
    raw = values.get(key)
    if _blank(raw):
        return None
    try:
        number = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return SettingProblem(key, f"expected a number, got {raw!r}")
    if isinstance(raw, bool) or number < minimum:
        return SettingProblem(key, f"must be a number of at least {minimum:g}, got {raw!r}")
    return None


def _task_problems(task: str, values: dict[str, Any]) -> list[SettingProblem]:
    """The task's own parameters (plugin settings or task args), checked before it starts."""
    problems: list[SettingProblem | None] = []
    if task == "dlq_retry_class" and _blank(values.get("dlq_retry_error_class")):
        problems.append(
            SettingProblem(
                "dlq_retry_error_class",
                "is not set: set 'Dead letters: error class to retry' (e.g. BackendUnavailableError)",
            )
        )
    if task == "dlq_purge":
        problems.append(_number_problem(values, "dlq_purge_days", 0.0))
    if task == "sync_recent":
        problems.append(_number_problem(values, "days", 0.0))
    return [p for p in problems if p is not None]


def plugin_settings(
    connection: dict[str, Any],
    plugin_values: dict[str, Any],
    task: str | None = None,
    task_values: dict[str, Any] | None = None,
) -> Settings:
    """Settings from the plugin's values, the environment and the plugin folder.

    Every problem is reported in one :class:`InvalidSettingsError`: invalid values, the
    settings the task needs but nobody set (``plex_url``, ``plex_token``), and the task's
    own parameters (``task_values``: the plugin values with the task's args on top) —
    before any job is touched.
    """
    problems: list[SettingProblem] = []
    settings: Settings | None = None
    chosen_queue = plugin_values.get("queue_backend") or os.environ.get("STASH2PLEX_QUEUE_BACKEND")
    if chosen_queue and str(chosen_queue).strip() != HOOK_QUEUE_BACKEND:
        problems.append(
            SettingProblem(
                "queue_backend",
                f"must be {HOOK_QUEUE_BACKEND!r} inside Stash (the hook writes the SQLite queue), got {chosen_queue!r}",
            )
        )
    try:
        settings = resolve_settings(
            # Pinned: the hook always writes <data_dir>/stash2plex.db, so the tasks must read
            # that same queue even if a higher-priority queue backend is installed.
            explicit={"data_dir": data_dir(connection), "queue_backend": HOOK_QUEUE_BACKEND},
            environ=os.environ,
            plugin_values=plugin_values,
        )
    except InvalidSettingsError as exc:
        problems.extend(exc.problems)
    if task in PLEX_TASKS:
        env_values, _ = settings_from_env(os.environ)
        raw = merge_sources({k: v for k, v in plugin_values.items() if k in SETTING_NAMES}, env_values)
        invalid = {p.key for p in problems}
        for key in REQUIRED_FOR_PLEX:
            if key not in invalid and _blank(raw.get(key)):
                shown = key.replace("_", " ").capitalize()
                problems.append(SettingProblem(key, f"is not set: set '{shown}' in Settings → Plugins → stash2plex"))
    if task is not None:
        problems.extend(_task_problems(task, plugin_values if task_values is None else task_values))
    if problems:
        raise InvalidSettingsError(problems)
    assert settings is not None
    return settings


def build_plugin_app(data: dict[str, Any], *, registry: BackendRegistry | None = None) -> tuple[App, dict[str, Any]]:
    """The app, from Stash's plugin settings, the environment and the plugin folder.

    Builds one Stash gateway (one ``StashInterface``) per process. Also returns the raw
    plugin settings merged with the task's args, which hold task parameters (the
    dead-letter error class and purge age, the days of *Sync scenes updated recently*).

    :param registry: the backends to use (default: the installed ones, as inside Stash).
    :raises InvalidSettingsError: naming every missing or invalid setting at once.
    """
    from stash2plex_backends.stash import StashApiGateway

    connection = data.get("server_connection") or {}
    if not connection:
        raise ConfigurationError("no server_connection in the plugin input; is this running inside Stash?")
    args = data.get("args") or {}
    task = str(args["task"]) if args.get("task") is not None else None
    plugin_values = read_plugin_settings(connection)
    values = {**plugin_values, **{k: v for k, v in args.items() if k != "task"}}  # explicit task args win
    settings = plugin_settings(connection, plugin_values, task, values)
    stash = StashApiGateway.from_server_connection(connection, settings)
    if registry is None:
        registry = build_registry(environ=os.environ)
    app = build_app(settings, registry=registry, overrides={"stash": stash})
    return app, values


def _progress(stream: IO[str]) -> Callable[[int, int], None]:
    def report(done: int, total: int) -> None:
        protocol.progress(1.0 if total <= 0 else done / total, stream)

    return report


def _drain(app: App, data: dict[str, Any], stream: IO[str]) -> dict[str, Any]:
    """Drain under the drain lease, so hooks start no second worker; re-check after releasing.

    A hook that queues while this drain finishes sees the lease held and starts nothing,
    so after letting go this task looks at the queue once more and, if work is due, takes
    the lease again (unless a newly started drain got it first). Returns the outcomes and
    ``windows``: the ``[start, end]`` wall-clock times during which this task held the
    lease and drained (what "one drain at a time" is about).
    """
    import time

    from stash2plex_backends.sqlite import hookpath

    db = database_path(data.get("server_connection") or {})
    owner = f"task:{os.getpid()}"
    totals: dict[str, int] = {}
    windows: list[list[float]] = []
    if not hookpath.take_drain(db, owner, DRAIN_LEASE_SECONDS):
        log.info("another worker is draining the queue; nothing to do")
        return {"outcomes": {}, "windows": [], "note": "another worker holds the drain lease"}
    progress = _progress(stream)

    def report(done: int, total: int) -> None:
        progress(done, total)
        hookpath.renew_lease(db, owner, DRAIN_LEASE_SECONDS)

    stop_reason = None
    try:
        while True:
            started = time.time()
            try:
                result = admin.drain(app, progress=report, max_idle=DRAIN_MAX_IDLE)
            finally:
                windows.append([started, time.time()])
            for kind, count in result.outcomes.items():
                totals[kind] = totals.get(kind, 0) + count
            stop_reason = result.stop_reason
            hookpath.release_lease(db, owner)
            if stop_reason or app.queue.counts().ready == 0 or not hookpath.take_drain(db, owner, DRAIN_LEASE_SECONDS):
                break
    finally:
        hookpath.release_lease(db, owner)
    log.info("drain finished: %s", ", ".join(f"{k} {v}" for k, v in sorted(totals.items())) or "nothing to do")
    waiting = app.queue.counts().waiting
    if waiting:
        log.info(
            "%d job(s) wait for a retry later than %g s from now; the next hook, Process queue run "
            "or `stash2plex worker` picks them up",
            waiting,
            DRAIN_MAX_IDLE,
        )
    if stop_reason:
        raise ConfigurationError(stop_reason)
    return {"outcomes": totals, "windows": windows}


def _merge_drains(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    outcomes = dict(first.get("outcomes") or {})
    for kind, count in (second.get("outcomes") or {}).items():
        outcomes[kind] = outcomes.get(kind, 0) + count
    return {**first, "outcomes": outcomes, "windows": [*first.get("windows", ()), *second.get("windows", ())]}


def _gap_counts(counts: Any) -> str:
    return ", ".join(f"{kind} {count}" for kind, count in counts.items())


def _scheduled_reconcile(app: App) -> dict[str, Any] | None:
    """Run the scheduled reconciliation if it is due (``reconcile_schedule``); else nothing.

    Inside Stash no long-running worker exists, so each *Process queue* run checks the
    schedule: one state read when nothing is due. A failure is logged and recorded by the
    reconciler (it schedules a retry), not raised: the drain itself succeeded.
    """
    from stash2plex_core.errors import Stash2PlexError
    from stash2plex_core.services.reconcile import Reconciler

    try:
        report = Reconciler.from_app(app, owner=f"plugin:{os.getpid()}").run_if_due()
    except Stash2PlexError as exc:
        log.warning("scheduled reconciliation failed: %s: %s", type(exc).__name__, exc)
        return {"error": f"{type(exc).__name__}: {exc}"}
    if report is None:
        return None
    log.info("scheduled %s", report.summary_lines()[0])
    log.info("gaps: %s; queued for repair: %d scene(s)", _gap_counts(report.counts), report.enqueued)
    return {"scope": report.scope, "gaps": dict(report.counts), "enqueued": report.enqueued}


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
    last = report.last_reconcile
    if last is not None:
        log.info("last %s", last.summary_lines()[0])
        log.info(
            "last reconciliation gaps: %s; queued for repair: %d scene(s)",
            _gap_counts(last.counts),
            last.enqueued,
        )
    else:
        log.info("no reconciliation has run yet")
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
    if raw is None or _blank(raw):
        return default
    try:
        return float(raw)
    except (TypeError, ValueError):
        raise ConfigurationError(f"plugin setting {key}: expected a number, got {raw!r}") from None


Task = Callable[[App, dict[str, Any], IO[str], dict[str, Any]], Any]


def _task_process(app: App, data: dict[str, Any], stream: IO[str], values: dict[str, Any]) -> Any:
    """Drain, then run a due scheduled reconciliation and drain the repairs it queued."""
    result = _drain(app, data, stream)
    reconciled = _scheduled_reconcile(app)
    if reconciled is None:
        return result
    if reconciled.get("enqueued"):
        result = _merge_drains(result, _drain(app, data, stream))
    return {**result, "reconcile": reconciled}


def _task_sync_all(app: App, data: dict[str, Any], stream: IO[str], values: dict[str, Any]) -> Any:
    queued = admin.queue_all(app)
    log.info("queued %d scene(s)", queued)
    return {"queued": queued, **_drain(app, data, stream)}


def _task_sync_recent(app: App, data: dict[str, Any], stream: IO[str], values: dict[str, Any]) -> Any:
    days = _plugin_number(values, "days", 1.0)
    queued = admin.queue_recent(app, days=days)
    log.info("queued %d scene(s) updated in the last %g day(s)", queued, days)
    return {"queued": queued, **_drain(app, data, stream)}


def _task_reconcile(app: App, data: dict[str, Any], stream: IO[str], values: dict[str, Any]) -> Any:
    from stash2plex_core.services.reconcile import Reconciler

    report = Reconciler.from_app(app, owner=f"plugin:{os.getpid()}").run("full")
    for line in report.summary_lines():
        log.info("%s", line)
    drained = _drain(app, data, stream) if report.enqueued else {}
    return {"gaps": dict(report.counts), "enqueued": report.enqueued, **drained}


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
    return {
        "dead_letters": len(letters),
        "letters": [{"scene_id": x.scene_id, "error_class": x.error_class, "attempts": x.attempts} for x in letters],
    }


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
    with app:
        return task(app, data, stream, values)


__all__ = [
    "PLEX_TASKS",
    "REQUIRED_FOR_PLEX",
    "TASKS",
    "build_plugin_app",
    "plugin_settings",
    "read_plugin_settings",
    "run_task",
]
