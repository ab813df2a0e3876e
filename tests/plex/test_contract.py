"""The PlexGateway contract for the plexapi gateway, against the simulator in both tag modes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stash2plex_backends.simulators.plex import PlexSimulator
from stash2plex_core.testing.contracts import PlexGatewayContract
from tests.plex.world import ROOT
from tests.plex.world import TOKEN
from tests.plex.world import SimulatorPlexWorld
from tests.plex.world import gateway_for


class _SimulatorWorld(PlexGatewayContract):
    tag_mode = "append"

    @pytest.fixture
    def plex_world(self) -> Iterator[SimulatorPlexWorld]:
        with PlexSimulator(library_root=ROOT, token=TOKEN, tag_mode=self.tag_mode) as sim:
            gateway = gateway_for(sim)
            yield SimulatorPlexWorld(sim, gateway)
            gateway.close()


class TestPlexApiGatewayAppend(_SimulatorWorld):
    """PMS's documented behaviour: indexed tags join the existing ones."""

    backend_id = "plexapi"
    tag_mode = "append"


class TestPlexApiGatewayReplace(_SimulatorWorld):
    """The reading some third parties report: indexed tags become the whole set."""

    backend_id = "plexapi"
    tag_mode = "replace"
