"""Building the plugin manager and the registry it fills."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from collections.abc import Mapping

import pluggy

from stash2plex_core.plugin import spec
from stash2plex_core.plugin._markers import ENTRY_POINT_GROUP
from stash2plex_core.plugin._markers import PROJECT
from stash2plex_core.plugin.registry import BackendRegistry


log = logging.getLogger(__name__)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def make_plugin_manager(
    *,
    autoload: bool | None = None,
    plugins: Iterable[object] = (),
    blocked: Iterable[str] = (),
    environ: Mapping[str, str] | None = None,
) -> pluggy.PluginManager:
    """A plugin manager with our hook specs, ``plugins`` and (optionally) entry points.

    :param autoload: load the ``stash2plex.backends`` entry points. ``None`` reads
        ``STASH2PLEX_DISABLE_PLUGIN_AUTOLOAD`` from ``environ`` (call time, never import time).
    :param plugins: modules or objects with hook implementations to register first; they
        register even if their name is blocked (blocking is for entry points).
    :param blocked: entry-point names not to load (also ``STASH2PLEX_DISABLED_PLUGINS``,
        comma-separated).
    :param environ: where the ``STASH2PLEX_*`` plugin switches are read from. The core never
        reads :data:`os.environ` itself: ``None`` means no switches, and the program's edges
        (CLI, Stash plugin, provider) pass ``os.environ``.
    """
    env = environ if environ is not None else {}
    if autoload is None:
        autoload = not _truthy(env.get("STASH2PLEX_DISABLE_PLUGIN_AUTOLOAD"))
    manager = pluggy.PluginManager(PROJECT)
    manager.add_hookspecs(spec)
    for name in [*blocked, *(env.get("STASH2PLEX_DISABLED_PLUGINS", "").split(","))]:
        if name.strip():
            manager.set_blocked(name.strip())
    for plugin in plugins:
        if not manager.is_registered(plugin):
            manager.register(plugin)
    if autoload:
        _load_entry_points(manager)
    manager.check_pending()
    if _truthy(env.get("STASH2PLEX_TRACE_PLUGINS")):
        manager.trace.root.setwriter(log.debug)
        manager.enable_tracing()
    return manager


def _load_entry_points(manager: pluggy.PluginManager) -> None:
    """Load every entry point of our group; a broken third-party one is logged and skipped."""
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if manager.is_blocked(ep.name) or manager.get_plugin(ep.name) is not None:
            continue
        try:
            plugin = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not take the app down
            log.warning("skipping stash2plex backend plugin %r (%s): %s", ep.name, ep.value, exc)
            continue
        if not manager.is_registered(plugin):
            manager.register(plugin, name=ep.name)


def build_registry(
    *,
    autoload: bool | None = None,
    plugins: Iterable[object] = (),
    blocked: Iterable[str] = (),
    environ: Mapping[str, str] | None = None,
) -> BackendRegistry:
    """Run ``stash2plex_register_backends`` on every plugin and return the filled registry.

    The parameters are :func:`make_plugin_manager`'s.
    """
    manager = make_plugin_manager(autoload=autoload, plugins=plugins, blocked=blocked, environ=environ)
    registry = BackendRegistry()
    manager.hook.stash2plex_register_backends(registry=registry)
    return registry


__all__ = ["build_registry", "make_plugin_manager"]
