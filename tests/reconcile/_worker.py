"""Apply reconciliation's repairs with the real sync worker (``services/worker.py``)."""

from __future__ import annotations

from stash2plex_core.ports.clock import Clock
from stash2plex_core.ports.plex import PlexGateway
from stash2plex_core.ports.queue import Queue
from stash2plex_core.ports.stash import StashGateway
from stash2plex_core.ports.state import StateStore
from stash2plex_core.services.worker import SyncWorker
from stash2plex_core.settings import Settings


def drain(
    *,
    settings: Settings,
    stash: StashGateway,
    plex: PlexGateway,
    state: StateStore,
    queue: Queue,
    clock: Clock,
    max_idle: float = 0.0,
) -> int:
    """Work every ready job (one loop, no waiting for retries); returns the jobs that wrote to Plex."""
    worker = SyncWorker(queue=queue, state=state, plex=plex, stash=stash, clock=clock, settings=settings)
    report = worker.drain(max_idle=max_idle, concurrency=1)
    return report.outcomes.get("synced", 0)


__all__ = ["drain"]
