"""Match: Plex's relative filename → library root → path rule → exact Stash path, and fallbacks."""

from __future__ import annotations

import pytest

from stash2plex_backends.memory import MemoryStash
from stash2plex_core.models.stash import StashScene
from tests.provider.conftest import Provider


def keys(container: dict) -> list[str]:
    return [item["ratingKey"] for item in container["Metadata"]]


def test_match_by_path_rule(provider: Provider) -> None:
    container = provider.match(filename="Studio A/scene 1.mp4", title="scene 1", year=2023)
    assert container["size"] == container["totalSize"] == 1
    item = container["Metadata"][0]
    assert item["ratingKey"] == "scene-1"
    assert item["key"] == "/library/metadata/scene-1"
    assert item["guid"] == "tv.plex.agents.custom.stash2plex://movie/scene-1"
    assert item["type"] == "movie"
    assert item["title"] == "Ünïcode Title: 1"
    assert item["originallyAvailableAt"] == "2023-04-05"
    assert item["year"] == 2023
    assert item["score"] == 100
    # Answered from the snapshot read at start-up: no request to Stash at all.
    assert provider.stash.calls == {"iter_scenes": 1}


def test_without_the_snapshot_a_match_is_one_exact_path_query(make_provider) -> None:
    provider = make_provider(provider_index_seconds=0)
    assert keys(provider.match(filename="Studio A/scene 1.mp4")) == ["scene-1"]
    assert provider.stash.calls == {"find_by_path": 1}


@pytest.mark.parametrize(
    "filename",
    [
        "/Studio A/scene 1.mp4",  # Plex's documents show a leading slash too
        "/plex/Movies/Studio A/scene 1.mp4",  # an absolute path under the root is taken as it is
        "Studio A//./scene 1.mp4",
    ],
)
def test_filename_spellings_plex_may_send(provider: Provider, filename: str) -> None:
    assert keys(provider.match(filename=filename)) == ["scene-1"]


def test_unicode_names_match_exactly(provider: Provider) -> None:
    assert keys(provider.match(filename="plain/ä ö ü — 日本.mkv")) == ["scene-2"]
    # NFD spelling of the same name is a different file name on Linux: no path match.
    import unicodedata

    other = unicodedata.normalize("NFD", "plain/ä ö ü — 日本.mkv")
    assert keys(provider.match(filename=other)) == []


def test_underscore_and_percent_are_not_wildcards(provider: Provider) -> None:
    assert keys(provider.match(filename="x/100%_real_file.mp4")) == ["scene-3"]
    assert keys(provider.match(filename="x/100XXreal-file.mp4")) == ["scene-4"]
    assert keys(provider.match(filename="x/100%_real-file.mp4")) == []


def test_case_matters_on_the_exact_path(provider: Provider) -> None:
    # Not the exact path (case differs): only the weaker file-name fallback finds it.
    container = provider.match(filename="studio a/SCENE 1.mp4")
    assert keys(container) == ["scene-1"]
    assert container["Metadata"][0]["score"] == 80


def test_filename_fallback_when_no_rule_maps_it(provider: Provider) -> None:
    # Not under /plex/Movies's rule in Stash: found by its name alone, with a lower score.
    container = provider.match(filename="Elsewhere/unique name.mp4")
    assert keys(container) == ["scene-5"]
    assert container["Metadata"][0]["score"] == 80
    assert container["Metadata"][0]["score"] < 100
    # File names compare without regard to case in the fallback.
    assert keys(provider.match(filename="x/UNIQUE NAME.MP4")) == ["scene-5"]


def test_ambiguous_file_name_is_not_applied_automatically(provider: Provider) -> None:
    assert keys(provider.match(filename="z/twin.mp4")) == []
    manual = provider.match(filename="z/twin.mp4", manual=1)
    assert keys(manual) == ["scene-6", "scene-9"]
    assert {item["score"] for item in manual["Metadata"]} == {50}


def test_allow_low_confidence_applies_the_best_ambiguous_match(make_provider) -> None:
    provider = make_provider(allow_low_confidence=True)
    assert keys(provider.match(filename="z/twin.mp4")) == ["scene-6"]


