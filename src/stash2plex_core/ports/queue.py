"""The Queue port: durable, coalescing, leased sync jobs keyed by scene."""

from __future__ import annotations

import datetime as dt
import uuid
from abc import ABC
from abc import abstractmethod
from collections.abc import Iterable

from stash2plex_core.errors import LeaseLostError
from stash2plex_core.models.jobs import DeadLetter
from stash2plex_core.models.jobs import DeadLetterFilter
from stash2plex_core.models.jobs import JobError
from stash2plex_core.models.jobs import QueueCounts
from stash2plex_core.models.jobs import SyncJob
from stash2plex_core.ports._backend import BackendBase
from stash2plex_core.ports.clock import Clock


MAX_MESSAGE = 2000


def _scene_id(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"scene id must be a non-empty string, got {value!r}")
    return value.strip()


def _check_claim(owner: str, lease_seconds: float) -> None:
    if lease_seconds <= 0:
        raise ValueError(f"lease_seconds must be > 0, got {lease_seconds}")
    if not owner:
        raise ValueError("owner must name the worker")


def job_error(error: BaseException | JobError, at: dt.datetime) -> JobError:
    """The persisted form of a failure: its class name and (bounded) message."""
    if isinstance(error, JobError):
        return error
    return JobError(error_class=type(error).__name__, message=str(error)[:MAX_MESSAGE], at=at)


