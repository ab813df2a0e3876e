"""The plugin end to end: subprocess hooks and tasks against both simulators."""

from __future__ import annotations

import itertools
import json
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from stash2plex_backends.sqlite import hookpath
from stash2plex_core.services.mapping import desired_state
from tests.plugin.conftest import TOKEN
from tests.plugin.conftest import PluginHarness
from tests.plugin.conftest import plugin_env
from tests.plugin.conftest import run_plugin


def pending(harness: PluginHarness) -> int:
    with sqlite3.connect(harness.db) as conn:
        return int(conn.execute("SELECT count(*) FROM jobs").fetchone()[0])


def plex_title(harness: PluginHarness, scene_id: str) -> str | None:
    scene = harness.stash.scene(scene_id)
    item = harness.plex.item_by_path(scene.files[0].path)
    assert item is not None
    return item.values.get("title")  # type: ignore[no-any-return]


def test_hook_imports_only_the_standard_library(harness: PluginHarness) -> None:
    payload = json.dumps(
        {"server_connection": harness.connection(Port=1), "args": {"hookContext": {"id": 3, "type": "Scene.Update.Post", "input": None}}}
    )
    code = (
        "import io, json, sys\n"
        "before = set(sys.modules)\n"
        "from stash2plex_integrations.stash_plugin.entry import main\n"
        f"main(stdin=io.StringIO({payload!r}), stdout=io.StringIO(), stderr=io.StringIO())\n"
        "heavy = ('plexapi', 'stashapi', 'requests', 'urllib3', 'tenacity', 'persistqueue', 'asyncio', 'attrs',"
        " 'cattrs', 'pluggy', 'stash2plex_core', 'logging', 'urllib', 'http', 'email', 'ssl')\n"
        "print(json.dumps(sorted(m for m in set(sys.modules) - before if m.split('.')[0] in heavy)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=plugin_env(), check=True)
    assert json.loads(done.stdout) == []
    assert hookpath.lease_holder(str(harness.db)) is None, "a failed drain start must release its reservation"
    assert pending(harness) == 1


def test_update_hook_queues_and_starts_one_drain(harness: PluginHarness) -> None:
    harness.stash.update_scene("5", title="Brand New Title")
    run = harness.hook(5)
    assert run.error is None
    assert "queued scene 5" in run.output
    harness.wait_for_tasks()
    assert [r.task_name for r in harness.stash.plugin_task_runs] == ["Process queue"]
    assert plex_title(harness, "5") == "Brand New Title"
    assert pending(harness) == 0


def test_scan_create_with_null_input_is_queued(harness: PluginHarness) -> None:
    harness.stash.plugin_task_handler = None  # keep the job queued to look at it
    run = harness.hook(7, "Scene.Create.Post", input=None)
    assert run.error is None
    assert pending(harness) == 1


def test_destroy_drops_pending_work(harness: PluginHarness) -> None:
    harness.stash.plugin_task_handler = None
    harness.hook(8)
    assert pending(harness) == 1
    run = harness.hook(8, "Scene.Destroy.Post", input={"id": "8", "path": "/x.mp4"})
    assert run.error is None
    assert pending(harness) == 0


def test_hook_burst_one_drain_at_a_time_and_newest_metadata_wins(big_harness: PluginHarness) -> None:
    harness = big_harness
    scene_ids = [s.id for s in harness.stash.scenes][:200]
    events = [(sid, round_) for round_ in range(5) for sid in scene_ids]  # 1,000 update events

    def fire(event: tuple[str, int]) -> None:
        sid, round_ = event
        if round_ == 4 and int(sid) % 2 == 0:
            harness.stash.update_scene(sid, title=f"Final title {sid}")
        run = harness.hook(int(sid))
        assert run.error is None, run.error

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(fire, events))
    harness.wait_for_tasks(timeout=180)
    if pending(harness):  # a save that landed just as the last drain let go: Stash would run one more
        harness.task("process")
    assert pending(harness) == 0
    windows = sorted(
        tuple(w) for _, _, run in harness.task_runs if isinstance(run.output, dict) for w in run.output.get("windows", [])
    )
    assert windows, "no task drained the queue"
    for (_, end), (start, _) in itertools.pairwise(windows):
        assert start >= end, f"two drains overlapped: one ended at {end}, another started at {start}"
    checked = 0
    for sid in scene_ids:
        scene = harness.stash.scene(sid)
        item = harness.plex.item_by_path(scene.files[0].path)
        assert item is not None
        if any(len(parts) > 1 for parts in item.media):
            continue  # a stacked two-part film: the scene of its first part describes the item
        checked += 1
        if int(sid) % 2 == 0:
            assert plex_title(harness, sid) == f"Final title {sid}"
        else:
            assert plex_title(harness, sid) == scene.title or scene.title is None
    assert checked > 150


