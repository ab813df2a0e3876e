"""The field map: every field, every switch, and the digest that lets the worker skip no-ops."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from typing import Any

import attrs
import pytest

from stash2plex_core.models.plex import Actor
from stash2plex_core.models.plex import DesiredPlexState
from stash2plex_core.models.plex import PlexMetadata
from stash2plex_core.models.stash import StashGroup
from stash2plex_core.models.stash import StashPerformer
from stash2plex_core.models.stash import StashScene
from stash2plex_core.models.stash import StashStudio
from stash2plex_core.models.stash import StashTag
from stash2plex_core.services.mapping import desired_state
from stash2plex_core.services.mapping import digest
from stash2plex_core.services.mapping import parse_date
from stash2plex_core.services.mapping import rating_to_plex
from stash2plex_core.settings import Settings


SCENE = StashScene(
    id="7",
    title="  The\u00a0Title\u200b ",
    code="ABC-123",
    details="Line one.\r\n\r\n\r\nLine   two.",
    director="Ann Smith; Bob Jones",
    date="2024-05-06",
    rating100=85,
    studio=StashStudio("2", "Studio\tX", parent=StashStudio("1", "Network")),
    performers=(
        StashPerformer("3", "Zoë", "http://stash/performer/3/image?t=1"),
        StashPerformer("4", "Adam", None),
        StashPerformer("5", "Björn", "http://stash/performer/5/image?default=true"),
    ),
    tags=(StashTag("9", "drama"), StashTag("8", "Action"), StashTag("10", "DRAMA"), StashTag("11", " ")),
    groups=(StashGroup("12", "Saga"), StashGroup("13", "Anthology")),
    files=("/data/studio/the.title.mp4", "/data/studio/the.title.mkv"),
    screenshot_url="http://stash/scene/7/screenshot?t=99",
    updated_at="2026-01-01T00:00:00Z",
)
ALL_SCALARS = {"title", "summary", "originallyAvailableAt", "year", "studio", "tagline", "userRating"}
ALL_TAGS = {"genre", "collection", "actor", "director"}


def test_every_field_maps() -> None:
    desired = desired_state(SCENE, Settings(sync_group_collections=True, content_rating="XXX"))
    meta = desired.metadata
    assert meta.title == "The Title"
    assert meta.summary == "Line one.\n\nLine two."
    assert meta.originally_available_at == dt.date(2024, 5, 6)
    assert meta.year == 2024
    assert meta.studio == "Studio X"
    assert meta.tagline == "ABC-123"
    assert meta.user_rating == 8.5
    assert meta.content_rating == "XXX"
    assert meta.genres == ("Action", "DRAMA")  # sorted; one spelling per name; blanks dropped
    assert meta.collections == ("Studio X", "Anthology", "Saga")
    assert meta.actors == (
        Actor("Adam"),
        Actor("Björn"),  # Stash's generated placeholder is not a photo
        Actor("Zoë", photo_url="http://stash/performer/3/image?t=1"),
    )
    assert meta.directors == ("Ann Smith", "Bob Jones")
    assert meta.sort_title is None
    assert meta.writers == ()
    assert desired.managed_fields == ALL_SCALARS | ALL_TAGS | {"contentRating"}
    assert desired.poster_url == "http://stash/scene/7/screenshot?t=99"


def test_defaults_manage_everything_but_groups_and_content_rating() -> None:
    desired = desired_state(SCENE, Settings())
    assert desired.managed_fields == ALL_SCALARS | ALL_TAGS
    assert desired.metadata.collections == ("Studio X",)
    assert desired.metadata.content_rating is None


@pytest.mark.parametrize(
    ("switch", "fields", "attr"),
    [
        ("sync_title", {"title"}, "title"),
        ("sync_summary", {"summary"}, "summary"),
        ("sync_date", {"originallyAvailableAt", "year"}, "year"),
        ("sync_studio", {"studio"}, "studio"),
        ("sync_code", {"tagline"}, "tagline"),
        ("sync_rating", {"userRating"}, "user_rating"),
        ("sync_tags", {"genre"}, "genres"),
        ("sync_performers", {"actor"}, "actors"),
        ("sync_director", {"director"}, "directors"),
    ],
)
def test_each_switch_turns_its_field_off(switch: str, fields: set[str], attr: str) -> None:
    on = desired_state(SCENE, Settings())
    switched_off: dict[str, Any] = {switch: False}
    off = desired_state(SCENE, Settings(**switched_off))
    assert fields <= on.managed_fields
    assert not fields & off.managed_fields
    assert getattr(on.metadata, attr)
    assert not getattr(off.metadata, attr)
    assert off.managed_fields == on.managed_fields - fields


def test_collection_switches() -> None:
    neither = desired_state(SCENE, Settings(sync_studio_collection=False))
    assert "collection" not in neither.managed_fields
    assert neither.metadata.collections == ()
    groups_only = desired_state(SCENE, Settings(sync_studio_collection=False, sync_group_collections=True))
    assert groups_only.metadata.collections == ("Anthology", "Saga")
    assert "collection" in groups_only.managed_fields


def test_performer_photos_switch_and_poster_switch() -> None:
    desired = desired_state(SCENE, Settings(sync_performer_photos=False, sync_poster=False))
    assert all(a.photo_url is None for a in desired.metadata.actors)
    assert desired.poster_url is None


def test_empty_scene_manages_fields_as_empty_so_plex_is_cleared() -> None:
    desired = desired_state(StashScene(id="1", files=("/x/My Movie.mp4",)), Settings())
    meta = desired.metadata
    assert desired.managed_fields == ALL_SCALARS | ALL_TAGS
    assert meta == PlexMetadata(title="My Movie")  # Plex cannot hold an empty title
    assert desired.poster_url is None


def test_title_fallback_handles_windows_paths_and_no_files() -> None:
    assert desired_state(StashScene(id="1", files=("C:\\v\\clip.one.mkv",)), Settings()).metadata.title == "clip.one"
    assert desired_state(StashScene(id="1"), Settings()).metadata.title is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-05-06", (dt.date(2024, 5, 6), 2024)),
        ("2024-5-6", (dt.date(2024, 5, 6), 2024)),
        ("2024-05", (None, 2024)),
        ("2024", (None, 2024)),
        ("2024-02-30", (None, 2024)),
        ("2024-13-01", (None, 2024)),
        ("0000-01-01", (None, None)),
        ("May 2024", (None, None)),
        ("", (None, None)),
        (None, (None, None)),
    ],
)
def test_partial_and_bad_dates(raw: str | None, expected: tuple[dt.date | None, int | None]) -> None:
    assert parse_date(raw) == expected
    meta = desired_state(StashScene(id="1", title="t", date=raw), Settings()).metadata
    assert (meta.originally_available_at, meta.year) == expected


@pytest.mark.parametrize(
    ("rating", "plex"), [(None, None), (1, 0.1), (20, 2.0), (85, 8.5), (87, 8.7), (100, 10.0), (150, 10.0)]
)
def test_rating(rating: int | None, plex: float | None) -> None:
    assert rating_to_plex(rating) == plex


def test_tag_and_performer_caps_are_deterministic() -> None:
    tags = [StashTag(str(i), f"tag {i:03d}") for i in range(150)]
    performers = [StashPerformer(str(i), f"P{i:02d}") for i in range(80)]
    scene = StashScene(id="1", title="t", tags=tags, performers=performers)
    settings = Settings(max_tags=5, max_performers=3)
    forward = desired_state(scene, settings)
    backward = desired_state(attrs.evolve(scene, tags=tags[::-1], performers=performers[::-1]), settings)
    assert forward == backward
    assert forward.metadata.genres == ("tag 000", "tag 001", "tag 002", "tag 003", "tag 004")
    assert [a.name for a in forward.metadata.actors] == ["P00", "P01", "P02"]
    assert desired_state(scene, Settings()).metadata.genres[-1] == "tag 099"  # default cap 100


def test_long_names_are_cut_and_sanitised() -> None:
    scene = StashScene(
        id="1", title="word " * 100, tags=[StashTag("1", "x" * 300)], performers=[StashPerformer("1", "\x00")]
    )
    meta = desired_state(scene, Settings()).metadata
    assert meta.title is not None
    assert len(meta.title) <= 255
    assert meta.title.endswith("word")
    assert meta.genres == ("x" * 255,)
    assert meta.actors == ()


@pytest.mark.parametrize(
    "url",
    [
        "http://stash/scene/7/preview",
        "http://stash/scene/7/stream.mp4",
        "http://stash/scene/7/webp",
        "http://stash/clip.webm",
        "",
        "   ",
    ],
)
def test_never_a_video_as_the_poster(url: str) -> None:
    assert desired_state(attrs.evolve(SCENE, screenshot_url=url), Settings()).poster_url is None


def test_content_rating_is_sanitised() -> None:
    assert desired_state(SCENE, Settings(content_rating=" X\u200bXX ")).metadata.content_rating == "XXX"


# --- digest


BASE = desired_state(SCENE, Settings(sync_group_collections=True, content_rating="R"))


def test_digest_is_stable_across_processes() -> None:
    code = (
        "from tests.services.test_mapping import BASE; "
        "from stash2plex_core.services.mapping import digest; print(digest(BASE, 'abc'))"
    )
    runs = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": seed}
        ).stdout.strip()
        for seed in ("1", "2")
    }
    assert runs == {digest(BASE, "abc")}
    assert len(digest(BASE)) == 64


def test_digest_ignores_tag_order() -> None:
    meta = BASE.metadata
    shuffled = attrs.evolve(
        BASE,
        metadata=attrs.evolve(
            meta, genres=meta.genres[::-1], actors=meta.actors[::-1], collections=meta.collections[::-1]
        ),
    )
    assert digest(shuffled) == digest(BASE)


CHANGED_METADATA = {
    "title": "other",
    "sort_title": "sort",
    "original_title": "orig",
    "summary": "other summary",
    "tagline": "other",
    "studio": "other",
    "originally_available_at": dt.date(2000, 1, 1),
    "year": 1999,
    "content_rating": "PG",
    "user_rating": 1.5,
    "genres": ("Action", "drama", "new"),
    "collections": ("Studio X",),
    "actors": (Actor("Adam"), Actor("Björn"), Actor("Zoë")),
    "directors": ("Ann Smith",),
    "writers": ("W",),
    "labels": ("L",),
}


def test_every_metadata_field_is_covered_by_the_sensitivity_test() -> None:
    assert set(CHANGED_METADATA) == {f.name for f in attrs.fields(PlexMetadata)}


@pytest.mark.parametrize("field", sorted(CHANGED_METADATA))
def test_digest_changes_with_every_metadata_field(field: str) -> None:
    changes: dict[str, Any] = {field: CHANGED_METADATA[field]}
    changed = attrs.evolve(BASE, metadata=attrs.evolve(BASE.metadata, **changes))
    assert digest(changed) != digest(BASE)


@pytest.mark.parametrize(
    "change",
    [
        {"managed_fields": BASE.managed_fields - {"summary"}},
        {"poster_url": "http://stash/scene/7/screenshot?t=100"},
        {"poster_url": None},
        {"lock_fields": False},
        {"preserve_plex_edits": True},
    ],
)
def test_digest_changes_with_switches_and_poster(change: dict[str, object]) -> None:
    assert digest(attrs.evolve(BASE, **change)) != digest(BASE)  # type: ignore[arg-type]


def test_digest_changes_with_the_poster_bytes_and_actor_photos() -> None:
    assert digest(BASE, "a") != digest(BASE, "b") != digest(BASE)
    photo = attrs.evolve(
        BASE,
        metadata=attrs.evolve(BASE.metadata, actors=(Actor("Adam", photo_url="http://x"), *BASE.metadata.actors[1:])),
    )
    assert digest(photo) != digest(BASE)


def test_digest_of_equal_states_is_equal() -> None:
    again = desired_state(SCENE, Settings(sync_group_collections=True, content_rating="R"))
    assert again == BASE
    assert digest(again) == digest(BASE)
    assert digest(DesiredPlexState(PlexMetadata())) == digest(DesiredPlexState(PlexMetadata()))
