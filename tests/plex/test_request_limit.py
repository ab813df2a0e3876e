"""The plexapi gateway's request limit holds at the wire, counted by the simulated Plex."""

from __future__ import annotations

import threading

from stash2plex_backends.plex import PlexApiGateway
from stash2plex_backends.simulators import Fault
from stash2plex_backends.simulators.plex import PlexSimulator
from tests.plex.world import ROOT


def _read_concurrently(sim: PlexSimulator, gateway: PlexApiGateway, threads: int) -> int:
    """``threads`` detail reads at once, each answered after 50 ms; the peak Plex saw."""
    key = str(sim.add_item(f"{ROOT}/limited.mp4"))
    gateway.sections()  # connected: only the reads below are in flight together
    sim.faults.add(Fault(path=r"^/library/metadata/\d+$", action="delay", delay=0.05))
    sim.server.reset_peak()
    start = threading.Barrier(threads)
    results: list[int] = []

    def read() -> None:
        start.wait(5)
        results.append(len(gateway.get_items([key])))

    workers = [threading.Thread(target=read) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(10)
    assert results == [1] * threads  # every read answered: the limit queues, never drops
    return sim.server.peak_in_flight


def test_at_most_the_limit_of_requests_reach_plex_at_once(sim: PlexSimulator, gateway: PlexApiGateway) -> None:
    assert gateway.limit_requests(2) is True  # enforced here, not by the caller
    assert _read_concurrently(sim, gateway, 6) == 2


def test_without_a_limit_the_same_reads_overlap(sim: PlexSimulator, gateway: PlexApiGateway) -> None:
    gateway.limit_requests(2)
    gateway.limit_requests(None)
    assert _read_concurrently(sim, gateway, 6) > 2
