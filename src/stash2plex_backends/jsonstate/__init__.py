"""A :class:`~stash2plex_core.ports.state.StateStore` in plain JSON files (``state_backend = "json"``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stash2plex_backends.jsonstate.store import JSONStateStore
from stash2plex_core.plugin import hookimpl


if TYPE_CHECKING:
    from stash2plex_core.plugin import BackendRegistry


@hookimpl
def stash2plex_register_backends(registry: BackendRegistry) -> None:
    registry.add_state_store(JSONStateStore)


__all__ = ["JSONStateStore"]
