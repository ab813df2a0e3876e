"""The Stash gateway over stashapi (PyPI ``stashapp-tools``).

Importing this package is cheap: stashapi and requests load when a gateway first connects.
The pluggy registration lives in :mod:`stash2plex_backends.stash.plugin`.
"""

from stash2plex_backends.stash._gateway import StashApiGateway
from stash2plex_backends.stash._timestamps import WATERMARK_OVERLAP


__all__ = ["WATERMARK_OVERLAP", "StashApiGateway"]
