"""The plugin end to end: subprocess hooks and tasks against both simulators."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from stash2plex_backends.sqlite import SQLiteQueue
from stash2plex_backends.sqlite import SQLiteStateStore
from stash2plex_backends.sqlite import hookpath
from stash2plex_core.clocks import ManualClock
from stash2plex_core.models.jobs import JobError
from stash2plex_core.services.mapping import desired_state
from stash2plex_core.services.outages import OutageLog
from stash2plex_integrations.stash_plugin.hook import RESERVATION_SECONDS
from tests.plugin.conftest import TOKEN
from tests.plugin.conftest import PluginHarness
from tests.plugin.conftest import PluginRun
from tests.plugin.conftest import make_harness
from tests.plugin.conftest import plugin_env
from tests.plugin.conftest import run_plugin


def plex_title(harness: PluginHarness, scene_id: str) -> str | None:
    scene = harness.stash.scene(scene_id)
    item = harness.plex.item_by_path(scene.files[0].path)
    assert item is not None
    return item.values.get("title")


def job_attempts(harness: PluginHarness) -> list[int]:
    with sqlite3.connect(harness.db) as conn:
        return [int(row[0]) for row in conn.execute("SELECT attempts FROM jobs ORDER BY id")]


def logged_error(run: PluginRun, *needles: str) -> None:
    """The error reached Stash's log as error-level lines naming every needle."""
    lines = "\n".join(run.error_lines())
    assert lines, f"no error-level line on stderr: {run.stderr!r}"
    for needle in needles:
        assert needle in lines, f"{needle!r} not in the logged error {lines!r}"
    assert "Traceback" not in run.stderr


def test_hook_imports_only_the_standard_library(harness: PluginHarness) -> None:
    payload = json.dumps(
        {
            "server_connection": harness.connection(Port=1),
            "args": {"hookContext": {"id": 3, "type": "Scene.Update.Post", "input": None}},
        }
    )
    code = (
        "import io, json, sys\n"
        "before = set(sys.modules)\n"
        "from stash2plex_integrations.stash_plugin.entry import main\n"
        f"main(stdin=io.StringIO({payload!r}), stdout=io.StringIO(), stderr=io.StringIO())\n"
        "heavy = ('plexapi', 'stashapi', 'requests', 'urllib3', 'tenacity', 'persistqueue', 'asyncio', 'attrs',"
        " 'cattrs', 'pluggy', 'stash2plex_core', 'logging', 'urllib', 'http', 'email', 'ssl', 'typing', 'traceback')\n"
        "print(json.dumps(sorted(m for m in set(sys.modules) - before if m.split('.')[0] in heavy)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=plugin_env(), check=True)
    assert json.loads(done.stdout) == []
    assert hookpath.lease_holder(str(harness.db)) is None, "a failed drain start must release its reservation"
    assert harness.pending() == 1


def test_update_hook_queues_and_starts_one_drain(harness: PluginHarness) -> None:
    harness.stash.update_scene("5", title="Brand New Title")
    run = harness.hook(5)
    assert run.error is None
    assert "queued scene 5" in run.output
    harness.wait_for_tasks()
    assert [r.task_name for r in harness.stash.plugin_task_runs] == ["Process queue"]
    assert [r.error for r in harness.task_runs] == [None]
    assert plex_title(harness, "5") == "Brand New Title"
    assert harness.pending() == 0


def test_scan_create_with_null_input_is_queued(harness: PluginHarness) -> None:
    harness.stash.plugin_task_handler = None  # keep the job queued to look at it
    run = harness.hook(7, "Scene.Create.Post", input=None)
    assert run.error is None
    assert harness.pending() == 1


def test_destroy_drops_pending_work(harness: PluginHarness) -> None:
    harness.stash.plugin_task_handler = None
    harness.hook(8)
    assert harness.pending() == 1
    run = harness.hook(8, "Scene.Destroy.Post", input={"id": "8", "path": "/x.mp4"})
    assert run.error is None
    assert harness.pending() == 0


def test_a_task_builds_one_stash_client(harness: PluginHarness) -> None:
    """Settings are read in one small request; stashapi's constructor runs once per process."""
    harness.stash.plugin_task_handler = None
    assert harness.task("process").error is None  # the first run also does the scheduled full reconciliation
    harness.hook(3)
    harness.stash.requests.clear()
    run = harness.task("process")
    assert run.error is None, run.error
    assert run.output["outcomes"], "the queued scene was worked on"
    assert "reconcile" not in run.output, "nothing was due: no reconciliation ran"
    bodies = [r.body for r in harness.stash.requests.all()]
    assert sum(b"__schema" in b for b in bodies) == 1, "one schema introspection (one StashInterface)"
    assert sum(b"Stash2PlexPluginSettings" in b for b in bodies) == 1
    assert sum(b"findScene(" in b for b in bodies) == 1
    # settings + stashapi's constructor (version, API key, introspection) + the scene
    assert len(bodies) == 5, [b[:60] for b in bodies]


def fire(harness: PluginHarness, events: list[tuple[str, str | None]], *, stagger: float = 0.0) -> None:
    """Each event: optionally change the scene's title in Stash, then run its hook (8 at once).

    ``stagger`` spaces the events out (0 to 9 times it before each), so some land while a
    drain is finishing.
    """
    numbered = list(enumerate(events))

    def one(item: tuple[int, tuple[str, str | None]]) -> None:
        index, (sid, title) = item
        if stagger:
            time.sleep(stagger * (index % 10))
        if title is not None:
            harness.stash.update_scene(sid, title=title)
        run = harness.hook(int(sid))
        assert run.error is None, run.error

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(one, numbered))


