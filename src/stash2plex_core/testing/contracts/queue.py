"""The Queue contract."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from stash2plex_core.clocks import ManualClock
from stash2plex_core.errors import BackendUnavailableError
from stash2plex_core.errors import LeaseLostError
from stash2plex_core.models.jobs import DeadLetterFilter
from stash2plex_core.models.jobs import SyncJob
from stash2plex_core.ports.queue import Queue
from stash2plex_core.testing.contracts._capabilities import Capabilities


LEASE = 60.0


class QueueContract:
    """Subclass, and provide a ``queue`` fixture built on the ``clock`` fixture.

    For a durable backend also override ``capabilities`` (``durable=True``) and provide
    ``reopen_queue``: a callable that closes nothing and returns a *new* instance over the
    same storage.
    """

    @pytest.fixture
    def clock(self) -> ManualClock:
        return ManualClock()

    @pytest.fixture
    def queue(self, clock: ManualClock) -> Queue:
        raise NotImplementedError("provide a `queue` fixture that builds your backend with `clock`")

    @pytest.fixture
    def capabilities(self) -> Capabilities:
        return Capabilities()

    @pytest.fixture
    def reopen_queue(self) -> Callable[[], Queue]:
        raise NotImplementedError("durable backends provide `reopen_queue`")

    # -- enqueue and coalescing

    def test_enqueue_makes_a_ready_job(self, queue: Queue, clock: ManualClock) -> None:
        job = queue.enqueue("1", "update")
        assert isinstance(job, SyncJob)
        assert (job.scene_id, job.reason, job.attempts, job.lease) == ("1", "update", 0, None)
        assert job.enqueued_at == clock.now()
        assert job.enqueued_at.tzinfo is not None
        assert queue.counts().ready == 1

    def test_enqueue_coalesces_per_scene_keeping_the_earliest_time(self, queue: Queue, clock: ManualClock) -> None:
        first = queue.enqueue("7", "create")
        clock.advance(5)
        second = queue.enqueue("7", "update")
        assert second.id == first.id
        assert second.events == 2
        assert second.enqueued_at == first.enqueued_at
        counts = queue.counts()
        assert counts.pending == 1

    def test_distinct_scenes_are_distinct_jobs(self, queue: Queue) -> None:
        queue.enqueue("1")
        queue.enqueue("2")
        assert queue.counts().ready == 2

    def test_enqueue_many_coalesces_and_counts_scenes(self, queue: Queue) -> None:
        queue.enqueue("2")
        assert queue.enqueue_many(["1", "2", "3", "3"], "sync-all") == 3
        assert queue.counts().ready == 3
        assert sorted(j.scene_id for j in queue.pending()) == ["1", "2", "3"]

    def test_bad_scene_ids_are_rejected_and_nothing_is_stored(self, queue: Queue) -> None:
        for bad in ("", "   "):
            with pytest.raises(ValueError, match="scene id"):
                queue.enqueue(bad)
        with pytest.raises(ValueError, match="scene id"):
            queue.enqueue_many(["1", ""])
        assert queue.counts().pending == 0

    def test_delayed_job_waits(self, queue: Queue, clock: ManualClock) -> None:
        queue.enqueue("1", delay=30)
        assert queue.counts().waiting == 1
        assert queue.claim("w", LEASE) is None
        clock.advance(30)
        assert queue.claim("w", LEASE) is not None

    # -- claiming and leases

    def test_claim_leases_and_counts_an_attempt(self, queue: Queue, clock: ManualClock) -> None:
        queue.enqueue("1")
        job = queue.claim("worker-a", LEASE)
        assert job is not None
        assert job.lease is not None
        assert job.lease.owner == "worker-a"
        assert job.lease.expires_at == clock.now() + dt.timedelta(seconds=LEASE)
        assert job.attempts == 1
        assert queue.counts().leased == 1
        assert queue.claim("worker-b", LEASE) is None

    def test_claim_takes_the_job_due_first(self, queue: Queue, clock: ManualClock) -> None:
        queue.enqueue("late", delay=10)
        queue.enqueue("early", delay=5)
        clock.advance(20)
        queue.enqueue("now")
        claimed = [queue.claim("w", LEASE) for _ in range(3)]
        assert [j.scene_id for j in claimed if j] == ["early", "late", "now"]

    def test_claim_on_empty_queue_is_none(self, queue: Queue) -> None:
        assert queue.claim("w", LEASE) is None

    def test_claim_many_takes_jobs_in_claim_order_each_with_its_own_lease(
        self, queue: Queue, clock: ManualClock
    ) -> None:
        queue.enqueue("late", delay=10)
        queue.enqueue("early", delay=5)
        queue.enqueue("waiting", delay=100)
        clock.advance(20)
        queue.enqueue("now")
        jobs = queue.claim_many("w", LEASE, 2)
        assert [j.scene_id for j in jobs] == ["early", "late"]
        assert all(j.lease is not None and j.lease.owner == "w" and j.attempts == 1 for j in jobs)
        assert all(j.lease.expires_at == clock.now() + dt.timedelta(seconds=LEASE) for j in jobs if j.lease)
        assert len({j.lease.token for j in jobs if j.lease}) == 2, "every job has its own lease"
        assert [j.scene_id for j in queue.claim_many("w", LEASE, 5)] == ["now"], "only ready jobs, up to none left"
        assert queue.claim_many("w", LEASE, 5) == []
        assert queue.counts().leased == 3
        for job in jobs:
            queue.complete(job)
        assert queue.counts().leased == 1

    def test_claim_many_skips_scenes_already_leased(self, queue: Queue) -> None:
        queue.enqueue("1")
        held = queue.claim("other", LEASE)
        assert held is not None
        queue.enqueue("1")  # an event while leased: pending, but not claimable yet
        queue.enqueue("2")
        assert [j.scene_id for j in queue.claim_many("w", LEASE, 5)] == ["2"]

    def test_claim_many_takes_back_expired_leases(self, queue: Queue, clock: ManualClock) -> None:
        queue.enqueue("1")
        first = queue.claim("a", LEASE)
        assert first is not None
        clock.advance(LEASE + 1)
        again = queue.claim_many("b", LEASE, 3)
        assert [(j.id, j.attempts) for j in again] == [(first.id, 2)]
        with pytest.raises(LeaseLostError):
            queue.complete(first)

    def test_claim_many_rejects_a_bad_limit(self, queue: Queue) -> None:
        queue.enqueue("1")
        with pytest.raises(ValueError, match="limit"):
            queue.claim_many("w", LEASE, 0)
        assert queue.counts().ready == 1

    def test_expired_lease_is_claimable_and_old_holder_loses(self, queue: Queue, clock: ManualClock) -> None:
        queue.enqueue("1")
        first = queue.claim("a", LEASE)
        assert first is not None
        clock.advance(LEASE + 1)
        second = queue.claim("b", LEASE)
        assert second is not None
        assert second.id == first.id
        assert second.attempts == 2
        with pytest.raises(LeaseLostError):
            queue.complete(first)
        queue.complete(second)
        assert queue.counts().pending == 0

    def test_extend_keeps_the_lease(self, queue: Queue, clock: ManualClock) -> None:
        queue.enqueue("1")
        job = queue.claim("a", LEASE)
        assert job is not None
        clock.advance(LEASE - 1)
        job = queue.extend(job, LEASE)
        clock.advance(LEASE - 1)
        assert queue.claim("b", LEASE) is None
        queue.complete(job)

    def test_complete_removes_the_job(self, queue: Queue) -> None:
        queue.enqueue("1")
        job = queue.claim("w", LEASE)
        assert job is not None
        queue.complete(job)
        assert queue.counts() == type(queue.counts())()
        with pytest.raises(LeaseLostError):
            queue.complete(job)

    def test_event_during_lease_makes_one_new_pending_job(self, queue: Queue) -> None:
        queue.enqueue("1")
        job = queue.claim("w", LEASE)
        assert job is not None
        queue.enqueue("1")
        queue.enqueue("1")
        counts = queue.counts()
        assert (counts.leased, counts.ready) == (1, 1)
        assert queue.claim("other", LEASE) is None, "a scene with a live lease must not be claimed twice"
        queue.complete(job)
        again = queue.claim("w", LEASE)
        assert again is not None
        assert again.scene_id == "1"
        assert again.events == 2

    # -- retries

    def test_retry_at_schedules_and_keeps_the_error(self, queue: Queue, clock: ManualClock) -> None:
        queue.enqueue("1")
        job = queue.claim("w", LEASE)
        assert job is not None
        back = queue.retry_at(job, clock.now() + dt.timedelta(seconds=90), BackendUnavailableError("Plex said 503"))
        assert back.lease is None
        assert back.last_error is not None
        assert back.last_error.error_class == "BackendUnavailableError"
        assert "503" in back.last_error.message
        assert back.first_failed_at == clock.now()
        assert queue.counts().waiting == 1
        clock.advance(89)
        assert queue.claim("w", LEASE) is None
        clock.advance(1)
        again = queue.claim("w", LEASE)
        assert again is not None
        assert again.attempts == 2
        assert again.first_failed_at == back.first_failed_at

    def test_release_does_not_burn_the_attempt(self, queue: Queue) -> None:
        queue.enqueue("1")
        job = queue.claim("w", LEASE)
        assert job is not None
        queue.release(job)
        again = queue.claim("w", LEASE)
        assert again is not None
        assert again.attempts == 1

    def test_retry_merges_with_pending_work_for_the_scene(self, queue: Queue, clock: ManualClock) -> None:
        queue.enqueue("1")
        job = queue.claim("w", LEASE)
        assert job is not None
        queue.enqueue("1")
        queue.retry_at(job, clock.now() + dt.timedelta(seconds=10), RuntimeError("boom"))
        assert queue.counts().pending == 1
        clock.advance(10)
        again = queue.claim("w", LEASE)
        assert again is not None
        assert again.attempts == 2
        assert queue.claim("w", LEASE) is None

    # -- dead letters

    def _bury(self, queue: Queue, scene_id: str, error: BaseException) -> None:
        queue.enqueue(scene_id)
        job = queue.claim("w", LEASE)
        assert job is not None
        assert job.scene_id == scene_id
        queue.dead_letter(job, error)

    def test_dead_letter_keeps_what_happened(self, queue: Queue, clock: ManualClock) -> None:
        queue.enqueue("9", "update")
        job = queue.claim("w", LEASE)
        assert job is not None
        job = queue.retry_at(job, clock.now(), BackendUnavailableError("503"))
        clock.advance(10)
        job = queue.claim("w", LEASE)
        assert job is not None
        letter = queue.dead_letter(job, ValueError("bad date"))
        assert (letter.scene_id, letter.error_class, letter.message, letter.attempts) == (
            "9",
            "ValueError",
            "bad date",
            2,
        )
        assert letter.first_failed_at == clock.now() - dt.timedelta(seconds=10)
        assert letter.last_failed_at == clock.now()
        assert queue.counts().dead == 1
        assert queue.counts().pending == 0
        assert queue.dead_letters() == [letter]

    def test_dead_letters_filter_by_class_and_window(self, queue: Queue, clock: ManualClock) -> None:
        start = clock.now()
        self._bury(queue, "1", ValueError("a"))
        clock.advance(100)
        self._bury(queue, "2", BackendUnavailableError("b"))
        clock.advance(100)
        self._bury(queue, "3", ValueError("c"))
        by_class = queue.dead_letters(DeadLetterFilter(error_class="ValueError"))
        assert [d.scene_id for d in by_class] == ["3", "1"]
        window = DeadLetterFilter(
            failed_since=start + dt.timedelta(seconds=50), failed_until=start + dt.timedelta(seconds=150)
        )
        assert [d.scene_id for d in queue.dead_letters(window)] == ["2"]
        assert len(queue.dead_letters(limit=2)) == 2

    def test_requeue_dead_resets_attempts_and_coalesces(self, queue: Queue) -> None:
        self._bury(queue, "1", ValueError("a"))
        self._bury(queue, "2", BackendUnavailableError("b"))
        queue.enqueue("2")
        assert queue.requeue_dead(DeadLetterFilter(error_class="BackendUnavailableError")) == 1
        counts = queue.counts()
        assert (counts.ready, counts.dead) == (1, 1)
        assert queue.requeue_dead(DeadLetterFilter(scene_ids={"1"})) == 1
        jobs = {j.scene_id: j for j in queue.pending()}
        assert set(jobs) == {"1", "2"}
        assert all(j.attempts == 0 for j in jobs.values())
        assert queue.counts().dead == 0

    def test_purge_dead_by_age(self, queue: Queue, clock: ManualClock) -> None:
        self._bury(queue, "old", ValueError("a"))
        clock.advance(10 * 86400)
        self._bury(queue, "new", ValueError("b"))
        assert queue.purge_dead(dt.timedelta(days=7)) == 1
        assert [d.scene_id for d in queue.dead_letters()] == ["new"]

    # -- administration

    def test_remove_drops_pending_but_not_leased(self, queue: Queue) -> None:
        queue.enqueue("1")
        job = queue.claim("w", LEASE)
        assert job is not None
        queue.enqueue("1")
        queue.enqueue("2")
        assert queue.remove("1") == 1
        counts = queue.counts()
        assert (counts.leased, counts.ready) == (1, 1)
        queue.complete(job)

    def test_clear_pending(self, queue: Queue) -> None:
        queue.enqueue_many(["1", "2", "3"])
        assert queue.clear_pending() == 3
        assert queue.counts().pending == 0

    def test_invalid_lease_is_rejected(self, queue: Queue) -> None:
        queue.enqueue("1")
        with pytest.raises(ValueError, match="lease"):
            queue.claim("w", 0)
        assert queue.counts().ready == 1

    def test_durable_across_reopen(
        self, queue: Queue, capabilities: Capabilities, request: pytest.FixtureRequest
    ) -> None:
        if not capabilities.durable:
            pytest.skip("backend is not durable (capabilities.durable is False)")
        """Ready, waiting and dead jobs all survive a new instance over the same storage.

        The burial comes first: ``_bury`` claims the job due first, which must be its own.
        """
        reopen: Callable[[], Queue] = request.getfixturevalue("reopen_queue")
        self._bury(queue, "3", ValueError("x"))
        queue.enqueue("1", "create")
        queue.enqueue("2", delay=60)
        other = reopen()
        try:
            counts = other.counts()
            assert (counts.ready, counts.waiting, counts.dead) == (1, 1, 1)
            assert sorted(j.scene_id for j in other.pending()) == ["1", "2"]
            letters = other.dead_letters()
            assert [(d.scene_id, d.error_class, d.message) for d in letters] == [("3", "ValueError", "x")]
            job = other.claim("w2", LEASE)
            assert job is not None
            assert (job.scene_id, job.reason) == ("1", "create")
            other.complete(job)
        finally:
            other.close()


__all__ = ["Capabilities", "QueueContract"]
