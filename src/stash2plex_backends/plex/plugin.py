"""Registers :class:`~stash2plex_backends.plex.PlexApiGateway` (entry point ``plexapi``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stash2plex_backends.plex.gateway import PlexApiGateway
from stash2plex_core.plugin import hookimpl


if TYPE_CHECKING:
    from stash2plex_core.plugin import BackendRegistry


@hookimpl
def stash2plex_register_backends(registry: BackendRegistry) -> None:
    registry.add_plex(PlexApiGateway)


__all__ = ["PlexApiGateway"]
