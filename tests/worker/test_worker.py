"""The sync worker on the in-memory backends with a manual clock (no real sleeps)."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import logging
import threading
from collections.abc import Callable

import pytest

from stash2plex_core.errors import AuthenticationError
from stash2plex_core.errors import BackendUnavailableError
from stash2plex_core.errors import PermanentError
from stash2plex_core.errors import TransientError
from stash2plex_core.models.health import BreakerStatus
from stash2plex_core.models.matching import Confidence
from stash2plex_core.models.plex import ImageKind
from stash2plex_core.models.plex import PlexEdit
from stash2plex_core.serde import from_document
from stash2plex_core.services.outages import OutageLog
from stash2plex_core.services.worker import SUCCESS_KINDS
from stash2plex_core.services.worker import JobOutcome
from stash2plex_core.services.worker import OutcomeKind
from stash2plex_core.services.worker import ReviewEntry
from stash2plex_core.services.worker import SyncWorker
from tests.worker.conftest import World


def kinds(outcomes: list) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _, outcome in outcomes:
        counts[outcome.kind.value] = counts.get(outcome.kind.value, 0) + 1
    return counts


def assert_synced(world: World, scene_ids: list[str]) -> None:
    for scene_id in scene_ids:
        scene = world.stash.get_scene(scene_id)
        assert scene is not None
        item = world.item(scene_id)
        assert item.metadata.title == scene.title
        assert set(item.metadata.genres) == {t.name for t in scene.tags}
        assert "title" in item.locked_fields
        poster = world.stash.images[scene.screenshot_url or ""]
        assert item.images[ImageKind.POSTER].sha1 == hashlib.sha1(poster).hexdigest()


def test_full_drain(world: World) -> None:
    ids = world.scenes(30)
    worker = world.worker()
    report = worker.drain()
    assert report.reason == "empty"
    assert dict(report.outcomes) == {"synced": 30}
    assert world.queue.counts().pending == 0
    assert world.queue.dead_letters() == []
    assert_synced(world, ids)
    assert world.plex.calls["apply"] == 60  # the PUT and the poster upload: one guarded call each
    # One detail read per scene, each also reading back the previous edit's updatedAt, and
    # one read-back of the last edit.
    assert world.plex.calls["get_items"] == 31
    assert world.plex.calls.get("resolve_path", 0) == 0  # the path index answered
    totals = worker.stats.totals()
    assert (totals.processed, totals.succeeded, totals.applied, totals.failed) == (30, 30, 30, 0)
    assert dict(totals.confidence) == {"high": 30}
    assert totals.timings["job"].count == 30
    records = dict(world.state.items("sync"))
    assert set(records) == set(ids)
    assert all(r["plex_updated_at"] is not None for r in records.values())


def test_unchanged_redrain_sends_nothing_and_reads_no_details(world: World) -> None:
    ids = world.scenes(20)
    world.worker().drain()
    world.plex.calls.clear()
    world.stash.calls.clear()
    world.queue.enqueue_many(ids, reason="sync-all")
    report = world.worker().drain()  # a fresh process: state comes from the store
    assert dict(report.outcomes) == {"skipped": 20}
    assert world.plex.calls.get("apply", 0) == 0
    assert world.plex.calls.get("get_items", 0) == 0
    assert world.plex.calls.get("resolve_path", 0) == 0
    assert world.plex.calls == {"iter_items": 1}  # one incremental index refresh
    assert world.stash.calls.get("fetch_image", 0) == 0


def test_a_changed_scene_costs_one_read_and_one_edit_and_the_next_redrain_skips(world: World) -> None:
    ids = world.scenes(40)
    world.worker().drain()
    for scene_id in ids:
        world.scene(scene_id, title=f"Renamed {scene_id}")  # same poster
    world.queue.enqueue_many(ids)
    world.plex.calls.clear()
    report = world.worker().drain()
    assert dict(report.outcomes) == {"synced": 40}
    assert world.plex.calls["apply"] == 40
    assert world.plex.calls["get_items"] == 41  # 40 reads carrying the read-backs, plus the last one
    assert "iter_items" not in world.plex.calls  # no listing: nothing could be skipped
    assert world.item("7").metadata.title == "Renamed 7"
    world.plex.calls.clear()
    world.queue.enqueue_many(ids)
    assert dict(world.worker().drain().outcomes) == {"skipped": 40}
    assert world.plex.calls == {"iter_items": 1}


def test_a_new_file_found_by_the_lazy_index_refresh_costs_no_lookup(world: World) -> None:
    world.scenes(3)
    world.worker().drain()
    world.scene("9")  # Plex scanned it after the index was built
    world.queue.enqueue("9")
    world.plex.calls.clear()
    report = world.worker().drain()
    assert dict(report.outcomes) == {"synced": 1}
    assert world.plex.calls.get("iter_items") == 1
    assert "resolve_path" not in world.plex.calls


def test_redrain_without_the_index_still_sends_nothing(world: World) -> None:
    ids = world.scenes(5)
    world.worker(use_index=False).drain()
    world.plex.calls.clear()
    world.queue.enqueue_many(ids)
    report = world.worker(use_index=False).drain()
    assert dict(report.outcomes) == {"skipped": 5}
    assert world.plex.calls.get("apply", 0) == 0
    assert world.plex.calls.get("get_items", 0) == 0


def test_an_edit_in_plex_is_repaired_on_the_next_sync(world: World) -> None:
    ids = world.scenes(1)
    world.worker().drain()
    key = world.keys["1"]
    world.plex.apply(key, PlexEdit(fields={"title": "Renamed in Plex"}))
    world.queue.enqueue_many(ids)
    report = world.worker().drain()
    assert dict(report.outcomes) == {"synced": 1}
    assert world.item("1").metadata.title == "Scene 1"


def test_plex_outage_mid_drain(world: World) -> None:
    ids = world.scenes(40)
    worker = world.worker()
    assert worker.drain(max_jobs=10).reason == "max_jobs"
    outage_start = world.clock.now()
    world.plex.down(120)
    report = worker.drain()
    assert report.reason == "empty"
    assert world.queue.counts().pending == 0
    assert world.queue.dead_letters() == []
    assert_synced(world, ids)
    assert worker.breaker.status is BreakerStatus.CLOSED
    history = OutageLog(world.state).history()
    assert len(history) == 1
    outage = history[0]
    assert outage.started_at == outage_start
    assert outage.ended_at is not None
    assert dt.timedelta(seconds=120) <= outage.duration <= dt.timedelta(seconds=120 + 60)  # type: ignore[operator]
    assert outage.jobs_affected == 30
    assert world.plex.failed_while_down <= 30  # 20 to trip (1 index refresh + 19 jobs) + a few probes
    assert "consecutive failures" in (outage.cause or "")
    totals = worker.stats.totals()
    assert totals.waited >= 1
    assert totals.dead_lettered == 0


def test_refused_connections_trip_after_five(world: World) -> None:
    world.scenes(20)
    worker = world.worker()
    world.plex.refuse = True
    world.plex.down(30)
    worker.drain()
    outage = OutageLog(world.state).history()[0]
    assert "refused 5 times" in (outage.cause or "")
    assert world.queue.dead_letters() == []
    assert world.queue.counts().pending == 0


Seen = list[tuple[dt.datetime, JobOutcome]]


def run(world: World, worker: SyncWorker, seen: Seen, until: Callable[[], bool], limit: int = 100_000) -> None:
    """Like ``World.drive``, but stops as soon as ``until()`` holds."""
    for _ in range(limit):
        if until():
            return
        outcome = worker.run_once()
        if outcome is not None:
            seen.append((world.clock.now(), outcome))
            continue
        wait = worker._idle_wait(600.0)
        if wait is None:
            return
        world.clock.advance(max(wait, 0.001))
    raise AssertionError("never got there")


def in_window(seen: Seen, start: dt.datetime, seconds: float, kinds: frozenset[OutcomeKind] = SUCCESS_KINDS) -> int:
    end = start + dt.timedelta(seconds=seconds)
    return sum(1 for t, o in seen if start <= t < end and o.kind in kinds)


def outage_then_recovery(world: World) -> tuple[SyncWorker, Seen, float, dt.datetime]:
    """Drain at a measurable rate (10 ms per Plex request), take Plex away, bring it back.

    Returns the worker, the outcomes, the measured pre-outage rate and the moment Plex
    became reachable again, which is when the probe schedule (5 s, then 10 s more) next
    looks: the second probe after the breaker opened.
    """
    world.plex.latency = 0.01
    world.scenes(450)
    worker = world.worker()
    worker.refresh_index()
    seen: Seen = []
    run(world, worker, seen, until=lambda: len(seen) >= 150)
    pre_rate = (len(seen) - 1) / (seen[-1][0] - seen[0][0]).total_seconds()
    world.plex.down(10_000)
    run(world, worker, seen, until=lambda: worker.breaker.status is BreakerStatus.OPEN)
    first_probe = worker.breaker.snapshot().next_probe_at
    assert first_probe is not None
    reachable = first_probe + dt.timedelta(seconds=10)
    world.plex.down_until = reachable
    return worker, seen, pre_rate, reachable


def test_graduated_drain_starts_within_a_second_of_recovery_at_ten_percent_of_the_measured_rate() -> None:
    world = World(ramp_window_seconds=10.0, ramp_full_rate=1.0)
    worker, seen, pre_rate, reachable = outage_then_recovery(world)
    assert 25 <= pre_rate <= 40  # three 10 ms requests per first sync
    run(world, worker, seen, until=lambda: False)
    assert world.queue.counts().pending == 0
    assert world.queue.dead_letters() == []
    assert dt.timedelta(0) <= worker.breaker.recovered_at - reachable <= dt.timedelta(seconds=0.05)  # type: ignore[operator]
    assert worker.ramp.measured_rate() is not None  # measuring again after the ramp
    # The full rate the ramp climbed to is the one measured before the outage, not 1 job/s.
    assert OutageLog(world.state).history()[0].ended_at == worker.breaker.recovered_at
    assert world.state.get("health", "ramp-baseline")["jobs_per_second"] == pytest.approx(  # type: ignore[index]
        pre_rate, rel=0.05
    )
    after = sorted(t for t, o in seen if o.kind in SUCCESS_KINDS and t >= reachable)
    # Measured from the moment Plex is reachable again: draining within a second...
    assert after[0] - reachable <= dt.timedelta(seconds=0.1)
    first_second = in_window(seen, reachable, 1.0)
    # ...at no less than 10 % of the full rate, and graduated: far from all of it.
    assert 0.1 * pre_rate <= first_second <= 0.25 * pre_rate
    # Half-way through the 10 s window about half the rate; after it, the full rate.
    half_way = in_window(seen, reachable + dt.timedelta(seconds=4.5), 1.0)
    assert 0.3 * pre_rate <= half_way <= 0.7 * pre_rate
    assert in_window(seen, reachable + dt.timedelta(seconds=11), 1.0) >= 0.85 * pre_rate
    assert not worker.ramp.active


def test_the_breaker_closes_on_trial_jobs_not_two_idle_probes_later() -> None:
    world = World(ramp_window_seconds=10.0, ramp_full_rate=1.0)
    worker, seen, _, reachable = outage_then_recovery(world)
    closed_at: list[dt.datetime] = []

    def closed() -> bool:
        if worker.breaker.status is BreakerStatus.CLOSED:
            closed_at.append(world.clock.now())
            return True
        return False

    run(world, worker, seen, until=closed)
    assert closed_at[0] - reachable <= dt.timedelta(seconds=0.5)  # a probe and two trials
    trials = [o for t, o in seen if reachable <= t <= closed_at[0]]
    assert [o.kind for o in trials] == [OutcomeKind.SYNCED, OutcomeKind.SYNCED]
    assert world.plex.calls["ping"] == 1  # only the probe that found Plex: the trials closed it


def test_recovery_that_falls_between_probes_drains_within_a_second_of_the_next_probe() -> None:
    """Plex cannot be seen back before a probe looks: the lag is the probe schedule's (<= 60 s)."""
    world = World(ramp_window_seconds=10.0, ramp_full_rate=1.0)
    worker, seen, pre_rate, reachable = outage_then_recovery(world)
    world.plex.down_until = reachable - dt.timedelta(seconds=7)  # back 3 s after the first probe failed
    run(world, worker, seen, until=lambda: False)
    assert dt.timedelta(0) <= worker.breaker.recovered_at - reachable <= dt.timedelta(seconds=0.05)  # type: ignore[operator]
    assert in_window(seen, world.plex.down_until, 7.0) == 0
    assert in_window(seen, reachable, 1.0) >= 0.1 * pre_rate


