"""Run the real ``stash2plex`` command as a subprocess against both simulators.

Nothing is mocked: the command builds its app from the installed backends (plexapi,
stashapi, SQLite) and talks HTTP to the simulators on loopback; tests inspect the
simulators and the state database afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import IO
from typing import Any

import attrs
import pytest

from stash2plex_backends.simulators.plex import PlexSimulator
from stash2plex_backends.simulators.stash import StashSimulator
from stash2plex_backends.sqlite.queue import SQLiteQueue
from stash2plex_core.models.jobs import QueueCounts


TOKEN = "cli-plex-token-7f3a"
KEY = "cli-stash-key-20be"
SEED = 5
SCENES = 30
ROOT = "/data/library"
COMMAND = [sys.executable, "-m", "stash2plex_integrations.cli"]


def cli_env(**extra: str) -> dict[str, str]:
    """The environment without our test switches or any STASH2PLEX_* of the developer's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STASH2PLEX_")}
    env.update(extra)
    return env


def run_cli(*args: str, timeout: float = 60.0, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or cli_env(),
        check=False,
    )


class Running:
    """A command running in the background, its output collected line by line as it comes."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env or cli_env()
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self.out), daemon=True),
            threading.Thread(target=self._read, args=(self.process.stderr, self.err), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: IO[str] | None, lines: list[str]) -> None:
        assert stream is not None
        for line in stream:
            lines.append(line)

    @property
    def stderr(self) -> str:
        return "".join(self.err)

    @property
    def stdout(self) -> str:
        return "".join(self.out)

    def wait_for_stderr(self, text: str, timeout: float = 20.0) -> None:
        wait_until(lambda: text in self.stderr or self.process.poll() is not None, timeout, repr(text))
        assert text in self.stderr, self.stderr

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Send ``sig``, wait for the exit and the last output; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.wait(timeout)

    def wait(self, timeout: float = 30.0) -> int:
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        for reader in self._readers:
            reader.join(5)
        return code


def start_cli(*args: str, env: dict[str, str] | None = None) -> Running:
    return Running([*COMMAND, *args], env)


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@attrs.define
class World:
    """Both simulators with one seeded library, and a settings file pointing at them."""

    stash: StashSimulator
    plex: PlexSimulator
    tmp: Path
    config: Path

    @property
    def data_dir(self) -> Path:
        return self.tmp / "data"

    @property
    def db(self) -> str:
        return str(self.data_dir / "stash2plex.db")

    def cli(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """``stash2plex <command...> <options> --config <file>``."""
        return run_cli(*args, "--config", str(self.config), timeout=timeout)

    def cli_json(self, *args: str) -> Any:
        done = self.cli(*args, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def start(self, *args: str) -> Running:
        return start_cli(*args, "--config", str(self.config))

    def counts(self) -> QueueCounts:
        queue = SQLiteQueue(self.db)
        try:
            return queue.counts()
        finally:
            queue.close()

    def write_config(self, path: Path | None = None, **overrides: object) -> Path:
        values: dict[str, object] = {
            "plex_url": self.plex.url,
            "plex_token": TOKEN,
            "stash_url": self.stash.url,
            "stash_api_key": KEY,
            "data_dir": str(self.data_dir),
            "plex_concurrency": 2,
            "plex_connect_timeout": 1.0,
            "plex_read_timeout": 5.0,
            "stash_timeout": 5.0,
            "retry_base_seconds": 0.05,
            "retry_max_seconds": 1.0,
        }
        values.update(overrides)
        target = path or self.config
        target.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items()), encoding="utf-8")
        return target


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with (
        StashSimulator(SCENES, SEED, ROOT, api_key=KEY) as stash,
        PlexSimulator(SCENES, SEED, library_root=ROOT, token=TOKEN) as plex,
    ):
        w = World(stash, plex, tmp_path, tmp_path / "config.toml")
        w.write_config()
        yield w
