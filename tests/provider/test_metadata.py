"""Metadata for a ratingKey: every field of the field map, and images served by the provider."""

from __future__ import annotations

import pytest

from stash2plex_core.models.stash import StashScene
from stash2plex_core.services.mapping import desired_state
from tests.provider.conftest import JPEG
from tests.provider.conftest import PNG
from tests.provider.conftest import Provider


BASE = "http://plex-sees-me:9090"


def item(provider: Provider, key: str = "scene-1") -> dict:
    response = provider.client.get(f"/library/metadata/{key}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    container = response.json()["MediaContainer"]
    assert container["size"] == container["totalSize"] == 1
    assert container["identifier"] == "tv.plex.agents.custom.stash2plex"
    return container["Metadata"][0]


def test_every_field_of_the_field_map(provider: Provider) -> None:
    got = item(provider)
    screenshot = f"{BASE}/images/scene/1/screenshot"
    collection = "tv.plex.agents.custom.stash2plex://collection/"
    assert got == {
        "ratingKey": "scene-1",
        "key": "/library/metadata/scene-1",
        "guid": "tv.plex.agents.custom.stash2plex://movie/scene-1",
        "type": "movie",
        "title": "Ünïcode Title: 1",
        "originallyAvailableAt": "2023-04-05",
        "year": 2023,
        "summary": "First line.\nSecond line.",
        "tagline": "ABC-123",
        "studio": "Studio A",
        "contentRating": "XXX",
        "duration": 1234500,
        "thumb": screenshot,
        "art": screenshot,
        "Image": [
            {"type": "coverPoster", "url": screenshot, "alt": "Ünïcode Title: 1"},
            {"type": "background", "url": screenshot, "alt": "Ünïcode Title: 1"},
        ],
        "Genre": [{"tag": "Tag One"}, {"tag": "Tag Two"}],
        "Studio": [{"tag": "Studio A"}],
        "Role": [
            {"tag": "Alice", "order": 1, "thumb": f"{BASE}/images/scene/1/performer/7"},
            {"tag": "Bob", "order": 2},  # Stash's placeholder is no photo
        ],
        "Director": [{"tag": "Dee Rector"}],
        "Collection": [
            {
                "guid": collection + "U3R1ZGlvIEE",
                "key": "/library/collections/U3R1ZGlvIEE",
                "tag": "Studio A",
            },
            {
                "guid": collection + "R3JvdXAgzqk",
                "key": "/library/collections/R3JvdXAgzqk",
                "tag": "Group Ω",
            },
        ],
        "Rating": [{"image": "tv.plex.agents.custom.stash2plex://image.rating", "type": "audience", "value": 8.5}],
    }


def test_fields_agree_with_the_shared_field_map(provider: Provider) -> None:
    scene = provider.stash.get_scene("1")
    assert scene is not None
    desired = desired_state(scene, provider.settings).metadata
    got = item(provider)
    assert got["title"] == desired.title
    assert got["summary"] == desired.summary
    assert got["studio"] == desired.studio
    assert [g["tag"] for g in got["Genre"]] == list(desired.genres)
    assert [r["tag"] for r in got["Role"]] == [a.name for a in desired.actors]
    assert [c["tag"] for c in got["Collection"]] == list(desired.collections)
    assert got["Rating"][0]["value"] == desired.user_rating


def test_switched_off_fields_are_left_out(make_provider) -> None:
    provider = make_provider(
        sync_tags=False,
        sync_performers=False,
        sync_poster=False,
        sync_rating=False,
        sync_studio_collection=False,
        sync_group_collections=False,
        sync_summary=False,
        content_rating=None,
    )
    got = item(provider)
    for absent in ("Genre", "Role", "Collection", "Rating", "summary", "contentRating", "thumb", "art"):
        assert absent not in got
    assert got["Image"] == []
    assert provider.client.get("/images/scene/1/screenshot").status_code == 404


def test_a_scene_with_almost_nothing(provider: Provider) -> None:
    """Plex requires ``title`` and ``originallyAvailableAt`` on every item (protocol §6.4)."""
    provider.stash.put_scene(StashScene(id="40", files=("/stash/media/bare/clip 7.mp4",)))
    got = item(provider, "scene-40")
    assert got["title"] == "clip 7"  # the file name stands in
    assert got["originallyAvailableAt"] == "1970-01-01"  # nothing dates it at all
    assert "year" not in got  # a stand-in date never claims a year
    assert got["Genre"] == []
    assert got["Role"] == []
    provider.stash.put_scene(StashScene(id="41", date="2020"))
    got = item(provider, "scene-41")
    assert got["title"] == "Scene 41"
    assert (got["year"], got["originallyAvailableAt"]) == (2020, "2020-01-01")  # agrees with the year


@pytest.mark.parametrize(
    ("date", "updated_at", "expected", "year"),
    [
        ("2021-07-09", "2026-01-01T00:00:00Z", "2021-07-09", 2021),
        ("2021-07", None, "2021-07-01", 2021),
        ("2021-13", None, "2021-01-01", 2021),  # an impossible month keeps only the year
        ("2021-02-30", None, "2021-02-01", 2021),
        (None, "2025-11-30T23:30:00-05:00", "2025-11-30", None),  # the day as Stash wrote it
        ("", "not a time", "1970-01-01", None),
    ],
)
def test_every_item_has_an_originally_available_date(
    provider: Provider, date: str | None, updated_at: str | None, expected: str, year: int | None
) -> None:
    provider.stash.put_scene(StashScene(id="42", title="Dated", date=date, updated_at=updated_at))
    got = item(provider, "scene-42")
    assert got["originallyAvailableAt"] == expected
    assert got.get("year") == year
    match = provider.match(guid="tv.plex.agents.custom.stash2plex://movie/scene-42")["Metadata"]
    assert match[0]["originallyAvailableAt"] == expected  # match results carry it too


def test_with_date_sync_off_stashs_date_is_not_sent(make_provider) -> None:
    provider = make_provider(sync_date=False)
    got = item(provider)  # scene 1: date 2023-04-05, updated 2026-01-01
    assert got["originallyAvailableAt"] == "2026-01-01"
    assert "year" not in got


@pytest.mark.parametrize("key", ["scene-999", "999", "1", "scene-", "scene-1%2F..", "plex-1", "scene-abc"])
def test_unknown_rating_keys_are_404(provider: Provider, key: str) -> None:
    response = provider.client.get(f"/library/metadata/{key}")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert provider.client.get(f"/library/metadata/{key}/images").status_code == 404


def test_images_endpoint(provider: Provider) -> None:
    response = provider.client.get("/library/metadata/scene-1/images")
    assert response.status_code == 200
    container = response.json()["MediaContainer"]
    assert container["size"] == 2
    assert [i["type"] for i in container["Image"]] == ["coverPoster", "background"]
    assert all(i["url"] == f"{BASE}/images/scene/1/screenshot" for i in container["Image"])


def test_images_are_served_through_the_provider_byte_for_byte(provider: Provider) -> None:
    got = item(provider)
    poster = provider.client.get(got["thumb"].removeprefix(BASE))
    assert poster.status_code == 200
    assert poster.content == JPEG == provider.stash.images["http://stash.local/scene/1/screenshot?t=1"]
    assert poster.headers["content-type"] == "image/jpeg"
    photo = provider.client.get(got["Role"][0]["thumb"].removeprefix(BASE))
    assert photo.status_code == 200
    assert photo.content == PNG
    assert photo.headers["content-type"] == "image/png"


@pytest.mark.parametrize(
    "path",
    [
        "/images/scene/999/screenshot",
        "/images/scene/1/performer/8",  # a placeholder image: never served
        "/images/scene/1/performer/999",
        "/images/scene/2/screenshot",  # the scene has no screenshot
        "/images/scene/..%2F1/screenshot",
    ],
)
def test_unknown_images_are_404(provider: Provider, path: str) -> None:
    assert provider.client.get(path).status_code == 404


def test_public_url_setting_is_used_for_image_links(make_provider) -> None:
    provider = make_provider(provider_public_url="https://provider.example.net:8443/")
    got = item(provider)
    assert got["thumb"] == "https://provider.example.net:8443/images/scene/1/screenshot"


def test_images_come_from_the_cache_after_the_first_fetch(provider: Provider) -> None:
    for _ in range(3):
        assert provider.client.get("/images/scene/1/screenshot").content == JPEG
    assert provider.stash.calls["fetch_image"] == 1
