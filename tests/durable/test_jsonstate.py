"""JSONStateStore specifics: file layout, permissions, locking, corruption, crashes."""

from __future__ import annotations

import fcntl
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from stash2plex_backends.jsonstate import JSONStateStore
from stash2plex_backends.sqlite import SQLiteStateStore
from stash2plex_core.clocks import ManualClock
from stash2plex_core.errors import StateError
from stash2plex_core.errors import StateLockTimeoutError
from stash2plex_core.ports.state import StateStore
from stash2plex_core.settings import Settings
from tests.durable._files import mode
from tests.durable._files import read_only_directory
from tests.durable._files import run_python
from tests.durable._files import umask


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def store(state_dir: Path) -> JSONStateStore:
    return JSONStateStore(state_dir, ManualClock(), lock_timeout=0.3)


def test_from_settings_uses_the_data_dir_and_creates_nothing(tmp_path: Path) -> None:
    store = JSONStateStore.from_settings(Settings(data_dir=str(tmp_path / "d")), clock=ManualClock())
    assert store.directory == str(tmp_path / "d" / "state")
    assert store.get("sync", "1") is None
    assert not (tmp_path / "d").exists()


def test_one_readable_file_per_namespace(store: JSONStateStore, state_dir: Path) -> None:
    store.put_many("sync", {"1": {"rating_key": "7"}, "2": {"rating_key": "8"}})
    store.put("breaker/plex", "state", {"open": False})
    assert sorted(p.name for p in state_dir.iterdir()) == [".lock", "breaker%2Fplex.json", "sync.json"]
    data = json.loads((state_dir / "sync.json").read_text(encoding="utf-8"))
    assert data["documents"] == {"1": {"rating_key": "7"}, "2": {"rating_key": "8"}}
    assert (data["format"], data["version"], data["namespace"]) == ("stash2plex-state", 1, "sync")


def test_files_are_private(store: JSONStateStore, state_dir: Path) -> None:
    with umask(0o022):
        store.put("sync", "1", {"a": 1})
    assert mode(state_dir) == 0o700
    for name in ("sync.json", ".lock"):
        assert mode(state_dir / name) == 0o600, name


def test_writes_leave_no_temporary_files(store: JSONStateStore, state_dir: Path) -> None:
    for i in range(20):
        store.update("counters", "c", lambda cur: {"n": (cur or {"n": 0})["n"] + 1})
        store.put("sync", str(i), {"i": i})
    assert sorted(p.name for p in state_dir.iterdir()) == [".lock", "counters.json", "sync.json"]


def test_unicode_directory(tmp_path: Path) -> None:
    store = JSONStateStore(tmp_path / "dätä ✓ ステート", ManualClock())
    store.put("sync", "ü", {"títle": "✓"})
    assert JSONStateStore(tmp_path / "dätä ✓ ステート").get("sync", "ü") == {"títle": "✓"}


def test_another_instance_sees_writes(store: JSONStateStore, state_dir: Path) -> None:
    other = JSONStateStore(state_dir, ManualClock())
    assert store.get("sync", "1") is None  # cached as absent
    other.put("sync", "1", {"v": 1})
    assert store.get("sync", "1") == {"v": 1}
    other.put("sync", "1", {"v": 2})
    assert store.get("sync", "1") == {"v": 2}


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda text: text[: len(text) // 2], id="truncated"),
        pytest.param(lambda text: "", id="empty"),
        pytest.param(lambda text: "\x00\x00garbage", id="garbage"),
        pytest.param(lambda text: "[]", id="not-ours"),
        pytest.param(lambda text: text.replace('"sync"', '"other"'), id="wrong-namespace"),
    ],
)
def test_a_corrupt_file_is_named_and_moved_aside(store: JSONStateStore, state_dir: Path, damage: object) -> None:
    store.put_many("sync", {"1": {"a": 1}, "2": {"b": 2}})
    path = state_dir / "sync.json"
    broken = damage(path.read_text(encoding="utf-8"))  # type: ignore[operator]
    path.write_text(broken, encoding="utf-8")
    with pytest.raises(StateError, match="corrupt state file") as caught:
        store.get("sync", "1")
    message = str(caught.value)
    assert str(path) in message
    (aside,) = state_dir.glob("sync.json.corrupt-*")
    assert str(aside) in message
    assert aside.read_text(encoding="utf-8") == broken, "the damaged file is kept as it was"
    # The namespace starts afresh; the evidence stays.
    assert store.get("sync", "1") is None
    store.put("sync", "3", {"c": 3})
    assert dict(store.items("sync")) == {"3": {"c": 3}}
    assert aside.exists()


def test_a_corrupt_file_is_not_overwritten_by_a_write(store: JSONStateStore, state_dir: Path) -> None:
    store.put("sync", "1", {"a": 1})
    path = state_dir / "sync.json"
    path.write_text("{truncated", encoding="utf-8")
    with pytest.raises(StateError, match="moved aside"):
        store.put("sync", "2", {"b": 2})
    (aside,) = state_dir.glob("sync.json.corrupt-*")
    assert aside.read_text(encoding="utf-8") == "{truncated"
    assert not path.exists(), "the refused write must not have happened"


