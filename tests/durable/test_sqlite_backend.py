"""SQLite specifics the contracts cannot see: files, permissions, schema, errors, the hook path."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import stash2plex_backends.sqlite
from stash2plex_backends.sqlite import SQLiteQueue
from stash2plex_backends.sqlite import SQLiteStateStore
from stash2plex_backends.sqlite import default_database_path
from stash2plex_backends.sqlite import hookpath
from stash2plex_backends.sqlite import schema
from stash2plex_core.clocks import ManualClock
from stash2plex_core.errors import StateError
from stash2plex_core.errors import StateLockTimeoutError
from stash2plex_core.plugin import build_registry
from stash2plex_core.plugin import hookimpl
from stash2plex_core.settings import Settings
from tests.durable._files import mode
from tests.durable._files import read_only_directory
from tests.durable._files import run_python
from tests.durable._files import umask
from tests.durable._procs import hook_command


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "stash2plex.db"


# -- registration


def test_registers_both_ports_and_wins_auto_selection() -> None:
    import stash2plex_backends.jsonstate
    import stash2plex_backends.memory

    registry = build_registry(
        autoload=False,
        plugins=[stash2plex_backends.memory, stash2plex_backends.sqlite, stash2plex_backends.jsonstate],
    )
    assert registry.select("queue") is SQLiteQueue
    assert registry.select("state") is SQLiteStateStore
    assert registry.ids("state") == ["sqlite", "json", "memory"]


def test_hook_implementation_carries_the_real_markers_options() -> None:
    """The package sets pluggy's options by hand to stay import-light; they must match."""

    @hookimpl
    def stash2plex_register_backends(registry: object) -> None: ...

    expected = stash2plex_register_backends.stash2plex_impl  # type: ignore[attr-defined]
    assert stash2plex_backends.sqlite.stash2plex_register_backends.stash2plex_impl == expected  # type: ignore[attr-defined]


def test_building_from_settings_touches_no_file(tmp_path: Path) -> None:
    settings = Settings(data_dir=str(tmp_path / "nowhere"))
    queue = SQLiteQueue.from_settings(settings, clock=ManualClock())
    store = SQLiteStateStore.from_settings(settings, clock=ManualClock())
    assert queue.path == store.path == str(tmp_path / "nowhere" / "stash2plex.db")
    assert not (tmp_path / "nowhere").exists()
    queue.close()
    store.close()


def test_default_path_is_the_platform_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    if not sys.platform.startswith("linux"):
        pytest.skip("XDG_DATA_HOME steers platformdirs on Linux only")
    assert default_database_path(Settings()) == str(tmp_path / "xdg" / "stash2plex" / "stash2plex.db")


# -- files and permissions


def test_files_are_private_whatever_the_umask(db: Path) -> None:
    with umask(0o022):
        queue = SQLiteQueue(db)
        queue.enqueue("1")
        try:
            # -wal and -shm exist only while a connection is open: stat them now.
            assert mode(db.parent) == 0o700
            for suffix in ("", "-wal", "-shm"):
                assert mode(f"{db}{suffix}") == 0o600, suffix
        finally:
            queue.close()


def test_hook_path_creates_private_files_too(db: Path) -> None:
    with umask(0o022):
        hookpath.enqueue(str(db), "1")
    assert mode(db.parent) == 0o700
    assert mode(db) == 0o600


