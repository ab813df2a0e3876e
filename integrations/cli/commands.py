"""The operational commands: sync, worker, status, health, dlq, clear-queue.

Each one parses nothing itself (``main`` did), calls one service from
:mod:`stash2plex_core.services.admin` or the worker, and formats the result.
``sync`` and ``worker`` drain only while holding the drain lease the Stash plugin uses
(see :mod:`stash2plex_integrations.cli.lease`), so a hook starts no second drain.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from stash2plex_core.app import App
from stash2plex_core.models.jobs import DeadLetterFilter
from stash2plex_core.services import admin
from stash2plex_core.services.worker import DrainReport
from stash2plex_integrations.cli import exitcodes
from stash2plex_integrations.cli.appctx import open_app
from stash2plex_integrations.cli.lease import drain_holder
from stash2plex_integrations.cli.lease import drain_lease
from stash2plex_integrations.cli.render import ProgressBar
from stash2plex_integrations.cli.render import print_json
from stash2plex_integrations.cli.render import table
from stash2plex_integrations.cli.render import to_jsonable


def _non_negative(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {raw!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {raw}")
    return value


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser], parent: argparse.ArgumentParser) -> None:
    sync = sub.add_parser(
        "sync",
        parents=[parent],
        help="queue scenes and sync them to Plex now",
        description="Queue scenes (every one by default) and drain the queue while holding the drain lease. "
        f"If another process holds it, the scenes stay queued for it and the exit code is {exitcodes.EXIT_BUSY}, "
        "unless --wait is given.",
    )
    scope = sync.add_mutually_exclusive_group()
    scope.add_argument("--all", action="store_true", help="every scene (the default)")
    scope.add_argument("--since-days", type=_non_negative, metavar="DAYS", help="scenes updated in the last DAYS days")
    scope.add_argument("--scene", action="append", metavar="ID", help="one scene id (repeatable)")
    sync.add_argument("--queue-only", action="store_true", help="queue, but leave the syncing to a worker")
    sync.add_argument("--wait", action="store_true", help="wait for another drain to finish instead of exiting")
    sync.add_argument("--json", action="store_true", help="print the result as JSON")

    worker = sub.add_parser(
        "worker",
        parents=[parent],
        help="drain the queue until stopped (SIGTERM/SIGINT)",
        description="Drain the queue as a service, holding the drain lease (waiting for it while another "
        "process holds it), and run the scheduled reconciliation (reconcile_schedule) when due. "
        "SIGTERM or SIGINT stops it after the jobs in hand.",
    )
    worker.add_argument("--once", action="store_true", help="drain what is due now, then exit")
    worker.add_argument("--wait", action="store_true", help="with --once: wait for another drain instead of exiting")
    worker.add_argument(
        "--reconcile-check-seconds",
        type=_non_negative,
        default=admin.RECONCILE_CHECK_SECONDS,
        metavar="S",
        help=f"how often to check for a due scheduled reconciliation (0: never; "
        f"default {admin.RECONCILE_CHECK_SECONDS:g})",
    )
    worker.add_argument("--json", action="store_true", help="print the final report as JSON")

    status = sub.add_parser("status", parents=[parent], help="queue counts, breaker, outages, reconciliation")
    status.add_argument("--json", action="store_true", help="print JSON")

    health = sub.add_parser("health", parents=[parent], help="probe Plex and Stash and report latency")
    health.add_argument("--json", action="store_true", help="print JSON")

    outages = sub.add_parser("outages", parents=[parent], help="outage history with MTTR, MTBF and availability")
    outages.add_argument("--json", action="store_true", help="print JSON")

    dlq = sub.add_parser("dlq", help="dead letters: list, retry, purge")
    dlq_sub = dlq.add_subparsers(dest="dlq_command", metavar="ACTION", required=True)
    listing = dlq_sub.add_parser("list", parents=[parent], help="list dead letters, most recent first")
    listing.add_argument("--error-class", metavar="NAME")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true", help="print JSON")
    retry = dlq_sub.add_parser("retry", parents=[parent], help="queue dead letters again")
    which = retry.add_mutually_exclusive_group()
    which.add_argument("--error-class", metavar="NAME", help="only this error class")
    which.add_argument("--scene", action="append", metavar="ID", help="only this scene (repeatable)")
    which.add_argument("--last-outage", action="store_true", help="only those of the last outage")
    retry.add_argument("--json", action="store_true", help="print JSON")
    purge = dlq_sub.add_parser("purge", parents=[parent], help="delete dead letters older than DAYS")
    purge.add_argument("--older-than-days", type=_non_negative, required=True, metavar="DAYS")
    purge.add_argument("--json", action="store_true", help="print JSON")

    clear = sub.add_parser("clear-queue", parents=[parent], help="drop every pending job")
    clear.add_argument("--json", action="store_true", help="print JSON")

    doctor = sub.add_parser("doctor", parents=[parent], help="check settings, connectivity, permissions, path rules")
    doctor.add_argument("--json", action="store_true", help="print JSON")


def _say(message: str) -> None:
    print(f"stash2plex: {message}", file=sys.stderr, flush=True)


def _queue_for_sync(app: App, args: argparse.Namespace) -> int:
    if args.scene:
        queued = app.queue.enqueue_many(args.scene, "sync-one")
    elif args.since_days is not None:
        queued = admin.queue_recent(app, days=args.since_days)
    else:
        queued = admin.queue_all(app)
    print(f"queued {queued} scene(s)", file=sys.stderr)
    return queued


def _print_sync(args: argparse.Namespace, queued: int, report: DrainReport) -> None:
    if args.json:
        print_json(
            {
                "queued": queued,
                "outcomes": report.outcomes,
                "reason": report.reason,
                "stop_reason": report.stop_reason,
                "elapsed_seconds": report.elapsed_seconds,
            }
        )
    else:
        table(sorted(report.outcomes.items()), ["outcome", "jobs"])
        print(f"{report.jobs} job attempt(s) in {report.elapsed_seconds:.1f} s")


def cmd_sync(args: argparse.Namespace) -> int:
    """Queue, then drain under the drain lease; SIGTERM/SIGINT stop after the jobs in hand (exit 130)."""
    with open_app(args) as app:
        queued = _queue_for_sync(app, args)
        if args.queue_only:
            if args.json:
                print_json({"queued": queued})
            return 0
        stop = threading.Event()
        signalled: list[int] = []

        def request_stop(signum: int, frame: FrameType | None) -> None:
            # The drain runs in admin.drain's thread; this main thread only joins it.
            signalled.append(signum)
            stop.set()

        previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            with admin.holding_drain_lease(
                drain_lease(app, "sync"),
                wait=args.wait,
                stop=stop,
                on_wait=lambda holder: _say(f"waiting for the drain lease (held by {holder or 'unknown'})"),
                on_lost=stop.set,
            ) as held:
                if not held:  # a signal ended the wait
                    return exitcodes.EXIT_INTERRUPTED
                bar = ProgressBar("syncing")
                report = admin.drain(app, progress=bar, stop=stop)
                bar.close()
        except admin.DrainLeaseHeldError as exc:
            if args.json:
                print_json({"queued": queued, "busy": exc.holder})
            _say(f"{exc}; the {queued} queued scene(s) are left to it (use --wait to wait and drain here)")
            return exitcodes.EXIT_BUSY
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        _print_sync(args, queued, report)
        if report.stop_reason:
            _say(f"worker stopped: {report.stop_reason}")
        elif signalled:
            _say(f"signal {signalled[0]}: stopped after the jobs in hand; the rest stays queued")
            return exitcodes.EXIT_INTERRUPTED
        elif stop.is_set():
            _say("lost the drain lease to another process; it drains the rest")
        return exitcodes.for_stop_reason(report.stop_reason)


def cmd_worker(args: argparse.Namespace) -> int:
    with open_app(args) as app:
        service = admin.QueueService(
            app,
            lease=drain_lease(app, "worker"),
            reconcile_every=args.reconcile_check_seconds,
            notify=_say,
        )

        def request_stop(signum: int, frame: FrameType | None) -> None:
            # Runs on the main thread, which only joins the service thread: setting its
            # events cannot deadlock with it.
            print(f"stash2plex: signal {signum}: stopping after the jobs in hand", file=sys.stderr, flush=True)
            service.request_stop()

        results: list[admin.ServiceReport] = []
        errors: list[BaseException] = []

        def run() -> None:
            try:
                results.append(service.run(until_empty=args.once, wait_for_lease=not args.once or args.wait))
            except BaseException as exc:  # noqa: BLE001 - re-raised on the main thread
                errors.append(exc)

        previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            thread = threading.Thread(target=run, name="stash2plex-worker")
            thread.start()
            _say("worker started" + (" (--once)" if args.once else "; SIGTERM or SIGINT stops it"))
            while thread.is_alive():
                thread.join(0.2)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if errors:
            if isinstance(errors[0], admin.DrainLeaseHeldError):
                if args.json:
                    print_json({"busy": errors[0].holder})
                _say(f"{errors[0]}; the queued jobs are left to it (use --wait to wait for it)")
                return exitcodes.EXIT_BUSY
            raise errors[0]
        report = results[0]
        if args.json:
            print_json(_report_json(report))
        _say(
            f"worker finished ({report.reason}): {report.jobs} job attempt(s) in {report.drains} drain(s), "
            f"{report.reconciliations} scheduled reconciliation(s)"
        )
        if report.stop_reason:
            _say(f"worker stopped: {report.stop_reason}")
        return exitcodes.for_stop_reason(report.stop_reason)


def _report_json(report: admin.ServiceReport) -> dict[str, object]:
    return {
        "outcomes": dict(report.outcomes),
        "jobs": report.jobs,
        "drains": report.drains,
        "reconciliations": report.reconciliations,
        "reason": report.reason,
        "stop_reason": report.stop_reason,
        "elapsed_seconds": report.elapsed_seconds,
    }


def cmd_status(args: argparse.Namespace) -> int:
    with open_app(args) as app:
        report = admin.status(app)
        holder = drain_holder(app)
    if args.json:
        print_json({**to_jsonable(report), "drain_lease_holder": holder})
        return 0
    q = report.queue
    table(
        [
            ("queue", f"{q.ready} ready, {q.waiting} waiting, {q.leased} in progress, {q.dead} dead"),
            ("drain", f"held by {holder}" if holder else "no worker holds the drain lease"),
            (
                "breaker",
                f"{report.breaker.status.value}"
                + (f" ({report.breaker.last_error})" if report.breaker.last_error else ""),
            ),
            (
                "outages",
                f"{report.outages.count} recorded"
                + (f", last {report.last_outage.started_at:%Y-%m-%d %H:%M} UTC" if report.last_outage else ""),
            ),
            ("reconcile", report.last_reconcile.summary_lines()[0] if report.last_reconcile else "never"),
            ("review", f"{len(report.reviews)} low-confidence match(es) waiting"),
            (
                "synced",
                f"{report.stats.succeeded} ok ({report.stats.applied} edited, "
                f"{report.stats.skipped_unchanged} unchanged), {report.stats.failed} failed, "
                f"{report.stats.dead_lettered} dead-lettered",
            ),
        ],
        ["what", "state"],
    )
    return 0


def cmd_health(args: argparse.Namespace) -> int:
    with open_app(args) as app:
        checks = admin.check_health(app)
    if args.json:
        print_json(checks)
    else:
        table(
            [(c.service, "ok" if c.ok else "FAIL", c.latency_ms, c.detail) for c in checks],
            ["service", "state", "latency ms", "detail"],
        )
    return exitcodes.for_kinds([c.failure for c in checks if not c.ok])


def cmd_outages(args: argparse.Namespace) -> int:
    with open_app(args) as app:
        history, summary = admin.outage_history(app)
    if args.json:
        print_json({"summary": summary, "history": history})
        return 0
    table(
        [
            (
                r.started_at.isoformat(timespec="seconds"),
                r.ended_at.isoformat(timespec="seconds") if r.ended_at else "ongoing",
                r.duration,
                r.jobs_affected,
                r.cause,
            )
            for r in history
        ],
        ["started", "ended", "duration", "jobs", "cause"],
    )
    availability = "n/a" if summary.availability is None else f"{summary.availability:.4%}"
    print(f"MTTR {summary.mttr or 'n/a'}  MTBF {summary.mtbf or 'n/a'}  availability {availability}")
    return 0


def cmd_dlq(args: argparse.Namespace) -> int:
    with open_app(args) as app:
        if args.dlq_command == "list":
            letters = admin.dead_letters(app, DeadLetterFilter(error_class=args.error_class), args.limit)
            if args.json:
                print_json(letters)
            else:
                table(
                    [
                        (
                            d.scene_id,
                            d.error_class,
                            d.attempts,
                            d.last_failed_at.isoformat(timespec="seconds"),
                            d.message[:80],
                        )
                        for d in letters
                    ],
                    ["scene", "error", "attempts", "last failure", "message"],
                )
            return 0
        if args.dlq_command == "retry":
            if args.last_outage:
                count = admin.retry_last_outage(app)
            else:
                where = DeadLetterFilter(error_class=args.error_class, scene_ids=args.scene)
                count = admin.retry_dead(app, where)
            if args.json:
                print_json({"requeued": count})
            else:
                print(f"queued {count} dead letter(s) again")
            return 0
        count = admin.purge_dead(app, days=args.older_than_days)
        if args.json:
            print_json({"purged": count})
        else:
            print(f"purged {count} dead letter(s)")
        return 0


def cmd_clear_queue(args: argparse.Namespace) -> int:
    with open_app(args) as app:
        dropped = app.queue.clear_pending()
    if args.json:
        print_json({"dropped": dropped})
    else:
        print(f"dropped {dropped} pending job(s)")
    return 0


COMMANDS = {
    "sync": cmd_sync,
    "worker": cmd_worker,
    "status": cmd_status,
    "health": cmd_health,
    "outages": cmd_outages,
    "dlq": cmd_dlq,
    "clear-queue": cmd_clear_queue,
}

__all__ = ["COMMANDS", "add_parsers"]