def test_the_ramp_halves_when_errors_pass_thirty_percent() -> None:
    world = World(ramp_window_seconds=10.0, ramp_full_rate=1.0)
    worker, seen, pre_rate, reachable = outage_then_recovery(world)
    run(world, worker, seen, until=lambda: world.clock.now() >= reachable)
    world.plex.error_rate = 0.45
    multipliers: list[float] = []

    def sample() -> bool:
        multipliers.append(worker.ramp.multiplier)
        return world.clock.now() >= reachable + dt.timedelta(seconds=6)

    run(world, worker, seen, until=sample)
    assert len(OutageLog(world.state).history()) == 1  # random errors did not trip it again
    assert min(multipliers) <= 0.5
    # Attempts in seconds 2-5 of the ramp: the error-free schedule allows about
    # pre_rate x (the mean fraction 0.35) x 3 s; halving allows about half of that.
    attempts = in_window(seen, reachable + dt.timedelta(seconds=2), 3.0, frozenset(OutcomeKind))
    assert attempts <= 0.75 * pre_rate * 0.35 * 3
    world.plex.error_rate = 0.0
    run(world, worker, seen, until=lambda: False)
    assert world.queue.counts().pending == 0
    assert world.queue.dead_letters() == []


def test_random_5xx_and_429_everything_completes(world: World) -> None:
    ids = world.scenes(200)
    world.plex.error_rate = 0.25
    world.plex.throttle_rate = 0.05
    world.plex.retry_after = 7.0
    worker = world.worker()
    outcomes = world.drive(worker)
    assert world.queue.counts().pending == 0
    assert world.queue.dead_letters() == []
    assert OutageLog(world.state).history() == ()  # random errors never tripped the breaker
    assert_synced(world, ids)
    assert all(o.error_class != "PermanentError" for _, o in outcomes)
    retried_429 = [(t, o) for t, o in outcomes if o.kind is OutcomeKind.RETRY and "429" in (o.message or "")]
    assert retried_429
    for at, outcome in retried_429:
        assert outcome.retry_at is not None
        assert outcome.retry_at >= at + dt.timedelta(seconds=7)
        later = [t for t, o in outcomes if o.scene_id == outcome.scene_id and t > at]
        assert later
        assert min(later) >= outcome.retry_at
    assert kinds(outcomes)["retry"] > 0


