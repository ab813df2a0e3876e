"""The ports: the five small interfaces between the domain and the outside world."""

from stash2plex_core.ports._backend import BackendBase
from stash2plex_core.ports._backend import BackendClass
from stash2plex_core.ports.clock import Clock
from stash2plex_core.ports.plex import PlexGateway
from stash2plex_core.ports.queue import Queue
from stash2plex_core.ports.stash import StashGateway
from stash2plex_core.ports.state import StateStore


#: Port names as the registry, settings (``<port>_backend``) and errors spell them.
PORTS: dict[str, type] = {
    "queue": Queue,
    "state": StateStore,
    "plex": PlexGateway,
    "stash": StashGateway,
    "clock": Clock,
}

__all__ = ["PORTS", "BackendBase", "BackendClass", "Clock", "PlexGateway", "Queue", "StashGateway", "StateStore"]
