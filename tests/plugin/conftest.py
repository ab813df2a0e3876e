"""Run the Stash plugin exactly as Stash does: one process per hook and per task, JSON on stdin."""

from __future__ import annotations

import json
import os
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


@attrs.frozen
class PluginRun:
    output: Any
    error: str | None
    stderr: str
    seconds: float


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
    """A simulated Stash that runs our plugin's tasks as subprocesses, and a simulated Plex."""

    def __init__(self, stash: StashSimulator, plex: PlexSimulator, plugin_dir: Path) -> None:
        self.stash = stash
        self.plex = plex
        self.plugin_dir = plugin_dir
        self.lock = threading.Lock()
        self.task_runs: list[tuple[float, float, PluginRun]] = []
        stash.plugin_task_handler = self._run_task

    def connection(self, **overrides: Any) -> dict[str, Any]:
        conn = self.stash.server_connection(plugin_dir=str(self.plugin_dir))
        conn.update(overrides)
        return conn

    def _run_task(self, run: Any) -> object:
        started = time.monotonic()
        result = run_plugin({"server_connection": self.connection(), "args": dict(run.args)})
        with self.lock:
            self.task_runs.append((started, time.monotonic(), result))
        return result.output

    def hook(self, scene_id: int, kind: str = "Scene.Update.Post", **context: Any) -> PluginRun:
        hook_context = {"id": scene_id, "type": kind, "input": context.pop("input", {"id": str(scene_id)})}
        hook_context.update(context)
        return run_plugin({"server_connection": self.connection(), "args": {"hookContext": hook_context}})

    def task(self, task: str, **args: Any) -> PluginRun:
        return run_plugin({"server_connection": self.connection(), "args": {"task": task, **args}})

    def wait_for_tasks(self, timeout: float = 120.0) -> None:
        """Until no task the simulator started is still running."""
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


def make_harness(tmp_path: Path, scenes: int) -> Iterator[PluginHarness]:
    plugin_dir = tmp_path / "plugins" / "stash2plex"
    plugin_dir.mkdir(parents=True)
    with PlexSimulator(items=scenes, seed=SEED, library_root=ROOT, token=TOKEN) as plex:
        settings = {"stash2plex": {"plex_url": plex.url, "plex_token": TOKEN, "retry_base_seconds": 1}}
        with StashSimulator(
            scenes=scenes, seed=SEED, library_root=ROOT, session_cookie=COOKIE, plugin_settings=settings
        ) as stash:
            yield PluginHarness(stash, plex, plugin_dir)


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[PluginHarness]:
    yield from make_harness(tmp_path, 40)


@pytest.fixture
def big_harness(tmp_path: Path) -> Iterator[PluginHarness]:
    yield from make_harness(tmp_path, 200)
