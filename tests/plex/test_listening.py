"""``listening()``: whether Plex accepts connections, asked without sending a request."""

from __future__ import annotations

import pytest

from stash2plex_backends.plex import PlexApiGateway
from stash2plex_backends.simulators.plex import PlexSimulator
from stash2plex_core.clocks import ManualClock
from tests.plex.world import TOKEN


def test_it_follows_plex_going_away_and_coming_back(sim: PlexSimulator, gateway: PlexApiGateway) -> None:
    before = len(sim.requests)
    assert gateway.listening() is True
    sim.refuse()
    assert gateway.listening() is False
    sim.accept()
    assert gateway.listening() is True
    assert len(sim.requests) == before  # a TCP handshake each time, never an HTTP request


def test_behind_a_proxy_it_cannot_tell(sim: PlexSimulator, clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # the proxy's port says nothing of Plex
    assert PlexApiGateway(sim.url, TOKEN, clock=clock).listening() is None


def test_without_a_url_it_cannot_tell(clock: ManualClock) -> None:
    assert PlexApiGateway(None, TOKEN, clock=clock).listening() is None
