"""The Stash session reads the environment's proxies and CA bundle once, not per request."""

from __future__ import annotations

import pytest

from stash2plex_backends.simulators.stash import StashSimulator
from stash2plex_backends.stash import StashApiGateway
from stash2plex_backends.stash._session import _adapter_class


def test_adapter_applies_environment_proxies_and_ca_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,stash.lan")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/custom-bundle.pem")
    adapter = _adapter_class()(5.0)
    assert adapter.ca_bundle == "/etc/ssl/custom-bundle.pem"
    assert adapter.environ_proxies("http://stash.example:9999/graphql")["http"] == "http://proxy.invalid:3128"
    assert adapter.environ_proxies("http://127.0.0.1:9999/graphql") == {}
    assert adapter.environ_proxies("http://stash.lan:9999/graphql") == {}


def test_gateway_session_does_not_rescan_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy that does not exist: requests would fail if no_proxy were not honoured.
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with StashSimulator(3, 1, api_key="k") as sim:
        gateway = StashApiGateway(sim.url, api_key="k", timeout=5)
        try:
            assert gateway.get_scene("1") is not None
            session = gateway._interface().s
            assert session.trust_env is False
            assert gateway.fetch_image(sim.url + "/scene/1/screenshot")
        finally:
            gateway.close()