def test_hook_burst_one_drain_at_a_time_and_newest_metadata_wins(big_harness: PluginHarness) -> None:
    harness = big_harness
    scene_ids = [str(s.id) for s in harness.stash.scenes][:200]
    assert len(scene_ids) == 200
    expected = {sid: harness.stash.scene(sid).title for sid in scene_ids}
    # Phase 1: 1,000 update events for 200 scenes while the drain Stash was asked for is held back.
    harness.gate.clear()
    began = time.monotonic()
    events: list[tuple[str, str | None]] = []
    for round_ in range(5):
        for sid in scene_ids:
            title = f"Final title {sid}" if round_ == 4 and int(sid) % 2 == 0 else None
            events.append((sid, title))
            expected[sid] = title or expected[sid]
    fire(harness, events)
    elapsed = time.monotonic() - began
    assert harness.pending() == 200, "1,000 events for 200 scenes coalesce into 200 jobs"
    with sqlite3.connect(harness.db) as conn:
        assert conn.execute("SELECT sum(events) FROM jobs").fetchone()[0] == 1000
    if elapsed < RESERVATION_SECONDS:  # a slower burst outlives the reservation and may ask again
        assert len(harness.stash.plugin_task_runs) == 1, "the burst asked Stash for exactly one drain"
    # Phase 2: let the drain run and keep saving meanwhile: odd scenes get a newer title.
    harness.gate.set()
    events = [(sid, f"Late title {sid}" if int(sid) % 2 else None) for sid in scene_ids]
    expected.update({sid: title for sid, title in events if title is not None})
    fire(harness, events)
    harness.wait_for_tasks(timeout=300)
    # Phase 3: saves trickle in while drains start and finish, so leases change hands.
    events = [(sid, f"Last title {sid}") for sid in scene_ids[:40]]
    expected.update(dict(events))
    fire(harness, events, stagger=0.05)
    harness.wait_for_tasks(timeout=300)

    records = list(harness.task_runs)
    assert len(records) >= 2, "phase 3 started drains of its own"
    windows = sorted(w for record in records for w in record.windows())
    assert windows, "no task drained the queue"
    for (_, end), (start, _) in itertools.pairwise(windows):
        assert start >= end, f"two drains overlapped: one ended at {end}, another started at {start}"
    assert [r.error for r in records if r.error is not None] == []
    assert harness.pending() == 0
    assert harness.dead() == 0
    checked = 0
    for sid in scene_ids:
        scene = harness.stash.scene(sid)
        item = harness.plex.item_by_path(scene.files[0].path)
        assert item is not None
        if any(len(parts) > 1 for parts in item.media):
            continue  # a stacked two-part film: the scene of its first part describes the item
        checked += 1
        assert expected[sid] is not None
        assert scene.title == expected[sid]
        assert plex_title(harness, sid) == expected[sid]
    assert checked > 150


