"""The pluggy markers, in a module with no other imports so adapters stay light."""

from __future__ import annotations

import pluggy


PROJECT = "stash2plex"
#: Entry-point group through which every backend package, ours included, registers.
ENTRY_POINT_GROUP = "stash2plex.backends"

hookspec = pluggy.HookspecMarker(PROJECT)
#: The one name an adapter author imports: ``@hookimpl def stash2plex_register_backends(registry)``.
hookimpl = pluggy.HookimplMarker(PROJECT)

__all__ = ["ENTRY_POINT_GROUP", "PROJECT", "hookimpl", "hookspec"]
