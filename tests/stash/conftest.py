"""Fixtures for the stashapi gateway tests: a simulated Stash and gateways talking to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stash2plex_backends.simulators.stash import StashSimulator
from stash2plex_backends.stash import StashApiGateway


#: A canary API key: it must never show up in a message, a log record or a URL.
KEY = "canary-4f1c9e2b-key-never-logged"


@pytest.fixture
def stash_sim() -> Iterator[StashSimulator]:
    with StashSimulator(api_key=KEY) as sim:
        yield sim


@pytest.fixture
def gateway(stash_sim: StashSimulator) -> Iterator[StashApiGateway]:
    gw = StashApiGateway(stash_sim.url, api_key=KEY, timeout=5)
    yield gw
    gw.close()