def test_sync_all_status_and_health_tasks(harness: PluginHarness) -> None:
    run = harness.task("sync_all")
    assert run.error is None, run.error
    assert "\x01p\x02" in run.stderr  # progress reached Stash
    assert run.output["queued"] == 40
    assert sum(run.output["outcomes"].values()) >= 40
    status = harness.task("status")
    assert status.error is None
    assert status.output["queue"]["ready"] == 0
    health = harness.task("health")
    assert health.error is None
    assert health.output["plex"]["ok"]
    assert health.output["stash"]["ok"]


def test_malformed_stdin_is_one_clear_error_and_keeps_jobs(harness: PluginHarness) -> None:
    harness.stash.plugin_task_handler = None
    assert harness.hook(4).error is None
    run = run_plugin("{not json")
    assert run.output is None
    assert run.error is not None
    assert "stdin is not JSON" in run.error
    logged_error(run, "stdin is not JSON")
    assert harness.pending() == 1
    assert job_attempts(harness) == [0]


def test_missing_settings_are_reported_together_and_keep_jobs(harness: PluginHarness) -> None:
    harness.stash.plugin_task_handler = None
    harness.hook(4)
    harness.stash.set_plugin_settings("stash2plex", {"retry_base_seconds": "soon"})
    run = harness.task("process")
    assert run.error is not None
    for key in ("plex_url", "plex_token", "retry_base_seconds"):
        assert key in run.error, run.error
    assert "3 invalid setting(s)" in run.error
    logged_error(run, "plex_url", "plex_token", "retry_base_seconds")
    assert harness.pending() == 1
    assert job_attempts(harness) == [0], "no job was touched"
    # Read-only tasks still run without Plex settings, and say what is missing.
    status = harness.task("status")
    assert status.error is not None  # the invalid retry_base_seconds still stops it
    harness.stash.set_plugin_settings("stash2plex", {})
    assert harness.task("status").error is None
    health = harness.task("health")
    assert health.error is None
    assert not health.output["plex"]["ok"]
    assert "plex_url" in health.output["plex"]["detail"]


def test_task_parameters_are_checked_with_the_settings(harness: PluginHarness) -> None:
    harness.stash.set_plugin_settings("stash2plex", {"plex_url": harness.plex.url})
    run = harness.task("dlq_retry_class")
    assert run.error is not None
    assert "plex_token" in run.error
    assert "dlq_retry_error_class" in run.error
    logged_error(run, "plex_token", "dlq_retry_error_class")
    purge = harness.task("dlq_purge", dlq_purge_days="a month")
    assert purge.error is not None
    assert "dlq_purge_days" in purge.error


def test_wrong_plex_token_stops_without_burning_jobs(harness: PluginHarness) -> None:
    harness.stash.plugin_task_handler = None
    harness.hook(4)
    harness.stash.set_plugin_settings("stash2plex", {"plex_url": harness.plex.url, "plex_token": "wrong"})
    run = harness.task("process")
    assert run.error is not None
    assert "plex_token" in run.error
    logged_error(run, "plex_token")
    assert TOKEN not in run.stderr
    assert "wrong" not in run.error
    assert "wrong" not in run.stderr
    assert harness.pending() == 1
    assert harness.dead() == 0