class Queue(BackendBase, ABC):
    """Durable work queue of :class:`SyncJob`, at-least-once.

    The public methods enforce the rules; a backend implements the ``_primitives``, each of
    which must be atomic (one transaction) and safe against other processes using the
    same storage at the same time. Rules every backend keeps (the contract checks them):

    * **Coalescing.** At most one *pending* job per scene. ``enqueue`` of a scene that has
      one merges into it: ``events`` grows, ``enqueued_at`` and ``next_attempt_at`` stay
      (the earliest wins). A scene whose job is leased may get one new pending job, because
      the worker may have read Stash before the newest change.
    * **Leases.** ``claim`` returns the ready job (``next_attempt_at <= now``) that is due
      first, stamps a lease with a fresh token, and counts one attempt. No two live leases
      exist for one job, and a scene with a live lease is not claimed again. A job whose
      lease expired is ready again. ``complete``, ``retry_at``, ``release``, ``extend`` and
      ``dead_letter`` raise :class:`LeaseLostError` unless the caller's token still holds.
    * **Retries.** ``retry_at`` puts the job back as pending at ``when`` keeping its attempts
      and the error; ``release`` puts it back *without* counting the attempt (used while the
      circuit breaker is open, so jobs wait instead of burning). If a pending job for the
      scene appeared meanwhile, the two merge.
    * **Dead letters** keep the error class, message, attempts and first/last failure times;
      they can be listed, requeued (attempts reset, coalescing with pending work) and
      purged by age.
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    # -- producers

    def enqueue(self, scene_id: str, reason: str = "update", *, delay: float = 0.0) -> SyncJob:
        """Add or merge a job for ``scene_id`` due after ``delay`` seconds."""
        if delay < 0:
            raise ValueError(f"delay must be >= 0, got {delay}")
        now = self.clock.now()
        return self._enqueue(_scene_id(scene_id), reason or "update", now, now + dt.timedelta(seconds=delay))

    def enqueue_many(self, scene_ids: Iterable[str], reason: str = "sync-all") -> int:
        """Enqueue many scenes in one transaction; returns how many distinct scenes."""
        ids = list(dict.fromkeys(_scene_id(s) for s in scene_ids))
        if not ids:
            return 0
        return self._enqueue_many(ids, reason or "sync-all", self.clock.now())

    def remove(self, scene_id: str) -> int:
        """Drop pending (not leased) work for a scene, e.g. after it was destroyed."""
        return self._remove_pending(_scene_id(scene_id))

    # -- consumers

    def claim(self, owner: str, lease_seconds: float) -> SyncJob | None:
        """Lease the next ready job for ``lease_seconds``, or return ``None``."""
        _check_claim(owner, lease_seconds)
        now = self.clock.now()
        return self._claim(owner, uuid.uuid4().hex, now, now + dt.timedelta(seconds=lease_seconds))

    def claim_many(self, owner: str, lease_seconds: float, limit: int) -> list[SyncJob]:
        """Lease up to ``limit`` ready jobs at once, in the order :meth:`claim` would take them.

        A worker that hydrates several jobs with one request to Stash claims them together;
        each job has its own lease, exactly as if claimed one by one.
        """
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        _check_claim(owner, lease_seconds)
        now = self.clock.now()
        return self._claim_many(owner, now, now + dt.timedelta(seconds=lease_seconds), limit)

    def extend(self, job: SyncJob, lease_seconds: float) -> SyncJob:
        """Push the lease's expiry out (a heartbeat for long jobs)."""
        self._require_lease(job)
        now = self.clock.now()
        return self._extend(job, now, now + dt.timedelta(seconds=lease_seconds))

    def complete(self, job: SyncJob) -> None:
        """The job succeeded: remove it."""
        self._require_lease(job)
        self._complete(job, self.clock.now())

    def retry_at(self, job: SyncJob, when: dt.datetime, error: BaseException | JobError) -> SyncJob:
        """The attempt failed; run the job again at ``when``."""
        self._require_lease(job)
        now = self.clock.now()
        return self._reschedule(job, now, max(when, now), job_error(error, now), count_attempt=True)

    def release(self, job: SyncJob, when: dt.datetime | None = None) -> SyncJob:
        """Give the job back without counting this attempt."""
        self._require_lease(job)
        now = self.clock.now()
        return self._reschedule(job, now, max(when or now, now), None, count_attempt=False)

    def dead_letter(self, job: SyncJob, error: BaseException | JobError) -> DeadLetter:
        """The job failed for good: move it to the dead letters."""
        self._require_lease(job)
        now = self.clock.now()
        return self._bury(job, now, job_error(error, now))

    # -- inspection and administration

    def counts(self) -> QueueCounts:
        return self._counts(self.clock.now())

    def pending(self, limit: int = 100) -> list[SyncJob]:
        """Pending and leased jobs, the ones due first first."""
        return self._pending(max(0, limit))

    def dead_letters(self, where: DeadLetterFilter | None = None, limit: int | None = None) -> list[DeadLetter]:
        """Dead letters matching ``where``, most recent failure first."""
        return self._dead_letters(where or DeadLetterFilter(), limit)

    def requeue_dead(self, where: DeadLetterFilter | None = None) -> int:
        """Move matching dead letters back to the queue with attempts reset."""
        return self._requeue_dead(where or DeadLetterFilter(), self.clock.now())

    def purge_dead(self, older_than: dt.timedelta) -> int:
        """Delete dead letters whose last failure is older than ``older_than``."""
        return self._purge_dead(self.clock.now() - older_than)

    def clear_pending(self) -> int:
        """Delete every pending (not leased) job."""
        return self._clear_pending()

    def close(self) -> None:
        """Release resources (connections); the queue must not be used afterwards."""

    @staticmethod
    def _require_lease(job: SyncJob) -> None:
        if job.lease is None:
            raise LeaseLostError(f"job {job.id} for scene {job.scene_id} holds no lease")

    # -- primitives: each one atomic

    @abstractmethod
    def _enqueue(self, scene_id: str, reason: str, now: dt.datetime, due: dt.datetime) -> SyncJob: ...

    @abstractmethod
    def _enqueue_many(self, scene_ids: list[str], reason: str, now: dt.datetime) -> int: ...

    @abstractmethod
    def _remove_pending(self, scene_id: str) -> int: ...

    @abstractmethod
    def _claim(self, owner: str, token: str, now: dt.datetime, expires: dt.datetime) -> SyncJob | None: ...

    def _claim_many(self, owner: str, now: dt.datetime, expires: dt.datetime, limit: int) -> list[SyncJob]:
        """One :meth:`_claim` after another; a backend may do it in one transaction."""
        jobs: list[SyncJob] = []
        while len(jobs) < limit and (job := self._claim(owner, uuid.uuid4().hex, now, expires)) is not None:
            jobs.append(job)
        return jobs

    @abstractmethod
    def _extend(self, job: SyncJob, now: dt.datetime, expires: dt.datetime) -> SyncJob: ...

    @abstractmethod
    def _complete(self, job: SyncJob, now: dt.datetime) -> None: ...

    @abstractmethod
    def _reschedule(
        self, job: SyncJob, now: dt.datetime, when: dt.datetime, error: JobError | None, *, count_attempt: bool
    ) -> SyncJob: ...

    @abstractmethod
    def _bury(self, job: SyncJob, now: dt.datetime, error: JobError) -> DeadLetter: ...

    @abstractmethod
    def _counts(self, now: dt.datetime) -> QueueCounts: ...

    @abstractmethod
    def _pending(self, limit: int) -> list[SyncJob]: ...

    @abstractmethod
    def _dead_letters(self, where: DeadLetterFilter, limit: int | None) -> list[DeadLetter]: ...

    @abstractmethod
    def _requeue_dead(self, where: DeadLetterFilter, now: dt.datetime) -> int: ...

    @abstractmethod
    def _purge_dead(self, before: dt.datetime) -> int: ...

    @abstractmethod
    def _clear_pending(self) -> int: ...


__all__ = ["Queue", "job_error"]