def test_manual_returns_a_ranked_list(provider: Provider) -> None:
    stash = provider.stash
    # Same name as scene 1's file, elsewhere: a weaker candidate; and a scene titled like the hint.
    stash.put_scene(StashScene(id="20", title="Other", files=("/other/scene 1.mp4",)))
    stash.put_scene(StashScene(id="21", title="Ünïcode Title: 1", files=("/other/q.mp4",)))
    stash.put_scene(StashScene(id="22", title="An Ünïcode Title: 1 remake", files=("/other/r.mp4",)))
    provider.reindex()
    container = provider.match(filename="Studio A/scene 1.mp4", title="Ünïcode Title: 1", manual=1)
    ranked = [(item["ratingKey"], item["score"]) for item in container["Metadata"]]
    assert ranked[0] == ("scene-1", 100)
    scores = [score for _, score in ranked]
    assert scores == sorted(scores, reverse=True)
    assert ("scene-21", 40) in ranked
    assert ("scene-22", 30) in ranked
    assert container["size"] == len(ranked)
    # Without manual, only the best.
    assert keys(provider.match(filename="Studio A/scene 1.mp4", title="Ünïcode Title: 1")) == ["scene-1"]


def test_our_own_guid_rematches_directly(provider: Provider) -> None:
    container = provider.match(guid="tv.plex.agents.custom.stash2plex://movie/scene-2", title="whatever")
    assert keys(container) == ["scene-2"]
    assert container["Metadata"][0]["score"] == 100
    assert keys(provider.match(guid="tv.plex.agents.custom.other://movie/scene-2")) == []


def test_other_types_get_no_match(provider: Provider) -> None:
    assert provider.match(type=2, filename="Studio A/scene 1.mp4")["Metadata"] == []
    assert provider.match(type="4", filename="Studio A/scene 1.mp4")["Metadata"] == []


def test_hints_in_the_query_string_work_too(provider: Provider) -> None:
    response = provider.client.post(
        "/library/metadata/matches", params={"type": "1", "filename": "Studio A/scene 1.mp4", "X-Plex-Language": "en"}
    )
    assert response.status_code == 200
    assert keys(response.json()["MediaContainer"]) == ["scene-1"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"type": "movie"}', "type must be an integer"),
        (b'{"type": 1, "filename": 5}', "filename must be a string"),
        (b'{"type": 1, "filename": "../../etc/passwd"}', "climbs out"),
        (b'{"type": 1, "filename": "Studio A/../../x.mp4"}', "climbs out"),
        (b'{"type": 1, "filename": "a\\u0000b.mp4"}', "NUL"),
        (b'{"type": 1, "filename": ""}', "non-empty"),
        (b"\xff\xfe", "not JSON"),
    ],
)
def test_bad_match_requests_are_400_with_a_reason(provider: Provider, body: bytes, message: str) -> None:
    response = provider.client.post(
        "/library/metadata/matches", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert message in response.json()["error"]


def test_very_long_filenames(provider: Provider) -> None:
    response = provider.client.post("/library/metadata/matches", json={"type": 1, "filename": "a/" + "x" * 5000})
    assert response.status_code == 400
    assert "longer than" in response.json()["error"]
    # Long but legal: no match, no error.
    assert provider.match(filename="a/" + "é" * 2000 + ".mp4")["Metadata"] == []


def test_absolute_paths_outside_every_root_stay_inside_the_root(provider: Provider) -> None:
    stash = provider.stash
    stash.put_scene(StashScene(id="30", title="Root file", files=("/stash/media/etc/passwd",)))
    # "/etc/passwd" is read relative to the library root, never as the system file.
    container = provider.match(filename="/etc/passwd")
    assert keys(container) == ["scene-30"]


def test_empty_body_is_a_movie_match_with_no_hints(provider: Provider) -> None:
    response = provider.client.post("/library/metadata/matches")
    assert response.status_code == 200
    assert response.json()["MediaContainer"]["Metadata"] == []


def test_identity_mapping_with_provider_library_roots(make_provider) -> None:
    stash = MemoryStash()
    stash.put_scene(StashScene(id="1", title="Same paths", files=("/srv/media/a_b/x%y.mp4",)))
    provider = make_provider(stash, path_rules=(), provider_library_roots=("/srv/media",))
    assert keys(provider.match(filename="a_b/x%y.mp4")) == ["scene-1"]
    assert provider.match(filename="a_b/x%y.mp4")["Metadata"][0]["score"] == 100


def test_repeated_matches_are_served_from_the_cache(make_provider) -> None:
    provider = make_provider(provider_index_seconds=0)
    for _ in range(5):
        assert keys(provider.match(filename="Studio A/scene 1.mp4")) == ["scene-1"]
    response = provider.client.get("/library/metadata/scene-1")
    assert response.status_code == 200
    assert provider.stash.calls.get("find_by_path") == 1
    assert provider.stash.calls.get("get_scene", 0) == 0  # the match primed the scene cache


def test_without_a_cache_every_match_asks_stash(make_provider) -> None:
    provider = make_provider(provider_cache_seconds=0)
    for _ in range(3):
        assert keys(provider.match(filename="Studio A/scene 1.mp4")) == ["scene-1"]
    assert provider.stash.calls.get("find_by_path") == 3
