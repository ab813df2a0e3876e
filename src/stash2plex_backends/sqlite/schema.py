"""The SQLite layout, its migrations and the SQL every process shares.

This module is the one source of truth for the database schema and the statements that
touch it. It imports only the standard library (``os``, ``sqlite3``, ``time``) because the
Stash hook (:mod:`stash2plex_backends.sqlite.hookpath`) runs it in a fresh process on the
user's save path, where every millisecond of import counts; :class:`SQLiteQueue` and
:class:`SQLiteStateStore` use the same constants so the two can never disagree.

Layout (schema version 1):

* ``jobs`` — one row per job. ``state`` is 0 (pending) or 1 (leased). Two partial unique
  indexes make coalescing a database rule rather than a convention: at most one pending
  and at most one leased row per scene, so a hook's ``INSERT … ON CONFLICT`` merges into
  the pending row even when many processes race.
* ``jobs_claim`` on ``(state, next_attempt_at)``: the claim's ``ORDER BY next_attempt_at,
  id`` is the index order (the rowid ends every index), so claiming never sorts. It also
  finds the few leased rows (one per worker) when expired leases are reclaimed.
* ``dead_letters``, ``leases`` (named leases such as ``"drain"``), ``state`` (the state
  store's documents) and ``schema_history``.

Times are integers: microseconds since the Unix epoch, UTC. They compare exactly, index
well, and round-trip to aware datetimes without float rounding.

The version lives in ``PRAGMA user_version`` (a header read, no table scan);
``schema_history`` records when each migration ran.
"""

from __future__ import annotations

import os
import sqlite3
import time


TYPE_CHECKING = False
if TYPE_CHECKING:  # the hook must not pay for importing typing
    from collections.abc import Callable
    from typing import TypeVar

    T = TypeVar("T")

#: The schema this code reads and writes.
SCHEMA_VERSION = 1
#: The file name inside the data directory.
DATABASE_NAME = "stash2plex.db"
#: Seconds a connection waits for another process's write lock (SQLite's busy timeout),
#: and the deadline for retrying the few busy cases SQLite does not wait on.
BUSY_TIMEOUT = 10.0
#: ``UPDATE … RETURNING`` and ``UPDATE … FROM`` need this SQLite.
MIN_SQLITE = (3, 35, 0)
#: The named lease a worker holds while it drains the queue.
DRAIN_LEASE = "drain"

PENDING = 0
LEASED = 1

#: Migrations: version N's statements take a database at version N - 1 to N.
MIGRATIONS: dict[int, tuple[str, tuple[str, ...]]] = {
    1: (
        "jobs, dead letters, named leases and state documents",
        (
            """
            CREATE TABLE jobs (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                scene_id TEXT NOT NULL,
                reason TEXT NOT NULL,
                state INTEGER NOT NULL DEFAULT 0 CHECK (state IN (0, 1)),
                enqueued_at INTEGER NOT NULL,
                next_attempt_at INTEGER NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                events INTEGER NOT NULL DEFAULT 1,
                lease_owner TEXT,
                lease_token TEXT,
                lease_until INTEGER,
                error_class TEXT,
                error_message TEXT,
                error_at INTEGER,
                first_failed_at INTEGER,
                CHECK ((state = 1) = (lease_token IS NOT NULL))
            )
            """,
            "CREATE UNIQUE INDEX jobs_one_pending_per_scene ON jobs (scene_id) WHERE state = 0",
            "CREATE UNIQUE INDEX jobs_one_lease_per_scene ON jobs (scene_id) WHERE state = 1",
            "CREATE INDEX jobs_claim ON jobs (state, next_attempt_at)",
            """
            CREATE TABLE dead_letters (
                id INTEGER PRIMARY KEY,
                scene_id TEXT NOT NULL,
                reason TEXT NOT NULL,
                error_class TEXT NOT NULL,
                message TEXT NOT NULL,
                attempts INTEGER NOT NULL,
                enqueued_at INTEGER NOT NULL,
                first_failed_at INTEGER NOT NULL,
                last_failed_at INTEGER NOT NULL
            )
            """,
            "CREATE INDEX dead_letters_by_time ON dead_letters (last_failed_at)",
            "CREATE INDEX dead_letters_by_class ON dead_letters (error_class, last_failed_at)",
            """
            CREATE TABLE leases (
                name TEXT PRIMARY KEY,
                owner TEXT NOT NULL,
                token TEXT NOT NULL,
                expires_at INTEGER NOT NULL
            ) WITHOUT ROWID
            """,
            """
            CREATE TABLE state (
                namespace TEXT NOT NULL,
                key TEXT NOT NULL,
                document TEXT NOT NULL,
                updated_at INTEGER NOT NULL,
                PRIMARY KEY (namespace, key)
            ) WITHOUT ROWID
            """,
            """
            CREATE TABLE schema_history (
                version INTEGER PRIMARY KEY,
                description TEXT NOT NULL,
                applied_at INTEGER NOT NULL
            )
            """,
        ),
    ),
}

