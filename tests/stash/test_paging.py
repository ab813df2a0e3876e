"""Our own keyset page loop: fresh variables per request, stable under concurrent edits."""

from __future__ import annotations

import json

from stash2plex_backends.simulators.stash import StashSimulator
from stash2plex_backends.stash import StashApiGateway
from tests.stash.conftest import KEY


def _variables(sim: StashSimulator) -> list[dict[str, object]]:
    return [json.loads(r.body)["variables"] for r in sim.requests.all() if b"Stash2PlexFindScenes" in r.body]


def test_pages_are_keyset_by_id_with_fresh_filters() -> None:
    with StashSimulator(scenes=30, seed=3, api_key=KEY) as sim:
        gateway = StashApiGateway(sim.url, api_key=KEY, timeout=5, page_size=7)
        ids = [s.id for s in gateway.iter_scenes()]
        assert ids == [str(i) for i in range(1, 31)]
        variables = _variables(sim)
        assert len(variables) == 5  # 7+7+7+7+2
        floors = [v["scene_filter"].get("id", {}).get("value") for v in variables]  # type: ignore[union-attr]
        assert floors == [None, 7, 14, 21, 28]
        for v in variables:
            assert v["filter"] == {"page": 1, "per_page": 7, "sort": "id", "direction": "ASC"}
        # A second pass starts again from scratch: nothing leaked from the first one's dicts.
        sim.requests.clear()
        assert [s.id for s in gateway.iter_scenes()] == ids
        assert next(v["scene_filter"] for v in _variables(sim)) == {}


def test_edits_during_iteration_neither_skip_nor_repeat() -> None:
    with StashSimulator(scenes=20, seed=3, api_key=KEY) as sim:
        gateway = StashApiGateway(sim.url, api_key=KEY, timeout=5, page_size=5)
        seen: list[str] = []
        scenes = gateway.iter_scenes()
        for _ in range(5):
            seen.append(next(scenes).id)
        sim.destroy_scene(2)  # removed behind the cursor: page numbers would now skip one
        sim.destroy_scene(3)
        added = sim.add_scene("/data/library/new during iteration.mp4")
        seen += [s.id for s in scenes]
        assert len(seen) == len(set(seen))
        assert set(seen) == {str(i) for i in range(1, 21)} | {str(added.id)}


def test_page_size_at_least_500_by_default() -> None:
    assert StashApiGateway("http://127.0.0.1:9999").page_size >= 500
