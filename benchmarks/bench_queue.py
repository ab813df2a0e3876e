"""Benchmark the SQLite queue: hook cost, enqueue latency, bulk enqueue, claim rate, contention.

Run ``python benchmarks/bench_queue.py`` (``--quick`` for a smoke run); it prints one JSON
document. Every figure comes with its baseline from the same run, because absolute times
vary between machines:

* ``hook_process``: whole-process wall time of a process that opens the database and
  enqueues one job through ``stash2plex_backends.sqlite.hookpath``, against bare
  ``python -c pass``; with ``-I -S`` (recommended for the Stash hook) and without flags,
  and with and without a worker's connection open (the last connection to close a WAL
  database checkpoints it, which costs the difference).
* ``enqueue``: in-process ``SQLiteQueue.enqueue`` latency (``synchronous=FULL``).
* ``bulk_enqueue``: ``enqueue_many`` of 100,000 scenes in one transaction.
* ``claim_complete``: claim + complete rate on an empty queue and with a 10,000-job
  backlog; the ratio shows the claim does not slow with the backlog (no sort).
* ``contention``: 8 hook-style producer processes and 2 worker processes at once.

Targets (issue 3, on the 2-core reference machine): enqueue p99 < 1 ms; bulk < 5 s;
claim+complete >= 2,000/s and backlog/empty slowdown <= 1.5x; contention p99 < 100 ms.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import stash2plex_backends
from stash2plex_backends.sqlite import SQLiteQueue


PACKAGE_ROOT = str(Path(stash2plex_backends.__file__).resolve().parents[1])

HOOK = (
    "from stash2plex_backends.sqlite import hookpath; import sys; hookpath.enqueue(sys.argv[1], sys.argv[2], 'update')"
)

PRODUCER = """
import json, sys, time
from stash2plex_backends.sqlite import hookpath
db, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
latencies, errors = [], []
for i in range(count):
    start = time.perf_counter()
    try:
        hookpath.enqueue(db, f"{name}-{i}", "update")
    except Exception as exc:
        errors.append(repr(exc))
    latencies.append(time.perf_counter() - start)
print(json.dumps({"latencies": latencies, "errors": errors}))
"""

WORKER = """
import json, os, signal, sys, time
from stash2plex_backends.sqlite import SQLiteQueue
db, owner, stop = sys.argv[1], sys.argv[2], sys.argv[3]
queue = SQLiteQueue(db)
claimed, errors = [], []
while True:
    try:
        job = queue.claim(owner, 30)
    except Exception as exc:
        errors.append(repr(exc))
        continue
    if job is None:
        if os.path.exists(stop) and queue.counts().pending == 0:
            break
        time.sleep(0.002)
        continue
    claimed.append(job.scene_id)
    try:
        queue.complete(job)
    except Exception as exc:
        errors.append(repr(exc))
