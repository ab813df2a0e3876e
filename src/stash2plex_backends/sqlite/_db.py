"""One lazily opened connection per backend instance, and sqlite3 errors as core errors."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
import threading
from collections.abc import Callable
from typing import TypeVar

from stash2plex_backends.sqlite import schema
from stash2plex_core.errors import StateError
from stash2plex_core.errors import StateLockTimeoutError
from stash2plex_core.settings import Settings


T = TypeVar("T")
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)


def to_us(value: dt.datetime) -> int:
    """An aware datetime as stored: integer microseconds since the epoch, UTC."""
    if value.tzinfo is None:
        raise ValueError(f"refusing to store a naive datetime {value!r}")
    return (value - EPOCH) // _MICROSECOND


def from_us(value: int) -> dt.datetime:
    return EPOCH + dt.timedelta(microseconds=value)


def optional_from_us(value: int | None) -> dt.datetime | None:
    return None if value is None else from_us(value)


def default_database_path(settings: Settings) -> str:
    """``<data_dir>/stash2plex.db``; without ``data_dir``, the platform's user data dir."""
    directory = settings.data_dir
    if directory is None:
        import platformdirs

        directory = platformdirs.user_data_dir("stash2plex", appauthor=False)
    return os.path.join(os.path.expanduser(directory), schema.DATABASE_NAME)


def sqlite_is_recent_enough() -> bool:
    """SQLite 3.35+ (``RETURNING``) with the JSON functions (dead-letter filters)."""
    if sqlite3.sqlite_version_info < schema.MIN_SQLITE:
        return False
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("SELECT value FROM json_each('[1]')").fetchall()
    except sqlite3.Error:
        return False
    finally:
        conn.close()
    return True


def translate(path: str, exc: BaseException, timeout: float) -> Exception:
    """The core error for a storage failure; the message names the file and what to do."""
    message = schema.describe_failure(path, exc, timeout)
    if isinstance(exc, sqlite3.Error) and schema.is_busy(exc):
        return StateLockTimeoutError(message)
    return StateError(message)


_FILE_WRITE_LOCKS: dict[str, threading.RLock] = {}
_FILE_WRITE_LOCKS_GUARD = threading.Lock()


def _file_write_lock(path: str) -> threading.RLock:
    """The lock this process's writers to ``path`` take around their write transactions.

    The queue and the state store keep a connection each to the same file. Without this,
    one of them meeting the other's write transaction waits in SQLite's busy handler,
    which sleeps 1, 2, 5, 10... ms between looks, while the drain's other threads queue
    behind it; with it, the second writer takes the lock the moment the first commits.
    Other processes still meet SQLite's busy timeout, as before.
    """
    key = os.path.realpath(path)
    with _FILE_WRITE_LOCKS_GUARD:
        return _FILE_WRITE_LOCKS.setdefault(key, threading.RLock())


class Database:
    """A SQLite file used through one connection, opened on first use.

    The connection is shared by the instance's threads under a lock (SQLite serialises
    writers anyway) and is re-opened after a ``fork``, because a connection must never
    cross into a child process. Write transactions also hold the file's in-process write
    lock (:func:`_file_write_lock`). Every failure leaves as a core error naming the file.
    """

    def __init__(self, path: str | os.PathLike[str], *, synchronous: str = "NORMAL", timeout: float = 10.0) -> None:
        self.path = os.fspath(path)
        self.synchronous = synchronous
        self.timeout = timeout
        self._lock = threading.RLock()
        self._write_lock = _file_write_lock(self.path)
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        self._mode = synchronous
        self._closed = False

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise StateError(f"{self.path}: used after close()")
        if self._conn is None or self._pid != os.getpid():
            # After a fork the parent's connection is abandoned, never closed here: closing
            # it could checkpoint or release locks that belong to the parent.
            self._conn = schema.connect(self.path, synchronous=self.synchronous, timeout=self.timeout)
            self._pid = os.getpid()
            self._mode = self.synchronous
        return self._conn

    def _run(
        self,
        body: Callable[[sqlite3.Connection], T],
        begin: str | None,
        synchronous: str | None,
        *,
        writes: bool = False,
    ) -> T:
        def attempt() -> T:
            conn = self._connection()
            mode = synchronous or self.synchronous
            if mode != self._mode:
                conn.execute(f"PRAGMA synchronous = {mode}")
                self._mode = mode
            if begin is None:
                return body(conn)
            conn.execute(begin)
            try:
                result = body(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return result

        with self._lock, self._write_lock if writes else contextlib.nullcontext():
            try:
                return schema.retrying(attempt, timeout=self.timeout)
            except (sqlite3.Error, OSError) as exc:
                raise translate(self.path, exc, self.timeout) from exc

    def write(self, body: Callable[[sqlite3.Connection], T], *, synchronous: str | None = None) -> T:
        """Run ``body`` in one ``BEGIN IMMEDIATE`` transaction (retried whole on busy)."""
        return self._run(body, "BEGIN IMMEDIATE", synchronous, writes=True)

    def statement(self, body: Callable[[sqlite3.Connection], T], *, synchronous: str | None = None) -> T:
        """Run ``body``, one write statement, as its own transaction (no ``BEGIN``/``COMMIT``).

        One statement is atomic by itself, and it takes the write lock before it reads, so
        it waits out another writer on the busy timeout just as ``BEGIN IMMEDIATE`` does.
        Every call into SQLite lets go of the GIL and must wait to take it back while this
        connection's lock is held, so the two calls saved shorten the lock for every other
        thread: the drain's per-job writes use this.
        """
        return self._run(body, None, synchronous, writes=True)

    def read(self, body: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``body`` in one read transaction: a consistent snapshot, kept short."""
        return self._run(body, "BEGIN", None)

    def query(self, body: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``body``, one read statement fetched whole, without ``BEGIN``/``COMMIT``.

        A single statement is its own consistent snapshot. Every call into SQLite lets go of
        the GIL and must wait to take it back while this connection's lock is held, so the
        two calls saved here shorten the lock for every other thread (the drain's hot reads).
        """
        return self._run(body, None, None)

    def integrity_check(self) -> list[str]:
        """``PRAGMA integrity_check``'s findings; ``["ok"]`` for a healthy file."""
        return self._run(lambda c: [str(r[0]) for r in c.execute("PRAGMA integrity_check")], None, None)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conn, self._conn = self._conn, None
            if conn is not None and self._pid == os.getpid():
                conn.close()


__all__ = ["Database", "default_database_path", "from_us", "optional_from_us", "to_us", "translate"]