def test_a_newer_format_is_refused_and_left_in_place(store: JSONStateStore, state_dir: Path) -> None:
    store.put("sync", "1", {"a": 1})
    path = state_dir / "sync.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["version"] = 99
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(StateError, match="newer stash2plex") as caught:
        store.get("sync", "1")
    assert str(path) in str(caught.value)
    assert path.exists()
    assert not list(state_dir.glob("*.corrupt-*"))


def test_a_held_lock_makes_writers_wait_then_fail_loudly(store: JSONStateStore, state_dir: Path) -> None:
    store.put("breaker", "plex", {"state": "closed"})
    fd = os.open(state_dir / ".lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another open file description: as another process would
    try:
        start = time.monotonic()
        with pytest.raises(StateLockTimeoutError, match="held the state lock") as caught:
            store.put("breaker", "plex", {"state": "open"})
        assert time.monotonic() - start >= 0.25
        assert str(state_dir / ".lock") in str(caught.value)
        assert store.get("breaker", "plex") == {"state": "closed"}, "reads need no lock"
    finally:
        os.close(fd)
    store.put("breaker", "plex", {"state": "open"})
    assert store.get("breaker", "plex") == {"state": "open"}


def test_a_writer_waits_for_a_short_lock(state_dir: Path) -> None:
    store = JSONStateStore(state_dir, ManualClock(), lock_timeout=5)
    store.put("breaker", "plex", {"state": "closed"})
    fd = os.open(state_dir / ".lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    threading.Timer(0.3, os.close, args=(fd,)).start()
    start = time.monotonic()
    store.put("breaker", "plex", {"state": "open"})
    assert time.monotonic() - start >= 0.25
    assert store.get("breaker", "plex") == {"state": "open"}


def test_read_only_directory_gives_a_clear_error(tmp_path: Path) -> None:
    code = """
import json, sys
from stash2plex_backends.jsonstate import JSONStateStore
from stash2plex_core.errors import StateError
store = JSONStateStore(sys.argv[1])
out = {"read": store.get("sync", "1")}
try:
    store.put("sync", "2", {"b": 2})
except StateError as exc:
    out["write"] = str(exc)
print(json.dumps(out))
"""
    with read_only_directory(tmp_path) as directory:
        directory.chmod(0o755)
        JSONStateStore(directory).put("sync", "1", {"a": 1})
        os.unlink(directory / ".lock")
        directory.chmod(0o555)
        result = run_python(code, str(directory))
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["read"] == {"a": 1}, "existing state stays readable"
    assert "Permission denied" in out["write"]
    assert str(directory) in out["write"]


# -- across processes

COUNTER = """
import sys
from stash2plex_backends.jsonstate import JSONStateStore
from stash2plex_backends.sqlite import SQLiteStateStore
kind, where, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = JSONStateStore(where) if kind == "json" else SQLiteStateStore(where)
for _ in range(n):
    store.update("counters", "c", lambda cur: {"n": (cur or {"n": 0})["n"] + 1})
"""


@pytest.mark.parametrize("kind", ["json", "sqlite"])
def test_processes_updating_at_once_lose_nothing(tmp_path: Path, kind: str) -> None:
    where = tmp_path / ("state" if kind == "json" else "stash2plex.db")
    procs = [
        subprocess.Popen([sys.executable, "-c", COUNTER, kind, str(where), "25"], stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    store: StateStore = JSONStateStore(where) if kind == "json" else SQLiteStateStore(where)
    assert store.get("counters", "c") == {"n": 100}
    store.close()


WRITER = """
import os, sys
from stash2plex_backends.jsonstate import JSONStateStore
store = JSONStateStore(sys.argv[1])
i = 0
while True:
    i += 1
    store.put_many("sync", {str(k): {"version": i, "pad": "x" * 200} for k in range(300)})
    os.write(1, f"{i}\\n".encode())
"""


def test_a_writer_killed_mid_write_leaves_a_whole_file(state_dir: Path) -> None:
    rng = random.Random(5)
    for _ in range(8):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(state_dir)], stdout=subprocess.PIPE)
        assert proc.stdout is not None
        first = proc.stdout.readline()
        time.sleep(rng.uniform(0.0, 0.05))
        proc.send_signal(signal.SIGKILL)
        lines = (first + proc.stdout.read()).decode().split("\n")
        proc.wait()
        proc.stdout.close()
        acknowledged = max(int(x) for x in lines[:-1] if x)  # this writer's last completed put
        store = JSONStateStore(state_dir)
        documents = dict(store.items("sync"))
        assert len(documents) == 300
        versions = {doc["version"] for doc in documents.values()}
        assert len(versions) == 1, "a file mixing two writes"
        assert versions.pop() >= acknowledged > 0
    assert not list(state_dir.glob("*.corrupt-*"))


def test_the_sqlite_and_json_stores_agree(tmp_path: Path) -> None:
    stores: list[StateStore] = [JSONStateStore(tmp_path / "state"), SQLiteStateStore(tmp_path / "s.db")]
    for store in stores:
        store.put_many("sync", {"b": {"v": [1, "ü"]}, "a": {"v": None}})
        store.delete("sync", "missing")
        store.update("sync", "c", lambda cur: {"n": 1})
    json_items, sqlite_items = (list(s.items("sync")) for s in stores)
    assert json_items == sqlite_items
    for store in stores:
        store.close()
