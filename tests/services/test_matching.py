"""Matching scenes to Plex items, against the in-memory Plex (a real adapter, no mocks)."""

from __future__ import annotations

import datetime as dt
import unicodedata

import pytest

from stash2plex_backends.memory.plex import MemoryPlex
from stash2plex_core.models.health import SyncRecord
from stash2plex_core.models.matching import Confidence
from stash2plex_core.models.matching import MatchMethod
from stash2plex_core.models.matching import MatchResult
from stash2plex_core.models.matching import PathRule
from stash2plex_core.models.stash import StashScene
from stash2plex_core.services.matching import Matcher
from stash2plex_core.services.matching import file_name
from stash2plex_core.services.matching import normalise_path
from stash2plex_core.services.matching import should_apply
from stash2plex_core.services.pathrules import PathMapper
from stash2plex_core.settings import Settings


NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
RULE = PathRule(
    name="nas",
    stash_pattern=r"^/data/(?P<rest>.*)$",
    plex_template="/media/{rest}",
    plex_pattern=r"^/media/(?P<rest>.*)$",
    stash_template="/data/{rest}",
    samples=("/data/a/b.mp4",),
)


@pytest.fixture
def plex() -> MemoryPlex:
    return MemoryPlex(section_root="/media")


def matcher(plex: MemoryPlex, rules: list[PathRule] | None = None, **settings: object) -> Matcher:
    return Matcher(plex, PathMapper.compile(rules if rules is not None else [RULE]), Settings(**settings))  # type: ignore[arg-type]


def scene(*files: str) -> StashScene:
    return StashScene(id="s1", title="t", files=files)


def record(rating_key: str) -> SyncRecord:
    return SyncRecord("s1", rating_key, "digest", None, None, NOW)


def keys(result: MatchResult) -> list[str]:
    return [c.rating_key for c in result.candidates]


# --- helpers


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("/Media/Studio/Film.MP4", "/media/studio/film.mp4"),
        ("C:\\Media\\x.mp4", "c:/media/x.mp4"),
        ("/media//x.mp4/", "/media/x.mp4"),
        ("/media/Caf\u00e9.mp4", "/media/Cafe\u0301.mp4"),
        ("/media/STRASSE.mp4", "/media/stra\u00dfe.mp4"),
    ],
)
def test_normalise_path_equates(a: str, b: str) -> None:
    assert normalise_path(a) == normalise_path(b)


def test_normalise_path_keeps_real_differences() -> None:
    assert normalise_path("/media/a/x.mp4") != normalise_path("/media/b/x.mp4")
    assert normalise_path("/") == "/"
    assert file_name("C:\\a\\b.mp4") == "b.mp4"
    assert file_name("/a/b.mp4") == "b.mp4"


# --- 1. recorded


def test_recorded_key_verified_by_the_exact_path(plex: MemoryPlex) -> None:
    plex.add_item(["/media/x.mp4"])
    key = plex.add_item(["/media/a/b.mp4"]).rating_key
    result = matcher(plex).match(scene("/data/a/b.mp4"), record(key))
    assert (result.rating_key, result.confidence, result.method) == (key, Confidence.HIGH, MatchMethod.RECORDED)
    assert result.plex_path == "/media/a/b.mp4"
    assert "get_items" not in plex.calls  # verification needed no detail read


def test_stale_record_falls_back_to_the_exact_path(plex: MemoryPlex) -> None:
    old = plex.add_item(["/media/a/b.mp4"]).rating_key
    plex.remove_item(old)
    new = plex.add_item(["/media/a/b.mp4"]).rating_key
    result = matcher(plex).match(scene("/data/a/b.mp4"), record(old))
    assert (result.rating_key, result.method) == (new, MatchMethod.EXACT_PATH)


def test_a_recorded_item_that_now_holds_another_file_is_not_trusted(plex: MemoryPlex) -> None:
    other = plex.add_item(["/media/other.mp4"]).rating_key
    result = matcher(plex).match(scene("/data/a/b.mp4"), record(other))
    assert result.confidence is Confidence.NONE
    assert result.rating_key is None


