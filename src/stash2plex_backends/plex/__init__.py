"""The PlexGateway over the real ``plexapi`` client (backend id ``"plexapi"``).

Importing this package does not import plexapi or requests: they load on the gateway's
first call. The backend registers through :mod:`stash2plex_backends.plex.plugin`.
"""

from __future__ import annotations

from stash2plex_backends.plex.gateway import PlexApiGateway


__all__ = ["PlexApiGateway"]
