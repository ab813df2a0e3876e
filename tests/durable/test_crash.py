"""Crash trials: processes SIGKILLed at random moments lose nothing.

Recipe A (producers) and B (workers) of reference/reliability.md section 11. The normal
run does 50+ kills of each kind; the ``slow`` variants 200 producer and 100 worker kills.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from collections import defaultdict
from pathlib import Path

import attrs
import pytest

from stash2plex_backends.sqlite import SQLiteQueue
from tests.durable._procs import Zygote
from tests.durable._procs import hook_command
from tests.durable._procs import read_log
from tests.durable._procs import wait_gone


LEASE = 0.5

# A hook-like producer: one fresh connection per enqueue (hookpath.enqueue), and the
# scene id printed with a raw write only after its commit returned.
PRODUCER = """
import os, sys
from stash2plex_backends.sqlite import hookpath
db, prefix = sys.argv[1], sys.argv[2]
i = 0
while True:
    scene = f"{prefix}-{i}"
    hookpath.enqueue(db, scene, "update")
    os.write(1, (scene + "\\n").encode())
    i += 1
"""


@attrs.define
class ProducerResult:
    kills: int = 0
    acked: set[str] = attrs.field(factory=set)
    failures: list[str] = attrs.field(factory=list)


def _integrity(db: Path) -> str:
    if not db.exists():  # every producer so far died before creating it: nothing to check yet
        return "ok"
    conn = sqlite3.connect(db, timeout=30)
    try:
        return ";".join(str(r[0]) for r in conn.execute("PRAGMA integrity_check"))
    finally:
        conn.close()


def _producer_lane(db: Path, lane: int, kills: int, seed: int, result: ProducerResult, lock: threading.Lock) -> None:
    rng = random.Random(seed)
    for trial in range(kills):
        proc = subprocess.Popen(
            hook_command(PRODUCER, str(db), f"L{lane}T{trial}"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None
        assert proc.stderr is not None
        # Kill at a random moment: each lane's first producer while the interpreter may be
        # starting or creating the schema, the others after their first acknowledged row.
        if trial:
            first = proc.stdout.readline()
            time.sleep(rng.uniform(0.0, 0.04))
        else:
            first = b""
            time.sleep(rng.uniform(0.0, 0.06))
        proc.send_signal(signal.SIGKILL)
        rest = proc.stdout.read()
        err = proc.stderr.read().decode(errors="replace")
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
        lines = (first + rest).decode().split("\n")
        complete = {line for line in lines[:-1] if line}  # a torn last line was never acknowledged
        with lock:
            result.kills += 1
            result.acked |= complete
            if proc.returncode != -signal.SIGKILL:
                result.failures.append(f"lane {lane} trial {trial}: exit {proc.returncode}: {err[-500:]}")
            elif err.strip():
                result.failures.append(f"lane {lane} trial {trial}: stderr: {err[-500:]}")
        integrity = _integrity(db)
        if integrity != "ok":
            with lock:
                result.failures.append(f"integrity_check after lane {lane} trial {trial}: {integrity}")


def run_producer_trials(db: Path, kills: int, lanes: int = 4, seed: int = 1) -> ProducerResult:
    result = ProducerResult()
    lock = threading.Lock()
    per_lane = [kills // lanes + (1 if i < kills % lanes else 0) for i in range(lanes)]
    threads = [
        threading.Thread(target=_producer_lane, args=(db, i, n, seed * 1000 + i, result, lock))
        for i, n in enumerate(per_lane)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    return result


def check_producers(db: Path, result: ProducerResult, kills: int) -> None:
    assert not result.failures, "\n".join(result.failures[:10])
    assert result.kills == kills
    assert result.acked, "no producer acknowledged anything: the trial tested nothing"
    queue = SQLiteQueue(db)
    try:
        stored = {job.scene_id for job in queue.pending(limit=10**9)}
        lost = result.acked - stored
        assert not lost, f"{len(lost)} acknowledged enqueues lost, e.g. {sorted(lost)[:5]}"
        assert queue.integrity_check() == ["ok"]
    finally:
        queue.close()


def test_producers_killed_at_random_lose_no_acknowledged_enqueue(tmp_path: Path) -> None:
    db = tmp_path / "producers" / "stash2plex.db"  # does not exist: the first producers create it
    result = run_producer_trials(db, kills=52)
    check_producers(db, result, 52)


@pytest.mark.slow
def test_200_producer_kills(tmp_path: Path) -> None:
    db = tmp_path / "producers" / "stash2plex.db"
    result = run_producer_trials(db, kills=200, seed=2)
    check_producers(db, result, 200)


# -- workers


@attrs.define
class Kill:
    owner: str
    at: float
    in_flight: list[str]


def run_worker_trials(tmp_path: Path, kills: int, jobs: int, seed: int) -> tuple[list[Kill], list[list[str]], Path]:
    rng = random.Random(seed)
    db = tmp_path / "stash2plex.db"
    log = tmp_path / "effects.log"
    queue = SQLiteQueue(db)
    scenes = [f"s{i}" for i in range(jobs)]
    queue.enqueue_many(scenes)
    done: list[Kill] = []
    with Zygote(db, log, lease=LEASE, work=0.002, crash=0.01) as zygote:
        for trial in range(kills):
            owner = f"w{trial}"
            pid = zygote.spawn("worker", owner)
            time.sleep(rng.uniform(0.02, 0.08))
            with contextlib.suppress(ProcessLookupError):  # it may have hit its crash point
                os.kill(pid, signal.SIGKILL)
            at = time.time()
            wait_gone(pid)
            # Ground truth from the database: what the dead worker still held.
            held = [j.scene_id for j in queue.pending(limit=10**9) if j.lease and j.lease.owner == owner]
            done.append(Kill(owner, at, held))
        drainer = zygote.spawn("drainer", "final")
        wait_gone(drainer, timeout=120)
    entries = read_log(log)
    # A worker that killed itself at its crash point died when it logged K, not when we
    # noticed.
    crashed = {entry[2]: float(entry[3]) for entry in entries if entry[0] == "K"}
    done = [attrs.evolve(k, at=crashed.get(k.owner, k.at)) for k in done]
    try:
        counts = queue.counts()
        assert (counts.pending, counts.leased, counts.dead) == (0, 0, 0), counts
        assert queue.integrity_check() == ["ok"]
    finally:
        queue.close()
    return done, entries, db


def check_workers(kills: list[Kill], log: list[list[str]], jobs: int) -> None:
    errors = [entry for entry in log if entry[0] == "X"]
    assert not errors, errors[:5]
    effects = Counter(entry[1] for entry in log if entry[0] == "E")
    missing = {f"s{i}" for i in range(jobs)} - set(effects)
    assert not missing, f"{len(missing)} jobs never ran, e.g. {sorted(missing)[:5]}"
    duplicates = sum(n - 1 for n in effects.values())
    assert duplicates <= len(kills), f"{duplicates} duplicate deliveries from {len(kills)} kills"
    # Every crash between the effect and the completion must have caused a re-delivery.
    crash_points = [entry[1] for entry in log if entry[0] == "K"]
    assert all(effects[scene] >= 2 for scene in crash_points), "a job whose worker died after its effect never re-ran"
    # The kills must have hit work in progress, or the trial proved little.
    assert sum(1 for k in kills if k.in_flight) >= len(kills) // 2

    claims: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for entry in log:
        if entry[0] == "C":
            claims[entry[1]].append((float(entry[3]), entry[2]))
    late = []
    for kill in kills:
        for scene in kill.in_flight:
            again = [t for t, owner in claims[scene] if t > kill.at and owner != kill.owner]
            # A later kill may have hit between that claim's commit and its log line.
            again += [k.at for k in kills if k.at > kill.at and scene in k.in_flight and k.owner != kill.owner]
            assert again, f"{scene}, held by killed {kill.owner}, never ran again"
            delay = min(again) - kill.at
            if delay > LEASE + 1.0:
                late.append((scene, kill.owner, round(delay, 3)))
    assert not late, f"re-delivered later than lease + 1 s after the worker died: {late[:5]}"


def test_workers_killed_at_random_lose_no_job(tmp_path: Path) -> None:
    kills, log, _ = run_worker_trials(tmp_path, kills=52, jobs=2000, seed=3)
    check_workers(kills, log, 2000)


@pytest.mark.slow
def test_100_worker_kills(tmp_path: Path) -> None:
    kills, log, _ = run_worker_trials(tmp_path, kills=100, jobs=4000, seed=4)
    check_workers(kills, log, 4000)
