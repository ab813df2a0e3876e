"""The backend registry: which adapter classes exist for each port, and how one is chosen."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stash2plex_core.errors import BackendNotFoundError
from stash2plex_core.errors import ConfigurationError
from stash2plex_core.ports import PORTS


#: Backends we know of that may be missing, and what makes them available.
KNOWN_BACKENDS: Mapping[tuple[str, str], str] = {
    ("queue", "sqlite"): "it ships with stash2plex; reinstall stash2plex",
    ("state", "sqlite"): "it ships with stash2plex; reinstall stash2plex",
    ("state", "json"): "it ships with stash2plex; reinstall stash2plex",
    ("plex", "plexapi"): "it ships with stash2plex (needs plexapi); reinstall stash2plex",
    ("stash", "stashapi"): "it ships with stash2plex (needs stashapp-tools); reinstall stash2plex",
}


class BackendRegistry:
    """Backend classes by port and id, filled by ``stash2plex_register_backends`` hooks."""

    def __init__(self) -> None:
        self._classes: dict[str, dict[str, type[Any]]] = {port: {} for port in PORTS}

    # -- registration, one method per port so a typo fails loudly

    def add(self, port: str, cls: type[Any]) -> None:
        if port not in PORTS:
            raise ConfigurationError(f"unknown port {port!r}; ports are {', '.join(PORTS)}")
        if not isinstance(getattr(cls, "id", None), str) or not cls.id:
            raise ConfigurationError(f"{cls!r} registered for port {port!r} has no string 'id'")
        for attribute in ("priority", "viable", "from_settings"):
            if not hasattr(cls, attribute):
                raise ConfigurationError(f"{port} backend {cls.id!r} ({cls.__qualname__}) lacks {attribute!r}")
        expected = PORTS[port]
        if port != "clock" and not issubclass(cls, expected):
            raise ConfigurationError(
                f"{port} backend {cls.id!r} ({cls.__qualname__}) must subclass "
                f"{expected.__module__}.{expected.__name__}"
            )
        existing = self._classes[port].get(cls.id)
        if existing is not None and existing is not cls:
            raise ConfigurationError(
                f"{port} backend id {cls.id!r} registered twice: {existing.__module__}.{existing.__qualname__} "
                f"and {cls.__module__}.{cls.__qualname__}"
            )
        self._classes[port][cls.id] = cls

    def add_queue(self, cls: type[Any]) -> None:
        self.add("queue", cls)

    def add_state_store(self, cls: type[Any]) -> None:
        self.add("state", cls)

    def add_plex(self, cls: type[Any]) -> None:
        self.add("plex", cls)

    def add_stash(self, cls: type[Any]) -> None:
        self.add("stash", cls)

    def add_clock(self, cls: type[Any]) -> None:
        self.add("clock", cls)

    # -- lookup

    def ids(self, port: str) -> list[str]:
        """Registered ids for ``port``, best first (priority, then id)."""
        classes = self._classes[port]
        return sorted(classes, key=lambda i: (-classes[i].priority, i))

    def get(self, port: str, backend_id: str) -> type[Any]:
        """The class registered as ``backend_id`` for ``port``."""
        if port not in self._classes:
            raise ConfigurationError(f"unknown port {port!r}; ports are {', '.join(PORTS)}")
        try:
            return self._classes[port][backend_id]
        except KeyError:
            raise BackendNotFoundError(
                port, backend_id, self._classes[port], KNOWN_BACKENDS.get((port, backend_id))
            ) from None

    def select(self, port: str, requested: str | None = None) -> type[Any]:
        """Pick the backend for ``port``.

        A requested id wins (and must exist and be viable). Otherwise the
        highest-priority viable backend with priority >= 1; the in-memory fakes (priority
        0) are never chosen silently.
        """
        if requested:
            cls = self.get(port, requested)
            if not cls.viable():
                raise BackendNotFoundError(
                    port,
                    requested,
                    self._classes[port],
                    f"backend {requested!r} is registered but cannot run here"
                    + (f"; {KNOWN_BACKENDS[(port, requested)]}" if (port, requested) in KNOWN_BACKENDS else ""),
                )
            return cls
        for backend_id in self.ids(port):
            cls = self._classes[port][backend_id]
            if cls.priority >= 1 and cls.viable():
                return cls
        raise BackendNotFoundError(port, None, self._classes[port])

    def __contains__(self, item: tuple[str, str]) -> bool:
        port, backend_id = item
        return backend_id in self._classes.get(port, {})


__all__ = ["KNOWN_BACKENDS", "BackendRegistry"]
