"""Fork-server for the crash trials: ``python _zygote.py DB LOG LEASE WORK CRASH``.

Reads commands ``<mode> <owner>`` on stdin, forks a child for each and answers its pid.
Modes:

* ``worker`` — claim, log ``C scene owner time``, "call Plex" (sleep WORK), log
  ``E scene owner time`` (the side effect), complete; forever, until killed. With
  probability CRASH it SIGKILLs itself between the effect and the completion (after
  logging ``K scene owner time``): the crash point that forces a re-delivery.
* ``drainer`` — the same, but exits once nothing is pending or leased.
* ``reader`` — read ``counts()`` in a loop, logging ``R ok`` every 50 reads, until killed.

Any exception in a child is logged as ``X <owner> <repr>`` and the child exits 1.
"""

from __future__ import annotations

import os
import signal
import sys
import time


def _log(fd: int, *fields: object) -> None:
    os.write(fd, (" ".join(str(f) for f in fields) + "\n").encode())


def _worker(db: str, log: str, lease: float, work: float, crash: float, owner: str, drain: bool) -> None:
    import random

    from stash2plex_backends.sqlite import SQLiteQueue
    from stash2plex_core.errors import LeaseLostError

    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    queue = SQLiteQueue(db)
    try:
        while True:
            job = queue.claim(owner, lease)
            if job is None:
                if drain:
                    counts = queue.counts()
                    if counts.pending == 0 and counts.leased == 0:
                        return
                time.sleep(0.005)
                continue
            _log(fd, "C", job.scene_id, owner, f"{time.time():.6f}")
            if work:
                time.sleep(work)
            _log(fd, "E", job.scene_id, owner, f"{time.time():.6f}")
            if not drain and random.random() < crash:
                _log(fd, "K", job.scene_id, owner, f"{time.time():.6f}")
                os.kill(os.getpid(), signal.SIGKILL)
            try:
                queue.complete(job)
            except LeaseLostError:
                _log(fd, "L", job.scene_id, owner, f"{time.time():.6f}")
    except Exception as exc:
        _log(fd, "X", owner, repr(exc).replace("\n", " "))
        raise


def _reader(db: str, log: str, owner: str) -> None:
    from stash2plex_backends.sqlite import SQLiteQueue

    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    queue = SQLiteQueue(db)
    reads = 0
    try:
        while True:
            queue.counts()
            reads += 1
            if reads % 50 == 0:
                _log(fd, "R", owner, reads)
            time.sleep(0.002)
    except Exception as exc:
        _log(fd, "X", owner, repr(exc).replace("\n", " "))
        raise


def main() -> None:
    db, log = sys.argv[1], sys.argv[2]
    lease, work, crash = float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
    # Import everything before forking, so a child starts in milliseconds.
    import stash2plex_backends.sqlite.queue  # noqa: F401
    import stash2plex_core.errors  # noqa: F401

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps our children
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    for line in sys.stdin:
        mode, owner = line.split()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                devnull = os.open(os.devnull, os.O_RDWR)
                os.dup2(devnull, 0)
                os.dup2(devnull, 1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                if mode == "reader":
                    _reader(db, log, owner)
                else:
                    _worker(db, log, lease, work, crash, owner, drain=mode == "drainer")
            except BaseException:
                code = 1
            os._exit(code)
        sys.stdout.write(f"{pid}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
