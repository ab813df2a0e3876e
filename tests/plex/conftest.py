"""Fixtures: a simulated PMS per test and the plexapi gateway talking to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stash2plex_backends.plex import PlexApiGateway
from stash2plex_backends.simulators.plex import PlexSimulator
from stash2plex_core.clocks import ManualClock
from tests.plex.world import ROOT
from tests.plex.world import TOKEN
from tests.plex.world import gateway_for


@pytest.fixture
def sim() -> Iterator[PlexSimulator]:
    with PlexSimulator(library_root=ROOT, token=TOKEN) as simulator:
        yield simulator


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def gateway(sim: PlexSimulator, clock: ManualClock) -> Iterator[PlexApiGateway]:
    gw = gateway_for(sim, clock)
    yield gw
    gw.close()
