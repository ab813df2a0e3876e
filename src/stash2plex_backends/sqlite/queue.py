"""SQLiteQueue: the durable lease queue the hook, the worker and the CLI share."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import uuid
from typing import Any
from typing import ClassVar
from typing import Self

from stash2plex_backends.sqlite import schema
from stash2plex_backends.sqlite._db import Database
from stash2plex_backends.sqlite._db import default_database_path
from stash2plex_backends.sqlite._db import from_us
from stash2plex_backends.sqlite._db import optional_from_us
from stash2plex_backends.sqlite._db import sqlite_is_recent_enough
from stash2plex_backends.sqlite._db import to_us
from stash2plex_core.clocks import SystemClock
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


def _job(row: sqlite3.Row | tuple[Any, ...]) -> SyncJob:
    (
        job_id,
        scene_id,
        reason,
        state,
        enqueued_at,
        next_attempt_at,
        attempts,
        events,
        lease_owner,
        lease_token,
        lease_until,
        error_class,
        error_message,
        error_at,
        first_failed_at,
    ) = row
    return SyncJob(
        id=str(job_id),
        scene_id=scene_id,
        reason=reason,
        enqueued_at=from_us(enqueued_at),
        next_attempt_at=from_us(next_attempt_at),
        attempts=attempts,
        events=events,
        lease=Lease(lease_owner, lease_token, from_us(lease_until)) if state == schema.LEASED else None,
        last_error=None
        if error_class is None
        else JobError(error_class=error_class, message=error_message or "", at=from_us(error_at)),
        first_failed_at=optional_from_us(first_failed_at),
    )


def _letter(row: sqlite3.Row | tuple[Any, ...]) -> DeadLetter:
    job_id, scene_id, reason, error_class, message, attempts, enqueued_at, first_failed_at, last_failed_at = row
    return DeadLetter(
        id=str(job_id),
        scene_id=scene_id,
        reason=reason,
        error_class=error_class,
        message=message,
        attempts=attempts,
        enqueued_at=from_us(enqueued_at),
        first_failed_at=from_us(first_failed_at),
        last_failed_at=from_us(last_failed_at),
    )


def _job_id(job: SyncJob) -> int:
    try:
        return int(job.id)
    except ValueError:
        raise LeaseLostError(f"job {job.id!r} for scene {job.scene_id} is not from this queue") from None


def _where(where: DeadLetterFilter) -> dict[str, Any]:
    """Parameters for :data:`~stash2plex_backends.sqlite.schema.DEAD_WHERE` (``None``: any)."""
    return {
        "scene_ids": None if where.scene_ids is None else json.dumps(sorted(where.scene_ids)),
        "error_class": where.error_class,
        "since": None if where.failed_since is None else to_us(where.failed_since),
        "until": None if where.failed_until is None else to_us(where.failed_until),
    }


class SQLiteQueue(Queue):
    """The :class:`~stash2plex_core.ports.queue.Queue` in a SQLite file (WAL), many processes at once.

    Every primitive is one short transaction: ``BEGIN IMMEDIATE`` takes the write lock up
    front, so a waiting process queues on the busy timeout instead of failing. Claiming
    first returns expired leases to the queue (a killed worker loses nothing), then takes
    the due-first job with one ``UPDATE … RETURNING`` through an index, without sorting.

    Durability: producer writes (``enqueue``, ``enqueue_many``, ``requeue_dead``) commit
    at ``synchronous=FULL``, because an event Stash fires is never sent again. Worker
    writes use ``worker_synchronous`` (``NORMAL`` by default): after a power loss the
    last completions may roll back, which costs one re-delivery of an idempotent edit.

    :param path: the database file (its directory is created 0700, the file 0600).
    :param clock: the source of every time stored.
    :param busy_timeout: seconds to wait for another process's lock before raising
        :class:`~stash2plex_core.errors.StateLockTimeoutError`.
    """

    id: ClassVar[str] = "sqlite"
    priority: ClassVar[int] = 10

    def __init__(
        self,
        path: str | os.PathLike[str],
        clock: Clock | None = None,
        *,
        busy_timeout: float = schema.BUSY_TIMEOUT,
        worker_synchronous: str = "NORMAL",
    ) -> None:
        super().__init__(clock or SystemClock())
        self.db = Database(path, synchronous=worker_synchronous, timeout=busy_timeout)

    @property
    def path(self) -> str:
        return self.db.path

    @classmethod
    def viable(cls) -> bool:
        """Python's :mod:`sqlite3` must link SQLite 3.35+ (``RETURNING``) with JSON1."""
        return sqlite_is_recent_enough()

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock) -> Self:
        return cls(default_database_path(settings), clock)

    def close(self) -> None:
        self.db.close()

    def integrity_check(self) -> list[str]:
        """``PRAGMA integrity_check``; ``["ok"]`` when the file is sound."""
        return self.db.integrity_check()

    # -- producers

    def _enqueue(self, scene_id: str, reason: str, now: dt.datetime, due: dt.datetime) -> SyncJob:
        params = {"scene_id": scene_id, "reason": reason, "now": to_us(now), "due": to_us(due)}
        row = self.db.write(lambda c: c.execute(schema.ENQUEUE_RETURNING, params).fetchone(), synchronous="FULL")
        return _job(row)

    def _enqueue_many(self, scene_ids: list[str], reason: str, now: dt.datetime) -> int:
        stamp = to_us(now)
        rows = [{"scene_id": s, "reason": reason, "now": stamp, "due": stamp} for s in scene_ids]
        self.db.write(lambda c: c.executemany(schema.ENQUEUE, rows), synchronous="FULL")
        return len(scene_ids)

    def _remove_pending(self, scene_id: str) -> int:
        return self.db.write(lambda c: c.execute(schema.REMOVE_PENDING, {"scene_id": scene_id}).rowcount)

    # -- consumers

    @staticmethod
    def _reclaim_expired(c: sqlite3.Connection, stamp: int) -> None:
        """Return expired leases to the queue (merging with pending work for their scenes)."""
        if c.execute(schema.ANY_EXPIRED, {"now": stamp}).fetchone() is not None:
            c.execute(schema.RECLAIM_MERGE, {"now": stamp})
            c.execute(schema.RECLAIM_DROP, {"now": stamp})
            c.execute(schema.RECLAIM_RESET, {"now": stamp})

    def _claim(self, owner: str, token: str, now: dt.datetime, expires: dt.datetime) -> SyncJob | None:
        stamp = to_us(now)

        def body(c: sqlite3.Connection) -> SyncJob | None:
            self._reclaim_expired(c, stamp)
            row = c.execute(
                schema.CLAIM, {"owner": owner, "token": token, "expires": to_us(expires), "now": stamp}
            ).fetchone()
            return None if row is None else _job(row)

        return self.db.write(body)

    def _claim_many(self, owner: str, now: dt.datetime, expires: dt.datetime, limit: int) -> list[SyncJob]:
        """The jobs :meth:`_claim` would take one by one, in one write transaction."""
        stamp, until = to_us(now), to_us(expires)

        def body(c: sqlite3.Connection) -> list[SyncJob]:
            self._reclaim_expired(c, stamp)
            jobs: list[SyncJob] = []
            while len(jobs) < limit:
                params = {"owner": owner, "token": uuid.uuid4().hex, "expires": until, "now": stamp}
                row = c.execute(schema.CLAIM, params).fetchone()
                if row is None:
                    break
                jobs.append(_job(row))
            return jobs

        return self.db.write(body)

    def _held(self, c: sqlite3.Connection, job: SyncJob) -> SyncJob:
        """The job as stored, if ``job``'s lease token still holds it."""
        assert job.lease is not None
        row = c.execute(schema.HELD, {"id": _job_id(job), "token": job.lease.token}).fetchone()
        if row is None:
            raise LeaseLostError(f"job {job.id} for scene {job.scene_id}: lease lost")
        return _job(row)

    def _extend(self, job: SyncJob, now: dt.datetime, expires: dt.datetime) -> SyncJob:
        def body(c: sqlite3.Connection) -> SyncJob:
            self._held(c, job)
            row = c.execute(schema.EXTEND, {"expires": to_us(expires), "id": _job_id(job)}).fetchone()
            return _job(row)

        return self.db.write(body)

    def _complete(self, job: SyncJob, now: dt.datetime) -> None:
        assert job.lease is not None
        params = {"id": _job_id(job), "token": job.lease.token}
        # One statement, its own transaction: the drain completes every job this way.
        if self.db.statement(lambda c: c.execute(schema.COMPLETE, params).rowcount) != 1:
            raise LeaseLostError(f"job {job.id} for scene {job.scene_id}: lease lost")

    def _reschedule(
        self, job: SyncJob, now: dt.datetime, when: dt.datetime, error: JobError | None, *, count_attempt: bool
    ) -> SyncJob:
        def body(c: sqlite3.Connection) -> SyncJob:
            current = self._held(c, job)
            last_error = error or current.last_error
            first_failed = current.first_failed_at or (now if error else None)
            enqueued_at, due, events = current.enqueued_at, when, current.events
            pending = c.execute(schema.TAKE_PENDING, {"scene_id": current.scene_id}).fetchone()
            if pending is not None:  # an event arrived while we held the job: merge it
                enqueued_at = min(enqueued_at, from_us(pending[0]))
                due = min(due, from_us(pending[1]))
                events += pending[2]
            params = {
                "id": _job_id(job),
                "attempts": current.attempts if count_attempt else max(0, current.attempts - 1),
                "events": events,
                "enqueued_at": to_us(enqueued_at),
                "due": to_us(due),
                "error_class": None if last_error is None else last_error.error_class,
                "error_message": None if last_error is None else last_error.message,
                "error_at": None if last_error is None else to_us(last_error.at),
                "first_failed_at": None if first_failed is None else to_us(first_failed),
            }
            row = c.execute(schema.RESCHEDULE, params).fetchone()
            return _job(row)

        return self.db.write(body)

    def _bury(self, job: SyncJob, now: dt.datetime, error: JobError) -> DeadLetter:
        def body(c: sqlite3.Connection) -> DeadLetter:
            current = self._held(c, job)
            c.execute(schema.DELETE_JOB, {"id": _job_id(job)})
            letter = DeadLetter.of(current, error, now)
            c.execute(
                schema.BURY,
                {
                    "id": _job_id(job),
                    "scene_id": letter.scene_id,
                    "reason": letter.reason,
                    "error_class": letter.error_class,
                    "message": letter.message,
                    "attempts": letter.attempts,
                    "enqueued_at": to_us(letter.enqueued_at),
                    "first_failed_at": to_us(letter.first_failed_at),
                    "last_failed_at": to_us(letter.last_failed_at),
                },
            )
            return letter

        return self.db.write(body)

    # -- inspection and administration

    def _counts(self, now: dt.datetime) -> QueueCounts:
        params = {"now": to_us(now)}

        def body(c: sqlite3.Connection) -> QueueCounts:
            leased, ready, waiting = c.execute(schema.COUNT_JOBS, params).fetchone()
            (dead,) = c.execute(schema.COUNT_DEAD).fetchone()
            return QueueCounts(ready=ready, waiting=waiting, leased=leased, dead=dead)

        return self.db.read(body)

    def _pending(self, limit: int) -> list[SyncJob]:
        return self.db.read(lambda c: [_job(r) for r in c.execute(schema.LIST_JOBS, {"limit": limit})])

    def _dead_letters(self, where: DeadLetterFilter, limit: int | None) -> list[DeadLetter]:
        params = {**_where(where), "limit": -1 if limit is None else max(0, limit)}
        return self.db.read(lambda c: [_letter(r) for r in c.execute(schema.LIST_DEAD, params)])

    def _requeue_dead(self, where: DeadLetterFilter, now: dt.datetime) -> int:
        params = _where(where)
        stamp = to_us(now)

        def body(c: sqlite3.Connection) -> int:
            letters = c.execute(schema.TAKE_DEAD, params).fetchall()
            # Oldest failure first, so the requeued jobs keep the order they failed in.
            letters.sort(key=lambda r: (r[2], r[3]))
            c.executemany(
                schema.ENQUEUE,
                [{"scene_id": s, "reason": r, "now": stamp, "due": stamp} for s, r, _, _ in letters],
            )
            return len(letters)

        return self.db.write(body, synchronous="FULL")

    def _purge_dead(self, before: dt.datetime) -> int:
        params = {"before": to_us(before)}
        return self.db.write(lambda c: c.execute(schema.PURGE_DEAD, params).rowcount)

    def _clear_pending(self) -> int:
        return self.db.write(lambda c: c.execute(schema.CLEAR_PENDING).rowcount)

    # -- named leases (the worker's "drain" lease; see hookpath.drain_lease_held)

    def acquire_lease(self, name: str, owner: str, seconds: float) -> str | None:
        """Take the named lease for ``seconds`` if nobody holds it; returns its token or ``None``.

        One atomic statement, so two workers racing for ``"drain"`` cannot both win.
        """
        if seconds <= 0:
            raise ValueError(f"seconds must be > 0, got {seconds}")
        now = self.clock.now()
        params = {
            "name": name,
            "owner": owner,
            "token": uuid.uuid4().hex,
            "now": to_us(now),
            "expires": to_us(now + dt.timedelta(seconds=seconds)),
        }
        row = self.db.write(lambda c: c.execute(schema.LEASE_ACQUIRE, params).fetchone())
        return None if row is None else str(row[0])

    def renew_lease(self, name: str, token: str, seconds: float) -> bool:
        """Push the lease's expiry out; ``False`` if ``token`` no longer holds it."""
        expires = to_us(self.clock.now() + dt.timedelta(seconds=seconds))
        params = {"name": name, "token": token, "expires": expires}
        return bool(self.db.write(lambda c: c.execute(schema.LEASE_RENEW, params).rowcount))

    def release_lease(self, name: str, token: str) -> bool:
        """Give the lease up; ``False`` if ``token`` no longer held it."""
        params = {"name": name, "token": token}
        return bool(self.db.write(lambda c: c.execute(schema.LEASE_RELEASE, params).rowcount))

    def lease_holder(self, name: str) -> str | None:
        """Who holds the named lease now, or ``None``."""
        params = {"name": name, "now": to_us(self.clock.now())}
        row = self.db.read(lambda c: c.execute(schema.LEASE_HOLDER, params).fetchone())
        return None if row is None else str(row[0])


__all__ = ["SQLiteQueue"]
