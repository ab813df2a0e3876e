"""SQLiteStateStore: state documents in the same database file as the queue."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable
from collections.abc import Iterator
from typing import ClassVar
from typing import Self

from stash2plex_backends.sqlite import schema
from stash2plex_backends.sqlite._db import Database
from stash2plex_backends.sqlite._db import default_database_path
from stash2plex_backends.sqlite._db import sqlite_is_recent_enough
from stash2plex_backends.sqlite._db import to_us
from stash2plex_core.clocks import SystemClock
from stash2plex_core.errors import StateError
from stash2plex_core.ports.clock import Clock
from stash2plex_core.ports.state import Document
from stash2plex_core.ports.state import StateStore
from stash2plex_core.settings import Settings


def _dump(document: Document) -> str:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), allow_nan=False, sort_keys=True)


class SQLiteStateStore(StateStore):
    """Keyed JSON documents in the ``state`` table of the stash2plex database.

    Sharing the queue's file means one thing to back up and one set of permissions.
    Writes run in ``BEGIN IMMEDIATE`` transactions, so ``update`` is an atomic
    read-modify-write across processes and threads, at ``synchronous=FULL``: a record of
    what reached Plex must not roll back after a power cut, or the next drain would edit
    again (``NORMAL`` measured no faster in the drain benchmark, where every job writes
    one). A writer waits up to ``busy_timeout`` seconds for the lock, then raises
    :class:`~stash2plex_core.errors.StateLockTimeoutError`; a document that is not valid
    JSON raises :class:`~stash2plex_core.errors.StateError` naming the file, namespace and
    key.
    """

    id: ClassVar[str] = "sqlite"
    priority: ClassVar[int] = 10

    def __init__(
        self, path: str | os.PathLike[str], clock: Clock | None = None, *, busy_timeout: float = schema.BUSY_TIMEOUT
    ) -> None:
        super().__init__(clock or SystemClock())
        self.db = Database(path, synchronous="FULL", timeout=busy_timeout)

    @property
    def path(self) -> str:
        return self.db.path

    @classmethod
    def viable(cls) -> bool:
        return sqlite_is_recent_enough()

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock) -> Self:
        return cls(default_database_path(settings), clock)

    def close(self) -> None:
        self.db.close()

    def _load(self, namespace: str, key: str, text: str) -> Document:
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise StateError(f"{self.path}: state {namespace}/{key} is not valid JSON ({exc})") from None
        if not isinstance(value, dict):
            raise StateError(f"{self.path}: state {namespace}/{key} is not a JSON object")
        return value

    def _read_one(self, c: sqlite3.Connection, namespace: str, key: str) -> Document | None:
        row = c.execute(schema.STATE_GET, {"namespace": namespace, "key": key}).fetchone()
        return None if row is None else self._load(namespace, key, row[0])

    def _get(self, namespace: str, key: str) -> Document | None:
        return self.db.query(lambda c: self._read_one(c, namespace, key))

    def _get_many(self, namespace: str, keys: list[str]) -> dict[str, Document]:
        params = {"namespace": namespace, "keys": json.dumps(keys)}
        rows = self.db.query(lambda c: c.execute(schema.STATE_GET_MANY, params).fetchall())
        return {key: self._load(namespace, key, text) for key, text in rows}

    def _write_rows(self, c: sqlite3.Connection, batch: dict[str, dict[str, Document]]) -> None:
        rows = [[namespace, key, _dump(d)] for namespace, documents in batch.items() for key, d in documents.items()]
        c.execute(schema.STATE_PUT_ROWS, {"rows": json.dumps(rows, ensure_ascii=False), "now": to_us(self.clock.now())})

    def _put_many(self, namespace: str, documents: dict[str, Document]) -> None:
        self._put_all({namespace: documents})

    def _put_all(self, batch: dict[str, dict[str, Document]]) -> None:
        """Every document in one statement: one commit, atomic as a whole."""
        self.db.statement(lambda c: self._write_rows(c, batch))

    def _delete(self, namespace: str, key: str) -> bool:
        params = {"namespace": namespace, "key": key}
        return bool(self.db.write(lambda c: c.execute(schema.STATE_DELETE, params).rowcount))

    def _items(self, namespace: str) -> Iterator[tuple[str, Document]]:
        # Read all at once: an open cursor would hold a read transaction (and block
        # checkpoints) for as long as the caller iterates.
        rows = self.db.read(lambda c: c.execute(schema.STATE_ITEMS, {"namespace": namespace}).fetchall())
        return iter([(key, self._load(namespace, key, text)) for key, text in rows])

    def _update(self, namespace: str, key: str, fn: Callable[[Document | None], Document | None]) -> Document | None:
        def body(c: sqlite3.Connection) -> Document | None:
            result = fn(self._read_one(c, namespace, key))
            if result is None:
                c.execute(schema.STATE_DELETE, {"namespace": namespace, "key": key})
            else:
                self._write_rows(c, {namespace: {key: result}})
            return result

        return self.db.write(body)


__all__ = ["SQLiteStateStore"]
