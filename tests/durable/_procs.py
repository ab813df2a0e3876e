"""Real processes for the crash and concurrency trials.

* :func:`hook_command` runs code the way the Stash hook runs: a fresh ``python -I -S``
  that can import only ``stash2plex_backends`` (put on ``sys.path`` by hand, as the
  plugin's entry script does) and the standard library.
* :class:`Zygote` is a helper process that has already imported the SQLite queue and
  forks workers on request, so a trial can start (and SIGKILL) a hundred workers in a
  few seconds instead of paying the interpreter's and the core's start-up each time.
  It is single-threaded, so forking it is safe; it ignores SIGCHLD so the kernel reaps
  the workers it forks, and the test can tell a worker is gone by ``os.kill(pid, 0)``.

Side effects go to append-only logs (``O_APPEND``): a ``write`` that returned is in the
kernel and survives a SIGKILL of the writer.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import stash2plex_backends


#: The directory holding ``stash2plex_backends`` (src/ or site-packages).
PACKAGE_ROOT = str(Path(stash2plex_backends.__file__).resolve().parents[1])
ZYGOTE = str(Path(__file__).with_name("_zygote.py"))


def hook_command(code: str, *args: str) -> list[str]:
    """``python -I -S -c code args...`` with only our package importable."""
    prelude = f"import sys; sys.path.insert(0, {PACKAGE_ROOT!r})\n"
    return [sys.executable, "-I", "-S", "-c", prelude + code, *args]


def wait_gone(pid: int, timeout: float = 10.0) -> None:
    """Wait until ``pid`` no longer exists (the zygote's children are auto-reaped)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.001)
    raise TimeoutError(f"process {pid} still exists after {timeout} s")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class Zygote:
    """Forks workers/readers of the SQLite queue on request (see ``_zygote.py``)."""

    def __init__(self, db_path: Path, log_path: Path, *, lease: float, work: float, crash: float = 0.0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, ZYGOTE, str(db_path), str(log_path), repr(lease), repr(work), repr(crash)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        assert self.proc.stdout is not None
        ready = self.proc.stdout.readline().strip()
        assert ready == "ready", f"zygote failed to start: {ready!r}"
        self.children: list[int] = []

    def spawn(self, mode: str, owner: str) -> int:
        """Fork a ``worker`` (claims until killed), ``drainer`` (exits when the queue is
        empty) or ``reader`` (reads counts until killed); returns its pid."""
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(f"{mode} {owner}\n")
        self.proc.stdin.flush()
        pid = int(self.proc.stdout.readline())
        self.children.append(pid)
        return pid

    def close(self) -> None:
        for pid in self.children:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> Zygote:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_log(path: Path) -> list[list[str]]:
    """The log's complete lines, split into fields (a torn last line is dropped)."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    return [line.split(" ") for line in lines[:-1] if line]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
