"""``status``, ``health``, ``dlq list|retry|purge``, ``clear-queue`` and ``reconcile`` with settings flags."""

from __future__ import annotations

import datetime as dt
import json

from stash2plex_backends.sqlite import hookpath
from stash2plex_backends.sqlite.queue import SQLiteQueue
from stash2plex_core.clocks import ManualClock
from stash2plex_core.errors import PermanentError
from tests.cli.conftest import World


def bury(world: World, scene_ids: list[str], *, days_ago: float = 0.0) -> None:
    """Dead-letter jobs for ``scene_ids`` as a worker would, ``days_ago`` days ago (real SQLite)."""
    when = dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago)
    queue = SQLiteQueue(world.db, ManualClock(when))
    try:
        for scene_id in scene_ids:
            queue.enqueue(scene_id)
            job = queue.claim("test", 60)
            assert job is not None
            queue.dead_letter(job, PermanentError(f"scene {scene_id}: Plex refused the edit"))
    finally:
        queue.close()


def test_status_table_and_json(world: World) -> None:
    for scene_id in ("1", "2"):
        hookpath.enqueue(world.db, scene_id)
    assert hookpath.take_drain(world.db, "task:31", 60)
    table = world.cli("status")
    assert table.returncode == 0, table.stderr
    assert "2 ready, 0 waiting, 0 in progress, 0 dead" in table.stdout
    assert "held by task:31" in table.stdout
    assert "breaker" in table.stdout

    data = world.cli_json("status")
    assert data["queue"]["ready"] == 2
    assert data["breaker"]["status"] == "closed"
    assert data["drain_lease_holder"] == "task:31"
    assert data["last_reconcile"] is None


def test_health_table_and_json(world: World) -> None:
    table = world.cli("health")
    assert table.returncode == 0, table.stderr
    assert table.stdout.count(" ok ") == 2
    checks = world.cli_json("health")
    assert [c["service"] for c in checks] == ["plex", "stash"]
    assert all(c["ok"] and c["latency_ms"] is not None for c in checks)


def test_dead_letters_list_retry_purge(world: World) -> None:
    bury(world, ["1", "2"], days_ago=40)
    bury(world, ["3"])

    listing = world.cli("dlq", "list")
    assert listing.returncode == 0, listing.stderr
    assert "PermanentError" in listing.stdout
    letters = world.cli_json("dlq", "list")
    assert [d["scene_id"] for d in letters] == ["3", "2", "1"]  # most recent failure first

    assert world.cli_json("dlq", "retry", "--scene", "3") == {"requeued": 1}
    assert world.counts().ready == 1
    assert world.counts().dead == 2
    assert world.cli_json("dlq", "purge", "--older-than-days", "30") == {"purged": 2}
    assert world.counts().dead == 0

    bury(world, ["4"])
    retry = world.cli("dlq", "retry", "--error-class", "PermanentError")
    assert retry.returncode == 0, retry.stderr
    assert retry.stdout.strip() == "queued 1 dead letter(s) again"


def test_clear_queue(world: World) -> None:
    for scene_id in ("1", "2", "3"):
        hookpath.enqueue(world.db, scene_id)
    assert world.cli_json("clear-queue") == {"dropped": 3}
    assert world.counts().pending == 0
    again = world.cli("clear-queue")
    assert again.returncode == 0
    assert again.stdout.strip() == "dropped 0 pending job(s)"


def test_reconcile_takes_the_settings_options(world: World) -> None:
    done = world.cli("reconcile", "--dry-run", "--json", "--set", "reconcile_examples=1")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["dry_run"] is True
    assert report["counts"]["drift"] > 0  # nothing synced yet: every item drifts
    assert world.counts().pending == 0  # a dry run queues nothing
