"""One contract per port, as classes to subclass (named ``<Port>Contract``, never collected alone)."""

from stash2plex_core.testing.contracts.clock import ClockContract
from stash2plex_core.testing.contracts.plex import PlexGatewayContract
from stash2plex_core.testing.contracts.queue import Capabilities
from stash2plex_core.testing.contracts.queue import QueueContract
from stash2plex_core.testing.contracts.stash import StashGatewayContract
from stash2plex_core.testing.contracts.state import StateStoreContract


#: Contract class per port name, for meta-tests that check every backend is covered.
CONTRACTS = {
    "queue": QueueContract,
    "state": StateStoreContract,
    "plex": PlexGatewayContract,
    "stash": StashGatewayContract,
    "clock": ClockContract,
}

__all__ = [
    "CONTRACTS",
    "Capabilities",
    "ClockContract",
    "PlexGatewayContract",
    "QueueContract",
    "StashGatewayContract",
    "StateStoreContract",
]
