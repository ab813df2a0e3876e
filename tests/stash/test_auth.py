"""Authentication: API key, the plugin's session cookie, and what a rejection becomes."""

from __future__ import annotations

import pytest

from stash2plex_backends.simulators import Fault
from stash2plex_backends.simulators.stash import StashSimulator
from stash2plex_backends.stash import StashApiGateway
from stash2plex_core.errors import AuthenticationError
from stash2plex_core.settings import Secret
from stash2plex_core.settings import Settings
from tests.stash.conftest import KEY


def test_plugin_session_cookie_from_server_connection() -> None:
    with StashSimulator(scenes=3, session_cookie="plugin-cookie-value") as sim:
        conn = sim.server_connection(host="0.0.0.0")  # Stash bound to all interfaces
        gateway = StashApiGateway.from_server_connection(conn, Settings(stash_timeout=5.0))
        assert gateway.base_url == f"http://127.0.0.1:{sim.port}"
        scene = gateway.get_scene("1")
        assert scene is not None
        assert scene.screenshot_url is not None
        assert gateway.fetch_image(scene.screenshot_url) == sim.screenshot_bytes(1)
        for call in sim.requests.all():
            assert "ApiKey" not in call.headers
            assert "session=plugin-cookie-value" in call.headers["Cookie"]
        # A long task outlives the session: the next call is an authentication error.
        sim.expire_sessions()
        with pytest.raises(AuthenticationError, match="401"):
            gateway.get_scene("1")
        with pytest.raises(AuthenticationError, match="login page"):
            gateway.fetch_image(scene.screenshot_url)
        assert "plugin-cookie-value" not in repr(gateway)


def test_force_api_key_switches_from_cookie_to_key_and_survives_expiry() -> None:
    with StashSimulator(scenes=3, api_key=KEY, session_cookie="short-lived-cookie") as sim:
        gateway = StashApiGateway.from_server_connection(
            sim.server_connection(), Settings(stash_timeout=5.0), force_api_key=True
        )
        assert gateway.get_scene("2") is not None
        sim.expire_sessions()
        scene = gateway.get_scene("2")
        assert scene is not None
        assert scene.screenshot_url is not None
        assert gateway.fetch_image(scene.screenshot_url) == sim.screenshot_bytes(2)
        last = sim.requests.all()[-1]
        assert last.headers.get("ApiKey") == KEY
        assert "session=" not in last.headers.get("Cookie", "")


def test_configured_api_key_is_used_alongside_the_cookie() -> None:
    with StashSimulator(scenes=2, api_key=KEY, session_cookie="c") as sim:
        settings = Settings(stash_api_key=Secret(KEY), stash_timeout=5.0)
        gateway = StashApiGateway.from_server_connection(sim.server_connection(), settings)
        sim.expire_sessions()
        assert gateway.get_scene("1") is not None


def test_wrong_api_key_is_an_authentication_error(stash_sim: StashSimulator) -> None:
    gateway = StashApiGateway(stash_sim.url, api_key="wrong-key-value", timeout=5)
    with pytest.raises(AuthenticationError, match="401") as info:
        gateway.ping()
    assert "wrong-key-value" not in str(info.value)
    anonymous = StashApiGateway(stash_sim.url, timeout=5)
    with pytest.raises(AuthenticationError):
        anonymous.get_scene("1")


def test_401_in_the_middle_of_a_session(stash_sim: StashSimulator, gateway: StashApiGateway) -> None:
    gateway.ping()
    stash_sim.faults.add(Fault(path="^/graphql$", status=401, times=1))
    with pytest.raises(AuthenticationError):
        list(gateway.iter_scenes())
    gateway.ping()  # the gateway recovers once the server accepts us again