def test_scene_edited_while_its_job_waits_gets_the_newest_metadata(world: World) -> None:
    world.scenes(1)
    world.plex.fail_next = [BackendUnavailableError("503")]
    worker = world.worker()
    worker.refresh_index()
    first = worker.run_once()
    assert first is not None
    assert first.kind is OutcomeKind.RETRY
    world.scene("1", title="Edited while waiting", tags=("new tag",), version=2)
    world.queue.enqueue("1", reason="update")
    assert world.queue.counts().pending == 1  # coalesced
    world.drive(worker)
    item = world.item("1")
    assert item.metadata.title == "Edited while waiting"
    assert item.metadata.genres == ("new tag",)
    poster = world.stash.images["http://stash.local/scene/1/screenshot?t=2"]
    assert item.images[ImageKind.POSTER].sha1 == hashlib.sha1(poster).hexdigest()


def test_tags_removed_in_stash_disappear_from_plex(world: World) -> None:
    world.scene("1", tags=("keep", "drop one", "drop two"))
    world.queue.enqueue("1")
    world.worker().drain()
    assert set(world.item("1").metadata.genres) == {"keep", "drop one", "drop two"}
    world.scene("1", tags=("keep",), version=2)
    world.queue.enqueue("1")
    world.worker().drain()
    assert world.item("1").metadata.genres == ("keep",)


