"""Writes through the breaker guard: one guarded call per request, 5xx retried at once."""

from __future__ import annotations

import threading

import pytest

from stash2plex_core.errors import BackendUnavailableError
from stash2plex_core.errors import TransientError
from stash2plex_core.models.health import BreakerStatus
from stash2plex_core.models.plex import ImageKind
from stash2plex_core.models.plex import ImageUpload
from stash2plex_core.models.plex import PlexEdit
from stash2plex_core.models.plex import PlexItemState
from stash2plex_core.models.stash import StashScene
from stash2plex_core.services.breaker import CircuitBreaker
from stash2plex_core.services.guarded import CircuitOpenError
from stash2plex_core.services.guarded import GuardedPlex
from stash2plex_core.services.outages import OutageLog
from stash2plex_core.services.worker import OutcomeKind
from tests.worker.conftest import World


EDIT = PlexEdit(fields={"title": "New"}, images=(ImageUpload(kind=ImageKind.POSTER, data=b"png bytes"),))


def guarded(world: World, waits: tuple[float, ...] = (0.05, 0.2)) -> tuple[GuardedPlex, CircuitBreaker, list[float]]:
    breaker = CircuitBreaker(world.state, world.clock, world.settings)
    slept: list[float] = []
    guard = GuardedPlex(world.plex, breaker, write_retry_waits=waits, sleep=slept.append)
    return guard, breaker, slept


def test_an_edit_is_one_guarded_call_per_request(world: World) -> None:
    world.scene("1")
    guard, breaker, _ = guarded(world)
    guard.apply(world.keys["1"], EDIT)
    assert world.plex.calls["apply"] == 2  # the PUT, then the upload
    assert breaker.snapshot().window == (False, False)
    item = world.item("1")
    assert item.metadata.title == "New"
    assert ImageKind.POSTER in item.images


def test_a_5xx_write_is_retried_at_once_and_each_try_is_recorded(world: World) -> None:
    world.scene("1")
    guard, breaker, slept = guarded(world)
    world.plex.fail_next = [BackendUnavailableError("Plex answered 503"), BackendUnavailableError("Plex answered 503")]
    guard.apply(world.keys["1"], EDIT)
    assert slept == [0.05, 0.2]
    assert breaker.snapshot().window == (True, True, False, False)
    assert world.item("1").metadata.title == "New"


def test_the_retries_run_out(world: World) -> None:
    world.scene("1")
    guard, _, slept = guarded(world, waits=(0.05,))
    world.plex.fail_next = [BackendUnavailableError("503"), BackendUnavailableError("503")]
    with pytest.raises(BackendUnavailableError):
        guard.apply(world.keys["1"], EDIT)
    assert slept == [0.05]


@pytest.mark.parametrize(
    "error",
    [
        BackendUnavailableError("503 with a pause", retry_after=30),
        TransientError("429", retry_after=2),
        BackendUnavailableError("cannot connect: [Errno 111] Connection refused"),
    ],
    ids=["retry-after", "throttled", "refused"],
)
def test_no_immediate_retry_when_plex_asked_for_a_pause_or_is_gone(world: World, error: Exception) -> None:
    world.scene("1")
    guard, _, slept = guarded(world)
    world.plex.fail_next = [error]  # type: ignore[list-item]
    with pytest.raises(type(error)):
        guard.apply(world.keys["1"], EDIT)
    assert slept == []


def test_no_retry_once_the_breaker_opened(world: World) -> None:
    world.scene("1")
    guard, breaker, slept = guarded(world)
    for _ in range(world.settings.breaker_consecutive_failures):
        breaker.record_failure(BackendUnavailableError("503"))
    assert breaker.status is BreakerStatus.OPEN
    with pytest.raises(CircuitOpenError):
        guard.apply(world.keys["1"], EDIT)
    assert slept == []
    assert "apply" not in world.plex.calls


def test_a_worker_rides_out_a_failed_write_within_the_job(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world.scenes(1)
    worker = world.worker()
    failures = [BackendUnavailableError("Plex answered 503 to the PUT")]
    apply = world.plex._apply

    def flaky_apply(rating_key: str, edit: PlexEdit) -> None:
        if failures:
            raise failures.pop()
        apply(rating_key, edit)

    monkeypatch.setattr(world.plex, "_apply", flaky_apply)
    outcomes = world.drive(worker)
    assert [o.kind for _, o in outcomes] == [OutcomeKind.SYNCED]  # not a RETRY: the read was kept
    assert world.plex.calls["get_items"] == 2  # the one detail read, and the read-back of the edit
    assert OutageLog(world.state).history() == ()


def test_the_guard_lets_at_most_its_limit_of_calls_reach_plex(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world.scenes(1)
    guard, _, _ = guarded(world)
    guard.limit(2)
    active = 0
    peak = 0
    changed = threading.Condition()
    release = threading.Event()
    get_items = world.plex._get_items

    def held_get_items(keys: list[str]) -> list[PlexItemState]:
        nonlocal active, peak
        with changed:
            active += 1
            peak = max(peak, active)
            changed.notify_all()
        release.wait(5)  # every call stays inside until the test lets them go
        with changed:
            active -= 1
        return get_items(keys)

    monkeypatch.setattr(world.plex, "_get_items", held_get_items)
    threads = [threading.Thread(target=guard.get_items, args=([world.keys["1"]],)) for _ in range(6)]
    for thread in threads:
        thread.start()
    with changed:
        assert changed.wait_for(lambda: active == 2, timeout=5)
        # A third call would arrive at once without the limit; give it a bounded chance to.
        assert not changed.wait_for(lambda: active > 2, timeout=0.2)
    release.set()
    for thread in threads:
        thread.join(5)
    assert peak == 2
    assert active == 0
    guard.limit(None)


def test_a_drain_works_more_jobs_than_it_sends_requests(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world.scenes(24)
    seen: set[str] = set()
    active = 0
    peak = 0
    lock = threading.Lock()
    # The first three scene reads meet here: they can only all arrive if three jobs are
    # in flight at once (two Plex slots plus one), in three different threads. Each thread
    # claims a batch and reads its scenes in one request; the intake stays empty until a
    # read returns, so the three reads come from three threads.
    meeting = threading.Barrier(3, timeout=5)
    reads = 0
    get_scenes = world.stash._get_scenes

    def meeting_get_scenes(scene_ids: list[str]) -> dict[str, StashScene]:
        nonlocal reads
        with lock:
            seen.add(threading.current_thread().name)
            reads += 1
            meet = reads <= 3
        if meet:
            meeting.wait()
        return get_scenes(scene_ids)

    both_in = threading.Condition()
    get_items = world.plex._get_items
    calls = 0

    def overlapping_get_items(keys: list[str]) -> list[PlexItemState]:
        nonlocal active, peak, calls
        with both_in:
            active += 1
            calls += 1
            peak = max(peak, active)
            both_in.notify_all()
            if calls <= 2:  # the first two reads wait for each other: both slots busy at once
                both_in.wait_for(lambda: peak >= 2, timeout=5)
        with both_in:
            active -= 1
        return get_items(keys)

    monkeypatch.setattr(world.stash, "_get_scenes", meeting_get_scenes)
    monkeypatch.setattr(world.plex, "_get_items", overlapping_get_items)
    report = world.worker().drain(concurrency=2)
    assert dict(report.outcomes) == {"synced": 24}
    assert not meeting.broken
    assert peak == 2  # Plex sees at most the concurrency, and it was reached
    assert len(seen) == 3  # two Plex slots, one more job in flight
