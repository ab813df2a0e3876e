"""The Stash hook's fast path: record one event durably and get out of the user's way.

Stash starts a new process for every hook and waits for it inside the user's save, so
this module imports only the standard library (``os``, ``sqlite3``, ``time``) and none of
stash2plex's core (attrs, cattrs, pluggy): the process's cost is the interpreter's
start-up plus one committed row. It shares its schema and SQL with
:class:`~stash2plex_backends.sqlite.queue.SQLiteQueue` through
:mod:`stash2plex_backends.sqlite.schema`, and creates or migrates the database itself, so
the very first event after installation needs no prior set-up.

It also holds the named-lease operations the plugin needs before any worker exists: a
burst of hooks reserves the drain lease (exactly one wins and starts the drain task), and
the task takes the reservation over, renews it and releases it. Each is one atomic
statement.

Every write is committed at ``synchronous=FULL`` before the function returns: Stash does
not resend an event, so an acknowledged enqueue must survive power loss. "Busy" is retried
for up to :data:`~stash2plex_backends.sqlite.schema.BUSY_TIMEOUT` seconds first; any
storage failure then leaves as :class:`HookDatabaseError`, whose message names the
database file and what to do (a bad argument is a :class:`ValueError`).
"""

from __future__ import annotations

import sqlite3

from stash2plex_backends.sqlite import schema


TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeVar

    T = TypeVar("T")


class HookDatabaseError(sqlite3.DatabaseError):
    """The hook could not use the database file at :attr:`path` (corrupt, locked, unwritable,
    or written by a newer stash2plex). The message names the file; ``__cause__`` is the
    original :mod:`sqlite3` or :class:`OSError` exception.

    It stays a :class:`sqlite3.DatabaseError` so callers that caught SQLite's errors still
    do, and the hook path keeps to the standard library (no core error type here).
    """

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path


def _run(db_path: str, attempt: Callable[[], T]) -> T:
    """``attempt`` retried while busy; a storage failure becomes :class:`HookDatabaseError`."""
    try:
        return schema.retrying(attempt, max_delay=schema.HOOK_MAX_DELAY)
    except (sqlite3.Error, OSError) as exc:
        raise HookDatabaseError(db_path, schema.describe_failure(db_path, exc)) from exc


def _clean_scene_id(scene_id: object) -> str:
    if not isinstance(scene_id, str) or not scene_id.strip():
        raise ValueError(f"scene id must be a non-empty string, got {scene_id!r}")
    return scene_id.strip()


def _write(db_path: str, sql: str, params: dict[str, object]) -> int:
    def attempt() -> int:
        conn = schema.connect(db_path, synchronous="FULL", timeout=schema.HOOK_BUSY_POLL)
        try:
            conn.execute("BEGIN IMMEDIATE")
            changed = conn.execute(sql, params).rowcount
            conn.execute("COMMIT")
            return changed
        finally:
            conn.close()

    return _run(db_path, attempt)


def enqueue(db_path: str, scene_id: str, reason: str = "update", *, delay: float = 0.0) -> None:
    """Add a job for ``scene_id`` (or merge into its pending one), committed durably.

    :param db_path: the database file; it and its directory are created if missing.
    :param delay: seconds before the job may run.
    """
    scene = _clean_scene_id(scene_id)
    if delay < 0:
        raise ValueError(f"delay must be >= 0, got {delay}")
    now = schema.now_us()
    _write(
        db_path,
        schema.ENQUEUE,
        {"scene_id": scene, "reason": reason or "update", "now": now, "due": now + int(delay * 1_000_000)},
    )


def enqueue_and_reserve(db_path: str, scene_id: str, reason: str, owner: str, seconds: float) -> bool:
    """:func:`enqueue` and :func:`reserve_drain` in one transaction; ``True`` if the lease was won.

    The hook's whole job in one connection and one durable commit: one fsync and one WAL
    checkpoint on close instead of two of each, and no moment at which the job is queued
    but the reservation not yet tried.
    """
    scene = _clean_scene_id(scene_id)
    now = schema.now_us()
    job = {"scene_id": scene, "reason": reason or "update", "now": now, "due": now}
    lease = _lease_params(owner, seconds, schema.DRAIN_LEASE)

    def attempt() -> bool:
        conn = schema.connect(db_path, synchronous="FULL", timeout=schema.HOOK_BUSY_POLL)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(schema.ENQUEUE, job)
            won = conn.execute(schema.LEASE_ACQUIRE, lease).fetchone() is not None
            conn.execute("COMMIT")
            return won
        finally:
            conn.close()

    return _run(db_path, attempt)