def test_file_not_yet_in_plex_is_scanned_and_synced_later(world: World) -> None:
    world.scene("1", in_plex=False)
    world.plex.stage(world.path("1"))
    world.queue.enqueue("1")
    worker = world.worker()
    worker.refresh_index()
    first = worker.run_once()
    assert first is not None
    assert first.kind is OutcomeKind.RETRY
    assert first.error_class == "NotInPlexYetError"
    assert world.plex.calls["scan"] == 1
    assert first.retry_at is not None
    assert first.retry_at <= world.clock.now() + dt.timedelta(seconds=60)
    assert worker.run_once() is None  # not due yet
    world.clock.advance((first.retry_at - world.clock.now()).total_seconds())
    second = worker.run_once()
    assert second is not None
    assert second.kind is OutcomeKind.SYNCED
    refs = world.plex.resolve_path(world.path("1"))
    world.keys["1"] = refs[0].rating_key
    assert_synced(world, ["1"])


def test_missing_file_keeps_retrying_on_the_long_schedule_and_scans_once_per_window(world: World) -> None:
    world.scene("1", in_plex=False)
    world.scene("2", in_plex=False)  # same folder: its scans are shared
    world.queue.enqueue_many(["1", "2"])
    worker = world.worker(seed=7)
    outcomes = world.drive(worker)
    policy = worker.policy
    window = world.settings.not_in_plex_retry_seconds
    for scene_id in ("1", "2"):
        mine = [(t, o) for t, o in outcomes if o.scene_id == scene_id]
        first = mine[0][0]
        *retries, (last_at, last) = mine
        assert all(o.kind is OutcomeKind.RETRY and o.error_class == "NotInPlexYetError" for _, o in retries)
        for n, ((at, outcome), (next_at, _)) in enumerate(itertools.pairwise(mine)):
            # Full jitter within the not-in-Plex window (60 s doubling to 1 h), and the next
            # attempt exactly when it came due, never earlier.
            assert outcome.retry_at is not None
            delay = (outcome.retry_at - at).total_seconds()
            assert 0 <= delay <= policy.not_in_plex.backoff.window(n)
            assert next_at == outcome.retry_at
        assert max(policy.not_in_plex.backoff.window(n) for n in range(len(mine))) == 3600
        # Still retrying at 23 h (delays never exceed 1 h, so an attempt falls in hour 24)...
        late = [o for t, o in retries if t - first >= dt.timedelta(hours=23)]
        assert late
        assert all(o.kind is OutcomeKind.RETRY for o in late)
        # ...and dead-lettered only once the 24 h horizon had passed.
        assert last.kind is OutcomeKind.DEAD_LETTERED
        assert last_at - first >= dt.timedelta(hours=24)
        assert retries[-1][0] - first < dt.timedelta(hours=24)
        assert len(mine) >= world.settings.max_attempts
    # The folder was scanned at the first attempt, and again later, never twice in one window.
    scans = world.plex.scans
    assert scans[0] == outcomes[0][0]
    assert len(scans) > 2
    assert all((b - a).total_seconds() >= window for a, b in itertools.pairwise(scans))
    assert len(scans) < len(outcomes)  # two scenes, one folder: not a scan per attempt
    assert {d.scene_id for d in world.queue.dead_letters()} == {"1", "2"}
    assert all(d.error_class == "NotInPlexYetError" for d in world.queue.dead_letters())


