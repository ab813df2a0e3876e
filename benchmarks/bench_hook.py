"""Benchmark the Stash plugin's hook exactly as Stash runs it: one whole process per event.

Run ``python benchmarks/bench_hook.py`` (``--runs N``, default 200; ``--quick`` for 20). It
prints one JSON document.

Each run is ``python stash2plex_plugin.py`` (the manifest's ``exec``, default interpreter
flags) with a ``Scene.Update.Post`` hook context on stdin: it reads the JSON, commits one
coalesced row to the SQLite queue at ``synchronous=FULL``, checks the drain lease and
prints one JSON result. A simulated Stash answers the one ``runPluginTask`` the first hook
sends (its task handler only records the request), so later hooks see the drain lease held,
as they do while a worker drains. Scene ids cycle over 50 scenes, so most events coalesce
into a pending job, as a burst of saves does.

The baseline is bare ``python3 -c pass`` with the same interpreter, interleaved run by run
with the hook so that machine noise hits both alike. Target (issue 7): hook median within
15 ms of the bare interpreter and hook p99 under 100 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import stash2plex_integrations.stash_plugin as plugin_package
from stash2plex_backends.simulators.stash import StashSimulator


ENTRY = Path(plugin_package.__file__).with_name("stash2plex_plugin.py")
COOKIE = "bench-cookie"


def summary(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3, 2)

    return {
        "p50": round(statistics.median(ordered) * 1e3, 2),
        "p90": pick(0.90),
        "p99": pick(0.99),
        "max": round(ordered[-1] * 1e3, 2),
        "mean": round(statistics.fmean(ordered) * 1e3, 2),
    }


def timed(cmd: list[str], stdin: bytes | None, env: dict[str, str]) -> tuple[float, bytes]:
    start = time.perf_counter()
    done = subprocess.run(cmd, input=stdin, capture_output=True, env=env, check=True)
    return time.perf_counter() - start, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="20 runs")
    args = parser.parse_args()
    runs = 20 if args.quick else args.runs

    env = dict(os.environ)
    env.pop("STASH2PLEX_DATA_DIR", None)
    with (
        tempfile.TemporaryDirectory(prefix="bench-hook-") as tmp,
        StashSimulator(scenes=50, seed=1, session_cookie=COOKIE) as stash,
    ):
        stash.plugin_task_handler = lambda run: None  # record the drain request, run nothing
        plugin_dir = Path(tmp) / "plugins" / "stash2plex"
        plugin_dir.mkdir(parents=True)
        connection = stash.server_connection(plugin_dir=str(plugin_dir))

        def payload(i: int) -> bytes:
            context = {"id": i % 50 + 1, "type": "Scene.Update.Post", "input": {"id": str(i % 50 + 1)}}
            return json.dumps({"server_connection": connection, "args": {"hookContext": context}}).encode()

        hook_cmd = [sys.executable, str(ENTRY)]
        bare_cmd = [sys.executable, "-c", "pass"]
        first, out = timed(hook_cmd, payload(0), env)  # creates the database and starts the drain
        first_result = json.loads(out)
        for i in range(3):  # warm the page cache for both
            timed(bare_cmd, None, env)
            timed(hook_cmd, payload(i), env)
        hook: list[float] = []
        bare: list[float] = []
        errors = 0
        for i in range(runs):
            seconds, _ = timed(bare_cmd, None, env)
            bare.append(seconds)
            seconds, out = timed(hook_cmd, payload(i), env)
            hook.append(seconds)
            errors += json.loads(out)["error"] is not None
        with sqlite3.connect(plugin_dir / "stash2plex.db") as conn:
            pending = conn.execute("SELECT count(*) FROM jobs").fetchone()[0]
        drains = len(stash.plugin_task_runs)

    report = {
        "benchmark": "hook_process",
        "python": platform.python_version(),
        "runs": runs,
        "first_event_ms": round(first * 1e3, 2),
        "first_event_output": first_result["output"],
        "bare_python_ms": summary(bare),
        "hook_ms": summary(hook),
        "hook_minus_bare_p50_ms": round((statistics.median(hook) - statistics.median(bare)) * 1e3, 2),
        "hook_over_bare_p50": round(statistics.median(hook) / statistics.median(bare), 2),
        "errors": errors,
        "pending_jobs": pending,
        "drain_tasks_started": drains,
        "targets": {
            "median_within_15ms_of_bare": (statistics.median(hook) - statistics.median(bare)) * 1e3 <= 15,
            "p99_under_100ms": summary(hook)["p99"] < 100,
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
