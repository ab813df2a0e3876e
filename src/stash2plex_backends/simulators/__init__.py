"""Loopback simulators of Plex Media Server and Stash.

They speak the real wire protocols well enough that the unmodified ``plexapi`` and
``stashapi`` clients work against them, keep state, record every request and inject
faults on demand. Tests, the demo and the benchmarks use them; so can users who want to
try their own tooling without a real server. When a real server behaves differently, the
simulator is the bug.
"""

from stash2plex_backends.simulators.faults import Fault
from stash2plex_backends.simulators.faults import FaultInjector
from stash2plex_backends.simulators.faults import RecordedRequest
from stash2plex_backends.simulators.faults import RequestLog
from stash2plex_backends.simulators.seedlib import SeedLibrary
from stash2plex_backends.simulators.seedlib import generate_library


__all__ = [
    "Fault",
    "FaultInjector",
    "RecordedRequest",
    "RequestLog",
    "SeedLibrary",
    "generate_library",
]
