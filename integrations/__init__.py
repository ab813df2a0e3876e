"""Driving adapters over the stash2plex library: the CLI, the Stash plugin, the Plex provider.

Installed as the ``stash2plex_integrations`` package. Each one parses its input, calls
the library through the composition root, and formats the result; no business rule
lives here.
"""
