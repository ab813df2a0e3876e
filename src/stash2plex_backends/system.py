"""The system clock, registered like any backend (core keeps no hard-coded backend list)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stash2plex_core.clocks import SystemClock
from stash2plex_core.plugin import hookimpl


if TYPE_CHECKING:
    from stash2plex_core.plugin import BackendRegistry


@hookimpl
def stash2plex_register_backends(registry: BackendRegistry) -> None:
    registry.add_clock(SystemClock)


__all__ = ["SystemClock"]
