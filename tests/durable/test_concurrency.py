"""Recipe D: many short-lived hook processes enqueue while two workers drain and a reader
reads counts. No lock error escapes, no job is claimed twice while leased, nothing is lost
and no scene ever has two pending rows."""

from __future__ import annotations

import itertools
import json
import sqlite3
import subprocess
import time
from collections import Counter
from collections import defaultdict
from pathlib import Path

from stash2plex_backends.sqlite import SQLiteQueue
from tests.durable._procs import Zygote
from tests.durable._procs import hook_command
from tests.durable._procs import percentile
from tests.durable._procs import read_log
from tests.durable._procs import wait_gone


PRODUCERS = 8
PER_PRODUCER = 150
HOT = 10

# Each enqueue opens its own connection, as a hook process does. Every fifth event is for
# one of a few "hot" scenes all producers share, so coalescing happens under contention.
PRODUCER = """
import json, sys, time
from stash2plex_backends.sqlite import hookpath
db, name, count, hot = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
latencies = []
for i in range(count):
    scene = f"hot-{(i // 5) % hot}" if i % 5 == 0 else f"{name}-{i}"
    start = time.perf_counter()
    hookpath.enqueue(db, scene, "update")
    latencies.append(time.perf_counter() - start)
print(json.dumps(latencies))
"""


def test_producers_workers_and_a_reader_at_once(tmp_path: Path) -> None:
    db = tmp_path / "stash2plex.db"
    log = tmp_path / "effects.log"
    queue = SQLiteQueue(db)
    queue.counts()  # create the database before the crowd arrives
    with Zygote(db, log, lease=5.0, work=0.001) as zygote:
        workers = [zygote.spawn("worker", f"worker{i}") for i in range(2)]
        reader = zygote.spawn("reader", "reader")
        producers = [
            subprocess.Popen(
                hook_command(PRODUCER, str(db), f"p{i}", str(PER_PRODUCER), str(HOT)),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(PRODUCERS)
        ]
        # While they run, no scene may ever have two pending rows (the coalescing rule).
        watcher = sqlite3.connect(db, timeout=30)
        polls = 0
        while any(proc.poll() is None for proc in producers):
            doubled = watcher.execute(
                "SELECT scene_id FROM jobs WHERE state = 0 GROUP BY scene_id HAVING COUNT(*) > 1"
            ).fetchall()
            assert not doubled, f"two pending rows for {doubled}"
            polls += 1
            time.sleep(0.005)
        watcher.close()
        assert polls > 5, "the producers finished before the check could watch them"
        latencies: list[float] = []
        for proc in producers:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            assert not err.strip(), err
            latencies += json.loads(out)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            counts = queue.counts()
            if counts.pending == 0 and counts.leased == 0:
                break
            time.sleep(0.02)
        else:
            raise AssertionError(f"the workers did not drain the queue: {queue.counts()}")
        zygote.close()
        for pid in (*workers, reader):
            wait_gone(pid)
    queue.close()

    entries = read_log(log)
    assert not [e for e in entries if e[0] in {"X", "L"}], [e for e in entries if e[0] in {"X", "L"}][:5]
    assert any(e[0] == "R" for e in entries), "the reader never got through 50 reads"

    effects = Counter(e[1] for e in entries if e[0] == "E")
    unique = {f"p{p}-{i}" for p in range(PRODUCERS) for i in range(PER_PRODUCER) if i % 5}
    assert set(effects) == unique | {f"hot-{h}" for h in range(HOT)}
    assert all(effects[s] == 1 for s in unique), "a scene enqueued once ran twice"

    # A scene is never held by two workers at once: its claim-to-effect spans are disjoint.
    spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
    opened: dict[tuple[str, str], float] = {}
    for entry in entries:
        if entry[0] == "C":
            opened[(entry[1], entry[2])] = float(entry[3])
        elif entry[0] == "E":
            spans[entry[1]].append((opened.pop((entry[1], entry[2])), float(entry[3])))
    for scene, intervals in spans.items():
        intervals.sort()
        for (_, end), (start, _) in itertools.pairwise(intervals):
            assert start >= end, f"{scene} was held by two workers at once"

    # The hook's latency under contention (target p99 < 100 ms on the reference machine;
    # asserted loosely here, measured precisely by benchmarks/bench_queue.py).
    assert len(latencies) == PRODUCERS * PER_PRODUCER
    assert percentile(latencies, 0.99) < 1.0
