"""Jobs claimed in batches and read from Stash in one request: nothing lost, nothing stale."""

from __future__ import annotations

from collections import Counter

import attrs
import pytest

from stash2plex_backends.memory import MemoryStateStore
from stash2plex_core.clocks import ManualClock
from stash2plex_core.errors import BackendUnavailableError
from stash2plex_core.models.health import BreakerStatus
from stash2plex_core.models.stash import StashScene
from stash2plex_core.ports.state import Document
from stash2plex_core.services.worker import CONFIRM_STORE_BATCH
from stash2plex_core.services.worker import SYNC_NAMESPACE
from tests.worker.conftest import World


@pytest.fixture
def world() -> World:
    # Six drain threads: jobs are claimed six at a time. Threads that find nothing to do
    # advance the manual clock while others work, so leases are made long enough not to
    # run out meanwhile (the one test about stale leases sets its own).
    return World(plex_concurrency=4, lease_seconds=10.0**7)


def synced(world: World, scene_ids: list[str]) -> bool:
    for scene_id in scene_ids:
        scene = world.stash.get_scene(scene_id)
        assert scene is not None
        if world.item(scene_id).metadata.title != scene.title:
            return False
    return True


def test_a_drain_reads_claimed_scenes_in_batches(world: World) -> None:
    ids = world.scenes(30)
    report = world.worker().drain()
    reads = world.stash.calls.get("get_scenes", 0) + world.stash.calls.get("get_scene", 0)
    assert dict(report.outcomes) == {"synced": 30}
    assert reads <= 10, f"{reads} reads from Stash for 30 jobs"
    assert synced(world, ids)
    assert world.queue.counts() == type(world.queue.counts())()


