"""The ``stash2plex`` command."""

from stash2plex_integrations.cli.main import main


__all__ = ["main"]
