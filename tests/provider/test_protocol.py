"""The wire format: the root document, identifiers, keys, GUIDs and containers."""

from __future__ import annotations

import re

import pytest

from stash2plex_core.errors import InvalidSettingsError
from stash2plex_core.settings import parse_settings
from stash2plex_integrations.plex_provider import protocol
from tests.provider.conftest import Provider


IDENTIFIER = re.compile(r"^tv\.plex\.agents\.custom\.[a-zA-Z0-9.]+$")


def test_root_document_declares_a_valid_movie_provider(provider: Provider) -> None:
    response = provider.client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    root = response.json()["MediaProvider"]
    assert IDENTIFIER.match(root["identifier"])
    assert root["identifier"] == "tv.plex.agents.custom.stash2plex"
    assert isinstance(root["title"], str)
    assert root["title"]
    assert isinstance(root["version"], str)
    # Numeric types, Scheme arrays naming the identifier, one parent type (movie).
    assert root["Types"] == [{"type": 1, "Scheme": [{"scheme": root["identifier"]}]}]
    features = {f["type"]: f["key"] for f in root["Feature"]}
    assert features["metadata"] == "/library/metadata"
    assert features["match"] == "/library/metadata/matches"
    assert all(key.startswith("/") for key in features.values())


def test_identifier_is_configurable_so_two_stash_instances_coexist(make_provider) -> None:
    first = make_provider(provider_identifier="tv.plex.agents.custom.stash2plex.home")
    second = make_provider(provider_identifier="tv.plex.agents.custom.stash2plex.studio2")
    ids = {p.client.get("/").json()["MediaProvider"]["identifier"] for p in (first, second)}
    assert ids == {"tv.plex.agents.custom.stash2plex.home", "tv.plex.agents.custom.stash2plex.studio2"}
    item = second.match(filename="Studio A/scene 1.mp4")["Metadata"][0]
    assert item["guid"] == "tv.plex.agents.custom.stash2plex.studio2://movie/scene-1"
    assert second.match(filename="Studio A/scene 1.mp4")["identifier"] == "tv.plex.agents.custom.stash2plex.studio2"


@pytest.mark.parametrize(
    "bad",
    [
        "tv.plex.agents.stash2plex",  # the predecessor's mistake: no "custom."
        "tv.plex.agents.custom.",
        "tv.plex.agents.custom.stash-2-plex",
        "tv.plex.agents.custom.stash_plex",
        "tv.plex.agents.custom.stäsh",
        "tv.plex.agents.custom.stash..plex",
        "tv.plex.agents.custom.stash.",
        "com.example.stash",
    ],
)
def test_identifier_rules_are_enforced_by_the_settings(bad: str) -> None:
    with pytest.raises(InvalidSettingsError, match="provider_identifier"):
        parse_settings({"provider_identifier": bad})


def test_provider_settings_parse_from_strings() -> None:
    settings = parse_settings(
        {
            "provider_port": "9191",
            "provider_secret": "x" * 12,
            "provider_gap_schedule": "3600",
            "provider_library_roots": "/a, /b",
            "provider_stash_concurrency": "4",
        }
    )
    assert settings.provider_port == 9191
    assert settings.provider_gap_schedule == "3600"
    assert settings.provider_library_roots == ("/a", "/b")
    assert "x" * 12 not in repr(settings)
    assert settings.redacted()["provider_secret"] == "***"
    for key, value in [("provider_port", "70000"), ("provider_gap_schedule", "10"), ("provider_gap_schedule", "often")]:
        with pytest.raises(InvalidSettingsError, match=key):
            parse_settings({key: value})


def test_rating_keys_and_guids() -> None:
    assert protocol.scene_key("42") == "scene-42"
    assert protocol.scene_id_from_key("scene-42") == "42"
    # PMS-internal numeric keys (items bound to no agent) never name a scene.
    for other in ("42", "scene-", "scene-4/2", "../scene-1", "scene-1 ", ""):
        assert protocol.scene_id_from_key(other) is None
    ident = "tv.plex.agents.custom.x"
    guid = protocol.scene_guid(ident, "42")
    assert guid == "tv.plex.agents.custom.x://movie/scene-42"
    assert protocol.scene_id_from_guid(ident, guid) == "42"
    assert protocol.scene_id_from_guid("tv.plex.agents.custom.y", guid) is None
    assert protocol.scene_id_from_guid(ident, "plex://movie/5d776") is None


@pytest.mark.parametrize("name", ["Studio A", "Группа Ω", "a/b?c", "x" * 300, "🎬 films"])
def test_collection_keys_round_trip_and_keep_to_plex_characters(name: str) -> None:
    key = protocol.collection_key(name)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", key)
    assert protocol.collection_name(key) == name


def test_collection_endpoint(provider: Provider) -> None:
    key = protocol.collection_key("Studio A")
    response = provider.client.get(f"/library/collections/{key}")
    assert response.status_code == 200
    item = response.json()["MediaContainer"]["Metadata"][0]
    assert item["type"] == "collection"
    assert item["title"] == "Studio A"
    assert item["guid"] == f"tv.plex.agents.custom.stash2plex://collection/{key}"
    assert provider.client.get("/library/collections/!!").status_code == 404
    assert provider.client.get("/library/collections/AAAA").status_code == 404  # not UTF-8 text


def test_containers_have_plex_shape(provider: Provider) -> None:
    container = provider.match(filename="nothing/here.mp4")
    assert container == {
        "offset": 0,
        "totalSize": 0,
        "identifier": "tv.plex.agents.custom.stash2plex",
        "size": 0,
        "Metadata": [],
    }


def test_unknown_routes_and_methods_answer_json(provider: Provider) -> None:
    response = provider.client.get("/nope")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    response = provider.client.get("/library/metadata/matches")
    assert response.status_code == 404  # "matches" is no ratingKey of ours
    response = provider.client.delete("/")
    assert response.status_code == 405
    assert response.json() == {"error": "method not allowed"}