def test_scene_outside_every_plex_library_is_dropped_not_retried() -> None:
    world = World()
    world.scene("1", in_plex=False, path="/elsewhere/scene.mp4")
    world.queue.enqueue("1")
    report = world.worker().drain()
    assert dict(report.outcomes) == {"dropped": 1}
    assert world.plex.calls.get("scan", 0) == 0
    assert world.queue.counts().pending == 0


def test_a_401_stops_the_worker_without_burning_jobs(world: World, caplog: pytest.LogCaptureFixture) -> None:
    world.scenes(3)
    world.plex.unauthorized = True
    worker = world.worker()
    with caplog.at_level(logging.ERROR, logger="stash2plex.worker"):
        report = worker.drain()
    assert report.reason == "stopped"
    assert report.stop_reason is not None
    assert "AuthenticationError" in report.stop_reason
    assert "plex_token" in report.stop_reason
    assert set(report.outcomes) <= {"stopped"}  # the index refresh may hit the 401 before any job
    assert world.queue.dead_letters() == []
    assert world.queue.counts().pending == 3
    assert all(job.attempts == 0 for job in world.queue.pending())
    assert worker.run_once() is None  # stays stopped
    assert any(getattr(r, "event", None) == "worker_stopped" for r in caplog.records)
    world.plex.unauthorized = False
    worker.resume()
    assert dict(worker.drain().outcomes) == {"synced": 3}


