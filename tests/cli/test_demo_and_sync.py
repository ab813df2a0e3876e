"""``stash2plex demo`` and ``stash2plex sync`` (all, recent, one scene) as a user runs them."""

from __future__ import annotations

import json
import signal

from stash2plex_backends.sqlite import hookpath
from stash2plex_integrations.cli.exitcodes import EXIT_BUSY
from stash2plex_integrations.cli.exitcodes import EXIT_INTERRUPTED
from tests.cli.conftest import SCENES
from tests.cli.conftest import World
from tests.cli.conftest import run_cli


def test_demo_prints_a_summary_and_one_scene_before_and_after() -> None:
    done = run_cli("demo", "--scenes", "12", "--seed", "3")
    assert done.returncode == 0, done.stderr
    assert "Synced 12 scenes in" in done.stdout
    assert "Second pass with nothing changed:" in done.stdout
    assert "before and after:" in done.stdout
    assert "syncing [" in done.stderr  # the progress bar


def test_demo_json_summary() -> None:
    done = run_cli("demo", "--scenes", "12", "--seed", "3", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["scenes"] == 12
    assert sum(summary["outcomes"].values()) == 12
    assert summary["outcomes"]["synced"] >= 10
    assert "synced" not in summary["resync_outcomes"]  # the second pass edits nothing
    assert summary["before"]["title"] != summary["after"]["title"] or summary["after"]["studio"]


def plex_title(world: World, scene_id: str) -> str:
    snapshot = world.plex.item_by_path(world.stash.scene(scene_id).files[0].path)
    assert snapshot is not None
    return snapshot.title


def test_sync_all_then_recent_then_one_scene(world: World) -> None:
    first = world.cli_json("sync")
    assert first["queued"] == SCENES
    assert sum(first["outcomes"].values()) == SCENES
    assert first["outcomes"]["synced"] >= SCENES - 5
    assert first["stop_reason"] is None
    scene = next(s for s in world.stash.scenes if s.title and world.plex.item_by_path(s.files[0].path))
    assert plex_title(world, str(scene.id)) == scene.title
    assert world.counts().pending == 0

    world.stash.update_scene(scene.id, title="Retitled in Stash")
    world.stash.touch_scene(world.stash.scenes[-1].id)
    recent = world.cli_json("sync", "--since-days", "1")
    assert recent["queued"] == 2  # only the two scenes Stash updated today
    assert plex_title(world, str(scene.id)) == "Retitled in Stash"

    one = world.cli("sync", "--scene", str(scene.id))
    assert one.returncode == 0, one.stderr
    assert "queued 1 scene(s)" in one.stderr
    assert "1 job attempt(s)" in one.stdout
    assert "outcome" in one.stdout  # the outcome table


def test_sync_while_another_process_drains_leaves_the_work_to_it(world: World) -> None:
    world.data_dir.mkdir()
    assert hookpath.take_drain(world.db, "task:4242", 60)  # the Stash plugin's Process queue task
    done = world.cli("sync", "--scene", "1")
    assert done.returncode == EXIT_BUSY
    assert "drain lease held by task:4242" in done.stderr
    assert "--wait" in done.stderr
    assert world.counts().ready == 1  # queued for the holder, not lost
    assert hookpath.lease_holder(world.db) == "task:4242"  # not taken away

    waiting = world.start("sync", "--scene", "2", "--wait")
    waiting.wait_for_stderr("waiting for the drain lease (held by task:4242)")
    assert waiting.stop(signal.SIGTERM) == EXIT_INTERRUPTED
    assert world.counts().ready == 2
    hookpath.release_lease(world.db, "task:4242")
    drained = world.cli_json("sync", "--scene", "3", "--wait")
    assert sum(drained["outcomes"].values()) == 3  # its own scene and the two left queued
    assert hookpath.lease_holder(world.db) is None