def test_an_existing_directory_keeps_its_mode(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    hookpath.enqueue(str(shared / "stash2plex.db"), "1")
    assert mode(shared) == 0o755
    assert mode(shared / "stash2plex.db") == 0o600


def test_unicode_paths(tmp_path: Path) -> None:
    db = tmp_path / "dätä ✓ ステート" / "stash2plex.db"
    hookpath.enqueue(str(db), "1")
    queue = SQLiteQueue(db)
    store = SQLiteStateStore(db)
    try:
        job = queue.claim("w", 5)
        assert job is not None
        queue.complete(job)
        store.put("sync", "ü", {"títle": "✓"})
        assert store.get("sync", "ü") == {"títle": "✓"}
    finally:
        queue.close()
        store.close()


# -- schema


def test_schema_is_versioned(db: Path) -> None:
    SQLiteQueue(db).counts()
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        history = conn.execute("SELECT version FROM schema_history").fetchall()
        assert history == [(v,) for v in range(1, schema.SCHEMA_VERSION + 1)]
    finally:
        conn.close()


def test_an_empty_precreated_file_is_migrated(db: Path) -> None:
    db.parent.mkdir()
    db.touch(mode=0o600)
    queue = SQLiteQueue(db)
    assert queue.enqueue("1").scene_id == "1"
    queue.close()


def test_a_newer_schema_is_refused_with_the_file_named(db: Path) -> None:
    SQLiteQueue(db).counts()
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {schema.SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StateError, match="newer stash2plex") as caught:
        SQLiteQueue(db).counts()
    assert str(db) in str(caught.value)
    with pytest.raises(hookpath.HookDatabaseError, match="newer stash2plex") as hooked:
        hookpath.enqueue(str(db), "1")
    assert str(db) in str(hooked.value)
    assert isinstance(hooked.value.__cause__, schema.SchemaTooNewError)


def _history(db: Path) -> tuple[int, list[int]]:
    conn = sqlite3.connect(db)
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        return version, [row[0] for row in conn.execute("SELECT version FROM schema_history ORDER BY version")]
    finally:
        conn.close()


def test_reopening_a_current_database_migrates_nothing_and_keeps_its_data(db: Path) -> None:
    queue = SQLiteQueue(db)
    queue.enqueue("1")
    queue.close()
    store = SQLiteStateStore(db)
    store.put("sync", "1", {"a": 1})
    store.close()
    before = _history(db)
    for _ in range(3):
        hookpath.enqueue(str(db), "2")
        again = SQLiteQueue(db)
        assert sorted(j.scene_id for j in again.pending()) == ["1", "2"]
        again.close()
        reopened = SQLiteStateStore(db)
        assert reopened.get("sync", "1") == {"a": 1}
        reopened.close()
    assert _history(db) == before == (schema.SCHEMA_VERSION, list(range(1, schema.SCHEMA_VERSION + 1)))


def test_an_older_database_is_migrated_forward_keeping_its_data(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The mechanism a future schema 2 will use: a v1 file with jobs and documents gains the
    new step in one transaction, recorded in ``schema_history``, its rows untouched."""
    queue = SQLiteQueue(db)
    queue.enqueue("1", "create")
    queue.close()
    store = SQLiteStateStore(db)
    store.put("sync", "1", {"a": 1})
    store.close()
    assert _history(db) == (1, [1])
    nxt = schema.SCHEMA_VERSION + 1
    monkeypatch.setattr(schema, "SCHEMA_VERSION", nxt)
    monkeypatch.setitem(
        schema.MIGRATIONS,
        nxt,
        ("a note per job", ("ALTER TABLE jobs ADD COLUMN note TEXT", "UPDATE jobs SET note = 'migrated'")),
    )
    upgraded = SQLiteQueue(db)
    assert [(j.scene_id, j.reason) for j in upgraded.pending()] == [("1", "create")]
    upgraded.close()
    upgraded_store = SQLiteStateStore(db)
    assert upgraded_store.get("sync", "1") == {"a": 1}
    upgraded_store.close()
    assert _history(db) == (nxt, [1, nxt])
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT scene_id, note FROM jobs").fetchall() == [("1", "migrated")]
    finally:
        conn.close()


def test_a_failing_migration_changes_nothing_and_names_the_file(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = SQLiteQueue(db)
    first.enqueue("1")
    first.close()
    nxt = schema.SCHEMA_VERSION + 1
    monkeypatch.setattr(schema, "SCHEMA_VERSION", nxt)
    monkeypatch.setitem(
        schema.MIGRATIONS, nxt, ("broken", ("ALTER TABLE jobs ADD COLUMN note TEXT", "SELECT * FROM no_such_table"))
    )
    failing = SQLiteQueue(db)
    with pytest.raises(StateError, match="no_such_table") as caught:
        failing.counts()
    failing.close()
    assert str(db) in str(caught.value)
    with pytest.raises(hookpath.HookDatabaseError, match="no_such_table"):
        hookpath.enqueue(str(db), "2")
    monkeypatch.undo()
    assert _history(db) == (1, [1])
    conn = sqlite3.connect(db)
    try:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(jobs)")]
    finally:
        conn.close()
    assert "note" not in columns, "the half-run migration was rolled back"
    queue = SQLiteQueue(db)
    assert [j.scene_id for j in queue.pending()] == ["1"]
    queue.close()


def test_concurrent_first_opens_migrate_once(tmp_path: Path) -> None:
    db = tmp_path / "stash2plex.db"
    code = "from stash2plex_backends.sqlite import hookpath; import sys; hookpath.enqueue(sys.argv[1], sys.argv[2])"
    procs = [subprocess.Popen(hook_command(code, str(db), str(i)), stderr=subprocess.PIPE) for i in range(6)]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
    queue = SQLiteQueue(db)
    assert queue.counts().ready == 6
    assert queue.integrity_check() == ["ok"]
    queue.close()


# -- corruption and errors


def test_a_file_that_is_not_a_database_is_named_and_left_alone(db: Path) -> None:
    db.parent.mkdir()
    garbage = b"not a database, just some user file " * 200
    db.write_bytes(garbage)
    with pytest.raises(StateError, match="corrupt or is not a SQLite database") as caught:
        SQLiteQueue(db).enqueue("1")
    assert str(db) in str(caught.value)
    with pytest.raises(StateError, match=str(db)):
        SQLiteStateStore(db).get("sync", "1")
    assert db.read_bytes() == garbage


def test_the_hook_path_names_a_file_that_is_not_a_database(db: Path) -> None:
    """The hook's stdlib-only writes and lease operations name the file, not just SQLite's complaint."""
    db.parent.mkdir()
    garbage = b"not a database, just some user file " * 200
    db.write_bytes(garbage)
    operations = {
        "enqueue": lambda: hookpath.enqueue(str(db), "1"),
        "remove_pending": lambda: hookpath.remove_pending(str(db), "1"),
        "reserve_drain": lambda: hookpath.reserve_drain(str(db), "hook:1", 30),
        "enqueue_and_reserve": lambda: hookpath.enqueue_and_reserve(str(db), "1", "update", "hook:1", 30),
        "take_drain": lambda: hookpath.take_drain(str(db), "task:1", 30),
        "lease_holder": lambda: hookpath.lease_holder(str(db)),
        "release_lease": lambda: hookpath.release_lease(str(db), "task:1"),
    }
    for name, operation in operations.items():
        with pytest.raises(hookpath.HookDatabaseError, match="corrupt or is not a SQLite database") as caught:
            operation()
        assert str(db) in str(caught.value), name
        assert caught.value.path == str(db)
        assert isinstance(caught.value.__cause__, sqlite3.DatabaseError)
        assert isinstance(caught.value, sqlite3.DatabaseError), "callers catching SQLite's errors still do"
    assert db.read_bytes() == garbage


def test_a_corrupt_database_on_the_hook_is_one_json_error_naming_it(tmp_path: Path) -> None:
    """Stash runs the hook as a process; a garbage database file gives one JSON error naming it."""
    import os

    import stash2plex_integrations.stash_plugin as plugin_package

    plugin_dir = tmp_path / "plugin dir ✓"
    plugin_dir.mkdir()
    db = plugin_dir / schema.DATABASE_NAME
    db.write_bytes(b"garbage, not SQLite " * 100)
    payload = {
        "server_connection": {"Scheme": "http", "Host": "127.0.0.1", "Port": 1, "PluginDir": str(plugin_dir)},
        "args": {"hookContext": {"id": 5, "type": "Scene.Update.Post"}},
    }
    env = {k: v for k, v in os.environ.items() if k != "STASH2PLEX_DATA_DIR"}
    done = subprocess.run(
        [sys.executable, str(Path(plugin_package.__file__).with_name("stash2plex_plugin.py"))],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, (done.stdout, done.stderr)
    result = json.loads(lines[0])
    assert result["output"] is None
    assert "HookDatabaseError" in result["error"]
    assert str(db) in result["error"]
    assert "corrupt or is not a SQLite database" in result["error"]
    assert str(db) in done.stderr


def test_a_truncated_database_is_reported(db: Path) -> None:
    queue = SQLiteQueue(db)
    queue.enqueue_many(f"scene-{i:06d}-{'x' * 40}" for i in range(20000))
    queue.close()
    assert not Path(f"{db}-wal").exists()  # checkpointed into the main file on close
    size = db.stat().st_size
    with db.open("r+b") as handle:
        handle.truncate(size // 2)
    queue = SQLiteQueue(db)
    with pytest.raises(StateError, match="corrupt") as caught:
        queue.pending(limit=10**6)
    assert str(db) in str(caught.value)
    queue.close()


def test_a_corrupt_state_document_names_where(db: Path) -> None:
    store = SQLiteStateStore(db)
    store.put("sync", "1", {"a": 1})
    conn = sqlite3.connect(db)
    conn.execute("UPDATE state SET document = '{broken' WHERE key = '1'")
    conn.commit()
    conn.close()
    with pytest.raises(StateError, match="sync/1 is not valid JSON") as caught:
        store.get("sync", "1")
    assert str(db) in str(caught.value)
    store.close()


def test_a_held_write_lock_times_out_with_a_clear_error(db: Path) -> None:
    queue = SQLiteQueue(db, busy_timeout=0.3)
    store = SQLiteStateStore(db, busy_timeout=0.3)
    queue.counts()
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        start = time.monotonic()
        with pytest.raises(StateLockTimeoutError, match="locked") as caught:
            queue.enqueue("1")
        assert 0.25 <= time.monotonic() - start < 5
        assert str(db) in str(caught.value)
        with pytest.raises(StateLockTimeoutError):
            store.update("breaker", "plex", lambda cur: {"state": "open"})
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert queue.counts().pending == 0, "a timed-out enqueue must not half-happen"
    assert store.get("breaker", "plex") is None
    queue.close()
    store.close()


def test_a_write_waits_for_a_short_lock_instead_of_failing(db: Path) -> None:
    queue = SQLiteQueue(db)
    queue.counts()
    blocker = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")
    timer = threading.Timer(0.3, lambda: blocker.execute("COMMIT"))
    timer.start()
    start = time.monotonic()
    queue.enqueue("1")
    assert time.monotonic() - start >= 0.25
    timer.join()
    blocker.close()
    assert queue.counts().ready == 1
    queue.close()


def test_read_only_directory_gives_a_clear_error(tmp_path: Path) -> None:
    code = """
import json, sys
from stash2plex_backends.sqlite import SQLiteQueue, hookpath
from stash2plex_core.errors import StateError
out = {}
try:
    SQLiteQueue(sys.argv[1] + "/new/stash2plex.db").enqueue("1")
except StateError as exc:
    out["queue"] = str(exc)
try:
    hookpath.enqueue(sys.argv[1] + "/new/stash2plex.db", "1")
except hookpath.HookDatabaseError as exc:
    out["hook"] = str(exc)
try:
    SQLiteQueue(sys.argv[1] + "/stash2plex.db").enqueue("2")
except StateError as exc:
    out["existing"] = str(exc)
print(json.dumps(out))
"""
    with read_only_directory(tmp_path) as directory:
        directory.chmod(0o755)
        existing = SQLiteQueue(directory / "stash2plex.db")
        existing.enqueue("1")
        existing.close()
        directory.chmod(0o555)
        result = run_python(code, str(directory))
        assert result.returncode == 0, result.stderr
        out = json.loads(result.stdout)
    assert "cannot create the database" in out["queue"]
    assert "Permission denied" in out["queue"]
    assert str(directory / "new" / "stash2plex.db") in out["queue"]
    assert "Permission denied" in out["hook"]
    assert str(directory / "new" / "stash2plex.db") in out["hook"]
    assert str(directory / "stash2plex.db") in out["existing"]
    assert "must be writable by this user" in out["existing"]


def test_use_after_close_is_an_error(db: Path) -> None:
    queue = SQLiteQueue(db)
    queue.enqueue("1")
    queue.close()
    with pytest.raises(StateError, match="after close"):
        queue.counts()


# -- times


def test_times_round_trip_exactly_as_aware_utc(db: Path) -> None:
    clock = ManualClock(dt.datetime(2026, 3, 4, 5, 6, 7, 123457, tzinfo=dt.timezone(dt.timedelta(hours=2))))
    queue = SQLiteQueue(db, clock)
    job = queue.enqueue("1", delay=0.000001)
    assert job.enqueued_at == clock.now()
    assert job.enqueued_at.utcoffset() == dt.timedelta(0)
    assert job.next_attempt_at == clock.now() + dt.timedelta(microseconds=1)
    clock.advance(1)
    again = queue.claim("w", 0.5)
    assert again is not None
    assert again.lease is not None
    assert again.lease.expires_at == clock.now() + dt.timedelta(seconds=0.5)
    assert SQLiteQueue(db, clock).pending()[0].enqueued_at == job.enqueued_at
    queue.close()


# -- the claim query


def test_the_claim_walks_its_index_without_sorting(db: Path) -> None:
    queue = SQLiteQueue(db)
    queue.enqueue_many(str(i) for i in range(10000))
    queue.close()
    conn = sqlite3.connect(db)
    try:
        conn.execute("ANALYZE")  # the plan must hold with statistics too
        params = {"owner": "w", "token": "t", "expires": 1, "now": 1}
        plan = " | ".join(str(row[3]) for row in conn.execute(f"EXPLAIN QUERY PLAN {schema.CLAIM}", params))
    finally:
        conn.close()
    assert "TEMP B-TREE" not in plan, plan
    assert "USING INDEX jobs_claim" in plan, plan
    assert "USING INDEX jobs_one_lease_per_scene" in plan, plan


def test_claims_skip_scenes_another_worker_holds(db: Path) -> None:
    queue = SQLiteQueue(db, ManualClock())
    queue.enqueue_many(["a", "b"])
    first = queue.claim("w1", 60)
    assert first is not None
    queue.enqueue(first.scene_id)  # the held scene gets new work, as due as "b"
    second = queue.claim("w2", 60)
    assert second is not None
    assert second.scene_id != first.scene_id
    assert queue.claim("w3", 60) is None
    queue.close()


def test_bulk_enqueue_is_one_transaction(db: Path) -> None:
    """A reader polling while 50,000 scenes go in sees none of them or all of them."""
    queue = SQLiteQueue(db)
    queue.counts()
    seen: set[int] = set()
    done = threading.Event()

    def poll() -> None:
        conn = sqlite3.connect(db)
        try:
            while not done.is_set():
                seen.add(conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0])
        finally:
            conn.close()

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        time.sleep(0.02)
        assert queue.enqueue_many(str(i) for i in range(50000)) == 50000
        time.sleep(0.02)
    finally:
        done.set()
        reader.join()
    assert seen <= {0, 50000}, sorted(seen)[:5]
    assert seen == {0, 50000}, "the reader never saw before and after"
    assert queue.counts().ready == 50000
    queue.close()


# -- named leases and the hook path


def test_the_drain_lease_is_exclusive_and_visible_to_the_hook(db: Path) -> None:
    first, second = SQLiteQueue(db), SQLiteQueue(db)
    assert hookpath.drain_lease_held(str(db)) is False
    token = first.acquire_lease(schema.DRAIN_LEASE, "worker-1", 30)
    assert token is not None
    assert second.acquire_lease(schema.DRAIN_LEASE, "worker-2", 30) is None
    assert hookpath.drain_lease_held(str(db)) is True
    assert hookpath.lease_holder(str(db)) == "worker-1"
    assert second.renew_lease(schema.DRAIN_LEASE, "not-the-token", 30) is False
    assert first.renew_lease(schema.DRAIN_LEASE, token, 30) is True
    assert first.release_lease(schema.DRAIN_LEASE, token) is True
    assert hookpath.drain_lease_held(str(db)) is False
    assert second.acquire_lease(schema.DRAIN_LEASE, "worker-2", 30) is not None
    first.close()
    second.close()


def test_an_expired_named_lease_can_be_taken_over(db: Path) -> None:
    clock = ManualClock()
    first, second = SQLiteQueue(db, clock), SQLiteQueue(db, clock)
    token = first.acquire_lease("drain", "w1", 10)
    assert token is not None
    clock.advance(10)
    assert first.lease_holder("drain") is None
    taken = second.acquire_lease("drain", "w2", 10)
    assert taken is not None
    assert second.lease_holder("drain") == "w2"
    assert first.renew_lease("drain", token, 10) is False, "the old holder lost it"
    first.close()
    second.close()


def test_the_hook_path_imports_only_the_standard_library(tmp_path: Path) -> None:
    code = """
import json, sys
from stash2plex_backends.sqlite import hookpath
hookpath.enqueue(sys.argv[1], "42", "update")
hookpath.enqueue(sys.argv[1], "42", "update")
hookpath.enqueue(sys.argv[1], "43", "create")
assert hookpath.remove_pending(sys.argv[1], "43") == 1
held = hookpath.drain_lease_held(sys.argv[1])
print(json.dumps({"held": held, "modules": sorted(sys.modules)}))
"""
    db = tmp_path / "fresh" / "stash2plex.db"
    result = subprocess.run(hook_command(code, str(db)), capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["held"] is False
    loaded = {name.split(".")[0] for name in out["modules"]}
    heavy = {
        "attrs",
        "cattrs",
        "pluggy",
        "platformdirs",
        "stash2plex_core",
        "plexapi",
        "stashapi",
        "requests",
        "urllib3",
        "tenacity",
        "persistqueue",
        "asyncio",
        "typing",
    }
    assert not loaded & heavy, loaded & heavy
    queue = SQLiteQueue(db)
    (job,) = queue.pending()
    assert (job.scene_id, job.events, job.reason) == ("42", 2, "update")
    queue.close()


# -- durability settings


def test_enqueues_commit_at_full_and_worker_writes_at_normal(db: Path) -> None:
    """White-box: the statements the queue's connection runs, in order."""
    queue = SQLiteQueue(db)
    statements: list[str] = []
    conn = queue.db._connection()
    conn.set_trace_callback(statements.append)

    def synchronous() -> int:
        return int(conn.execute("PRAGMA synchronous").fetchone()[0])

    queue.enqueue("1")
    assert "PRAGMA synchronous = FULL" in statements
    assert statements.index("PRAGMA synchronous = FULL") < statements.index("BEGIN IMMEDIATE")
    assert synchronous() == 2  # FULL
    job = queue.claim("w", 5)
    assert job is not None
    assert synchronous() == 1  # NORMAL: a lost completion only means one re-delivery
    queue.complete(job)
    queue.enqueue_many(["2", "3"])
    assert synchronous() == 2
    queue.close()


def test_the_hook_commits_at_full(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    connect = schema.connect

    def traced(path: str, **kwargs: object) -> sqlite3.Connection:
        conn = connect(path, **kwargs)  # type: ignore[arg-type]
        seen.append(f"synchronous={conn.execute('PRAGMA synchronous').fetchone()[0]}")
        conn.set_trace_callback(seen.append)
        return conn

    monkeypatch.setattr(schema, "connect", traced)
    hookpath.enqueue(str(db), "1")
    assert seen[0] == "synchronous=2"
    assert [s for s in seen if s in {"BEGIN IMMEDIATE", "COMMIT"}] == ["BEGIN IMMEDIATE", "COMMIT"]


def test_a_burst_of_hooks_reserves_the_drain_exactly_once(db: Path) -> None:
    code = (
        "import sys; from stash2plex_backends.sqlite import hookpath\n"
        "print(hookpath.reserve_drain(sys.argv[1], 'hook:' + sys.argv[2], 30))"
    )
    procs = [subprocess.Popen(hook_command(code, str(db), str(i)), stdout=subprocess.PIPE, text=True) for i in range(6)]
    answers = [proc.communicate(timeout=60)[0].strip() for proc in procs]
    assert sorted(answers) == ["False"] * 5 + ["True"]
    holder = hookpath.lease_holder(str(db))
    assert holder is not None
    assert holder.startswith(hookpath.RESERVATION_PREFIX)


def test_enqueue_and_reserve_queues_every_event_and_wins_the_lease_once(db: Path) -> None:
    path = str(db)
    assert hookpath.enqueue_and_reserve(path, "7", "Scene.Update.Post", "hook:1", 30)
    assert not hookpath.enqueue_and_reserve(path, "7", "Scene.Update.Post", "hook:2", 30), "the lease is held"
    assert not hookpath.enqueue_and_reserve(path, "8", "Scene.Create.Post", "hook:3", 30)
    assert hookpath.lease_holder(path) == "hook:1"
    queue = SQLiteQueue(db)
    try:
        assert sorted(job.scene_id for job in queue.pending(limit=10)) == ["7", "8"], "events coalesce per scene"
    finally:
        queue.close()
    assert hookpath.release_lease(path, "hook:1")
    assert hookpath.enqueue_and_reserve(path, "9", "Scene.Update.Post", "hook:4", 30), "a free lease is won again"


def test_a_drain_task_takes_over_a_reservation_but_not_a_worker(db: Path) -> None:
    path = str(db)
    assert hookpath.reserve_drain(path, "hook:1", 30)
    assert not hookpath.reserve_drain(path, "hook:2", 30)
    assert hookpath.take_drain(path, "task:a", 30), "a reservation is there to be taken over"
    assert hookpath.lease_holder(path) == "task:a"
    assert not hookpath.take_drain(path, "task:b", 30), "a running worker keeps its lease"
    assert not hookpath.renew_lease(path, "task:b", 30)
    assert hookpath.renew_lease(path, "task:a", 30)
    assert not hookpath.release_lease(path, "task:b")
    assert hookpath.release_lease(path, "task:a")
    assert not hookpath.drain_lease_held(path)
    assert hookpath.take_drain(path, "task:b", 30)
    with pytest.raises(ValueError, match="seconds"):
        hookpath.reserve_drain(path, "hook:3", 0)


def test_queue_and_state_writers_in_one_process_never_meet_sqlites_busy_handler(db: Path) -> None:
    """The drain's two connections to one file take turns on an in-process lock.

    With a busy timeout of zero any collision at SQLite's level fails at once; taking turns
    on the file's lock, none happens.
    """
    clock = ManualClock()
    queue = SQLiteQueue(db, clock, busy_timeout=0)
    state = SQLiteStateStore(db, clock, busy_timeout=0)
    queue.enqueue_many([str(n) for n in range(400)])
    errors: list[BaseException] = []

    def work() -> None:
        try:
            while job := queue.claim("w", 300):
                state.put_all({"sync": {job.scene_id: {"n": 1}}, "posters": {job.scene_id: {"n": 2}}})
                queue.complete(job)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        assert queue.counts().pending == 0
        assert len(state.keys("sync")) == len(state.keys("posters")) == 400
    finally:
        queue.close()
        state.close()


def test_get_many_reads_thousands_of_keys_in_one_statement(db: Path) -> None:
    state = SQLiteStateStore(db, ManualClock())
    try:
        state.put_many("sync", {str(n): {"n": n} for n in range(3000)})
        found = state.get_many("sync", [str(n) for n in range(0, 6000, 2)])
        assert found == {str(n): {"n": n} for n in range(0, 3000, 2)}
    finally:
        state.close()


def test_put_all_and_complete_are_one_statement_each(db: Path) -> None:
    """A sync's writes: its documents in one statement, the job's completion in another."""
    clock = ManualClock()
    state = SQLiteStateStore(db, clock)
    queue = SQLiteQueue(db, clock)
    try:
        queue.enqueue("1")
        job = queue.claim("w", 300)
        assert job is not None
        state.put("sync", "0", {"warm": True})
        seen: list[str] = []
        state.db._connection().set_trace_callback(seen.append)
        queue.db._connection().set_trace_callback(seen.append)
        state.put_all({"sync": {"1": {"a": 1}}, "posters": {"1": {"b": 2}}, "review": {"1": {"c": 3}}})
        queue.complete(job)
        assert [s.split()[0] for s in seen] == ["INSERT", "DELETE"]
        assert state.get_many("posters", ["1"]) == {"1": {"b": 2}}
        assert dict(state.items("review")) == {"1": {"c": 3}}
    finally:
        state.close()
        queue.close()
