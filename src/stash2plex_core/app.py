"""The composition root: the one place that turns settings into a wired application."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from stash2plex_core.errors import ConfigurationError
from stash2plex_core.plugin.manager import build_registry
from stash2plex_core.plugin.registry import BackendRegistry
from stash2plex_core.ports.clock import Clock
from stash2plex_core.ports.plex import PlexGateway
from stash2plex_core.ports.queue import Queue
from stash2plex_core.ports.stash import StashGateway
from stash2plex_core.ports.state import StateStore
from stash2plex_core.settings import Settings


@attrs.frozen
class App:
    """The built adapters, ready for the services to use.

    Nothing here has connected yet: gateways connect on first use.
    """

    settings: Settings
    registry: BackendRegistry
    clock: Clock
    queue: Queue
    state: StateStore
    plex: PlexGateway
    stash: StashGateway

    def close(self) -> None:
        """Close every adapter, the first error re-raised after all were tried."""
        errors: list[BaseException] = []
        for adapter in (self.queue, self.state, self.plex, self.stash):
            try:
                adapter.close()
            except Exception as exc:  # noqa: BLE001 - close the others first
                errors.append(exc)
        if errors:
            raise errors[0]

    def __enter__(self) -> App:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_SETTING_FOR_PORT = {
    "queue": "queue_backend",
    "state": "state_backend",
    "plex": "plex_backend",
    "stash": "stash_backend",
    "clock": "clock_backend",
}


def build_app(
    settings: Settings,
    *,
    registry: BackendRegistry | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> App:
    """Build every port's adapter from ``settings``.

    :param registry: backends to choose from; by default every installed plugin's, found
        through :func:`~stash2plex_core.plugin.build_registry` with ``environ``.
    :param environ: the environment whose plugin switches apply when the registry is built
        here (``STASH2PLEX_DISABLE_PLUGIN_AUTOLOAD``, ``STASH2PLEX_DISABLED_PLUGINS``,
        ``STASH2PLEX_TRACE_PLUGINS``). The core never reads :data:`os.environ` itself, so
        ``None`` means no switches (every entry point loads); the CLI, the Stash plugin and
        the provider pass ``os.environ``. Refused together with ``registry``, whose
        plugins were already chosen.
    :param overrides: ready-made adapter instances by port name (``"queue"``, ``"state"``,
        ``"plex"``, ``"stash"``, ``"clock"``), used as they are: how tests wire fakes
        without monkeypatching.
    :raises ConfigurationError: for an unknown port in ``overrides``, a backend that is
        unknown or cannot run here (the message names the port and the ids available), or
        both ``registry`` and ``environ``.
    """
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(_SETTING_FOR_PORT))
    if unknown:
        raise ConfigurationError(f"unknown port(s) in overrides: {', '.join(unknown)}")
    if registry is None:
        registry = build_registry(environ=environ)
    elif environ is not None:
        raise ConfigurationError("pass either a registry or the environ to build one from, not both")

    def make(port: str, clock: Clock | None) -> Any:
        if port in overrides:
            return overrides[port]
        cls = registry.select(port, getattr(settings, _SETTING_FOR_PORT[port]))
        return cls.from_settings(settings, clock=clock)

    clock: Clock = make("clock", None)
    return App(
        settings=settings,
        registry=registry,
        clock=clock,
        queue=make("queue", clock),
        state=make("state", clock),
        plex=make("plex", clock),
        stash=make("stash", clock),
    )


__all__ = ["App", "build_app"]
