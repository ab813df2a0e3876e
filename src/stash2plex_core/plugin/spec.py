"""Hook specifications: the whole extension surface of stash2plex."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stash2plex_core.plugin._markers import hookspec


if TYPE_CHECKING:
    from stash2plex_core.plugin.registry import BackendRegistry


@hookspec
def stash2plex_register_backends(registry: BackendRegistry) -> None:
    """Register backend classes for one or more ports.

    Called once per plugin manager, for every plugin, in no guaranteed order. Call
    ``registry.add_queue(cls)``, ``add_state_store``, ``add_plex``, ``add_stash`` or
    ``add_clock`` for each class; a class declares ``id``, ``priority``, ``viable()`` and
    ``from_settings()`` (see :class:`stash2plex_core.ports.BackendClass`). Registering an id
    that another plugin already registered for the same port is an error.

    :param registry: the registry to add backend classes to.

    .. versionadded:: 0.1
    """


__all__ = ["stash2plex_register_backends"]
