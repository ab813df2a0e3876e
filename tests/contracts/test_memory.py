"""The in-memory backends pass every contract."""

from __future__ import annotations

import pytest

from stash2plex_backends.memory import ManualClock
from stash2plex_backends.memory import MemoryQueue
from stash2plex_backends.memory import MemoryStateStore
from stash2plex_backends.memory.worlds import MemoryPlexWorld
from stash2plex_backends.memory.worlds import MemoryStashWorld
from stash2plex_core.testing.contracts import ClockContract
from stash2plex_core.testing.contracts import PlexGatewayContract
from stash2plex_core.testing.contracts import QueueContract
from stash2plex_core.testing.contracts import StashGatewayContract
from stash2plex_core.testing.contracts import StateStoreContract


class TestMemoryQueue(QueueContract):
    backend_id = "memory"

    @pytest.fixture
    def queue(self, clock: ManualClock) -> MemoryQueue:
        return MemoryQueue(clock)


class TestMemoryStateStore(StateStoreContract):
    backend_id = "memory"

    @pytest.fixture
    def state_store(self, clock: ManualClock) -> MemoryStateStore:
        return MemoryStateStore(clock)


class TestMemoryPlex(PlexGatewayContract):
    backend_id = "memory"

    @pytest.fixture
    def plex_world(self) -> MemoryPlexWorld:
        return MemoryPlexWorld()


class TestMemoryStash(StashGatewayContract):
    backend_id = "memory"

    @pytest.fixture
    def stash_world(self) -> MemoryStashWorld:
        return MemoryStashWorld()


class TestManualClock(ClockContract):
    backend_id = "memory"

    @pytest.fixture
    def clock(self) -> ManualClock:
        return ManualClock()