print(json.dumps({"claimed": claimed, "errors": errors}))
"""


def stats(values: list[float], unit: float = 1e3) -> dict[str, float]:
    """p50/p95/p99/max (and mean) of ``values`` seconds, in ms by default."""
    ordered = sorted(values)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * unit, 3)

    return {
        "n": len(ordered),
        "p50": pick(0.50),
        "p95": pick(0.95),
        "p99": pick(0.99),
        "max": round(ordered[-1] * unit, 3),
        "mean": round(statistics.fmean(ordered) * unit, 3),
    }


def wall(cmd: list[str], runs: int, warmups: int = 3) -> list[float]:
    times = []
    for i in range(warmups + runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        if i >= warmups:
            times.append(time.perf_counter() - start)
    return times


def bench_hook_process(work: Path, runs: int) -> dict[str, object]:
    db = work / "hook" / "stash2plex.db"
    SQLiteQueue(db).counts()  # the database exists, as it does after the first event
    out: dict[str, object] = {}
    isolated_prefix = f"import sys; sys.path.insert(0, {PACKAGE_ROOT!r}); "
    for label, flags, code in (
        ("isolated_-I_-S", ["-I", "-S"], isolated_prefix + HOOK),
        ("default_flags", [], HOOK),
    ):
        bare = wall([sys.executable, *flags, "-c", "pass"], runs)
        hook = wall([sys.executable, *flags, "-c", code, str(db), "1"], runs)
        worker = sqlite3.connect(db)  # a worker holds a connection, so the hook is not the last
        worker.execute("SELECT COUNT(*) FROM jobs").fetchone()
        try:
            hook_open = wall([sys.executable, *flags, "-c", code, str(db), "2"], runs)
        finally:
            worker.close()
        out[label] = {
            "bare_python_ms": stats(bare),
            "hook_enqueue_ms": stats(hook),
            "hook_enqueue_worker_open_ms": stats(hook_open),
            "ratio_p50": round(statistics.median(hook) / statistics.median(bare), 2),
            "hook_minus_bare_p50_ms": round((statistics.median(hook) - statistics.median(bare)) * 1e3, 2),
        }
    return out


def bench_enqueue(work: Path, n: int) -> dict[str, object]:
    queue = SQLiteQueue(work / "enqueue.db")
    queue.counts()
    times = []
    gc.disable()
    try:
        for i in range(n):
            start = time.perf_counter()
            queue.enqueue(str(i))
            times.append(time.perf_counter() - start)
    finally:
        gc.enable()
        queue.close()
    return {"synchronous": "FULL", "latency_ms": stats(times), "per_second": round(n / sum(times))}


def bench_bulk(work: Path, n: int) -> dict[str, object]:
    queue = SQLiteQueue(work / "bulk.db")
    queue.counts()
    scenes = [str(i) for i in range(n)]
    start = time.perf_counter()
    queue.enqueue_many(scenes)
    elapsed = time.perf_counter() - start
    assert queue.counts().ready == n
    queue.close()
    return {"scenes": n, "seconds": round(elapsed, 3), "per_second": round(n / elapsed)}


def _claim_complete(db: Path, backlog: int, n: int, synchronous: str) -> float:
    queue = SQLiteQueue(db, worker_synchronous=synchronous)
    if backlog:
        queue.enqueue_many(f"b{i}" for i in range(backlog + n))
    total = 0.0
    gc.disable()
    try:
        for i in range(n):
            if not backlog:
                queue.enqueue(f"e{i}")  # one job at a time: the queue is otherwise empty
            start = time.perf_counter()
            job = queue.claim("bench", 30)
            assert job is not None
            queue.complete(job)
            total += time.perf_counter() - start
    finally:
        gc.enable()
        queue.close()
    return n / total


def bench_claim_complete(work: Path, n: int, backlog: int) -> dict[str, object]:
    """Rates with an empty queue (one job enqueued before each claim), a small backlog
    (100) and a large one; the small-to-large ratio isolates the claim's growth."""
    out: dict[str, object] = {}
    for synchronous in ("NORMAL", "FULL"):
        empty = _claim_complete(work / f"cc-empty-{synchronous}.db", 0, n, synchronous)
        small = _claim_complete(work / f"cc-small-{synchronous}.db", 100, n, synchronous)
        loaded = _claim_complete(work / f"cc-backlog-{synchronous}.db", backlog, n, synchronous)
        out[f"worker_synchronous_{synchronous}"] = {
            "empty_per_second": round(empty),
            "backlog_100_per_second": round(small),
            f"backlog_{backlog}_per_second": round(loaded),
            "slowdown_backlog_vs_empty": round(empty / loaded, 3),
            f"slowdown_backlog_{backlog}_vs_100": round(small / loaded, 3),
        }
    return out


def bench_contention(work: Path, producers: int, workers: int, per_producer: int) -> dict[str, object]:
    db = work / "contention.db"
    stop = work / "contention.stop"
    SQLiteQueue(db).counts()
    worker_procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(db), f"w{i}", str(stop)], stdout=subprocess.PIPE, text=True)
        for i in range(workers)
    ]
    time.sleep(0.5)  # let the workers start polling
    start = time.perf_counter()
    producer_procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-I",
                "-S",
                "-c",
                f"import sys; sys.path.insert(0, {PACKAGE_ROOT!r})\n" + PRODUCER,
                str(db),
                f"p{i}",
                str(per_producer),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(producers)
    ]
    latencies: list[float] = []
    errors: list[str] = []
    for proc in producer_procs:
        out, _ = proc.communicate(timeout=300)
        data = json.loads(out)
        latencies += data["latencies"]
        errors += data["errors"]
    produced = time.perf_counter() - start
    stop.touch()
    claimed: list[str] = []
    for proc in worker_procs:
        out, _ = proc.communicate(timeout=300)
        data = json.loads(out)
        claimed += data["claimed"]
        errors += data["errors"]
    drained = time.perf_counter() - start
    expected = {f"p{p}-{i}" for p in range(producers) for i in range(per_producer)}
    return {
        "producers": producers,
        "workers": workers,
        "enqueues": len(latencies),
        "enqueue_latency_ms": stats(latencies),
        "lock_errors": sum("locked" in e or "busy" in e for e in errors),
        "errors": len(errors),
        "duplicate_claims": len(claimed) - len(set(claimed)),
        "lost": len(expected - set(claimed)),
        "produce_seconds": round(produced, 3),
        "drain_seconds": round(drained, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    args = parser.parse_args()
    quick = args.quick
    work = Path(tempfile.mkdtemp(prefix="s2p-bench-"))
    try:
        result = {
            "environment": {
                "python": platform.python_version(),
                "sqlite": sqlite3.sqlite_version,
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
                "quick": quick,
            },
            "hook_process": bench_hook_process(work, 5 if quick else 40),
            "enqueue": bench_enqueue(work, 500 if quick else 10_000),
            "bulk_enqueue": bench_bulk(work, 5_000 if quick else 100_000),
            "claim_complete": bench_claim_complete(work, 200 if quick else 2_000, 1_000 if quick else 10_000),
            "contention": bench_contention(work, 8, 2, 30 if quick else 300),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
