"""``fetch_image``: our credentials, our origin only, nothing but ``image/*``, and ETags honoured."""

from __future__ import annotations

import pytest

from stash2plex_backends.simulators import Fault
from stash2plex_backends.simulators.seedlib import image_bytes
from stash2plex_backends.simulators.stash import StashSimulator
from stash2plex_backends.stash import StashApiGateway
from stash2plex_core.errors import AuthenticationError
from stash2plex_core.errors import BackendUnavailableError
from stash2plex_core.errors import NotFoundError
from stash2plex_core.errors import PermanentError
from tests.stash.conftest import KEY


@pytest.fixture
def screenshot(stash_sim: StashSimulator, gateway: StashApiGateway) -> str:
    stash_sim.add_scene("/data/library/img.mp4")
    scene = gateway.get_scene("1")
    assert scene is not None
    assert scene.screenshot_url is not None
    return scene.screenshot_url


def test_screenshot_bytes_with_the_api_key_header(
    stash_sim: StashSimulator, gateway: StashApiGateway, screenshot: str
) -> None:
    stash_sim.requests.clear()
    assert gateway.fetch_image(screenshot) == stash_sim.screenshot_bytes(1)
    (call,) = stash_sim.requests.all()
    assert call.headers["ApiKey"] == KEY
    assert "apikey" not in call.query  # the key travels in a header, never in the URL


def test_login_page_is_never_taken_for_an_image(stash_sim: StashSimulator, screenshot: str) -> None:
    """A server that wants credentials redirects to /login, a 200 HTML page if followed."""
    gateway = StashApiGateway(stash_sim.url, api_key=KEY, timeout=5)
    gateway.ping()
    stash_sim.faults.add(
        Fault(path="^/scene/1/screenshot$", status=302, headers={"Location": "/login?returnURL=%2Fscene"}, times=1)
    )
    with pytest.raises(AuthenticationError, match="login page"):
        gateway.fetch_image(screenshot)
    stash_sim.faults.add(
        Fault(path="^/scene/1/screenshot$", status=200, body=b"<html>login</html>", headers={}, times=1)
    )
    with pytest.raises(PermanentError, match="not an image"):
        gateway.fetch_image(screenshot)


def test_missing_image_and_server_errors(stash_sim: StashSimulator, gateway: StashApiGateway, screenshot: str) -> None:
    with pytest.raises(NotFoundError):
        gateway.fetch_image(f"{stash_sim.url}/scene/999/screenshot?t=1")
    stash_sim.faults.add(Fault(path="^/scene/", status=503, times=1))
    with pytest.raises(BackendUnavailableError):
        gateway.fetch_image(screenshot)


def test_urls_on_another_origin_are_rebased_or_refused(
    stash_sim: StashSimulator, gateway: StashApiGateway, screenshot: str
) -> None:
    """Stash builds image URLs from ``external_host``; credentials must never go elsewhere."""
    external = "https://stash.example.com:8443/scene/1/screenshot?t=5"
    assert gateway.fetch_image(external) == stash_sim.screenshot_bytes(1)
    assert stash_sim.requests.all()[-1].path == "/scene/1/screenshot"
    before = len(stash_sim.requests)
    with pytest.raises(PermanentError, match="refusing to send Stash credentials"):
        gateway.fetch_image("https://elsewhere.example.com/collect?x=1")
    with pytest.raises(PermanentError, match="http"):
        gateway.fetch_image("file:///etc/passwd")
    assert len(stash_sim.requests) == before


def test_image_download_retries_a_reset_connection(
    stash_sim: StashSimulator, gateway: StashApiGateway, screenshot: str
) -> None:
    stash_sim.faults.add(Fault(path="^/scene/", action="reset", times=1))
    assert gateway.fetch_image(screenshot) == stash_sim.screenshot_bytes(1)
    stash_sim.faults.add(Fault(path="^/scene/", action="reset", times=4))
    with pytest.raises(BackendUnavailableError):
        gateway.fetch_image(screenshot)


def test_an_unchanged_image_costs_a_304_and_no_download(
    stash_sim: StashSimulator, gateway: StashApiGateway, screenshot: str
) -> None:
    first = gateway.fetch_image_if_changed(screenshot)
    assert first is not None
    assert first.data == stash_sim.screenshot_bytes(1)
    assert first.etag  # Stash tags images by content
    stash_sim.requests.clear()
    assert gateway.fetch_image_if_changed(screenshot, first.etag) is None
    (call,) = stash_sim.requests.all()
    assert call.headers["If-None-Match"] == first.etag

    stash_sim.update_scene(1, cover=image_bytes("a cover chosen in Stash"))
    changed = gateway.fetch_image_if_changed(screenshot, first.etag)  # the old URL, a new cover
    assert changed is not None
    assert changed.data == stash_sim.screenshot_bytes(1) == image_bytes("a cover chosen in Stash")
    assert changed.etag not in (None, first.etag)
