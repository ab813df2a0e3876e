"""Exact-path look-ups despite Stash's LIKE semantics (``_``/``%`` wildcards, ASCII case folding)."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator

import pytest

from stash2plex_backends.memory import MemoryStash
from stash2plex_backends.simulators.stash import StashSimulator
from stash2plex_backends.stash import StashApiGateway
from stash2plex_backends.stash._queries import loose_path_patterns
from stash2plex_core.models.stash import StashScene
from stash2plex_core.settings import Secret
from stash2plex_core.settings import Settings
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


# -- optional normalisation (stash_path_match = "normalised") -------------------------------------

NFD_AMELIE = unicodedata.normalize("NFD", "/mac/Amélie Poulain.mp4")
NFD_GLASS = unicodedata.normalize("NFD", "/lib/ガラス 映画.mkv")  # the dakuten decomposes too
LOOSE = [
    # (the path Stash stores, a path asked for that normalises alike)
    ("/lib/Émile Zola.mp4", "/lib/émile zola.MP4"),  # non-ASCII case: Stash's LIKE folds ASCII only
    ("/lib/Émile Zola.mp4", unicodedata.normalize("NFD", "/lib/Émile Zola.mp4")),
    (NFD_AMELIE, "/MAC/AMÉLIE POULAIN.mp4"),  # stored decomposed (macOS), asked composed
    (NFD_GLASS, "/lib/ガラス 映画.mkv"),
    ("/lib/Фильм Один.mkv", "/lib/фильм один.MKV"),
    ("/lib/Clip_One/x.mp4", "\\lib\\clip_one\\X.mp4"),  # separators (the simulator is a Linux Stash)
    ("/lib/dir/x.mp4", "/lib//dir/x.mp4/"),  # doubled and trailing separators
]


@pytest.fixture
def loose_gateway(stash_sim: StashSimulator) -> Iterator[StashApiGateway]:
    gw = StashApiGateway(stash_sim.url, api_key=KEY, timeout=5, path_match="normalised")
    yield gw
    gw.close()


@pytest.mark.parametrize(("stored", "asked"), LOOSE)
def test_normalised_lookups_find_case_composition_and_separator_variants(
    stash_sim: StashSimulator, gateway: StashApiGateway, loose_gateway: StashApiGateway, stored: str, asked: str
) -> None:
    wanted = str(stash_sim.add_scene(stored).id)
    for decoy in ("/lib/Emile Zola.mp4", "/mac/Amelie Poulain.mp4", "/lib/Фильм Два.mkv", "/lib/ClipXOne/x.mp4"):
        stash_sim.add_scene(decoy)
    assert gateway.find_by_path(asked) == [] or asked == stored  # the default stays exact
    loose_gateway.ping()
    stash_sim.requests.clear()
    assert [s.id for s in loose_gateway.find_by_path(asked)] == [wanted]
    assert len(stash_sim.requests) <= 2  # one LIKE per Unicode form, only when the forms differ


def test_normalised_lookups_stay_exact_otherwise(
    stash_sim: StashSimulator, loose_gateway: StashApiGateway, trap_sim: dict[str, str]
) -> None:
    for path in (
        "/lib/50%.mp4",
        "/lib/[1] 100%_done.mp4",
        "/lib/日本語 ファイル.mkv",
        "/lib/My  Videos/x.mp4",
        "/lib/%",
    ):
        assert [s.id for s in loose_gateway.find_by_path(path)] == [trap_sim[path]], path
    # Case variants are one file to a normalised look-up: both scenes, each once.
    assert sorted(s.id for s in loose_gateway.find_by_path("/lib/a_b.mp4".upper())) == sorted(
        [trap_sim["/lib/a_b.mp4"], trap_sim["/lib/A_B.MP4"]]
    )
    assert sorted(s.id for s in loose_gateway.find_by_path("/lib/EMILE.mp4")) == [trap_sim["/lib/Emile.mp4"]]
    assert loose_gateway.find_by_path("/lib/a_b") == []


def test_an_ascii_path_costs_one_request_normalised_too(
    stash_sim: StashSimulator, loose_gateway: StashApiGateway, trap_sim: dict[str, str]
) -> None:
    loose_gateway.ping()
    stash_sim.requests.clear()
    assert [s.id for s in loose_gateway.find_by_path("/LIB/MAIN.MP4")] == [trap_sim["/lib/main.mp4"]]
    assert len(stash_sim.requests) == 1


def test_the_setting_reaches_the_gateway(stash_sim: StashSimulator) -> None:
    settings = Settings(stash_url=stash_sim.url, stash_api_key=Secret(KEY), stash_path_match="normalised")
    gateway = StashApiGateway.from_settings(settings)
    stash_sim.add_scene("/lib/Émile.mp4")
    assert len(gateway.find_by_path("/lib/émile.mp4")) == 1
    assert StashApiGateway.from_settings(Settings(stash_url=stash_sim.url, stash_api_key=Secret(KEY))).path_match == (
        "exact"
    )
    with pytest.raises(ValueError, match="path_match"):
        StashApiGateway(stash_sim.url, path_match="fuzzy")
    gateway.close()


@pytest.mark.parametrize(
    ("path", "patterns"),
    [
        ("/lib/a_b.mp4", ["%lib_a_b.mp4"]),
        ("/lib/Émile.mp4", ["%lib__mile.mp4", "%lib_E\u0301mile.mp4"]),  # combining marks stay
        ("C:\\x\\日本.mkv", ["C:_x_日本.mkv"]),
        ("/", ["/"]),
    ],
)
def test_loose_patterns(path: str, patterns: list[str]) -> None:
    assert loose_path_patterns(path) == patterns


def test_memory_fake_normalises_windows_and_unc_paths_too() -> None:
    """Stash on Windows stores ``C:\\...`` and ``\\\\nas\\...``; the fake stands in for it here."""
    scenes = [
        StashScene(id="1", files=("C:\\Media\\Clip One.mp4",)),
        StashScene(id="2", files=("\\\\nas\\share\\Movie.mkv",)),
        StashScene(id="3", files=("C:\\Media\\Clip Two.mp4",)),
    ]
    loose, exact = MemoryStash(scenes, path_match="normalised"), MemoryStash(scenes)
    assert [s.id for s in loose.find_by_path("c:/media/CLIP ONE.mp4")] == ["1"]
    assert [s.id for s in loose.find_by_path("//NAS/share/movie.mkv")] == ["2"]
    assert exact.find_by_path("c:/media/CLIP ONE.mp4") == []
    assert [s.id for s in exact.find_by_path("C:\\Media\\Clip One.mp4")] == ["1"]
    assert loose_path_patterns("\\\\nas\\share\\Movie.mkv") == ["%nas_share_Movie.mkv"]
