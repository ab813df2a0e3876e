"""What registering the SQLite backends does, imported only when the registry is built."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stash2plex_backends.sqlite.queue import SQLiteQueue
from stash2plex_backends.sqlite.state import SQLiteStateStore


if TYPE_CHECKING:
    from stash2plex_core.plugin import BackendRegistry


def register(registry: BackendRegistry) -> None:
    registry.add_queue(SQLiteQueue)
    registry.add_state_store(SQLiteStateStore)


__all__ = ["register"]