# -- the queue's statements (named parameters, shared by the hook and SQLiteQueue). The
# f-strings below splice only these module constants, never input (hence the S608 noqa).

JOB_COLUMNS = (
    "id, scene_id, reason, state, enqueued_at, next_attempt_at, attempts, events, lease_owner, lease_token, "
    "lease_until, error_class, error_message, error_at, first_failed_at"
)

#: Add a pending job or merge into the scene's pending one (which keeps its times).
ENQUEUE = (
    "INSERT INTO jobs (scene_id, reason, enqueued_at, next_attempt_at) VALUES (:scene_id, :reason, :now, :due) "
    "ON CONFLICT (scene_id) WHERE state = 0 DO UPDATE SET events = events + 1"
)
ENQUEUE_RETURNING = f"{ENQUEUE} RETURNING {JOB_COLUMNS}"

REMOVE_PENDING = "DELETE FROM jobs WHERE scene_id = :scene_id AND state = 0"

#: Whether any lease has run out. Leased rows are few (one per worker), and ``jobs_claim``
#: finds them by ``state``.
ANY_EXPIRED = "SELECT 1 FROM jobs WHERE state = 1 AND lease_until <= :now LIMIT 1"
#: Reclaim, step 1: an expired job absorbs the pending job that arrived for its scene.
RECLAIM_MERGE = (
    "UPDATE jobs AS e SET events = e.events + p.events, enqueued_at = MIN(e.enqueued_at, p.enqueued_at), "
    "next_attempt_at = MIN(e.next_attempt_at, p.next_attempt_at) "
    "FROM jobs AS p WHERE e.state = 1 AND e.lease_until <= :now AND p.state = 0 AND p.scene_id = e.scene_id"
)
#: Reclaim, step 2: drop the absorbed pending jobs.
RECLAIM_DROP = (
    "DELETE FROM jobs WHERE id IN (SELECT p.id FROM jobs AS e JOIN jobs AS p ON p.scene_id = e.scene_id "
    "AND p.state = 0 WHERE e.state = 1 AND e.lease_until <= :now)"
)
#: Reclaim, step 3: expired leases become pending again (attempts are kept).
RECLAIM_RESET = (
    "UPDATE jobs SET state = 0, lease_owner = NULL, lease_token = NULL, lease_until = NULL "
    "WHERE state = 1 AND lease_until <= :now"
)
#: The job to claim: due first, and not for a scene another worker holds. Walks
#: ``jobs_claim`` in order; the ``NOT EXISTS`` probe is one lookup in
#: ``jobs_one_lease_per_scene``.
CLAIM_SELECT = (
    "SELECT j.id FROM jobs AS j WHERE j.state = 0 AND j.next_attempt_at <= :now "
    "AND NOT EXISTS (SELECT 1 FROM jobs AS l WHERE l.state = 1 AND l.scene_id = j.scene_id) "
    "ORDER BY j.next_attempt_at, j.id LIMIT 1"
)
CLAIM = (
    "UPDATE jobs SET state = 1, attempts = attempts + 1, lease_owner = :owner, lease_token = :token, "  # noqa: S608
    f"lease_until = :expires WHERE id = ({CLAIM_SELECT}) RETURNING {JOB_COLUMNS}"
)
#: The job if ``token`` still holds its lease.
HELD = f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = :id AND state = 1 AND lease_token = :token"  # noqa: S608
EXTEND = f"UPDATE jobs SET lease_until = :expires WHERE id = :id RETURNING {JOB_COLUMNS}"  # noqa: S608
COMPLETE = "DELETE FROM jobs WHERE id = :id AND state = 1 AND lease_token = :token"
#: Take the scene's pending job out so a rescheduled job can absorb it.
TAKE_PENDING = (
    "DELETE FROM jobs WHERE scene_id = :scene_id AND state = 0 RETURNING enqueued_at, next_attempt_at, events"
)
RESCHEDULE = (
    "UPDATE jobs SET state = 0, lease_owner = NULL, lease_token = NULL, lease_until = NULL, "  # noqa: S608
    "attempts = :attempts, events = :events, enqueued_at = :enqueued_at, next_attempt_at = :due, "
    "error_class = :error_class, error_message = :error_message, error_at = :error_at, "
    f"first_failed_at = :first_failed_at WHERE id = :id RETURNING {JOB_COLUMNS}"
)
DELETE_JOB = "DELETE FROM jobs WHERE id = :id"
CLEAR_PENDING = "DELETE FROM jobs WHERE state = 0"
#: Leased (live), ready and waiting jobs at ``:now``; a job whose lease expired counts as
#: pending. Pending rows are counted inside ``jobs_claim`` without reading the table.
COUNT_JOBS = (
    "SELECT (SELECT COUNT(*) FROM jobs WHERE state = 1 AND lease_until > :now), "
    "(SELECT COUNT(*) FROM jobs WHERE state = 0 AND next_attempt_at <= :now) "
    "+ (SELECT COUNT(*) FROM jobs WHERE state = 1 AND lease_until <= :now AND next_attempt_at <= :now), "
    "(SELECT COUNT(*) FROM jobs WHERE state = 0 AND next_attempt_at > :now) "
    "+ (SELECT COUNT(*) FROM jobs WHERE state = 1 AND lease_until <= :now AND next_attempt_at > :now)"
)
COUNT_DEAD = "SELECT COUNT(*) FROM dead_letters"
LIST_JOBS = f"SELECT {JOB_COLUMNS} FROM jobs ORDER BY next_attempt_at, id LIMIT :limit"  # noqa: S608