def test_a_401_from_stash_stops_too(world: World) -> None:
    world.scenes(1)

    class LockedStash(type(world.stash)):  # type: ignore[misc]
        def _get_scene(self, scene_id: str) -> None:
            raise AuthenticationError("Stash answered 401")

    world.stash.__class__ = LockedStash
    report = world.worker().drain()
    assert report.reason == "stopped"
    assert world.queue.counts().pending == 1


def test_a_401_on_a_probe_stops_the_worker(world: World) -> None:
    world.scenes(25)
    worker = world.worker()
    world.plex.down(1000)
    assert worker.drain(max_idle=0.0).reason == "idle"
    assert worker.breaker.status is BreakerStatus.OPEN
    world.plex.unauthorized = True
    report = worker.drain()
    assert report.reason == "stopped"
    assert world.queue.dead_letters() == []


def test_permanent_error_is_dead_lettered_at_once_and_not_counted_by_the_breaker(world: World) -> None:
    world.scenes(1)
    world.plex.fail_next = [PermanentError("Plex answered 400")]
    worker = world.worker()
    report = worker.drain()
    assert dict(report.outcomes) == {"dead_lettered": 1}
    letters = world.queue.dead_letters()
    assert [(d.scene_id, d.error_class, d.attempts) for d in letters] == [("1", "PermanentError", 1)]
    assert worker.breaker.snapshot().window.count(True) == 0


def test_transient_failure_is_retried_for_six_hours_then_dead_lettered(world: World) -> None:
    world.scenes(1)
    worker = world.worker()
    world.plex.fail_next = [TransientError("read timed out")] * 10_000
    outcomes = world.drive(worker)
    assert outcomes[-1][1].kind is OutcomeKind.DEAD_LETTERED
    first_failure = outcomes[0][0]
    assert outcomes[-1][0] - first_failure >= dt.timedelta(hours=6)
    assert world.queue.dead_letters()[0].error_class == "TransientError"
    assert worker.breaker.status is BreakerStatus.CLOSED  # timeouts are not "Plex is down"


def test_scene_deleted_from_stash_is_dropped_and_forgotten(world: World) -> None:
    world.scenes(1)
    world.worker().drain()
    assert world.state.get("sync", "1") is not None
    world.stash.delete_scene("1")
    world.queue.enqueue("1", reason="destroy")
    report = world.worker().drain()
    assert dict(report.outcomes) == {"dropped": 1}
    assert world.state.get("sync", "1") is None


def test_item_deleted_in_plex_is_matched_again(world: World) -> None:
    world.scenes(1)
    world.worker().drain()
    old = world.keys.pop("1")
    world.plex.remove_item(old)
    world.keys["1"] = world.plex.add_item([world.path("1")]).rating_key
    world.queue.enqueue("1")
    outcomes = world.drive(world.worker())
    assert [o.kind for _, o in outcomes][-1] is OutcomeKind.SYNCED
    assert_synced(world, ["1"])


def test_low_confidence_match_is_held_for_review_unless_allowed() -> None:
    world = World()
    world.plex.add_item(["/media/a/clip.mp4"])
    world.plex.add_item(["/media/b/clip.mp4"])
    world.scene("1", in_plex=False, path="/media/c/clip.mp4")
    world.queue.enqueue("1")
    report = world.worker().drain()
    assert dict(report.outcomes) == {"review": 1}
    entry = from_document(ReviewEntry, world.state.get("review", "1") or {})
    assert entry.confidence is Confidence.LOW
    assert len(entry.candidates) == 2
    assert world.plex.calls.get("apply", 0) == 0

    allowed = World(allow_low_confidence=True)
    allowed.plex = world.plex
    allowed.stash = world.stash
    allowed.state = world.state
    allowed.queue.enqueue("1")
    report = allowed.worker().drain()
    assert dict(report.outcomes) == {"synced": 1}
    assert world.state.get("review", "1") is None


