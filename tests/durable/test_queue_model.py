"""Recipe F: a Hypothesis state machine drives a queue and a simple model side by side.

The model keeps, per scene, at most one pending job and at most one leased job (with
events, attempts, due time and lease expiry), which is exactly what the Queue docstring
promises. It is run against the in-memory reference and against SQLite on a real file,
with "crashes" that drop every lease handle and reopen the queue.

Where the port leaves a choice, the model accepts either outcome: a lease that expired
but that nobody re-claimed may still complete (memory) or may already be lost (SQLite
returns expired jobs to the queue on every claim).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest
from hypothesis import HealthCheck
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle
from hypothesis.stateful import RuleBasedStateMachine
from hypothesis.stateful import consumes
from hypothesis.stateful import invariant
from hypothesis.stateful import multiple
from hypothesis.stateful import precondition
from hypothesis.stateful import rule

from stash2plex_backends.memory import MemoryQueue
from stash2plex_backends.sqlite import SQLiteQueue
from stash2plex_core.clocks import ManualClock
from stash2plex_core.errors import LeaseLostError
from stash2plex_core.models.jobs import DeadLetterFilter
from stash2plex_core.models.jobs import SyncJob
from stash2plex_core.ports.queue import Queue


# The model checks logic, not durability (the crash trials do that on disk), so its many
# short-lived databases live in memory-backed /dev/shm when there is one: same SQLite, no
# fsync wait per step.
SCRATCH = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
SCENES = st.sampled_from(["1", "2", "3", "4"])
LEASES = st.sampled_from([5.0, 30.0])


@attrs.define
class MJob:
    events: int
    attempts: int
    due: dt.datetime


@attrs.define
class MLease:
    job: MJob
    job_id: str
    token: str
    expires: dt.datetime


class QueueMachine(RuleBasedStateMachine):
    """Subclasses say which queue to build."""

    handles = Bundle("handles")

    def make_queue(self, clock: ManualClock) -> Queue:
        raise NotImplementedError

    def reopen(self) -> None:
        """A crash: the worker forgets its handles; durable queues are reopened."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock()
        self.queue = self.make_queue(self.clock)
        self.pending: dict[str, MJob] = {}
        self.leased: dict[str, MLease] = {}
        self.dead: list[tuple[str, dt.datetime]] = []

    def teardown(self) -> None:
        self.queue.close()

    # -- the model's view

    def now(self) -> dt.datetime:
        return self.clock.now()

    def live(self, scene: str) -> bool:
        return scene in self.leased and self.leased[scene].expires > self.now()

    def candidate(self, scene: str) -> MJob | None:
        """The job a claim would hand out for ``scene`` now, if any."""
        lease = self.leased.get(scene)
        pending = self.pending.get(scene)
        if lease is not None and lease.expires > self.now():
            return None
        if lease is not None:  # an expired lease absorbs the pending job
            job = lease.job
            if pending is not None:
                job = MJob(job.events + pending.events, job.attempts, min(job.due, pending.due))
            return job if job.due <= self.now() else None
        if pending is not None and pending.due <= self.now():
            return pending
        return None

    def merge_back(self, scene: str, job: MJob) -> None:
        """A leased job goes back to pending, merging with pending work for the scene."""
        del self.leased[scene]
        pending = self.pending.get(scene)
        if pending is not None:
            job = MJob(job.events + pending.events, job.attempts, min(job.due, pending.due))
        self.pending[scene] = job

    def sync_expired(self) -> None:
        """Follow the backend where the port lets it choose: a job whose lease expired may
        already be back in the pending pool (SQLite returns every expired job on each claim)
        or may stay leased until it is claimed again (memory). Live leases never move."""
        jobs = {j.id: j for j in self.queue.pending(limit=100)}
        for scene, lease in list(self.leased.items()):
            current = jobs.get(lease.job_id)
            if lease.expires <= self.now() and current is not None and current.lease is None:
                self.merge_back(scene, lease.job)

    def holder(self, handle: SyncJob) -> MLease | None:
        lease = self.leased.get(handle.scene_id)
        if lease is None or handle.lease is None or lease.token != handle.lease.token:
            return None
        return lease

    def call_held(self, handle: SyncJob, fn: Callable[[], object]) -> object:
        """Run ``fn`` on a handle; the model decides whether it must, may or must not work."""
        lease = self.holder(handle)
        if lease is None:
            with pytest.raises(LeaseLostError):
                fn()
            return None
        if lease.expires > self.now():
            return fn()
        try:  # expired and not re-claimed: the backend may honour it or not
            return fn()
        except LeaseLostError:
            self.merge_back(handle.scene_id, lease.job)  # the backend already took it back
            return None

    # -- rules

    @rule(scene=SCENES, delay=st.sampled_from([0.0, 0.0, 5.0, 30.0]))
    def enqueue(self, scene: str, delay: float) -> None:
        job = self.queue.enqueue(scene, delay=delay)
        pending = self.pending.get(scene)
        if pending is None:
            pending = self.pending[scene] = MJob(1, 0, self.now() + dt.timedelta(seconds=delay))
        else:
            pending.events += 1
        assert (job.scene_id, job.events, job.lease) == (scene, pending.events, None)
        assert job.next_attempt_at == pending.due

    @rule(scenes=st.lists(SCENES, max_size=4))
    def enqueue_many(self, scenes: list[str]) -> None:
        assert self.queue.enqueue_many(scenes) == len(set(scenes))
        for scene in dict.fromkeys(scenes):
            if scene in self.pending:
                self.pending[scene].events += 1
            else:
                self.pending[scene] = MJob(1, 0, self.now())

    @rule(target=handles, lease=LEASES)
    def claim(self, lease: float) -> SyncJob | object:
        candidates = {s: j for s in {*self.pending, *self.leased} if (j := self.candidate(s)) is not None}
        job = self.queue.claim("w", lease)
        if job is None:
            assert not candidates, f"claim returned nothing but {sorted(candidates)} are ready"
            return multiple()
        assert job.scene_id in candidates, f"claimed {job.scene_id}, ready were {sorted(candidates)}"
        expected = candidates[job.scene_id]
        assert job.next_attempt_at == min(j.due for j in candidates.values()), "not the job due first"
        assert (job.events, job.attempts) == (expected.events, expected.attempts + 1)
        assert job.lease is not None
        assert job.lease.expires_at == self.now() + dt.timedelta(seconds=lease)
        if job.scene_id in self.leased:  # re-claiming an expired lease
            self.pending.pop(job.scene_id, None)
        else:
            del self.pending[job.scene_id]
        self.leased[job.scene_id] = MLease(
            MJob(expected.events, expected.attempts + 1, expected.due), job.id, job.lease.token, job.lease.expires_at
        )
        self.sync_expired()
        return job

    @rule(handle=consumes(handles))
    def complete(self, handle: SyncJob) -> None:
        lease = self.holder(handle)

        def complete() -> bool:
            self.queue.complete(handle)
            return True

        done = self.call_held(handle, complete)
        if done and lease is not None:
            del self.leased[handle.scene_id]

    @rule(handle=consumes(handles), delay=st.sampled_from([0.0, 20.0]))
    def retry(self, handle: SyncJob, delay: float) -> None:
        lease = self.holder(handle)
        when = self.now() + dt.timedelta(seconds=delay)
        back = self.call_held(handle, lambda: self.queue.retry_at(handle, when, RuntimeError("boom")))
        if back is not None and lease is not None:
            self.merge_back(handle.scene_id, MJob(lease.job.events, lease.job.attempts, when))
            assert isinstance(back, SyncJob)
            assert back.last_error is not None
            assert back.last_error.error_class == "RuntimeError"

    @rule(handle=consumes(handles))
    def release(self, handle: SyncJob) -> None:
        lease = self.holder(handle)
        back = self.call_held(handle, lambda: self.queue.release(handle))
        if back is not None and lease is not None:
            self.merge_back(handle.scene_id, MJob(lease.job.events, max(0, lease.job.attempts - 1), self.now()))

    @rule(handle=consumes(handles))
    def bury(self, handle: SyncJob) -> None:
        lease = self.holder(handle)
        letter = self.call_held(handle, lambda: self.queue.dead_letter(handle, ValueError("bad")))
        if letter is not None and lease is not None:
            del self.leased[handle.scene_id]
            self.dead.append((handle.scene_id, self.now()))

    @rule(handle=handles, lease=LEASES)
    def extend(self, handle: SyncJob, lease: float) -> None:
        held = self.holder(handle)
        extended = self.call_held(handle, lambda: self.queue.extend(handle, lease))
        if extended is not None and held is not None:
            held.expires = self.now() + dt.timedelta(seconds=lease)

    @rule(scene=SCENES)
    def remove(self, scene: str) -> None:
        assert self.queue.remove(scene) == (1 if scene in self.pending else 0)
        self.pending.pop(scene, None)

    @precondition(lambda self: bool(self.dead))
    @rule(data=st.data())
    def requeue(self, data: st.DataObject) -> None:
        scenes = data.draw(st.frozensets(SCENES, min_size=1))
        chosen = [s for s, _ in self.dead if s in scenes]
        assert self.queue.requeue_dead(DeadLetterFilter(scene_ids=scenes)) == len(chosen)
        self.dead = [(s, t) for s, t in self.dead if s not in scenes]
        for scene in chosen:
            if scene in self.pending:
                self.pending[scene].events += 1
            else:
                self.pending[scene] = MJob(1, 0, self.now())

    @precondition(lambda self: bool(self.dead))
    @rule()
    def purge(self) -> None:
        cutoff = self.now() - dt.timedelta(seconds=30)
        expected = sum(1 for _, t in self.dead if t < cutoff)
        assert self.queue.purge_dead(dt.timedelta(seconds=30)) == expected
        self.dead = [(s, t) for s, t in self.dead if t >= cutoff]

    @rule(seconds=st.sampled_from([2.0, 6.0, 31.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule(handle=consumes(handles))
    def crash(self, handle: SyncJob) -> None:
        """The worker dies holding ``handle``: it is never used again, and durable queues are
        reopened from disk."""
        self.reopen()

    # -- invariants

    @invariant()
    def same_scenes(self) -> None:
        jobs = self.queue.pending(limit=100)
        assert {j.scene_id for j in jobs} == {*self.pending, *self.leased}
        per_scene_pending: dict[str, int] = {}
        for job in jobs:
            if job.lease is None:
                per_scene_pending[job.scene_id] = per_scene_pending.get(job.scene_id, 0) + 1
        assert all(n == 1 for n in per_scene_pending.values()), "two pending jobs for one scene"

    @invariant()
    def same_counts(self) -> None:
        counts = self.queue.counts()
        assert counts.leased == sum(1 for s in self.leased if self.live(s))
        assert counts.dead == len(self.dead)


class MemoryQueueMachine(QueueMachine):
    def make_queue(self, clock: ManualClock) -> Queue:
        return MemoryQueue(clock)


class SQLiteQueueMachine(QueueMachine):
    def make_queue(self, clock: ManualClock) -> Queue:
        self.directory = Path(tempfile.mkdtemp(prefix="s2p-model-", dir=SCRATCH))
        return SQLiteQueue(self.directory / "stash2plex.db", clock)

    def reopen(self) -> None:
        self.queue.close()
        self.queue = SQLiteQueue(self.directory / "stash2plex.db", self.clock)

    def teardown(self) -> None:
        super().teardown()
        shutil.rmtree(self.directory, ignore_errors=True)


# 200 x 40 finds a claim that forgets to reclaim expired leases in 10 runs out of 10
# (60 x 30 in 4 out of 10), and costs about 2.5 s per backend.
NORMAL = settings(max_examples=200, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=1000, stateful_step_count=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TestMemoryQueueModel = MemoryQueueMachine.TestCase
TestMemoryQueueModel.settings = NORMAL
TestSQLiteQueueModel = SQLiteQueueMachine.TestCase
TestSQLiteQueueModel.settings = NORMAL


class _SlowMemory(MemoryQueueMachine):
    pass


class _SlowSQLite(SQLiteQueueMachine):
    pass


TestMemoryQueueModelLong = pytest.mark.slow(_SlowMemory.TestCase)
TestMemoryQueueModelLong.settings = SLOW
TestSQLiteQueueModelLong = pytest.mark.slow(_SlowSQLite.TestCase)
TestSQLiteQueueModelLong.settings = SLOW