def test_an_edit_after_the_batch_read_still_reaches_plex(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = world.scenes(12)
    read = world.stash._get_scenes
    edited: list[str] = []

    def read_then_edit(scene_ids: list[str]) -> dict[str, StashScene]:
        found = read(scene_ids)
        if not edited:  # the user saves scene 2 just after its job was read
            scene = found.get("2") or found[scene_ids[-1]]
            world.stash.put_scene(attrs.evolve(scene, title="Edited after the read"))
            world.queue.enqueue(scene.id)  # what the hook does
            edited.append(scene.id)
        return found

    monkeypatch.setattr(world.stash, "_get_scenes", read_then_edit)
    report = world.worker().drain()
    assert report.outcomes["synced"] == 13  # the edited scene's job ran again
    assert world.item(edited[0]).metadata.title == "Edited after the read"
    assert synced(world, ids)


def test_jobs_nobody_started_go_back_unspent(world: World) -> None:
    world.scenes(20)
    report = world.worker().drain(max_jobs=1)
    assert dict(report.outcomes) == {"synced": 1}
    counts = world.queue.counts()
    assert (counts.leased, counts.ready) == (0, 19)
    assert {job.attempts for job in world.queue.pending(limit=100)} == {0}


def test_an_outage_spends_no_attempt_of_a_job_that_never_met_plex(world: World) -> None:
    ids = world.scenes(30)
    worker = world.worker()
    worker.refresh_index()
    world.plex.down(10.0**6)
    report = worker.drain(max_idle=0.5)  # returns once the threads only wait for the next probe
    assert worker.breaker.status is BreakerStatus.OPEN
    assert world.queue.counts().leased == 0
    pending = world.queue.pending(limit=100)
    assert len(pending) == 30
    # Only jobs that really met a failing Plex spent an attempt; the ones waiting in the
    # intake when the breaker opened went back as they were.
    assert sum(job.attempts for job in pending) == report.outcomes.get("retry", 0)
    world.plex.down_until = world.clock.now()
    worker.drain()
    assert world.queue.dead_letters() == []
    assert world.queue.counts().pending == 0
    assert synced(world, ids)


def test_a_failed_batch_read_lets_each_job_read_its_own_scene(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = world.scenes(12)
    read = world.stash._get_scenes
    failures: list[int] = []

    def fails_once(scene_ids: list[str]) -> dict[str, StashScene]:
        if not failures:
            failures.append(len(scene_ids))
            raise BackendUnavailableError("Stash answered 503")
        return read(scene_ids)

    monkeypatch.setattr(world.stash, "_get_scenes", fails_once)
    report = world.worker().drain()
    assert dict(report.outcomes) == {"synced": 12}
    assert world.stash.calls.get("get_scene", 0) >= failures[0] > 1  # the failed batch's jobs asked one by one
    assert synced(world, ids)


def test_a_scene_missing_from_the_batch_is_asked_for_alone(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = world.scenes(6)
    read = world.stash._get_scenes

    def without_scene_3(scene_ids: list[str]) -> dict[str, StashScene]:
        return {k: v for k, v in read(scene_ids).items() if k != "3"}

    monkeypatch.setattr(world.stash, "_get_scenes", without_scene_3)
    report = world.worker().drain()
    assert dict(report.outcomes) == {"synced": 6}, "a scene the batch left out is not taken as deleted"
    assert synced(world, ids)


def test_a_job_whose_lease_ran_half_out_in_the_intake_is_claimed_afresh() -> None:
    world = World(plex_concurrency=4, lease_seconds=60)
    world.scenes(4)
    worker = world.worker()
    worker.refresh_index()
    worker._intake_size = 3  # what a drain with several threads sets
    first = worker.run_once()
    assert first is not None
    assert world.queue.counts().leased == 2  # claimed with it, waiting in the intake
    world.clock.advance(31)
    second = worker.run_once()
    assert second is not None
    assert second.attempt == 1, "the stale lease was given back without spending its attempt"
    worker.flush()
    assert world.queue.counts().leased == 0
    assert {job.attempts for job in world.queue.pending(limit=10)} == {0}


def test_jobs_waiting_in_the_intake_are_back_in_the_queue_while_plex_is_down(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = world.scenes(30)
    worker = world.worker()
    worker.refresh_index()
    worker._intake_size = 6  # what a drain with several threads sets; driven here from one thread
    world.plex.refuse = True
    world.plex.down(120)
    leased_at_probe: list[int] = []
    ping = world.plex.ping

    def watching_ping() -> object:
        leased_at_probe.append(world.queue.counts().leased)
        return ping()

    monkeypatch.setattr(world.plex, "ping", watching_ping)
    world.drive(worker)
    assert leased_at_probe, "the breaker opened and probed"
    assert max(leased_at_probe) == 0, "no job stays leased while the breaker is open"
    assert world.queue.dead_letters() == []
    assert synced(world, ids)


class CountingState(MemoryStateStore):
    """The in-memory store, counting each primitive call by namespace."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.calls: Counter[tuple[str, str]] = Counter()

    def _get(self, namespace: str, key: str) -> Document | None:
        self.calls["get", namespace] += 1
        return super()._get(namespace, key)

    def _get_many(self, namespace: str, keys: list[str]) -> dict[str, Document]:
        self.calls["get_many", namespace] += 1
        found = {key: MemoryStateStore._get(self, namespace, key) for key in keys}  # uncounted
        return {key: document for key, document in found.items() if document is not None}

    def _put_many(self, namespace: str, documents: dict[str, Document]) -> None:
        self.calls["put_many", namespace] += 1
        super()._put_many(namespace, documents)

    def _put_all(self, batch: dict[str, dict[str, Document]]) -> None:
        self.calls["put_all", "+".join(sorted(batch))] += 1
        with self._lock:  # the base class would count each namespace's put_many again
            for namespace, documents in batch.items():
                MemoryStateStore._put_many(self, namespace, documents)


def test_a_drain_reads_records_and_poster_memos_per_batch_and_writes_them_together(world: World) -> None:
    world.state = CountingState(world.clock)
    world.scenes(30)
    report = world.worker().drain()
    calls = world.state.calls
    assert dict(report.outcomes) == {"synced": 30}
    # Jobs are claimed six at a time: a batch's records and memos are two reads, not a job's.
    assert calls["get", "sync"] + calls["get", "posters"] <= 4, dict(calls)
    assert 2 <= calls["get_many", "posters"] <= 10, dict(calls)
    # Each sync writes its record and its new poster memo in one call.
    assert calls["put_all", "posters+sync"] == 30, dict(calls)
    assert calls["put_many", "posters"] == 0, dict(calls)


def test_read_backs_are_stored_in_batches_and_every_one_by_the_end(world: World) -> None:
    world.state = CountingState(world.clock)
    ids = world.scenes(40)  # some 35-39 read-backs ride along: one stored batch, the rest at the end
    world.worker().drain()
    records = world.state.get_many(SYNC_NAMESPACE, ids)
    assert all(records[i]["plex_updated_at"] is not None for i in ids), "an edit was never read back"
    assert world.state.calls["put_many", SYNC_NAMESPACE] <= 40 // CONFIRM_STORE_BATCH + 2, dict(world.state.calls)
    # The next drain of the unchanged scenes reads no item and edits none.
    world.queue.enqueue_many(ids)
    before = dict(world.plex.calls)
    assert dict(world.worker().drain().outcomes) == {"skipped": 40}
    assert world.plex.calls.get("get_items", 0) == before.get("get_items", 0)
    assert world.plex.calls.get("apply", 0) == before.get("apply", 0)
