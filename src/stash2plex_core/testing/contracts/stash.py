"""The StashGateway contract."""

from __future__ import annotations

import unicodedata

import pytest

from stash2plex_core.models.stash import StashScene
from stash2plex_core.testing.worlds import SceneSpec
from stash2plex_core.testing.worlds import StashWorld


class StashGatewayContract:
    """Subclass, and provide a ``stash_world`` fixture (see :class:`StashWorld`)."""

    @pytest.fixture
    def stash_world(self) -> StashWorld:
        raise NotImplementedError("provide a `stash_world` fixture")

    def path(self, world: StashWorld, *parts: str) -> str:
        return "/".join([world.root.rstrip("/"), *parts])

    def test_ping(self, stash_world: StashWorld) -> None:
        assert stash_world.gateway.ping().version

    def test_get_scene_has_every_field(self, stash_world: StashWorld) -> None:
        spec = SceneSpec(
            title="Été à Paris",
            files=(self.path(stash_world, "a", "été.mp4"),),
            performers=("Zoë", "Björn"),
            tags=("Outdoor", "Drama"),
            studio="Café Noir",
            details="Line one\nLine two",
            date="2021-03-04",
            rating100=80,
        )
        scene_id = stash_world.add_scene(spec)
        scene = stash_world.gateway.get_scene(scene_id)
        assert isinstance(scene, StashScene)
        assert (scene.id, scene.title, scene.details, scene.date, scene.rating100) == (
            scene_id,
            spec.title,
            spec.details,
            spec.date,
            spec.rating100,
        )
        assert scene.files == spec.files
        assert scene.studio is not None
        assert scene.studio.name == "Café Noir"
        assert sorted(p.name for p in scene.performers) == ["Björn", "Zoë"]
        assert sorted(t.name for t in scene.tags) == ["Drama", "Outdoor"]
        assert scene.screenshot_url
        assert scene.updated_at

    def test_missing_scene_is_none(self, stash_world: StashWorld) -> None:
        assert stash_world.gateway.get_scene("987654321") is None

    def test_get_scenes_answers_like_get_scene_for_each(self, stash_world: StashWorld) -> None:
        first = stash_world.add_scene(SceneSpec(title="First", files=(self.path(stash_world, "b", "1.mp4"),)))
        second = stash_world.add_scene(
            SceneSpec(title="Second", files=(self.path(stash_world, "b", "2.mp4"),), tags=("T",))
        )
        found = stash_world.gateway.get_scenes([second, "987654321", first, second, "not-an-id"])
        assert set(found) == {first, second}, "missing ids are absent, duplicates asked once"
        assert found[first] == stash_world.gateway.get_scene(first)
        assert found[second] == stash_world.gateway.get_scene(second)
        assert stash_world.gateway.get_scenes([]) == {}
        with pytest.raises(ValueError, match="scene id"):
            stash_world.gateway.get_scenes([first, ""])

    def test_find_by_path_is_exact_despite_wildcards_and_case(self, stash_world: StashWorld) -> None:
        target = self.path(stash_world, "Studio_A", "50% Off [1] é.mp4")
        decoys = [
            self.path(stash_world, "StudioXA", "50% Off [1] é.mp4"),
            self.path(stash_world, "Studio_A", "50XX Off [1] é.mp4"),
            self.path(stash_world, "studio_a", "50% off [1] é.mp4"),
        ]
        wanted = stash_world.add_scene(SceneSpec(title="target", files=(target,)))
        for i, decoy in enumerate(decoys):
            stash_world.add_scene(SceneSpec(title=f"decoy {i}", files=(decoy,)))
        assert [s.id for s in stash_world.gateway.find_by_path(target)] == [wanted]
        assert stash_world.gateway.find_by_path(self.path(stash_world, "Studio_A", "nothing.mp4")) == []

    def test_find_by_path_matches_a_secondary_file(self, stash_world: StashWorld) -> None:
        files = (self.path(stash_world, "v", "film.mp4"), self.path(stash_world, "v", "film - 1080p.mkv"))
        wanted = stash_world.add_scene(SceneSpec(title="versions", files=files))
        assert [s.id for s in stash_world.gateway.find_by_path(files[1])] == [wanted]

    def test_find_by_path_normalised_ignores_case_composition_and_separators(self, stash_world: StashWorld) -> None:
        stored = unicodedata.normalize("NFD", self.path(stash_world, "Été", "Amélie_1.mp4"))  # as macOS writes it
        wanted = stash_world.add_scene(SceneSpec(title="target", files=(stored,)))
        stash_world.add_scene(SceneSpec(title="decoy", files=(self.path(stash_world, "Ete", "Amelie_1.mp4"),)))
        asked = self.path(stash_world, "ÉTÉ", "AMÉLIE_1.MP4").replace("/", "\\")
        gateway = stash_world.gateway
        assert gateway.find_by_path(asked) == []  # exact by default
        gateway.path_match = "normalised"
        try:
            assert [s.id for s in gateway.find_by_path(asked)] == [wanted]
            assert [s.id for s in gateway.find_by_path(stored)] == [wanted]
        finally:
            gateway.path_match = "exact"

    def test_iter_scenes_yields_every_scene_once(self, stash_world: StashWorld) -> None:
        ids = {
            stash_world.add_scene(SceneSpec(title=f"s{i}", files=(self.path(stash_world, "it", f"{i}.mp4"),)))
            for i in range(27)
        }
        seen = [s.id for s in stash_world.gateway.iter_scenes()]
        assert len(seen) == len(set(seen))
        assert ids <= set(seen)

    def test_iter_scenes_updated_since(self, stash_world: StashWorld) -> None:
        old = stash_world.add_scene(
            SceneSpec(title="old", files=(self.path(stash_world, "o.mp4"),), updated_at=stash_world.timestamp(0))
        )
        edge = stash_world.add_scene(
            SceneSpec(title="edge", files=(self.path(stash_world, "e.mp4"),), updated_at=stash_world.timestamp(100))
        )
        new = stash_world.add_scene(
            SceneSpec(title="new", files=(self.path(stash_world, "n.mp4"),), updated_at=stash_world.timestamp(200))
        )
        seen = {s.id for s in stash_world.gateway.iter_scenes(updated_since=stash_world.timestamp(100))}
        assert {edge, new} <= seen
        assert old not in seen

    def test_fetch_image_returns_the_served_bytes(self, stash_world: StashWorld) -> None:
        scene_id = stash_world.add_scene(
            SceneSpec(title="img", files=(self.path(stash_world, "img.mp4"),), performers=("Anaïs",))
        )
        scene = stash_world.gateway.get_scene(scene_id)
        assert scene is not None
        assert scene.screenshot_url is not None
        data = stash_world.gateway.fetch_image(scene.screenshot_url)
        assert data
        assert data == stash_world.image_bytes(scene.screenshot_url)

    def test_fetch_image_if_changed_never_hides_a_change(self, stash_world: StashWorld) -> None:
        scene_id = stash_world.add_scene(SceneSpec(title="tagged", files=(self.path(stash_world, "tag.mp4"),)))
        scene = stash_world.gateway.get_scene(scene_id)
        assert scene is not None
        assert scene.screenshot_url is not None
        url = scene.screenshot_url
        first = stash_world.gateway.fetch_image_if_changed(url)
        assert first is not None  # without a tag there is nothing to compare: always the bytes
        assert first.data == stash_world.image_bytes(url)
        again = stash_world.gateway.fetch_image_if_changed(url, first.etag)
        assert again is None or again.data == first.data  # unchanged: either answer is true
        other = stash_world.gateway.fetch_image_if_changed(url, '"not-its-tag"')
        assert other is not None  # another tag: the bytes, never "unchanged"
        assert other.data == first.data


__all__ = ["StashGatewayContract"]