# -- dead letters

DEAD_COLUMNS = "id, scene_id, reason, error_class, message, attempts, enqueued_at, first_failed_at, last_failed_at"
BURY = (
    f"INSERT INTO dead_letters ({DEAD_COLUMNS}) VALUES (:id, :scene_id, :reason, :error_class, :message, "  # noqa: S608
    ":attempts, :enqueued_at, :first_failed_at, :last_failed_at)"
)
#: A filter whose unset criteria (``NULL``) match everything; ``:scene_ids`` is a JSON list.
DEAD_WHERE = (
    " WHERE (:scene_ids IS NULL OR scene_id IN (SELECT value FROM json_each(:scene_ids)))"
    " AND (:error_class IS NULL OR error_class = :error_class)"
    " AND (:since IS NULL OR last_failed_at >= :since)"
    " AND (:until IS NULL OR last_failed_at < :until)"
)
LIST_DEAD = (
    f"SELECT {DEAD_COLUMNS} FROM dead_letters{DEAD_WHERE} "  # noqa: S608
    "ORDER BY last_failed_at DESC, id DESC LIMIT :limit"
)
TAKE_DEAD = f"DELETE FROM dead_letters{DEAD_WHERE} RETURNING scene_id, reason, last_failed_at, id"  # noqa: S608
PURGE_DEAD = "DELETE FROM dead_letters WHERE last_failed_at < :before"

# -- state documents

STATE_GET = "SELECT document FROM state WHERE namespace = :namespace AND key = :key"
#: Many documents in one statement: ``:rows`` is a JSON array of ``[namespace, key, document]``.
#: (``WHERE true`` keeps the upsert's ``ON`` from being read as a join's.)
STATE_PUT_ROWS = (
    "INSERT INTO state (namespace, key, document, updated_at) "
    "SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'), :now "
    "FROM json_each(:rows) WHERE true "
    "ON CONFLICT (namespace, key) DO UPDATE SET document = excluded.document, updated_at = excluded.updated_at"
)
#: Several keys of one namespace (``:keys`` is a JSON array): one statement, one index probe each.
STATE_GET_MANY = (
    "SELECT key, document FROM state WHERE namespace = :namespace AND key IN (SELECT value FROM json_each(:keys))"
)
STATE_DELETE = "DELETE FROM state WHERE namespace = :namespace AND key = :key"
STATE_ITEMS = "SELECT key, document FROM state WHERE namespace = :namespace ORDER BY key"

