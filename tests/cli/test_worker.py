"""``stash2plex worker``: drains under the Stash plugin's drain lease, stops cleanly on
SIGTERM/SIGINT after the job in hand, and runs the scheduled reconciliation itself."""

from __future__ import annotations

import json
import signal

from stash2plex_backends.simulators.faults import Fault
from stash2plex_backends.sqlite import hookpath
from stash2plex_integrations.cli.exitcodes import EXIT_BUSY
from tests.cli.conftest import World
from tests.cli.conftest import wait_until


def last_reconcile(world: World) -> object:
    done = world.cli("reconcile", "--last", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_worker_holds_the_lease_drains_reconciles_when_due_and_stops_on_sigterm(world: World) -> None:
    worker = world.start("worker", "--json")  # reconcile_schedule defaults to daily: due at first start
    worker.wait_for_stderr("holding the drain lease as worker:")
    holder = hookpath.lease_holder(world.db)
    assert holder is not None
    assert holder.startswith("worker:")
    for scene_id in ("1", "2", "3", "1", "2"):  # what the plugin's hook does on each save
        hookpath.enqueue(world.db, scene_id, reason="Scene.Update.Post")
    assert not hookpath.reserve_drain(world.db, "hook:999", 120)  # so a hook starts no second drain
    wait_until(lambda: world.counts().pending == 0, what="the worker to drain the queue")

    assert worker.stop(signal.SIGTERM) == 0, worker.stderr
    report = json.loads(worker.stdout)
    assert report["reason"] == "stop_requested"
    assert report["reconciliations"] == 1
    assert report["jobs"] >= 3
    assert "Traceback" not in worker.stderr
    assert hookpath.lease_holder(world.db) is None  # released on exit

    stored = last_reconcile(world)
    assert isinstance(stored, dict)
    assert stored["trigger"] == "schedule"
    assert stored["scope"] == "full"


def test_sigint_stops_after_the_job_in_hand_and_loses_nothing(world: World) -> None:
    world.write_config(plex_concurrency=1)
    world.plex.faults.add(Fault(method="PUT", action="delay", delay=0.3))  # every edit takes a while
    ids = [str(s.id) for s in world.stash.scenes[:20]]
    for scene_id in ids:
        hookpath.enqueue(world.db, scene_id)
    worker = world.start("worker", "--json", "--reconcile-check-seconds", "0")
    wait_until(lambda: world.counts().pending < len(ids), what="the first job to finish")

    assert worker.stop(signal.SIGINT) == 0, worker.stderr
    report = json.loads(worker.stdout)
    counts = world.counts()
    assert counts.leased == 0  # the job in hand was finished, not abandoned
    assert counts.ready > 0  # it stopped early instead of draining everything
    assert report["jobs"] + counts.ready == len(ids)
    assert report["reconciliations"] == 0
    assert "signal 2: stopping after the jobs in hand" in worker.stderr


def test_worker_waits_for_the_drain_lease_another_process_holds(world: World) -> None:
    assert hookpath.take_drain(world.db, "task:4242", 60)  # a Stash plugin task is draining
    for scene_id in ("4", "5", "6"):
        hookpath.enqueue(world.db, scene_id)
    worker = world.start("worker", "--json", "--reconcile-check-seconds", "0")
    worker.wait_for_stderr("waiting for the drain lease (held by task:4242)")
    assert world.counts().ready == 3  # not touched while the task holds the lease

    hookpath.release_lease(world.db, "task:4242")
    wait_until(
        lambda: (c := world.counts()).pending == 0 and c.leased == 0, what="the worker to take the lease and drain"
    )
    assert worker.stop(signal.SIGTERM) == 0, worker.stderr
    assert json.loads(worker.stdout)["jobs"] == 3


def test_worker_once_is_busy_while_held_and_takes_over_a_hook_reservation(world: World) -> None:
    assert hookpath.take_drain(world.db, "task:1", 60)
    hookpath.enqueue(world.db, "7")
    busy = world.cli("worker", "--once")
    assert busy.returncode == EXIT_BUSY
    assert "held by task:1" in busy.stderr
    assert world.counts().ready == 1
    hookpath.release_lease(world.db, "task:1")

    # A hook reserved the lease and asked Stash for a task; a worker takes the reservation over.
    assert hookpath.reserve_drain(world.db, "hook:77", 120)
    once = world.cli("worker", "--once", "--json", "--set", "reconcile_schedule=none")
    assert once.returncode == 0, once.stderr
    report = json.loads(once.stdout)
    assert report["reason"] == "empty"
    assert report["jobs"] == 1
    assert report["reconciliations"] == 0  # nothing scheduled
    assert world.counts().pending == 0
    assert hookpath.lease_holder(world.db) is None
    assert last_reconcile(world) is None