def test_recorded_key_verified_loosely_when_the_path_changed_case(plex: MemoryPlex) -> None:
    key = plex.add_item(["/media/A/B.mp4"]).rating_key
    result = matcher(plex).match(scene("/data/a/b.mp4"), record(key))
    assert (result.rating_key, result.confidence, result.method) == (key, Confidence.HIGH, MatchMethod.RECORDED)
    assert result.plex_path == "/media/A/B.mp4"


# --- 2. exact path


def test_exact_mapped_path(plex: MemoryPlex) -> None:
    plex.add_item(["/media/a/other.mp4"])
    key = plex.add_item(["/media/a/b.mp4"]).rating_key
    result = matcher(plex).match(scene("/data/a/b.mp4"))
    assert (result.rating_key, result.confidence, result.method) == (key, Confidence.HIGH, MatchMethod.EXACT_PATH)
    assert keys(result) == [key]
    assert "find_by_filename" not in plex.calls


def test_path_rules_are_applied(plex: MemoryPlex) -> None:
    key = plex.add_item(["/media/a/b.mp4"]).rating_key
    assert matcher(plex).match(scene("/data/a/b.mp4")).method is MatchMethod.EXACT_PATH
    unmapped = matcher(plex, rules=[]).match(scene("/data/a/b.mp4"))  # identity: no exact hit
    assert (unmapped.rating_key, unmapped.method) == (key, MatchMethod.FILENAME)


def test_multi_file_scene_matches_by_any_file(plex: MemoryPlex) -> None:
    key = plex.add_item(["/media/a/b.mkv"]).rating_key
    result = matcher(plex).match(scene("/data/a/b.mp4", "/data/a/b.mkv"))
    assert (result.rating_key, result.method, result.plex_path) == (key, MatchMethod.EXACT_PATH, "/media/a/b.mkv")


def test_primary_file_wins_over_secondary(plex: MemoryPlex) -> None:
    second = plex.add_item(["/media/a/b.mkv"]).rating_key
    first = plex.add_item(["/media/a/b.mp4"]).rating_key
    result = matcher(plex).match(scene("/data/a/b.mp4", "/data/a/b.mkv"))
    assert result.rating_key == first != second


def test_record_found_through_a_secondary_file(plex: MemoryPlex) -> None:
    plex.add_item(["/media/a/b.mp4"])
    key = plex.add_item(["/media/a/b.mkv"]).rating_key
    result = matcher(plex).match(scene("/data/a/b.mp4", "/data/a/b.mkv"), record(key))
    assert (result.rating_key, result.method) == (key, MatchMethod.RECORDED)


def test_one_item_with_several_parts(plex: MemoryPlex) -> None:
    key = plex.add_item(["/media/a/cd1.mp4", "/media/a/cd2.mp4"]).rating_key
    assert matcher(plex).match(scene("/data/a/cd2.mp4")).rating_key == key


def test_same_file_in_two_items_is_ambiguous(plex: MemoryPlex) -> None:
    one = plex.add_item(["/media/a/b.mp4"]).rating_key
    two = plex.add_item(["/media/a/b.mp4"]).rating_key
    result = matcher(plex).match(scene("/data/a/b.mp4"))
    assert (result.confidence, result.method) == (Confidence.LOW, MatchMethod.EXACT_PATH)
    assert keys(result) == [one, two]


# --- 3. normalised path


@pytest.mark.parametrize(
    ("plex_path", "stash_path"),
    [
        ("/media/Studio/Film.MP4", "/data/studio/film.mp4"),
        ("/media/Caf\u00e9/Cr\u00e8me.mp4", unicodedata.normalize("NFD", "/data/Caf\u00e9/Cr\u00e8me.mp4")),
        (unicodedata.normalize("NFD", "/media/Caf\u00e9/Cr\u00e8me.mp4"), "/data/Caf\u00e9/Cr\u00e8me.mp4"),
        ("/media//a/b.mp4", "/data/a/b.mp4"),
    ],
)
def test_normalised_path(plex: MemoryPlex, plex_path: str, stash_path: str) -> None:
    plex.add_item(["/media/elsewhere/" + file_name(plex_path)])  # same name, other folder
    key = plex.add_item([plex_path]).rating_key
    result = matcher(plex).match(scene(stash_path))
    assert (result.rating_key, result.confidence, result.method) == (key, Confidence.HIGH, MatchMethod.NORMALISED_PATH)
    assert keys(result) == [key]