# -- named leases

#: Take the lease if it is free or expired; returns a row only when taken.
LEASE_ACQUIRE = (
    "INSERT INTO leases (name, owner, token, expires_at) VALUES (:name, :owner, :token, :expires) "
    "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, token = excluded.token, "
    "expires_at = excluded.expires_at WHERE leases.expires_at <= :now RETURNING token"
)
#: Like :data:`LEASE_ACQUIRE`, but also takes over a *reservation*: a lease whose owner
#: starts with ``:reserved`` (a hook that asked Stash to start a drain task holds one
#: until that task takes over).
LEASE_TAKE_OVER = (
    "INSERT INTO leases (name, owner, token, expires_at) VALUES (:name, :owner, :token, :expires) "
    "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, token = excluded.token, "
    "expires_at = excluded.expires_at WHERE leases.expires_at <= :now OR substr(leases.owner, 1, length(:reserved)) "
    "= :reserved RETURNING token"
)
LEASE_RENEW = "UPDATE leases SET expires_at = :expires WHERE name = :name AND token = :token"
LEASE_RELEASE = "DELETE FROM leases WHERE name = :name AND token = :token"
LEASE_HOLDER = "SELECT owner FROM leases WHERE name = :name AND expires_at > :now"


class SchemaTooNewError(sqlite3.DatabaseError):
    """The database was written by a newer stash2plex than this one."""


# Primary result codes (https://sqlite.org/rescode.html) that mean the file is bad...
_CORRUPT_CODES = frozenset({11, 26})  # SQLITE_CORRUPT, SQLITE_NOTADB
# ... and that mean we may not write where it lives.
_ACCESS_CODES = frozenset({3, 8, 14})  # SQLITE_PERM, SQLITE_READONLY, SQLITE_CANTOPEN


def describe_failure(path: str, exc: BaseException, timeout: float = BUSY_TIMEOUT) -> str:
    """What went wrong with the database at ``path``, naming the file and what to do.

    The one wording for storage failures, shared by the hook path (standard library only)
    and the backends, which wrap it in core errors.
    """
    if isinstance(exc, SchemaTooNewError):
        return f"{path}: {exc}; upgrade stash2plex to use this database"
    if isinstance(exc, sqlite3.Error):
        if is_busy(exc):
            return f"{path}: another process kept the database locked for more than {timeout:g} s"
        code = getattr(exc, "sqlite_errorcode", None)
        if (isinstance(code, int) and code & 0xFF in _CORRUPT_CODES) or "malformed" in str(exc):
            return (
                f"{path}: the database is corrupt or is not a SQLite database ({exc}); "
                "move it aside (stash2plex starts a new one) or restore a backup"
            )
        if isinstance(code, int) and code & 0xFF in _ACCESS_CODES:
            return (
                f"{path}: cannot use the database: {exc} (the file, its directory and its -wal and -shm "
                "files must be writable by this user)"
            )
        return f"{path}: cannot use the database: {exc}"
    if isinstance(exc, OSError):
        return f"{path}: cannot create the database: {exc.strerror or exc}"
    return f"{path}: {exc}"


def now_us() -> int:
    """Wall-clock time as the database stores it: integer microseconds since the epoch."""
    return time.time_ns() // 1000


