"""The extension surface: hook marker, hook specs, backend registry."""

from stash2plex_core.plugin._markers import ENTRY_POINT_GROUP
from stash2plex_core.plugin._markers import hookimpl
from stash2plex_core.plugin.manager import build_registry
from stash2plex_core.plugin.manager import make_plugin_manager
from stash2plex_core.plugin.registry import BackendRegistry


__all__ = ["ENTRY_POINT_GROUP", "BackendRegistry", "build_registry", "hookimpl", "make_plugin_manager"]