def test_normalised_match_with_windows_plex(plex: MemoryPlex) -> None:
    rule = PathRule("win", r"^/data/(?P<rest>.*)$", "D:\\Media\\{rest}", r"^D:/Media/(?P<rest>.*)$", "/data/{rest}")
    key = plex.add_item(["d:\\media\\STUDIO\\film.mp4"]).rating_key
    result = matcher(plex, rules=[rule]).match(scene("/data/Studio/Film.mp4"))
    assert (result.rating_key, result.method) == (key, MatchMethod.NORMALISED_PATH)


def test_normalised_duplicates_are_low(plex: MemoryPlex) -> None:
    one = plex.add_item(["/media/A/x.mp4"]).rating_key
    two = plex.add_item(["/media/a/X.mp4"]).rating_key
    result = matcher(plex).match(scene("/data/a/x.mp4"))
    assert (result.confidence, result.method) == (Confidence.LOW, MatchMethod.NORMALISED_PATH)
    assert sorted(keys(result)) == sorted([one, two])


# --- 4. file name


def test_unique_file_name_is_high(plex: MemoryPlex) -> None:
    key = plex.add_item(["/media/moved/B.mp4"]).rating_key
    result = matcher(plex).match(scene("/data/a/b.mp4"))
    assert (result.rating_key, result.confidence, result.method) == (key, Confidence.HIGH, MatchMethod.FILENAME)
    assert result.plex_path == "/media/a/b.mp4"


def test_ambiguous_file_name_is_low_with_candidates_ranked(plex: MemoryPlex) -> None:
    far = plex.add_item(["/media/x/y/b.mp4"]).rating_key
    near = plex.add_item(["/media/z/a/b.mp4"]).rating_key
    other = plex.add_item(["/media/q/b.mp4"]).rating_key
    result = matcher(plex).match(scene("/data/a/b.mp4"))
    assert (result.confidence, result.method) == (Confidence.LOW, MatchMethod.FILENAME)
    assert keys(result) == [near, far, other]  # most shared trailing folders first, then by key
    assert result.rating_key == near


def test_file_name_in_nfd_is_found(plex: MemoryPlex) -> None:
    key = plex.add_item([unicodedata.normalize("NFD", "/media/other/Cr\u00e8me.mp4")]).rating_key
    result = matcher(plex).match(scene("/data/a/Cr\u00e8me.mp4"))
    assert (result.rating_key, result.method) == (key, MatchMethod.FILENAME)


# --- nothing


def test_no_item_gives_none_with_the_path_to_scan(plex: MemoryPlex) -> None:
    plex.stage("/media/a/b.mp4")
    result = matcher(plex).match(scene("/data/a/b.mp4"))
    assert result == MatchResult("s1", None, Confidence.NONE, MatchMethod.NONE, (), "/media/a/b.mp4")
    plex.scan(result.plex_path)  # type: ignore[arg-type]
    assert matcher(plex).match(scene("/data/a/b.mp4")).method is MatchMethod.EXACT_PATH


def test_scene_without_files_or_with_unmapped_files(plex: MemoryPlex) -> None:
    assert matcher(plex).match(scene()).confidence is Confidence.NONE
    outside = matcher(plex).match(scene("/elsewhere/zzz.mp4"))
    assert (outside.confidence, outside.plex_path) == (Confidence.NONE, None)


def test_unsafe_paths_are_never_looked_up(plex: MemoryPlex) -> None:
    plex.add_item(["/etc/passwd"])
    result = matcher(plex).match(scene("/data/../../etc/passwd"))
    assert plex.calls == {}
    assert (result.confidence, result.plex_path) == (Confidence.NONE, None)


# --- applying


@pytest.mark.parametrize(
    ("confidence", "allow", "expected"),
    [
        (Confidence.HIGH, False, True),
        (Confidence.LOW, False, False),
        (Confidence.LOW, True, True),
        (Confidence.NONE, True, False),
    ],
)
def test_should_apply(confidence: Confidence, allow: bool, expected: bool) -> None:
    key = None if confidence is Confidence.NONE else "1"
    result = MatchResult("s1", key, confidence, MatchMethod.FILENAME)
    assert should_apply(result, Settings(allow_low_confidence=allow)) is expected
