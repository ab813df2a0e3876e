"""The durable work queue's values: jobs, leases, failures and dead letters."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import attrs


@attrs.frozen
class JobError:
    """Why an attempt failed: the core error class name, its message and when."""

    error_class: str
    message: str
    at: dt.datetime


@attrs.frozen
class Lease:
    """A worker's exclusive claim on a job until ``expires_at``.

    ``token`` changes on every claim, so a worker whose lease expired and was taken over
    cannot complete or fail the job it no longer owns.
    """

    owner: str
    token: str
    expires_at: dt.datetime


@attrs.frozen
class SyncJob:
    """One pending sync of one scene.

    At most one *pending* job exists per scene: a newer event merges into it (``events``
    counts them) and it keeps the earliest ``enqueued_at``. ``attempts`` counts claims, so a
    job that crashes its worker every time still reaches the dead letters.
    """

    id: str
    scene_id: str
    reason: str
    enqueued_at: dt.datetime
    next_attempt_at: dt.datetime
    attempts: int = 0
    events: int = 1
    lease: Lease | None = None
    last_error: JobError | None = None
    first_failed_at: dt.datetime | None = None


@attrs.frozen
class DeadLetter:
    """A job that failed for good, with everything needed to decide whether to retry it."""

    id: str
    scene_id: str
    reason: str
    error_class: str
    message: str
    attempts: int
    enqueued_at: dt.datetime
    first_failed_at: dt.datetime
    last_failed_at: dt.datetime

    @classmethod
    def of(cls, job: SyncJob, error: JobError, now: dt.datetime) -> DeadLetter:
        """The letter a queue files when it buries ``job`` (as stored) at ``now``."""
        return cls(
            id=job.id,
            scene_id=job.scene_id,
            reason=job.reason,
            error_class=error.error_class,
            message=error.message,
            attempts=job.attempts,
            enqueued_at=job.enqueued_at,
            first_failed_at=job.first_failed_at or now,
            last_failed_at=now,
        )


def _optional_frozenset(value: Iterable[str] | None) -> frozenset[str] | None:
    return None if value is None else frozenset(value)


@attrs.frozen
class DeadLetterFilter:
    """Which dead letters an operation applies to; every given criterion must hold."""

    scene_ids: frozenset[str] | None = attrs.field(default=None, converter=_optional_frozenset)
    error_class: str | None = None
    #: Letters whose last failure is at or after this time.
    failed_since: dt.datetime | None = None
    #: Letters whose last failure is before this time.
    failed_until: dt.datetime | None = None

    def matches(self, letter: DeadLetter) -> bool:
        return (
            (self.scene_ids is None or letter.scene_id in self.scene_ids)
            and (self.error_class is None or letter.error_class == self.error_class)
            and (self.failed_since is None or letter.last_failed_at >= self.failed_since)
            and (self.failed_until is None or letter.last_failed_at < self.failed_until)
        )


@attrs.frozen
class QueueCounts:
    """How many jobs are in each state.

    ``ready`` are pending jobs due now, ``waiting`` pending jobs scheduled for later,
    ``leased`` jobs a worker holds, ``dead`` dead letters.
    """

    ready: int = 0
    waiting: int = 0
    leased: int = 0
    dead: int = 0

    @property
    def pending(self) -> int:
        return self.ready + self.waiting


__all__ = ["DeadLetter", "DeadLetterFilter", "JobError", "Lease", "QueueCounts", "SyncJob"]