def test_sync_all_status_and_health_tasks(harness: PluginHarness) -> None:
    run = harness.task("sync_all")
    assert run.error is None, run.error
    assert "\x01p\x02" in run.stderr  # progress reached Stash
    assert sum(run.output["outcomes"].values()) >= 40
    status = harness.task("status")
    assert status.error is None
    assert status.output["queue"]["ready"] == 0
    health = harness.task("health")
    assert health.error is None
    assert health.output["plex"]["ok"]
    assert health.output["stash"]["ok"]


def test_malformed_stdin_is_one_clear_error() -> None:
    run = run_plugin("{not json")
    assert run.output is None
    assert "stdin is not JSON" in run.error
    assert "\x01e\x02" in run.stderr
    assert "Traceback" not in run.stderr


def test_missing_plex_settings_say_what_to_set_and_keep_jobs(harness: PluginHarness) -> None:
    harness.stash.plugin_task_handler = None
    harness.hook(4)
    harness.stash.set_plugin_settings("stash2plex", {})
    run = harness.task("process")
    assert run.error is not None
    assert "plex_url" in run.error
    assert pending(harness) == 1


def test_wrong_plex_token_stops_without_burning_jobs(harness: PluginHarness) -> None:
    harness.stash.plugin_task_handler = None
    harness.hook(4)
    harness.stash.set_plugin_settings("stash2plex", {"plex_url": harness.plex.url, "plex_token": "wrong"})
    run = harness.task("process")
    assert run.error is not None
    assert "plex_token" in run.error
    assert TOKEN not in run.stderr
    assert "wrong" not in run.error
    assert pending(harness) == 1
    with sqlite3.connect(harness.db) as conn:
        assert conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0] == 0


def test_unreachable_stash_is_one_clear_error_and_hooks_still_queue(harness: PluginHarness) -> None:
    dead = harness.connection(Port=1)
    hook = run_plugin({"server_connection": dead, "args": {"hookContext": {"id": 2, "type": "Scene.Update.Post"}}})
    assert hook.error is None  # the save must not fail because a drain could not start
    assert "drain not started" in hook.output
    task = run_plugin({"server_connection": dead, "args": {"task": "process"}})
    assert task.error is not None
    assert "BackendUnavailableError" in task.error or "Transient" in task.error
    assert pending(harness) == 1


@pytest.mark.parametrize("task", ["outages", "dlq_list", "dlq_retry", "dlq_retry_outage", "dlq_purge", "clear_queue"])
def test_admin_tasks_run(harness: PluginHarness, task: str) -> None:
    run = harness.task(task)
    assert run.error is None, run.error
    time.sleep(0)
    assert run.output is not None


def test_retry_by_class_needs_the_class(harness: PluginHarness) -> None:
    run = harness.task("dlq_retry_class")
    assert run.error is not None
    assert "error class" in run.error


def test_every_scene_gets_its_desired_title(harness: PluginHarness) -> None:
    harness.task("sync_all")
    from stash2plex_core.settings import Settings

    settings = Settings()
    stash_scenes = {str(s.id): s for s in harness.stash.scenes}
    checked = 0
    for sid in list(stash_scenes)[:10]:
        gateway_scene = None
        item = harness.plex.item_by_path(stash_scenes[sid].files[0].path)
        if item is None or any(len(parts) > 1 for parts in item.media):
            continue
        from stash2plex_backends.stash import StashApiGateway

        gateway_scene = StashApiGateway.from_server_connection(harness.connection(), settings).get_scene(sid)
        assert gateway_scene is not None
        assert item.values.get("title") == desired_state(gateway_scene, settings).metadata.title
        checked += 1
    assert checked >= 5
