"""Registers the stashapi gateway (entry point ``stashapi`` in group ``stash2plex.backends``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stash2plex_backends.stash import StashApiGateway
from stash2plex_core.plugin import hookimpl


if TYPE_CHECKING:
    from stash2plex_core.plugin import BackendRegistry


@hookimpl
def stash2plex_register_backends(registry: BackendRegistry) -> None:
    registry.add_stash(StashApiGateway)


__all__ = ["StashApiGateway"]
