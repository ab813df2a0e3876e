"""stash2plex core: the pure domain of keeping Plex's metadata in step with Stash.

No I/O happens here and no adapter is imported; see :mod:`stash2plex_backends` for those.
"""

from __future__ import annotations

from typing import Any

from stash2plex_core.app import App
from stash2plex_core.app import build_app
from stash2plex_core.errors import AuthenticationError
from stash2plex_core.errors import BackendNotFoundError
from stash2plex_core.errors import BackendUnavailableError
from stash2plex_core.errors import ConfigurationError
from stash2plex_core.errors import InvalidSettingsError
from stash2plex_core.errors import NotFoundError
from stash2plex_core.errors import NotInPlexYetError
from stash2plex_core.errors import PermanentError
from stash2plex_core.errors import Stash2PlexError
from stash2plex_core.errors import TransientError
from stash2plex_core.settings import Settings
from stash2plex_core.settings import parse_settings


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version

        try:
            return version("stash2plex")
        except PackageNotFoundError:  # running from a source tree
            return "0.0.0+unknown"
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "App",
    "AuthenticationError",
    "BackendNotFoundError",
    "BackendUnavailableError",
    "ConfigurationError",
    "InvalidSettingsError",
    "NotFoundError",
    "NotInPlexYetError",
    "PermanentError",
    "Settings",
    "Stash2PlexError",
    "TransientError",
    "build_app",
    "parse_settings",
]