def remove_pending(db_path: str, scene_id: str) -> int:
    """Drop the scene's pending (not leased) job, e.g. after the scene was destroyed."""
    return _write(db_path, schema.REMOVE_PENDING, {"scene_id": _clean_scene_id(scene_id)})


def lease_holder(db_path: str, name: str = schema.DRAIN_LEASE) -> str | None:
    """The owner of the named lease if it is held and unexpired, else ``None``."""

    def attempt() -> str | None:
        conn: sqlite3.Connection = schema.connect(db_path, synchronous="NORMAL", timeout=schema.HOOK_BUSY_POLL)
        try:
            row = conn.execute(schema.LEASE_HOLDER, {"name": name, "now": schema.now_us()}).fetchone()
            return None if row is None else str(row[0])
        finally:
            conn.close()

    return _run(db_path, attempt)


def drain_lease_held(db_path: str) -> bool:
    """Whether a worker holds the drain lease now (if not, the hook should start one)."""
    return lease_holder(db_path, schema.DRAIN_LEASE) is not None


#: Owners of drain reservations made by hooks start with this; a drain task takes them over.
RESERVATION_PREFIX = "hook:"


def _acquire(db_path: str, sql: str, params: dict[str, object]) -> bool:
    def attempt() -> bool:
        conn = schema.connect(db_path, synchronous="FULL", timeout=schema.HOOK_BUSY_POLL)
        try:
            conn.execute("BEGIN IMMEDIATE")
            won = conn.execute(sql, params).fetchone() is not None
            conn.execute("COMMIT")
            return won
        finally:
            conn.close()

    return _run(db_path, attempt)


def _lease_params(owner: str, seconds: float, name: str) -> dict[str, object]:
    if seconds <= 0:
        raise ValueError(f"seconds must be > 0, got {seconds}")
    now = schema.now_us()
    return {"name": name, "owner": owner, "token": owner, "now": now, "expires": now + int(seconds * 1_000_000)}


def reserve_drain(db_path: str, owner: str, seconds: float) -> bool:
    """Reserve the drain lease for a worker about to start, if nobody holds it (atomic).

    A burst of hooks all call this; exactly one wins and starts the drain. ``owner``
    should start with :data:`RESERVATION_PREFIX` so the started worker can take over.
    """
    return _acquire(db_path, schema.LEASE_ACQUIRE, _lease_params(owner, seconds, schema.DRAIN_LEASE))


def take_drain(db_path: str, owner: str, seconds: float) -> bool:
    """Take the drain lease if it is free, expired, or only reserved by a hook (atomic)."""
    params = _lease_params(owner, seconds, schema.DRAIN_LEASE) | {"reserved": RESERVATION_PREFIX}
    return _acquire(db_path, schema.LEASE_TAKE_OVER, params)


def renew_lease(db_path: str, owner: str, seconds: float, name: str = schema.DRAIN_LEASE) -> bool:
    """Push out the expiry of a lease ``owner`` holds; ``False`` if it lost it."""
    expires = schema.now_us() + int(seconds * 1_000_000)
    return _write(db_path, schema.LEASE_RENEW, {"name": name, "token": owner, "expires": expires}) > 0


def release_lease(db_path: str, owner: str, name: str = schema.DRAIN_LEASE) -> bool:
    """Give up a lease ``owner`` holds; ``False`` if it did not hold it."""
    return _write(db_path, schema.LEASE_RELEASE, {"name": name, "token": owner}) > 0


__all__ = [
    "RESERVATION_PREFIX",
    "HookDatabaseError",
    "drain_lease_held",
    "enqueue",
    "enqueue_and_reserve",
    "lease_holder",
    "release_lease",
    "remove_pending",
    "renew_lease",
    "reserve_drain",
    "take_drain",
]
