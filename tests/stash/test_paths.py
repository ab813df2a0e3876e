"""Exact-path look-ups despite Stash's LIKE semantics (``_``/``%`` wildcards, ASCII case folding)."""

from __future__ import annotations

import pytest

from stash2plex_backends.simulators.stash import StashSimulator
from stash2plex_backends.stash import StashApiGateway
from tests.stash.conftest import KEY


TRAPS = [
    "/lib/a_b.mp4",
    "/lib/aXb.mp4",
    "/lib/A_B.MP4",
    "/lib/50%.mp4",
    "/lib/50 percent.mp4",
    "/lib/500.mp4",
    "/lib/My Videos/x.mp4",
    "/lib/my videos/x.mp4",
    "/lib/My  Videos/x.mp4",
    "/lib/Émile.mp4",
    "/lib/émile.mp4",
    "/lib/Emile.mp4",
    "/lib/日本語 ファイル.mkv",
    "/lib/[1] 100%_done.mp4",
    "/lib/[1] 100X_done.mp4",
    "/lib/%",
]


@pytest.fixture
def trap_sim(stash_sim: StashSimulator) -> dict[str, str]:
    ids = {path: str(stash_sim.add_scene(path).id) for path in TRAPS}
    both = stash_sim.add_scene("/lib/main.mp4", "/lib/Other_Version.MKV")
    ids["/lib/main.mp4"] = ids["/lib/Other_Version.MKV"] = str(both.id)
    return ids


@pytest.mark.parametrize("path", [*TRAPS, "/lib/Other_Version.MKV"])
def test_each_trap_path_resolves_to_exactly_its_scene_in_one_request(
    stash_sim: StashSimulator, gateway: StashApiGateway, trap_sim: dict[str, str], path: str
) -> None:
    gateway.ping()
    stash_sim.requests.clear()
    assert [s.id for s in gateway.find_by_path(path)] == [trap_sim[path]]
    assert len(stash_sim.requests) == 1


def test_near_misses_find_nothing(gateway: StashApiGateway, trap_sim: dict[str, str]) -> None:
    for path in ("/lib/a_b.MP4", "/lib/EMILE.mp4", "/lib/other_version.mkv", "/lib/a_b", "/lib/_", "/LIB/%"):
        assert gateway.find_by_path(path) == [], path


def test_wildcard_matches_spanning_several_pages_still_end_exact(stash_sim: StashSimulator) -> None:
    """``/w/%.mp4`` LIKE-matches every file; the literal one has the highest id."""
    decoys = [stash_sim.add_scene(f"/w/{i}.mp4") for i in range(9)]
    literal = stash_sim.add_scene("/w/%.mp4")
    gateway = StashApiGateway(stash_sim.url, api_key=KEY, timeout=5, page_size=4)
    gateway.ping()
    stash_sim.requests.clear()
    assert [s.id for s in gateway.find_by_path("/w/%.mp4")] == [str(literal.id)]
    assert len(stash_sim.requests) == 3  # 10 candidates, 4 per page
    assert decoys
