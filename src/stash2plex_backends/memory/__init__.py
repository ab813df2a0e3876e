"""In-memory backends for every port: real adapters that pass the contracts, never durable.

They register with priority 0, so settings must name them (``queue_backend = "memory"``)
to get them; production never falls back to them silently.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stash2plex_backends.memory.plex import MemoryPlex
from stash2plex_backends.memory.queue import MemoryQueue
from stash2plex_backends.memory.stash import MemoryStash
from stash2plex_backends.memory.state import MemoryStateStore
from stash2plex_core.clocks import ManualClock
from stash2plex_core.plugin import hookimpl


if TYPE_CHECKING:
    from stash2plex_core.plugin import BackendRegistry


@hookimpl
def stash2plex_register_backends(registry: BackendRegistry) -> None:
    registry.add_queue(MemoryQueue)
    registry.add_state_store(MemoryStateStore)
    registry.add_plex(MemoryPlex)
    registry.add_stash(MemoryStash)
    registry.add_clock(ManualClock)


__all__ = ["ManualClock", "MemoryPlex", "MemoryQueue", "MemoryStash", "MemoryStateStore"]