def test_unreachable_stash_is_one_clear_error_and_hooks_still_queue(harness: PluginHarness) -> None:
    dead = harness.connection(Port=1)
    hook = run_plugin({"server_connection": dead, "args": {"hookContext": {"id": 2, "type": "Scene.Update.Post"}}})
    assert hook.error is None  # the save must not fail because a drain could not start
    assert "drain not started" in hook.output
    task = run_plugin({"server_connection": dead, "args": {"task": "process"}})
    assert task.error is not None
    assert "BackendUnavailableError" in task.error
    assert "unreachable" in task.error
    logged_error(task, "BackendUnavailableError", "unreachable")
    assert harness.pending() == 1
    assert job_attempts(harness) == [0]


NOW = dt.datetime.now(dt.UTC)
OUTAGE_START = NOW - dt.timedelta(days=2)


def seed_dead_letters(db: Path) -> None:
    """Four dead letters, failed at known times, and one outage around one of them.

    scene 1: PermanentError 60 days ago · scene 3: BackendUnavailableError during the
    outage 2 days ago · scene 2: PermanentError 1 day ago · scene 4: TransientError 1 h ago.
    """
    clock = ManualClock(NOW - dt.timedelta(days=60))
    queue = SQLiteQueue(db, clock)
    outages = OutageLog(SQLiteStateStore(db, clock))

    def bury(scene_id: str, error_class: str) -> None:
        queue.enqueue(scene_id, "update")
        job = queue.claim("seed", 60)
        assert job is not None
        assert job.scene_id == scene_id
        queue.dead_letter(job, JobError(error_class, f"seeded {error_class}", clock.now()))

    def advance_to(moment: dt.datetime) -> None:
        clock.advance((moment - clock.now()).total_seconds())

    bury("1", "PermanentError")
    advance_to(OUTAGE_START)
    outages.start(clock.now(), cause="seeded outage", jobs_affected=1)
    clock.advance(600)
    bury("3", "BackendUnavailableError")
    clock.advance(3000)
    outages.end(clock.now())
    advance_to(NOW - dt.timedelta(days=1))
    bury("2", "PermanentError")
    advance_to(NOW - dt.timedelta(hours=1))
    bury("4", "TransientError")
    queue.close()


def dead_scenes(harness: PluginHarness) -> set[str]:
    with sqlite3.connect(harness.db) as conn:
        return {str(row[0]) for row in conn.execute("SELECT scene_id FROM dead_letters")}


def test_dead_letter_and_queue_tasks_change_the_queue(harness: PluginHarness) -> None:
    seed_dead_letters(harness.db)
    listed = harness.task("dlq_list")
    assert listed.error is None, listed.error
    assert listed.output["dead_letters"] == 4
    assert {x["scene_id"] for x in listed.output["letters"]} == {"1", "2", "3", "4"}
    assert "4 dead letter(s)" in listed.stderr

    harness.settings(dlq_purge_days=30)
    purged = harness.task("dlq_purge")
    assert purged.error is None, purged.error
    assert purged.output["purged"] == 1
    assert dead_scenes(harness) == {"2", "3", "4"}

    harness.stash.update_scene("3", title="Back after the outage")
    outage = harness.task("dlq_retry_outage")
    assert outage.error is None, outage.error
    assert outage.output["requeued"] == 1
    assert dead_scenes(harness) == {"2", "4"}
    assert plex_title(harness, "3") == "Back after the outage"

    harness.settings(dlq_retry_error_class="TransientError")
    by_class = harness.task("dlq_retry_class")
    assert by_class.error is None, by_class.error
    assert by_class.output["requeued"] == 1
    assert dead_scenes(harness) == {"2"}

    everything = harness.task("dlq_retry")
    assert everything.error is None, everything.error
    assert everything.output["requeued"] == 1
    assert dead_scenes(harness) == set()
    assert harness.pending() == 0

    harness.stash.plugin_task_handler = None
    for sid in (5, 6, 7):
        assert harness.hook(sid).error is None
    assert harness.pending() == 3
    cleared = harness.task("clear_queue")
    assert cleared.error is None, cleared.error
    assert cleared.output["dropped"] == 3
    assert harness.pending() == 0


