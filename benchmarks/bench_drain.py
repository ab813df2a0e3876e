"""Drain the sync queue into a simulated Plex through the real worker, plexapi and stashapi.

Prints one JSON document. Both simulators run in child processes (like a real Plex and
Stash), so the GIL of their request handling does not skew the worker's timings; the
worker uses the SQLite queue and state in a temporary directory. Phases:

* ``setup`` (not a target): the first sync of a freshly scanned library, poster uploads
  included, without injected latency;
* ``changed``: every scene edited in Stash (title and details), then drained with 10 ms
  injected Plex latency at ``--concurrency`` requests in flight: scenes/s, Plex requests per
  changed scene and elapsed ÷ latency floor, where the floor is requests x 10 ms ÷
  concurrency. Targets: at most 2 requests per changed scene, elapsed within 1.25x the floor;
* ``unchanged``: the same scenes drained again with nothing changed. Target: 0 PUTs and no
  per-scene detail GET;
* ``errors_503``: every scene edited again, 30 % of Plex requests answering 503 at random.
  Targets: everything delivered, 0 dead letters, 0 breaker trips, at most 1.5x the requests
  of ``changed``;
* ``outage_refuse`` and ``outage_503`` (phase ``outage``, one run per ``--outage-kind``):
  every scene edited again and, ``--outage-after`` seconds (10) into the drain, Plex
  refuses connections (its process is gone: a restart, a crash) or answers 503 to
  everything for ``--outage`` seconds (20). Targets: at most 100 requests reach Plex during
  the outage, 0 dead letters, draining again within 1 s of recovery. Recovery is measured
  from the moment Plex answers (accepts connections) again, not from the worker's first
  successful probe: ``plex_back_to_first_synced_s`` is the headline figure, split into
  ``plex_back_to_first_successful_probe_s`` and ``first_successful_probe_to_first_synced_s``
  (set by the drain). When connections were refused the worker watches Plex's port (a TCP
  connect every 0.25 s, no request) and probes the moment it opens, so the first part is
  under a second; a Plex answering 503 looks alive at the port, and only the probe
  schedule (5 s doubling to 60 s) can see it back, so there the first part is up to the
  probe interval in force. The ramp's rate in the first second is reported relative to
  the pre-outage rate (target at least 10 %).

"Everything delivered" is checked after each phase by reading every item back through the
gateway (outside the timings) and comparing it with the desired state of its scene.

Why the default concurrency is ``settings.plex_concurrency`` (4): Plex Media Server is one
process over one SQLite database, so its writes are serialised whatever the client does;
more requests in flight only queue inside Plex (and slow down its playback clients) once
the network latency is hidden. Four in flight already hide a LAN's latency (reliability
reference 5.5: 336 jobs/s at 10 ms with 4 threads against 85 with 1) while keeping at most
four concurrent edits on the server; pass ``--concurrency`` to measure others.

Retries use a short schedule here (``retry_base_seconds`` 0.05, cap 2 s, as in reference
recipe 11.7) so the 503 phase does not spend minutes waiting for its last stragglers; the
6-hour retry horizon is unchanged, so nothing may be dead-lettered. The breaker, probes and
ramp keep their defaults.

Usage: ``python benchmarks/bench_drain.py [--scenes N] [--concurrency N] [--phases ...]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import platform
import sys
import tempfile
import threading
import time
from typing import Any


TOKEN = "bench-drain-token"
KEY = "bench-drain-key"
STASH_ROOT = "/data/library"
PLEX_ROOT = "/media/library"
SEED = 5
LATENCY = 0.010
PHASES = ("changed", "unchanged", "errors_503", "outage")


# -- child processes ---------------------------------------------------------------------------


def _plex_child(conn: Any, scenes: int, seed: int) -> None:
    """A seeded simulated Plex answering control commands over a pipe."""
    from stash2plex_backends.simulators import Fault
    from stash2plex_backends.simulators.plex import PlexSimulator

    sim = PlexSimulator(items=scenes, seed=seed, library_root=PLEX_ROOT, token=TOKEN).start()
    conn.send({"url": sim.url, "items": len(sim)})
    while True:
        command, *args = conn.recv()
        if command == "count":
            conn.send(sim.requests.count(*args))
        elif command == "clear":
            sim.requests.clear()
            conn.send(None)
        elif command == "faults":  # replace every fault, in order
            sim.faults.clear()
            sim.faults.reseed(args[1])
            for spec in args[0]:
                sim.faults.add(Fault(**spec))
            conn.send(None)
        elif command == "refuse":
            sim.refuse()
            conn.send(None)
        elif command == "accept":
            sim.accept()
            conn.send(None)
        elif command == "violations":
            conn.send(sim.violations)
        elif command == "cpu":
            conn.send(time.process_time())
        elif command == "stop":
            sim.stop()
            conn.send(None)
            return


def _stash_child(conn: Any, scenes: int, seed: int) -> None:
    """A seeded simulated Stash; ``edit`` changes the title and details of scenes."""
    from stash2plex_backends.simulators.stash import StashSimulator

    sim = StashSimulator(scenes, seed, STASH_ROOT, api_key=KEY).start()
    conn.send({"url": sim.url, "scenes": len(sim.scenes)})
    while True:
        command, *args = conn.recv()
        if command == "edit":
            ids, mark = args
            for scene_id in ids:
                scene = sim.scene(scene_id)
                base = scene.title.split(" ~ ")[0]
                sim.update_scene(scene_id, title=f"{base} ~ {mark}", details=f"Edited ({mark}) for the benchmark.")
            conn.send(len(ids))
        elif command == "count":
            conn.send(sim.requests.count(*args))
        elif command == "clear":
            sim.requests.clear()
            conn.send(None)
        elif command == "cpu":
            conn.send(time.process_time())
        elif command == "stop":
            sim.stop()
            conn.send(None)
            return


class Remote:
    """One simulator in a child process; calls are serialised (the timer thread uses it too)."""

    def __init__(self, target: Any, scenes: int, seed: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=target, args=(child, scenes, seed), daemon=True)
        self.process.start()
        self.info: dict[str, Any] = self.conn.recv()
        self.url: str = self.info["url"]
        self._lock = threading.Lock()

    def call(self, *command: Any) -> Any:
        with self._lock:
            self.conn.send(command)
            return self.conn.recv()

    def stop(self) -> None:
        self.call("stop")
        self.process.join(10)


# -- the worker side ---------------------------------------------------------------------------


class Events(logging.Handler):
    """Keeps (time, event) of the worker's and breaker's structured log records."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seen: list[tuple[float, str]] = []
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "event", None)
        if event is not None:
            with self._guard:
                self.seen.append((time.monotonic(), str(event)))

    def times(self, event: str) -> list[float]:
        with self._guard:
            return [t for t, e in self.seen if e == event]


