"""In-memory Queue: the reference implementation of the queue rules, for tests and demos."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from typing import ClassVar
from typing import Self

import attrs

from stash2plex_core.clocks import ManualClock
from stash2plex_core.errors import LeaseLostError
from stash2plex_core.models.jobs import DeadLetter
from stash2plex_core.models.jobs import DeadLetterFilter
from stash2plex_core.models.jobs import JobError
from stash2plex_core.models.jobs import Lease
from stash2plex_core.models.jobs import QueueCounts
from stash2plex_core.models.jobs import SyncJob
from stash2plex_core.ports.clock import Clock
from stash2plex_core.ports.queue import Queue
from stash2plex_core.settings import Settings


class MemoryQueue(Queue):
    """Jobs in dicts under one lock; lost when the process ends (not durable)."""

    id: ClassVar[str] = "memory"
    priority: ClassVar[int] = 0

    def __init__(self, clock: Clock | None = None) -> None:
        super().__init__(clock or ManualClock())
        self._jobs: dict[str, SyncJob] = {}
        self._dead: dict[str, DeadLetter] = {}
        self._ids = itertools.count(1)
        self._lock = threading.RLock()

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock) -> Self:
        return cls(clock)

    def _pending_for(self, scene_id: str) -> SyncJob | None:
        return next((j for j in self._jobs.values() if j.scene_id == scene_id and j.lease is None), None)

    def _live_lease(self, scene_id: str, now: dt.datetime) -> bool:
        return any(
            j.scene_id == scene_id and j.lease is not None and j.lease.expires_at > now for j in self._jobs.values()
        )

    def _enqueue(self, scene_id: str, reason: str, now: dt.datetime, due: dt.datetime) -> SyncJob:
        with self._lock:
            existing = self._pending_for(scene_id)
            if existing is not None:
                merged = attrs.evolve(existing, events=existing.events + 1)
                self._jobs[merged.id] = merged
                return merged
            job = SyncJob(
                id=str(next(self._ids)), scene_id=scene_id, reason=reason, enqueued_at=now, next_attempt_at=due
            )
            self._jobs[job.id] = job
            return job

    def _enqueue_many(self, scene_ids: list[str], reason: str, now: dt.datetime) -> int:
        with self._lock:
            for scene_id in scene_ids:
                self._enqueue(scene_id, reason, now, now)
            return len(scene_ids)

    def _remove_pending(self, scene_id: str) -> int:
        with self._lock:
            doomed = [j.id for j in self._jobs.values() if j.scene_id == scene_id and j.lease is None]
            for job_id in doomed:
                del self._jobs[job_id]
            return len(doomed)

    def _claim(self, owner: str, token: str, now: dt.datetime, expires: dt.datetime) -> SyncJob | None:
        with self._lock:
            ready = sorted(
                (
                    j
                    for j in self._jobs.values()
                    if j.next_attempt_at <= now
                    and (j.lease is None or j.lease.expires_at <= now)
                    and not self._live_lease(j.scene_id, now)
                ),
                key=lambda j: (j.next_attempt_at, int(j.id)),
            )
            if not ready:
                return None
            job = ready[0]
            if job.lease is not None:  # reclaiming an expired lease: absorb pending work for the scene
                pending = self._pending_for(job.scene_id)
                if pending is not None:
                    del self._jobs[pending.id]
                    job = attrs.evolve(job, events=job.events + pending.events)
            claimed = attrs.evolve(job, attempts=job.attempts + 1, lease=Lease(owner, token, expires))
            self._jobs[claimed.id] = claimed
            return claimed

    def _held(self, job: SyncJob) -> SyncJob:
        current = self._jobs.get(job.id)
        if current is None or current.lease is None or job.lease is None or current.lease.token != job.lease.token:
            raise LeaseLostError(f"job {job.id} for scene {job.scene_id}: lease lost")
        return current

    def _extend(self, job: SyncJob, now: dt.datetime, expires: dt.datetime) -> SyncJob:
        with self._lock:
            current = self._held(job)
            assert current.lease is not None
            extended = attrs.evolve(current, lease=attrs.evolve(current.lease, expires_at=expires))
            self._jobs[job.id] = extended
            return extended

    def _complete(self, job: SyncJob, now: dt.datetime) -> None:
        with self._lock:
            self._held(job)
            del self._jobs[job.id]

    def _reschedule(
        self, job: SyncJob, now: dt.datetime, when: dt.datetime, error: JobError | None, *, count_attempt: bool
    ) -> SyncJob:
        with self._lock:
            current = self._held(job)
            back = attrs.evolve(
                current,
                lease=None,
                next_attempt_at=when,
                attempts=current.attempts if count_attempt else max(0, current.attempts - 1),
                last_error=error or current.last_error,
                first_failed_at=current.first_failed_at or (now if error else None),
            )
            pending = self._pending_for(job.scene_id)
            if pending is not None:
                del self._jobs[pending.id]
                back = attrs.evolve(
                    back,
                    events=back.events + pending.events,
                    enqueued_at=min(back.enqueued_at, pending.enqueued_at),
                    next_attempt_at=min(back.next_attempt_at, pending.next_attempt_at),
                )
            self._jobs[back.id] = back
            return back

    def _bury(self, job: SyncJob, now: dt.datetime, error: JobError) -> DeadLetter:
        with self._lock:
            current = self._held(job)
            del self._jobs[job.id]
            letter = DeadLetter.of(current, error, now)
            self._dead[letter.id] = letter
            return letter

    def _counts(self, now: dt.datetime) -> QueueCounts:
        with self._lock:
            ready = waiting = leased = 0
            for job in self._jobs.values():
                if job.lease is not None and job.lease.expires_at > now:
                    leased += 1
                elif job.next_attempt_at <= now:
                    ready += 1
                else:
                    waiting += 1
            return QueueCounts(ready=ready, waiting=waiting, leased=leased, dead=len(self._dead))

    def _pending(self, limit: int) -> list[SyncJob]:
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: (j.next_attempt_at, int(j.id)))[:limit]

    def _dead_letters(self, where: DeadLetterFilter, limit: int | None) -> list[DeadLetter]:
        with self._lock:
            found = sorted(
                (d for d in self._dead.values() if where.matches(d)),
                key=lambda d: (d.last_failed_at, int(d.id)),
                reverse=True,
            )
            return found if limit is None else found[:limit]

    def _requeue_dead(self, where: DeadLetterFilter, now: dt.datetime) -> int:
        with self._lock:
            chosen = [d for d in self._dead.values() if where.matches(d)]
            for letter in chosen:
                del self._dead[letter.id]
                self._enqueue(letter.scene_id, letter.reason, now, now)
            return len(chosen)

    def _purge_dead(self, before: dt.datetime) -> int:
        with self._lock:
            doomed = [d.id for d in self._dead.values() if d.last_failed_at < before]
            for letter_id in doomed:
                del self._dead[letter_id]
            return len(doomed)

    def _clear_pending(self) -> int:
        with self._lock:
            doomed = [j.id for j in self._jobs.values() if j.lease is None]
            for job_id in doomed:
                del self._jobs[job_id]
            return len(doomed)


__all__ = ["MemoryQueue"]