def test_outage_report_task(harness: PluginHarness) -> None:
    seed_dead_letters(harness.db)
    run = harness.task("outages")
    assert run.error is None, run.error
    assert len(run.output["history"]) == 1
    assert "MTTR" in run.stderr


def test_retry_by_class_needs_the_class(harness: PluginHarness) -> None:
    run = harness.task("dlq_retry_class")
    assert run.error is not None
    assert "error class" in run.error


def test_sync_recent_queues_only_recently_updated_scenes(harness: PluginHarness) -> None:
    assert harness.task("sync_all").error is None
    harness.stash.update_scene("5", title="Changed today")
    run = harness.task("sync_recent", days=1)
    assert run.error is None, run.error
    assert run.output["queued"] == 1
    assert run.output["outcomes"] == {"synced": 1}
    assert plex_title(harness, "5") == "Changed today"
    assert "updated in the last 1 day(s)" in run.stderr


def test_reconcile_task_repairs_drift_and_status_shows_it(harness: PluginHarness) -> None:
    assert harness.task("sync_all").error is None
    scene = harness.stash.scene("6")
    item = harness.plex.item_by_path(scene.files[0].path)
    assert item is not None
    assert item.values.get("title") == scene.title
    harness.plex.edit_item(item.rating_key, fields={"title": "Edited in Plex"})
    run = harness.task("reconcile")
    assert run.error is None, run.error
    assert run.output["gaps"]["drift"] >= 1
    assert run.output["enqueued"] >= 1
    assert plex_title(harness, "6") == scene.title
    status = harness.task("status")
    assert status.error is None, status.error
    last = status.output["last_reconcile"]
    assert last is not None
    assert last["scope"] == "full"
    assert last["counts"]["drift"] == run.output["gaps"]["drift"]
    assert f"drift {run.output['gaps']['drift']}" in status.stderr  # counts by gap kind in the log


@pytest.fixture
def hourly(tmp_path: Path) -> Iterator[PluginHarness]:
    yield from make_harness(tmp_path, 20, reconcile_schedule="hourly")


def test_process_queue_runs_the_scheduled_reconciliation(hourly: PluginHarness) -> None:
    harness = hourly
    harness.stash.plugin_task_handler = None
    assert harness.task("status").output["last_reconcile"] is None
    run = harness.task("process")
    assert run.error is None, run.error
    assert run.output["reconcile"]["scope"] == "full"
    assert run.output["reconcile"]["enqueued"] > 0, "nothing was synced yet: every scene drifts"
    assert run.output["outcomes"].get("synced", 0) > 0, "the repairs were drained in the same run"
    status = harness.task("status")
    last = status.output["last_reconcile"]
    assert last is not None
    assert last["trigger"] == "schedule"
    again = harness.task("process")
    assert again.error is None
    assert "reconcile" not in again.output, "not due again within the hour"
    assert harness.task("status").output["last_reconcile"]["started_at"] == last["started_at"]


def test_every_scene_gets_its_desired_title(harness: PluginHarness) -> None:
    harness.task("sync_all")
    from stash2plex_backends.stash import StashApiGateway
    from stash2plex_core.settings import Settings

    settings = Settings()
    gateway = StashApiGateway.from_server_connection(harness.connection(), settings)
    stash_scenes = {str(s.id): s for s in harness.stash.scenes}
    checked = 0
    for sid in list(stash_scenes)[:10]:
        item = harness.plex.item_by_path(stash_scenes[sid].files[0].path)
        if item is None or any(len(parts) > 1 for parts in item.media):
            continue
        gateway_scene = gateway.get_scene(sid)
        assert gateway_scene is not None
        assert item.values.get("title") == desired_state(gateway_scene, settings).metadata.title
        checked += 1
    gateway.close()
    assert checked >= 5