class Bench:
    def __init__(self, scenes: int, seed: int, concurrency: int, directory: str) -> None:
        from stash2plex_backends.simulators.seedlib import generate_library

        self.scenes = scenes
        self.concurrency = concurrency
        started = time.perf_counter()
        self.plex = Remote(_plex_child, scenes, seed)
        self.stash = Remote(_stash_child, scenes, seed)
        self.startup_seconds = time.perf_counter() - started
        library = generate_library(scenes, seed, STASH_ROOT)
        self.ids = [s.id for s in library.scenes]
        secondary = {
            s.id for s in library.scenes if s.stack_key is not None and s.files[0].path.endswith(" - part2.mp4")
        }
        #: Scenes that speak for a Plex item (later parts of stacked films are dropped by design).
        self.owners = [i for i in self.ids if i not in secondary]
        self.settings = self._settings(directory)
        self.app = self._app()

    def _settings(self, directory: str) -> Any:
        from stash2plex_core.models.matching import PathRule
        from stash2plex_core.settings import Secret
        from stash2plex_core.settings import Settings

        rule = PathRule(
            name="library",
            stash_pattern=r"/data/library/(?P<rest>.+)",
            plex_template="/media/library/{rest}",
            plex_pattern=r"/media/library/(?P<rest>.+)",
            stash_template="/data/library/{rest}",
            samples=("/data/library/Studio/file.mp4",),
        )
        return Settings(
            plex_url=self.plex.url,
            plex_token=Secret(TOKEN),
            stash_url=self.stash.url,
            stash_api_key=Secret(KEY),
            path_rules=(rule,),
            data_dir=directory,
            queue_backend="sqlite",
            state_backend="sqlite",
            plex_backend="plexapi",
            stash_backend="stashapi",
            plex_concurrency=self.concurrency,
            retry_base_seconds=0.05,
            retry_max_seconds=2.0,
        )

    def _app(self) -> Any:
        import stash2plex_backends.memory
        import stash2plex_backends.plex.plugin
        import stash2plex_backends.sqlite
        import stash2plex_backends.stash.plugin
        import stash2plex_backends.system
        from stash2plex_core import build_app
        from stash2plex_core.plugin import build_registry

        plugins: list[object] = [
            stash2plex_backends.memory,
            stash2plex_backends.plex.plugin,
            stash2plex_backends.system,
            stash2plex_backends.sqlite,
            stash2plex_backends.stash.plugin,
        ]
        return build_app(self.settings, registry=build_registry(autoload=False, plugins=plugins))

    def worker(self) -> Any:
        import random

        from stash2plex_core.services.worker import SyncWorker

        return SyncWorker.from_app(self.app, rng=random.Random(1))

    def latency(self, extra: list[dict[str, Any]] | None = None, seed: int = 0) -> None:
        """Injected faults: ``extra`` first, then 10 ms of latency on every request."""
        self.plex.call("faults", [*(extra or []), {"path": ".*", "action": "delay", "delay": LATENCY}], seed)

    def no_faults(self) -> None:
        self.plex.call("faults", [], 0)

    def counts(self) -> dict[str, int]:
        call = self.plex.call
        return {
            "total": call("count"),
            "puts": call("count", "PUT", r"^/library/sections/\d+/all$"),
            # A job's detail read is single-key, or multi-key when earlier edits' read-backs
            # ride along with it; a per-scene detail GET is either kind.
            "detail_gets": call("count", "GET", r"^/library/metadata/\d+$"),
            "batch_gets": call("count", "GET", r"^/library/metadata/\d+(,\d+)+$"),
            "item_reads": call("count", "GET", r"^/library/metadata/\d+(,\d+)*$"),
            "poster_uploads": call("count", "POST", r"^/library/metadata/\d+/posters$"),
            "poster_lists": call("count", "GET", r"^/library/metadata/\d+/posters$"),
            "listings": call("count", "GET", r"^/library/sections/\d+/all$"),
            "probes": call("count", "GET", r"^/identity$"),
        }

    def queue_figures(self) -> dict[str, int]:
        counts = self.app.queue.counts()
        return {"pending": counts.pending, "dead_letters": len(self.app.queue.dead_letters())}

    def outages(self) -> int:
        from stash2plex_core.services.outages import OutageLog

        return len(OutageLog(self.app.state).history())

    def verify(self) -> dict[str, Any]:
        """Read every owner's item back and compare it with its scene's desired state."""
        from stash2plex_core.models.health import SyncRecord
        from stash2plex_core.serde import from_document
        from stash2plex_core.services.mapping import desired_state
        from stash2plex_core.services.reconcile import drift_fields

        keys: dict[str, str] = {}
        for scene_id in self.owners:
            document = self.app.state.get("sync", scene_id)
            if document is not None:
                keys[scene_id] = from_document(SyncRecord, document).rating_key
        scenes = {s.id: s for s in self.app.stash.iter_scenes()}
        items = {i.rating_key: i for i in self.app.plex.get_items(list(keys.values()))}
        drifted = [
            sid
            for sid, key in keys.items()
            if key not in items or drift_fields(desired_state(scenes[sid], self.settings), items[key], self.settings)
        ]
        return {
            "owners": len(self.owners),
            "recorded": len(keys),
            "in_step": len(keys) - len(drifted),
            "drifted_examples": drifted[:5],
            "plex_protocol_violations": len(self.plex.call("violations")),
        }

    def cpu(self) -> dict[str, float]:
        return {"worker": time.process_time(), "plex": self.plex.call("cpu"), "stash": self.stash.call("cpu")}

    def stash_counts(self) -> dict[str, int]:
        call = self.stash.call
        return {
            "total": call("count"),
            "graphql": call("count", "POST", r"^/graphql$"),
            "images": call("count", "GET", r"^/scene/\d+/screenshot"),
        }

    def drain(self, worker: Any) -> tuple[Any, float]:
        self.plex.call("clear")
        self.stash.call("clear")
        before = self.cpu()
        started = time.perf_counter()
        report = worker.drain(concurrency=self.concurrency)
        elapsed = time.perf_counter() - started
        after = self.cpu()
        jobs = max(report.jobs, 1)
        #: CPU milliseconds per job attempt in each process (2 cores are shared by all three).
        self.last_cpu_ms = {name: round((after[name] - before[name]) / jobs * 1000, 2) for name in before}
        return report, elapsed

    def edit_all(self, mark: str) -> float:
        started = time.perf_counter()
        self.stash.call("edit", self.owners, mark)
        self.app.queue.enqueue_many(self.ids)
        return time.perf_counter() - started

    # -- phases

    def setup(self) -> dict[str, Any]:
        self.no_faults()
        self.app.queue.enqueue_many(self.ids)
        report, elapsed = self.drain(self.worker())
        counts = self.counts()
        synced = report.outcomes.get("synced", 0)
        return {
            "outcomes": dict(report.outcomes),
            "seconds": round(elapsed, 2),
            "scenes_per_second": round(len(self.ids) / elapsed, 1),
            "plex_requests": counts,
            "plex_requests_per_synced_scene": round(counts["total"] / max(synced, 1), 3),
            **self.queue_figures(),
        }

    def changed(self) -> dict[str, Any]:
        self.edit_all("changed")
        self.latency()
        report, elapsed = self.drain(self.worker())
        counts = self.counts()
        self.no_faults()
        synced = report.outcomes.get("synced", 0)
        floor = counts["total"] * LATENCY / self.concurrency
        return {
            "outcomes": dict(report.outcomes),
            "seconds": round(elapsed, 2),
            "scenes_per_second": round(len(self.ids) / elapsed, 1),
            "changed_scenes": synced,
            "plex_requests": counts,
            "plex_requests_per_changed_scene": round(counts["total"] / max(synced, 1), 3),
            "stash_requests": (stash := self.stash_counts()),
            "stash_requests_per_job": round(stash["total"] / max(report.jobs, 1), 3),
            "latency_floor_seconds": round(floor, 2),
            "cpu_ms_per_job": self.last_cpu_ms,
            "elapsed_over_floor": round(elapsed / floor, 3),
            **self.queue_figures(),
            "delivered": self.verify(),
            "targets": {
                "requests_per_changed_scene_max": 2.0,
                "elapsed_over_floor_max": 1.25,
            },
        }

    def unchanged(self) -> dict[str, Any]:
        self.app.queue.enqueue_many(self.ids)
        self.latency()
        report, elapsed = self.drain(self.worker())
        counts = self.counts()
        self.no_faults()
        return {
            "outcomes": dict(report.outcomes),
            "seconds": round(elapsed, 2),
            "scenes_per_second": round(len(self.ids) / elapsed, 1),
            "plex_requests": counts,
            **self.queue_figures(),
            "targets": {"puts": 0, "detail_gets": 0, "item_reads": 0},
        }

    def errors_503(self, reference_requests: int | None) -> dict[str, Any]:
        self.edit_all("errors")
        outages_before = self.outages()
        dead_before = len(self.app.queue.dead_letters())
        self.latency([{"path": ".*", "action": "status", "status": 503, "probability": 0.3}], seed=3)
        worker = self.worker()
        report, elapsed = self.drain(worker)
        counts = self.counts()
        self.no_faults()
        synced = report.outcomes.get("synced", 0)
        totals = worker.stats.totals()
        return {
            "outcomes": dict(report.outcomes),
            "seconds": round(elapsed, 2),
            "scenes_per_second": round(len(self.ids) / elapsed, 1),
            "plex_requests": counts,
            "plex_requests_per_changed_scene": round(counts["total"] / max(synced, 1), 3),
            "requests_over_changed_phase": (
                round(counts["total"] / reference_requests, 3) if reference_requests else None
            ),
            "errors_by_class": dict(totals.errors),
            "breaker_trips": self.outages() - outages_before,
            "dead_letters": len(self.app.queue.dead_letters()) - dead_before,
            "pending": self.app.queue.counts().pending,
            "delivered": self.verify(),
            "targets": {"dead_letters": 0, "breaker_trips": 0, "requests_over_changed_phase_max": 1.5},
        }

    def outage(self, outage_after: float, outage_seconds: float, kind: str = "503") -> dict[str, Any]:
        from stash2plex_core.services.outages import OutageLog

        self.edit_all(f"outage-{kind}")
        dead_before = len(self.app.queue.dead_letters())
        self.latency()
        events = Events()
        for name in ("stash2plex.worker", "stash2plex.breaker"):
            logger = logging.getLogger(name)
            logger.addHandler(events)
            logger.setLevel(logging.INFO)
            logger.propagate = False
        marks: dict[str, float] = {}

        def outage() -> None:
            time.sleep(outage_after)
            before = self.plex.call("count")
            if kind == "refuse":
                self.plex.call("refuse")  # refused connections are not recorded as requests
            else:
                self.plex.call("faults", [{"path": ".*", "action": "status", "status": 503}], 0)
            marks["down"] = time.monotonic()
            time.sleep(outage_seconds)
            during = self.plex.call("count") - before
            # "back" is taken once Plex answers again: after the faults are gone (503) or
            # right after it listens again (refuse), before the worker can have noticed.
            if kind == "refuse":
                self.plex.call("accept")
            else:
                self.latency()
            marks["back"] = time.monotonic()
            marks["requests_during"] = during

        timer = threading.Thread(target=outage, daemon=True)
        timer.start()
        report, elapsed = self.drain(self.worker())
        timer.join()
        for name in ("stash2plex.worker", "stash2plex.breaker"):
            logging.getLogger(name).removeHandler(events)
        counts = self.counts()
        self.no_faults()
        down, back = marks["down"], marks["back"]
        synced = sorted(events.times("job_synced"))
        first_after_back = next((t for t in synced if t >= back), None)
        half_open = next((t for t in events.times("breaker_half_opened") if t >= back), None)
        closed = next((t for t in events.times("breaker_closed") if t >= back), None)
        # "Recovery" as the worker can know it: the first successful probe after Plex came back.
        recovered = half_open if half_open is not None else closed
        first_after_recovery = next((t for t in synced if recovered is not None and t >= recovered), None)
        history = OutageLog(self.app.state).history()
        record = history[-1] if history else None

        def since(t: float | None, origin: float | None) -> float | None:
            return None if t is None or origin is None else round(t - origin, 3)

        steady = [t for t in synced if down - 2.0 <= t < down]
        pre_rate = len(steady) / 2.0

        def first_second(origin: float | None) -> int | None:
            return None if origin is None else sum(1 for t in synced if origin <= t < origin + 1.0)

        def relative(count: int | None) -> float | None:
            return None if count is None or not pre_rate else round(count / pre_rate, 3)

        after_back = first_second(back)
        after_seen = first_second(recovered)
        baseline = self.app.state.get("health", "ramp-baseline")
        return {
            "outcomes": dict(report.outcomes),
            "seconds": round(elapsed, 2),
            "outage_seconds": outage_seconds,
            "plex_requests": counts,
            "requests_during_outage": marks["requests_during"],
            "breaker_opened_after_outage_start_s": since(
                next((t for t in events.times("breaker_opened") if t >= down), None), down
            ),
            "plex_back_to_first_successful_probe_s": since(recovered, back),
            "first_successful_probe_to_first_synced_s": since(first_after_recovery, recovered),
            "plex_back_to_first_synced_s": since(first_after_back, back),
            "plex_back_to_breaker_closed_s": since(closed, back),
            "synced_per_second_before_outage": round(pre_rate, 1),
            "ramp_full_rate_measured_jobs_per_second": (
                round(baseline["jobs_per_second"], 1) if baseline and "jobs_per_second" in baseline else None
            ),
            "synced_in_first_second_after_plex_back": after_back,
            "ramp_rate_first_second_after_plex_back_over_pre_outage": relative(after_back),
            "synced_in_first_second_after_first_successful_probe": after_seen,
            "ramp_rate_first_second_after_probe_over_pre_outage": relative(after_seen),
            "outage_record": None
            if record is None
            else {
                "duration_s": record.duration.total_seconds() if record.duration else None,
                "jobs_affected": record.jobs_affected,
                "cause": record.cause,
            },
            "dead_letters": len(self.app.queue.dead_letters()) - dead_before,
            "pending": self.app.queue.counts().pending,
            "delivered": self.verify(),
            "outage_kind": kind,
            "targets": {
                "requests_during_outage_max": 100,
                "dead_letters": 0,
                "plex_back_to_first_synced_s_max": 1.0,
                "ramp_rate_first_second_after_plex_back_over_pre_outage_min": 0.1,
            },
        }

    def close(self) -> None:
        self.app.close()
        self.plex.stop()
        self.stash.stop()