def test_logs_are_structured_with_a_correlation_id_and_no_secrets(caplog: pytest.LogCaptureFixture) -> None:
    world = World(plex_token="SECRET-TOKEN-123", stash_api_key="SECRET-KEY-456")
    world.scenes(2)
    world.plex.fail_next = [BackendUnavailableError("503")]
    with caplog.at_level(logging.DEBUG, logger="stash2plex"):
        world.drive(world.worker())
    synced = [r for r in caplog.records if getattr(r, "event", None) == "job_synced"]
    assert len(synced) == 2
    for record in synced:
        assert record.correlation_id  # type: ignore[attr-defined]
        assert record.scene_id in {"1", "2"}  # type: ignore[attr-defined]
        assert record.rating_key  # type: ignore[attr-defined]
    retry = next(r for r in caplog.records if getattr(r, "event", None) == "job_retry")
    journey = [r for r in caplog.records if getattr(r, "scene_id", None) == retry.scene_id]  # type: ignore[attr-defined]
    assert len({r.correlation_id for r in journey}) == 2  # type: ignore[attr-defined]  # two attempts
    # One queued change across its attempts: the same job id and enqueue time (the queue
    # row the hook wrote), attempts 1 then 2.
    job = [r for r in journey if hasattr(r, "job_id")]
    assert {(r.job_id, r.job_enqueued_at) for r in job} == {(retry.job_id, retry.job_enqueued_at)}  # type: ignore[attr-defined]
    assert dt.datetime.fromisoformat(retry.job_enqueued_at) == world.clock.EPOCH  # type: ignore[attr-defined]
    assert sorted({r.attempt for r in job}) == [1, 2]  # type: ignore[attr-defined]
    assert "SECRET" not in caplog.text


def test_a_long_retry_after_is_honoured_in_full(world: World, caplog: pytest.LogCaptureFixture) -> None:
    """Never before Retry-After, even when it is longer than retry_after_max_seconds (1 h)."""
    world.scenes(1)
    world.plex.fail_next = [TransientError("Plex answered 429", retry_after=7200)]
    with caplog.at_level(logging.WARNING, logger="stash2plex.worker"):
        outcomes = world.drive(world.worker())
    (failed_at, failed), (synced_at, synced) = outcomes
    assert failed.kind is OutcomeKind.RETRY
    assert failed.retry_at == failed_at + dt.timedelta(hours=2)
    assert synced.kind is OutcomeKind.SYNCED
    assert synced_at >= failed_at + dt.timedelta(hours=2)
    assert [r.event for r in caplog.records if getattr(r, "event", "") == "long_retry_after"] == ["long_retry_after"]  # type: ignore[attr-defined]


def test_concurrent_drain_completes_everything() -> None:
    # Idle drain threads sleep on the shared manual clock, and each sleep advances it at
    # once: under CPU load they can push it past a busy thread's 300 s lease in a few
    # milliseconds of real time (a lease lost, the job reclaimed and synced again). That
    # is the fake clock, not the worker; an effectively endless lease keeps this test
    # about completing everything once.
    world = World(plex_concurrency=4, lease_seconds=1e7)
    ids = world.scenes(80)
    report = world.worker().drain()
    assert dict(report.outcomes) == {"synced": 80}
    assert_synced(world, ids)


def test_drain_returns_when_the_stop_event_is_set(world: World) -> None:
    world.scenes(5)
    stop = threading.Event()
    stop.set()
    report = world.worker().drain(stop=stop)
    assert report.reason == "stop_requested"
    assert world.queue.counts().pending == 5


def test_service_mode_waits_for_new_work_until_stopped(world: World) -> None:
    stop = threading.Event()
    worker = world.worker()
    polls = 0
    real_sleep = world.clock.sleep

    def sleep(seconds: float) -> None:
        nonlocal polls
        polls += 1
        if polls == 3:
            world.scenes(2)
        if polls == 10:
            stop.set()
        real_sleep(seconds)

    world.clock.sleep = sleep  # type: ignore[method-assign]
    report = worker.drain(until_empty=False, stop=stop)
    assert report.reason == "stop_requested"
    assert dict(report.outcomes) == {"synced": 2}


def test_worker_from_the_composition_root(registry) -> None:
    from stash2plex_core.app import build_app

    world = World()
    world.scenes(3)
    app = build_app(
        world.settings,
        registry=registry,
        overrides={
            "queue": world.queue,
            "state": world.state,
            "plex": world.plex,
            "stash": world.stash,
            "clock": world.clock,
        },
    )
    report = SyncWorker.from_app(app).drain()
    assert dict(report.outcomes) == {"synced": 3}
