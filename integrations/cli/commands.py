"""The operational commands: sync, worker, status, health, dlq, doctor.

Each one parses nothing itself (``main`` did), calls one service from
:mod:`stash2plex_core.services.admin` or the worker, and formats the result.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from stash2plex_core.models.jobs import DeadLetterFilter
from stash2plex_core.services import admin
from stash2plex_core.services.worker import SyncWorker
from stash2plex_integrations.cli.appctx import open_app
from stash2plex_integrations.cli.render import ProgressBar
from stash2plex_integrations.cli.render import print_json
from stash2plex_integrations.cli.render import table


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser], parent: argparse.ArgumentParser) -> None:
    sync = sub.add_parser("sync", parents=[parent], help="queue scenes and sync them to Plex now")
    scope = sync.add_mutually_exclusive_group()
    scope.add_argument("--all", action="store_true", help="every scene (the default)")
    scope.add_argument("--since-days", type=float, metavar="DAYS", help="scenes updated in the last DAYS days")
    scope.add_argument("--scene", action="append", metavar="ID", help="one scene id (repeatable)")
    sync.add_argument("--queue-only", action="store_true", help="queue, but leave the syncing to a worker")
    sync.add_argument("--json", action="store_true", help="print the result as JSON")

    worker = sub.add_parser("worker", parents=[parent], help="drain the queue until stopped (SIGTERM/SIGINT)")
    worker.add_argument("--once", action="store_true", help="drain what is due now, then exit")

    status = sub.add_parser("status", parents=[parent], help="queue counts, breaker, outages, reconciliation")
    status.add_argument("--json", action="store_true")

    health = sub.add_parser("health", parents=[parent], help="probe Plex and Stash and report latency")
    health.add_argument("--json", action="store_true")

    outages = sub.add_parser("outages", parents=[parent], help="outage history with MTTR, MTBF and availability")
    outages.add_argument("--json", action="store_true")

    dlq = sub.add_parser("dlq", help="dead letters: list, retry, purge")
    dlq_sub = dlq.add_subparsers(dest="dlq_command", metavar="ACTION", required=True)
    listing = dlq_sub.add_parser("list", parents=[parent], help="list dead letters, most recent first")
    listing.add_argument("--error-class", metavar="NAME")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true")
    retry = dlq_sub.add_parser("retry", parents=[parent], help="queue dead letters again")
    which = retry.add_mutually_exclusive_group()
    which.add_argument("--error-class", metavar="NAME", help="only this error class")
    which.add_argument("--scene", action="append", metavar="ID", help="only this scene (repeatable)")
    which.add_argument("--last-outage", action="store_true", help="only those of the last outage")
    purge = dlq_sub.add_parser("purge", parents=[parent], help="delete dead letters older than DAYS")
    purge.add_argument("--older-than-days", type=float, required=True, metavar="DAYS")

    sub.add_parser("clear-queue", parents=[parent], help="drop every pending job")

    doctor = sub.add_parser("doctor", parents=[parent], help="check settings, connectivity, permissions, path rules")
    doctor.add_argument("--json", action="store_true")


def cmd_sync(args: argparse.Namespace) -> int:
    with open_app(args) as app:
        if args.scene:
            queued = app.queue.enqueue_many(args.scene, "sync-one")
        elif args.since_days is not None:
            queued = admin.queue_recent(app, days=args.since_days)
        else:
            queued = admin.queue_all(app)
        print(f"queued {queued} scene(s)", file=sys.stderr)
        if args.queue_only:
            if args.json:
                print_json({"queued": queued})
            return 0
        bar = ProgressBar("syncing")
        report = admin.drain(app, progress=bar)
        bar.close()
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
        if report.stop_reason:
            print(f"stash2plex: worker stopped: {report.stop_reason}", file=sys.stderr)
            return 3
        return 0


def cmd_worker(args: argparse.Namespace) -> int:
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        print(f"stash2plex: signal {signum}: stopping after the job in hand", file=sys.stderr)
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with open_app(args) as app:
            worker = SyncWorker.from_app(app)
            report = worker.drain(until_empty=args.once, stop=stop)
            print(f"worker finished ({report.reason}): {report.jobs} job attempt(s)", file=sys.stderr)
            if report.stop_reason:
                print(f"stash2plex: worker stopped: {report.stop_reason}", file=sys.stderr)
                return 3
            return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def cmd_status(args: argparse.Namespace) -> int:
    with open_app(args) as app:
        report = admin.status(app)
    if args.json:
        print_json(report)
        return 0
    q = report.queue
    table(
        [
            ("queue", f"{q.ready} ready, {q.waiting} waiting, {q.leased} in progress, {q.dead} dead"),
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
    return 0 if all(c.ok for c in checks) else 4


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
            print(f"queued {count} dead letter(s) again")
            return 0
        count = admin.purge_dead(app, days=args.older_than_days)
        print(f"purged {count} dead letter(s)")
        return 0


def cmd_clear_queue(args: argparse.Namespace) -> int:
    with open_app(args) as app:
        print(f"dropped {app.queue.clear_pending()} pending job(s)")
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