def python_loop_ms(n: int = 1_000_000) -> float:
    """Milliseconds for a fixed pure-Python loop: how fast this machine is today.

    Shared machines differ several-fold from day to day, and this tells a slow day from a
    fast one. Within a day it is a poor guide to a single run: the elapsed/floor ratio
    follows the worker's CPU per job (``cpu_ms_per_job.worker``), so compare runs by that.
    """
    started = time.perf_counter()
    total = 0
    for i in range(n):
        total += i
    return round((time.perf_counter() - started) * 1000, 1)


def main(argv: list[str] | None = None) -> int:
    from stash2plex_core.settings import Settings

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--concurrency", type=int, default=Settings().plex_concurrency)
    parser.add_argument("--phases", nargs="*", choices=PHASES, default=list(PHASES))
    parser.add_argument("--outage", type=float, default=20.0, help="seconds of the hard outage")
    parser.add_argument("--outage-after", type=float, default=10.0, help="seconds into the drain it starts")
    parser.add_argument(
        "--outage-kind",
        nargs="+",
        choices=("refuse", "503"),
        default=["refuse", "503"],
        help="one outage per kind: Plex refuses connections (its process is gone), or answers 503",
    )
    args = parser.parse_args(argv)

    result: dict[str, Any] = {
        "benchmark": "drain",
        "python": platform.python_version(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python_loop_ms": python_loop_ms()},
        "scenes": args.scenes,
        "concurrency": args.concurrency,
        "injected_latency_ms": LATENCY * 1000,
    }
    with tempfile.TemporaryDirectory(prefix="bench-drain-") as directory:
        bench = Bench(args.scenes, args.seed, args.concurrency, directory)
        try:
            result["owners"] = len(bench.owners)
            result["startup_seconds"] = round(bench.startup_seconds, 2)
            result["setup"] = bench.setup()
            reference: int | None = None
            if "changed" in args.phases:
                result["changed"] = bench.changed()
                reference = result["changed"]["plex_requests"]["total"]
            if "unchanged" in args.phases:
                result["unchanged"] = bench.unchanged()
            if "errors_503" in args.phases:
                result["errors_503"] = bench.errors_503(reference)
            if "outage" in args.phases:
                for kind in args.outage_kind:
                    result[f"outage_{kind}"] = bench.outage(args.outage_after, args.outage, kind)
        finally:
            bench.close()
    json.dump(result, sys.stdout, indent=2, ensure_ascii=False)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