def is_busy(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite's "busy" or "locked", which a retry can cure."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED and their extended codes
    text = str(exc)
    return "locked" in text or "busy" in text


def prepare_path(path: str) -> None:
    """Create the directory (0700) and the database file (0600) before SQLite opens it.

    SQLite gives ``-wal`` and ``-shm`` the database file's mode, so creating the file
    ourselves is what keeps all three private whatever the umask. An existing directory
    or file is left as the user made it.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=0o700, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
    except FileExistsError:
        return
    os.close(fd)


def _version(conn: sqlite3.Connection) -> int:
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise SchemaTooNewError(
            f"written by a newer stash2plex (schema {version}; this one reads up to {SCHEMA_VERSION})"
        )
    return version


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the database up to :data:`SCHEMA_VERSION` (a no-op when it already is)."""
    if _version(conn) == SCHEMA_VERSION:
        return
    # WAL is persistent: set it once, before the first transaction, when the file is new.
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise sqlite3.OperationalError(f"cannot use write-ahead logging here (journal mode stayed {mode!r})")
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Re-read under the write lock: another process may have migrated meanwhile.
        version = _version(conn)
        for target in range(version + 1, SCHEMA_VERSION + 1):
            description, statements = MIGRATIONS[target]
            for statement in statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_history (version, description, applied_at) VALUES (?, ?, ?)",
                (target, description, now_us()),
            )
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def connect(path: str, *, synchronous: str = "FULL", timeout: float = BUSY_TIMEOUT) -> sqlite3.Connection:
    """Open ``path`` ready for use: private files, schema migrated, explicit transactions.

    ``isolation_level=None`` stops :mod:`sqlite3` from opening deferred transactions behind
    our back; every write then runs in an explicit ``BEGIN IMMEDIATE``, which takes the
    write lock up front and so honours the busy timeout. ``synchronous`` is per connection
    and never stored, so it is always set here.
    """
    if synchronous not in ("FULL", "NORMAL", "EXTRA"):
        raise ValueError(f"synchronous must be FULL, NORMAL or EXTRA, got {synchronous!r}")
    prepare_path(path)
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        migrate(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def retrying(fn: Callable[[], T], *, timeout: float = BUSY_TIMEOUT, max_delay: float = 0.05) -> T:
    """Run ``fn`` again while SQLite reports busy, until ``timeout`` seconds have passed.

    The busy timeout covers ordinary lock waits; this covers the cases where SQLite
    returns busy without waiting (WAL recovery after a crash, the last connection
    clearing the WAL while another opens). ``fn`` must be a whole transaction, so a
    retry starts it afresh. The pause doubles from 0.5 ms up to ``max_delay``, with a
    little jitter so that waiting processes do not wake in step.
    """
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            remaining = deadline - time.monotonic()
            if not is_busy(exc) or remaining <= 0:
                raise
            jitter = (time.perf_counter_ns() % 1000) / 1000 * delay / 2
            time.sleep(min(delay + jitter, remaining))
            delay = min(delay * 2, max_delay)


#: The hook's own pause cap while the database is locked (see :data:`HOOK_BUSY_POLL`).
HOOK_MAX_DELAY = 0.002
#: The hook opens its connections with no SQLite busy handler and polls every
#: :data:`HOOK_MAX_DELAY` seconds at most instead: SQLite's own handler sleeps up to 100 ms
#: between tries under contention, which a hook would spend inside the user's save.
HOOK_BUSY_POLL = 0.0


__all__ = [
    "ANY_EXPIRED",
    "BURY",
    "BUSY_TIMEOUT",
    "CLAIM",
    "CLAIM_SELECT",
    "CLEAR_PENDING",
    "COMPLETE",
    "COUNT_DEAD",
    "COUNT_JOBS",
    "DATABASE_NAME",
    "DEAD_COLUMNS",
    "DEAD_WHERE",
    "DELETE_JOB",
    "DRAIN_LEASE",
    "ENQUEUE",
    "ENQUEUE_RETURNING",
    "EXTEND",
    "HELD",
    "HOOK_BUSY_POLL",
    "HOOK_MAX_DELAY",
    "JOB_COLUMNS",
    "LEASED",
    "LEASE_ACQUIRE",
    "LEASE_HOLDER",
    "LEASE_RELEASE",
    "LEASE_RENEW",
    "LEASE_TAKE_OVER",
    "LIST_DEAD",
    "LIST_JOBS",
    "MIGRATIONS",
    "MIN_SQLITE",
    "PENDING",
    "PURGE_DEAD",
    "RECLAIM_DROP",
    "RECLAIM_MERGE",
    "RECLAIM_RESET",
    "REMOVE_PENDING",
    "RESCHEDULE",
    "SCHEMA_VERSION",
    "STATE_DELETE",
    "STATE_GET",
    "STATE_GET_MANY",
    "STATE_ITEMS",
    "STATE_PUT_ROWS",
    "TAKE_DEAD",
    "TAKE_PENDING",
    "SchemaTooNewError",
    "connect",
    "describe_failure",
    "is_busy",
    "migrate",
    "now_us",
    "prepare_path",
    "retrying",
]
