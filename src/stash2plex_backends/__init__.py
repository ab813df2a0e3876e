"""Adapters for stash2plex's ports, each package registered through ``stash2plex.backends``."""
