"""The SQLite and JSON backends pass the Queue and StateStore contracts, on real files."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path

import pytest

from stash2plex_backends.jsonstate import JSONStateStore
from stash2plex_backends.sqlite import SQLiteQueue
from stash2plex_backends.sqlite import SQLiteStateStore
from stash2plex_core.clocks import ManualClock
from stash2plex_core.ports.queue import Queue
from stash2plex_core.ports.state import StateStore
from stash2plex_core.testing.contracts import QueueContract
from stash2plex_core.testing.contracts import StateStoreContract
from stash2plex_core.testing.contracts._capabilities import Capabilities


DURABLE = Capabilities(durable=True, multi_process=True)


class TestSQLiteQueue(QueueContract):
    backend_id = "sqlite"

    @pytest.fixture
    def db_path(self, tmp_path: Path) -> Path:
        return tmp_path / "data" / "stash2plex.db"

    @pytest.fixture
    def queue(self, clock: ManualClock, db_path: Path) -> Iterator[SQLiteQueue]:
        queue = SQLiteQueue(db_path, clock)
        yield queue
        queue.close()

    @pytest.fixture
    def capabilities(self) -> Capabilities:
        return DURABLE

    @pytest.fixture
    def reopen_queue(self, clock: ManualClock, db_path: Path) -> Callable[[], Queue]:
        return lambda: SQLiteQueue(db_path, clock)


class TestSQLiteStateStore(StateStoreContract):
    backend_id = "sqlite"

    @pytest.fixture
    def db_path(self, tmp_path: Path) -> Path:
        return tmp_path / "data" / "stash2plex.db"

    @pytest.fixture
    def state_store(self, clock: ManualClock, db_path: Path) -> Iterator[SQLiteStateStore]:
        store = SQLiteStateStore(db_path, clock)
        yield store
        store.close()

    @pytest.fixture
    def capabilities(self) -> Capabilities:
        return DURABLE

    @pytest.fixture
    def reopen_state_store(self, clock: ManualClock, db_path: Path) -> Callable[[], StateStore]:
        return lambda: SQLiteStateStore(db_path, clock)


class TestJSONStateStore(StateStoreContract):
    backend_id = "json"

    @pytest.fixture
    def state_dir(self, tmp_path: Path) -> Path:
        return tmp_path / "state"

    @pytest.fixture
    def state_store(self, clock: ManualClock, state_dir: Path) -> JSONStateStore:
        return JSONStateStore(state_dir, clock)

    @pytest.fixture
    def capabilities(self) -> Capabilities:
        return DURABLE

    @pytest.fixture
    def reopen_state_store(self, clock: ManualClock, state_dir: Path) -> Callable[[], StateStore]:
        return lambda: JSONStateStore(state_dir, clock)
