"""Run the Stash plugin exactly as Stash does: one process per hook and per task, JSON on stdin."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

import stash2plex_integrations.stash_plugin as plugin_package
from stash2plex_backends.simulators.plex import PlexSimulator
from stash2plex_backends.simulators.stash import StashSimulator


ENTRY = Path(plugin_package.__file__).with_name("stash2plex_plugin.py")
TOKEN = "plex-token-e2e"
COOKIE = "session-cookie-e2e"
SEED = 11
ROOT = "/data/library"
#: Stash's log protocol prefix for error lines on stderr.
ERROR_LINE = "\x01e\x02"


@attrs.frozen
class PluginRun:
    output: Any
    error: str | None
    stderr: str
    seconds: float

    def error_lines(self) -> list[str]:
        """The lines logged at error level, without the prefix."""
        return [line[len(ERROR_LINE) :] for line in self.stderr.splitlines() if line.startswith(ERROR_LINE)]


@attrs.frozen
class TaskRecord:
    """One task process the simulated Stash ran: its wall-clock window and how it ended."""

    started: float
    ended: float
    run: PluginRun | None
    #: Set when the process broke the protocol (no single JSON object) or timed out.
    failure: str | None = None

    @property
    def error(self) -> str | None:
        return self.failure or (self.run.error if self.run is not None else "no result")

    def windows(self) -> list[tuple[float, float]]:
        """When it drained: the windows it reported, or its whole life if it failed."""
        if self.error is not None or self.run is None or not isinstance(self.run.output, dict):
            return [(self.started, self.ended)]
        return [(float(a), float(b)) for a, b in self.run.output.get("windows", [])]


def plugin_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("STASH2PLEX_DISABLE_PLUGIN_AUTOLOAD", None)  # the plugin loads installed backends, as in Stash
    return env


def run_plugin(payload: dict[str, Any] | str, *, timeout: float = 120.0) -> PluginRun:
    raw = payload if isinstance(payload, str) else json.dumps(payload)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(ENTRY)],
        input=raw,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=plugin_env(),
        check=False,
    )
    seconds = time.monotonic() - started
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, f"stdout must be exactly one JSON object, got {done.stdout!r} (stderr {done.stderr!r})"
    result = json.loads(lines[0])
    assert set(result) == {"output", "error"}
    return PluginRun(result["output"], result["error"], done.stderr, seconds)


class PluginHarness:
    """A simulated Stash that runs our plugin's tasks as subprocesses, and a simulated Plex.

    ``gate`` holds back every task Stash was asked to run until it is set (it starts set),
    so a test can look at the queue a burst of hooks left before any drain starts.
    """

    def __init__(self, stash: StashSimulator, plex: PlexSimulator, plugin_dir: Path) -> None:
        self.stash = stash
        self.plex = plex
        self.plugin_dir = plugin_dir
        self.lock = threading.Lock()
        self.gate = threading.Event()
        self.gate.set()
        self.task_runs: list[TaskRecord] = []
        stash.plugin_task_handler = self._run_task

    def connection(self, **overrides: Any) -> dict[str, Any]:
        conn = self.stash.server_connection(plugin_dir=str(self.plugin_dir))
        conn.update(overrides)
        return conn

    def _run_task(self, run: Any) -> object:
        self.gate.wait(timeout=600)
        started = time.time()
        try:
            result = run_plugin({"server_connection": self.connection(), "args": dict(run.args)})
        except (AssertionError, ValueError, subprocess.TimeoutExpired) as exc:
            with self.lock:
                self.task_runs.append(TaskRecord(started, time.time(), None, f"{type(exc).__name__}: {exc}"))
            raise
        with self.lock:
            self.task_runs.append(TaskRecord(started, time.time(), result))
        return result.output

    def hook(self, scene_id: int, kind: str = "Scene.Update.Post", **context: Any) -> PluginRun:
        hook_context = {"id": scene_id, "type": kind, "input": context.pop("input", {"id": str(scene_id)})}
        hook_context.update(context)
        return run_plugin({"server_connection": self.connection(), "args": {"hookContext": hook_context}})

    def task(self, task: str, **args: Any) -> PluginRun:
        return run_plugin({"server_connection": self.connection(), "args": {"task": task, **args}})

    def settings(self, **changes: Any) -> None:
        """Change the plugin's saved settings in the simulated Stash."""
        values = dict(self.stash.plugin_settings.get("stash2plex", {}))
        values.update(changes)
        self.stash.set_plugin_settings("stash2plex", values)

    def wait_for_tasks(self, timeout: float = 120.0) -> None:
        """Until every task the simulator was asked to run has finished."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = self.stash.plugin_task_runs
            with self.lock:
                finished = len(self.task_runs)
            if finished >= len(runs):
                return
            time.sleep(0.1)
        raise AssertionError("plugin tasks did not finish in time")

    @property
    def db(self) -> Path:
        return self.plugin_dir / "stash2plex.db"

    def pending(self) -> int:
        """Jobs in the queue (pending or in progress); 0 before the database exists."""
        if not self.db.exists():
            return 0
        with sqlite3.connect(self.db) as conn:
            return int(conn.execute("SELECT count(*) FROM jobs").fetchone()[0])

    def dead(self) -> int:
        with sqlite3.connect(self.db) as conn:
            return int(conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0])


def make_harness(tmp_path: Path, scenes: int, **settings: Any) -> Iterator[PluginHarness]:
    plugin_dir = tmp_path / "plugins" / "stash2plex"
    plugin_dir.mkdir(parents=True)
    with PlexSimulator(items=scenes, seed=SEED, library_root=ROOT, token=TOKEN) as plex:
        values = {"plex_url": plex.url, "plex_token": TOKEN, "retry_base_seconds": 1, **settings}
        with StashSimulator(
            scenes=scenes, seed=SEED, library_root=ROOT, session_cookie=COOKIE, plugin_settings={"stash2plex": values}
        ) as stash:
            yield PluginHarness(stash, plex, plugin_dir)


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[PluginHarness]:
    yield from make_harness(tmp_path, 40)


@pytest.fixture
def big_harness(tmp_path: Path) -> Iterator[PluginHarness]:
    yield from make_harness(tmp_path, 200)
