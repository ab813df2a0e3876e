"""The StashGateway contract for the stashapi gateway, against the simulated Stash over HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import stash2plex_backends.stash.plugin as stash_plugin
from stash2plex_backends.simulators.stash import StashSimulator
from stash2plex_backends.stash import StashApiGateway
from stash2plex_core.errors import ConfigurationError
from stash2plex_core.plugin import BackendRegistry
from stash2plex_core.plugin import build_registry
from stash2plex_core.settings import Secret
from stash2plex_core.settings import Settings
from stash2plex_core.testing.contracts import StashGatewayContract
from stash2plex_core.testing.worlds import SceneSpec
from tests.stash.conftest import KEY
from tests.stash.worlds import SimulatedStashWorld


class TestStashApiGateway(StashGatewayContract):
    """Run twice: a UTC server (``…Z``) and one in Europe/Berlin (``+01:00``/``+02:00``)."""

    backend_id = "stashapi"

    @pytest.fixture(params=["+00:00", "Europe/Berlin"])
    def stash_world(self, request: pytest.FixtureRequest) -> Iterator[SimulatedStashWorld]:
        with StashSimulator(api_key=KEY, utc_offset=request.param) as sim:
            gateway = StashApiGateway(sim.url, api_key=KEY, timeout=5)
            yield SimulatedStashWorld(sim, gateway)
            gateway.close()


def test_registered_with_recommended_priority() -> None:
    registry = build_registry(autoload=False, plugins=[stash_plugin])
    assert registry.select("stash") is StashApiGateway
    assert StashApiGateway.id == "stashapi"
    assert StashApiGateway.priority == 10
    assert StashApiGateway.viable()
    assert isinstance(registry, BackendRegistry)


def test_building_from_settings_does_not_connect(stash_sim: StashSimulator) -> None:
    settings = Settings(stash_url=stash_sim.url, stash_api_key=Secret(KEY), stash_timeout=3.0)
    gateway = StashApiGateway.from_settings(settings, clock=None)  # type: ignore[arg-type]
    assert len(stash_sim.requests) == 0
    assert gateway.ping().version == "v0.30.1"
    # stashapi's constructor: version, apiKey, introspection; then our version query.
    assert len(stash_sim.requests) == 4
    gateway.ping()
    assert len(stash_sim.requests) == 5  # one StashInterface per gateway, built once
    assert all(r.headers.get("ApiKey") == KEY for r in stash_sim.requests.all())
    gateway.close()


def test_from_settings_needs_a_url() -> None:
    with pytest.raises(ConfigurationError, match="stash_url"):
        StashApiGateway.from_settings(Settings(), clock=None)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="query"):
        StashApiGateway("http://127.0.0.1:9999/?apikey=x")


def test_url_without_port_uses_the_scheme_default() -> None:
    gateway = StashApiGateway("https://stash.example.com/")
    assert gateway.base_url == "https://stash.example.com"
    assert gateway._conn()["Port"] == 443


def test_every_query_carries_its_own_fragment_and_no_count(stash_sim: StashSimulator, gateway: StashApiGateway) -> None:
    stash_sim.add_scene("/data/library/a.mp4", title="A")
    gateway.ping()
    stash_sim.requests.clear()
    assert gateway.get_scene("1") is not None
    list(gateway.iter_scenes())
    gateway.find_by_path("/data/library/a.mp4")
    bodies = [r.body.decode() for r in stash_sim.requests.all()]
    assert len(bodies) == 3
    for body in bodies:
        assert "fragment Stash2PlexScene on Scene" in body
        assert "...Scene\\n" not in body
        assert "fragment Scene " not in body
        assert "count" not in body
        assert "scene_ids" not in body


def test_scene_fields_decoded(stash_sim: StashSimulator, gateway: StashApiGateway) -> None:
    world = SimulatedStashWorld(stash_sim, gateway)
    scene_id = world.add_scene(SceneSpec(title="", files=("/data/library/x.mp4", "/data/library/x 2.mkv")))
    parent = stash_sim.add_studio("Network")
    child = stash_sim.add_studio("Label", parent_id=parent.id)
    group = stash_sim.add_group("Trilogy")
    stash_sim.update_scene(scene_id, studio_id=child.id, groups=[(group.id, 2)], code="C-1", director="D")
    scene = gateway.get_scene(scene_id)
    assert scene is not None
    assert scene.title is None  # "" and null both mean empty
    assert scene.files == ("/data/library/x.mp4", "/data/library/x 2.mkv")
    assert scene.duration == 1800.0
    assert scene.studio is not None
    assert scene.studio.name == "Label"
    assert scene.studio.parent is not None
    assert scene.studio.parent.name == "Network"
    assert [g.name for g in scene.groups] == ["Trilogy"]
    assert (scene.code, scene.director) == ("C-1", "D")
    assert scene.updated_at == stash_sim.scene(scene_id).updated_at


def test_performer_placeholder_image_is_no_image(stash_sim: StashSimulator, gateway: StashApiGateway) -> None:
    with_image = stash_sim.add_performer("Has Photo")
    without = stash_sim.add_performer("No Photo", has_image=False)
    scene = stash_sim.add_scene("/data/library/p.mp4", performer_ids=[with_image.id, without.id])
    got = gateway.get_scene(str(scene.id))
    assert got is not None
    images = {p.name: p.image_url for p in got.performers}
    assert images["No Photo"] is None
    assert images["Has Photo"] is not None
    assert gateway.fetch_image(images["Has Photo"]) == stash_sim.performer_image_bytes(with_image.id)


def test_non_numeric_ids_are_missing_without_a_request(stash_sim: StashSimulator, gateway: StashApiGateway) -> None:
    gateway.ping()
    before = len(stash_sim.requests)
    assert gateway.get_scene("abc") is None
    assert len(stash_sim.requests) == before


def test_the_endpoint_keeps_a_reverse_proxy_path(stash_sim: StashSimulator) -> None:
    """stashapi builds ``scheme://host:port/graphql``; a Stash under ``/stash`` needs our endpoint."""
    gateway = StashApiGateway(f"{stash_sim.url}/stash", api_key=KEY, timeout=5)
    with pytest.raises(ConfigurationError, match="404"):
        gateway.ping()
    assert [r.path for r in stash_sim.requests.all()] == ["/stash/graphql"]
