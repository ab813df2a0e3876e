"""The simulated Stash, driven by the real, unmodified stashapi client over HTTP on 127.0.0.1.

Every test talks HTTP: ``StashInterface`` for what our gateway will do, plain ``requests``
for protocol details stashapi hides (status codes, headers, image bytes). Where a fault is
injected, the test records what stashapi does with it: raise, or log and return ``None``.
Fixtures live in this module (prefixed ``stash_``) so they cannot collide with the Plex
simulator's.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from stashapi.stashapp import StashInterface

from stash2plex_backends.simulators import Fault
from stash2plex_backends.simulators import generate_library
from stash2plex_backends.simulators.seedlib import image_bytes
from stash2plex_backends.simulators.stash import GraphQLFault
from stash2plex_backends.simulators.stash import PluginTaskRun
from stash2plex_backends.simulators.stash import StashSimulator
from stash2plex_backends.simulators.stash import parse_plugin_settings
from stash2plex_backends.simulators.stash import serve


KEY = "test-api-key"
ROOT = "/data/library"
SEED = 7
SCENES = 60
LOG = logging.getLogger("tests.stashapi")
PAGE = {"per_page": 100, "page": 1, "sort": "id", "direction": "ASC"}


def stash_client(sim: StashSimulator, **conn: Any) -> StashInterface:
    """A real StashInterface; our logger keeps stashapi's stderr protocol out of the output."""
    base = {"scheme": "http", "host": "127.0.0.1", "port": sim.port, "Logger": LOG}
    if "ApiKey" not in conn and "SessionCookie" not in conn and sim.auth.api_key:
        base["ApiKey"] = sim.auth.api_key
    return StashInterface({**base, **conn})


def by_path(stash: StashInterface, value: str, modifier: str = "EQUALS") -> list[str]:
    """Scene ids matching a path criterion, through stashapi with a fresh filter dict."""
    scenes = stash.find_scenes(f={"path": {"value": value, "modifier": modifier}}, filter=dict(PAGE), fragment="id")
    return sorted((s["id"] for s in scenes), key=int)


@pytest.fixture(scope="module")
def stash_sim() -> Iterator[StashSimulator]:
    """A read-only seeded server shared by the module (tests that mutate build their own)."""
    with StashSimulator(scenes=SCENES, seed=SEED, library_root=ROOT, api_key=KEY) as sim:
        yield sim


@pytest.fixture(scope="module")
def stash(stash_sim: StashSimulator) -> StashInterface:
    return stash_client(stash_sim)


@pytest.fixture
def stash_fresh() -> Iterator[StashSimulator]:
    with StashSimulator(scenes=20, seed=SEED, library_root=ROOT, api_key=KEY) as sim:
        yield sim


# -- construction and authentication --------------------------------------------------------


def test_construction_with_api_key_makes_three_calls(stash_sim: StashSimulator) -> None:
    stash_sim.requests.clear()
    stash = stash_client(stash_sim)
    assert (stash.version.major, stash.version.minor, stash.version.patch) == (0, 30, 1)
    calls = stash_sim.requests.all()
    assert [c.path for c in calls] == ["/graphql"] * 3
    bodies = [c.body.decode() for c in calls]
    assert "StashVersion" in bodies[0]
    assert "getApiKey" in bodies[1]
    assert "__schema" in bodies[2]
    assert all(c.headers.get("ApiKey") == KEY for c in calls)
    # stashapi generated its fragments from our introspection, with its overrides applied.
    assert "fragment Scene on Scene" in stash.fragments["Scene"]
    assert "studio { id }" in stash.fragments["Scene"]
    assert "groups { ...SceneGroup }" in stash.fragments["Scene"]
    assert "movies" not in stash.fragments["Scene"]


def test_construction_with_plugin_session_cookie() -> None:
    with StashSimulator(scenes=3, session_cookie="plugin-cookie") as sim:
        conn = sim.server_connection(dir="/tmp/stash", plugin_dir="/tmp/stash/plugins/s2p")
        assert "ApiKey" not in conn
        assert conn["SessionCookie"]["Name"] == "session"
        assert conn["SessionCookie"]["Value"] == "plugin-cookie"
        assert conn["Port"] == sim.port
        assert (conn["Dir"], conn["PluginDir"]) == ("/tmp/stash", "/tmp/stash/plugins/s2p")
        sim.requests.clear()
        stash = StashInterface({**conn, "Logger": LOG})
        assert stash.find_scene(1, fragment="id")["id"] == "1"
        for call in sim.requests.all():
            assert "ApiKey" not in call.headers
            assert "session=plugin-cookie" in call.headers["Cookie"]
        # No API key configured: force_api_key has nothing to switch to and keeps the cookie.
        forced = StashInterface({**conn, "Logger": LOG}, force_api_key=True)
        assert forced.s.cookies.get("session") == "plugin-cookie"


def test_force_api_key_drops_the_cookie() -> None:
    with StashSimulator(scenes=2, api_key=KEY) as sim:
        conn = sim.server_connection(host="0.0.0.0")  # Stash bound to all interfaces
        stash = StashInterface({**conn, "Logger": LOG}, force_api_key=True)
        assert stash.url == f"http://127.0.0.1:{sim.port}/graphql"  # stashapi rewrites 0.0.0.0
        assert stash.s.headers["ApiKey"] == KEY
        assert not stash.s.cookies
        sim.expire_sessions()
        assert stash.find_scene(2, fragment="id")["id"] == "2"


def test_without_credentials_every_request_is_401(stash_sim: StashSimulator) -> None:
    with pytest.raises(Exception, match="401 Unauthorized"):
        StashInterface({"scheme": "http", "host": "127.0.0.1", "port": stash_sim.port, "Logger": LOG})
    with pytest.raises(Exception, match="401 Unauthorized"):
        stash_client(stash_sim, ApiKey="wrong-key")
    bare = requests.post(stash_sim.graphql_url, json={"query": "{ version { version } }"}, timeout=5)
    assert bare.status_code == 401
    assert bare.headers["WWW-Authenticate"] == "FormBased"
    keyed = requests.post(
        stash_sim.graphql_url, json={"query": "{ version { version } }"}, headers={"ApiKey": KEY}, timeout=5
    )
    assert keyed.json() == {"data": {"version": {"version": "v0.30.1"}}}
    by_param = requests.post(f"{stash_sim.graphql_url}?apikey={KEY}", json={"query": "{ version { hash } }"}, timeout=5)
    assert by_param.status_code == 200


def test_no_credentials_configured_means_open_but_wrong_keys_fail() -> None:
    with StashSimulator(scenes=2) as sim:
        stash = StashInterface({"scheme": "http", "host": "127.0.0.1", "port": sim.port, "Logger": LOG})
        assert stash.call_GQL("query { configuration { general { apiKey } } }") == {
            "configuration": {"general": {"apiKey": ""}}
        }
        response = requests.post(
            sim.graphql_url, json={"query": "{ version { hash } }"}, headers={"ApiKey": "x"}, timeout=5
        )
        assert response.status_code == 401


def test_expired_session_cookie_is_401_in_a_long_task() -> None:
    with StashSimulator(scenes=3, session_cookie="c1") as sim:
        stash = StashInterface({**sim.server_connection(), "Logger": LOG})
        assert stash.find_scene(1, fragment="id") is not None
        sim.expire_sessions()
        with pytest.raises(Exception, match="401 Unauthorized"):
            stash.find_scene(1, fragment="id")
        fresh = sim.session_cookie  # the next plugin run gets a new cookie
        assert fresh != "c1"
        again = StashInterface({**sim.server_connection(), "Logger": LOG})
        assert again.find_scene(1, fragment="id") is not None


def test_image_without_credentials_redirects_to_the_login_page(stash_sim: StashSimulator) -> None:
    url = f"{stash_sim.url}/scene/1/screenshot?t=1"
    raw = requests.get(url, allow_redirects=False, timeout=5)
    assert raw.status_code == 302
    assert raw.headers["Location"] == "/login?returnURL=%2Fscene%2F1%2Fscreenshot%3Ft%3D1"
    followed = requests.get(url, timeout=5)  # the trap: 200, but an HTML page
    assert followed.status_code == 200
    assert followed.headers["Content-Type"].startswith("text/html")
    assert requests.get(f"{stash_sim.url}/scene/1_sprite.jpg", timeout=5).status_code == 401


# -- reading scenes --------------------------------------------------------------------------


def test_find_scene_with_an_explicit_fragment_matches_the_seed(
    stash_sim: StashSimulator, stash: StashInterface
) -> None:
    library = generate_library(SCENES, SEED, ROOT)
    studios = {s.id: s for s in library.studios}
    performers = {p.id: p for p in library.performers}
    tags = {t.id: t for t in library.tags}
    groups = {g.id: g for g in library.groups}
    fragment = """id title code details director urls date rating100 organized created_at updated_at
        studio { id name parent_studio { id name } }
        performers { id name image_path } tags { id name }
        groups { scene_index group { id name } }
        files { id path basename size duration width height } paths { screenshot }"""
    checked_parent = checked_group = False
    for seed_scene in library.scenes:
        scene = stash.find_scene(int(seed_scene.id), fragment=fragment)
        assert scene["id"] == seed_scene.id
        assert scene["title"] == seed_scene.title
        assert scene["code"] == seed_scene.code
        assert scene["date"] == seed_scene.date
        assert scene["rating100"] == seed_scene.rating100
        assert scene["updated_at"] == seed_scene.updated_at  # a UTC server writes ...Z like the seed
        assert [f["path"] for f in scene["files"]] == [f.path for f in seed_scene.files]
        assert [f["id"] for f in scene["files"]] == [f.id for f in seed_scene.files]
        assert scene["files"][0]["size"] == seed_scene.files[0].size
        assert scene["files"][0]["basename"] == seed_scene.files[0].path.rpartition("/")[2]
        assert [p["name"] for p in scene["performers"]] == [performers[p].name for p in seed_scene.performer_ids]
        assert [t["name"] for t in scene["tags"]] == [tags[t].name for t in seed_scene.tag_ids]
        assert [g["group"]["name"] for g in scene["groups"]] == [groups[g].name for g in seed_scene.group_ids]
        checked_group |= bool(scene["groups"])
        if seed_scene.studio_id is None:
            assert scene["studio"] is None
        else:
            studio = studios[seed_scene.studio_id]
            assert scene["studio"]["name"] == studio.name
            if studio.parent_id:
                assert scene["studio"]["parent_studio"]["name"] == studios[studio.parent_id].name
                checked_parent = True
    assert checked_parent
    assert checked_group
    assert stash.find_scene(999_999, fragment="id") is None


def test_default_fragments_get_complete_shapes(stash: StashInterface) -> None:
    scene = stash.find_scene(10)  # stashapi's own ...Scene fragment: every non-deprecated field
    assert scene["play_history"] == []
    assert scene["stash_ids"] == []
    assert scene["studio"].keys() == {"id"}
    assert all(p.keys() == {"id"} for p in scene["performers"])
    assert len(scene["files"]) == 2  # every 10th seeded scene has two versions
    assert scene["files"][1]["format"] == "matroska"
    assert {f["type"] for f in scene["files"][0]["fingerprints"]} == {"oshash", "md5", "phash"}
    config = stash.get_configuration()
    assert config["general"]["apiKey"] == KEY
    assert config["general"]["stashes"] == [{"path": ROOT, "excludeVideo": False, "excludeImage": False}]
    performer = stash.find_performer(1)
    assert performer["scene_count"] >= 0
    assert stash.find_tag("drama", fragment="id name")["name"] == "Drama"  # q search + alias matching
    assert stash.find_studio("Café Noir", fragment="id name")["name"] == "Café Noir"


def test_ids_are_strings_and_groups_not_movies(stash_sim: StashSimulator) -> None:
    response = requests.post(
        stash_sim.graphql_url,
        json={"query": "{ findScene(id: 1) { id files { id size } } }"},
        headers={"ApiKey": KEY},
        timeout=5,
    )
    scene = response.json()["data"]["findScene"]
    assert scene["id"] == "1"
    assert isinstance(scene["files"][0]["id"], str)
    assert isinstance(scene["files"][0]["size"], int)
    movies = requests.post(
        stash_sim.graphql_url,
        json={"query": "{ findScene(id: 1) { movies { scene_index } } }"},
        headers={"ApiKey": KEY},
        timeout=5,
    )
    assert movies.status_code == 422  # gqlgen rejects invalid documents with 422
    assert movies.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


def test_pagination_count_and_sort(stash: StashInterface, caplog: pytest.LogCaptureFixture) -> None:
    seen: list[str] = []
    page = 1
    while True:
        count, scenes = stash.find_scenes(
            filter={"per_page": 7, "page": page, "sort": "id", "direction": "ASC"}, fragment="id", get_count=True
        )
        assert count == SCENES
        seen += [s["id"] for s in scenes]
        if len(scenes) < 7:
            break
        page += 1
    assert seen == [str(i) for i in range(1, SCENES + 1)]
    every = stash.find_scenes(filter={"per_page": -1, "sort": "id", "direction": "DESC"}, fragment="id")
    assert [s["id"] for s in every] == [str(i) for i in range(SCENES, 0, -1)]
    default = stash.call_GQL("query { findScenes { count scenes { id } } }")["findScenes"]
    assert (default["count"], len(default["scenes"])) == (SCENES, 25)
    beyond = stash.find_scenes(filter={"per_page": 50, "page": 3, "sort": "id"}, fragment="id")
    assert beyond == []
    newest = stash.find_scenes(filter={"per_page": 5, "sort": "updated_at", "direction": "DESC"}, fragment="updated_at")
    stamps = [s["updated_at"] for s in newest]
    assert stamps == sorted(stamps, reverse=True)
    with caplog.at_level(logging.ERROR, logger=LOG.name), pytest.raises(Exception, match="query failed"):
        stash.find_scenes(filter={"per_page": 5, "sort": "scenes.id; DROP TABLE"}, fragment="id")
    assert any("invalid sort: scenes.id; DROP TABLE" in r.message for r in caplog.records)


def test_title_sort_is_natural_and_case_insensitive() -> None:
    with StashSimulator(api_key=KEY) as sim:
        for title in ("scene 10", "Scene 9", "SCENE 1", "Árbol", "apple"):
            sim.add_scene(f"/t/{title}.mp4", title=title)
        untitled = sim.add_scene("/t/b untitled.mp4")  # no title: sorted by its basename
        stash = stash_client(sim)
        ascending = stash.find_scenes(filter={"per_page": -1, "sort": "title"}, fragment="id title")
        assert [s["title"] for s in ascending] == ["apple", None, "SCENE 1", "Scene 9", "scene 10", "Árbol"]
        assert ascending[1]["id"] == str(untitled.id)
        descending = stash.find_scenes(filter={"per_page": -1, "sort": "title", "direction": "DESC"}, fragment="title")
        assert [s["title"] for s in descending] == ["Árbol", "scene 10", "Scene 9", "SCENE 1", None, "apple"]


def test_q_search_and_sub_filters(stash_sim: StashSimulator, stash: StashInterface) -> None:
    first, second = stash_sim.scene(1), stash_sim.scene(2)
    either = stash.find_scenes(
        f={
            "path": {"value": first.files[0].path, "modifier": "EQUALS"},
            "OR": {"path": {"value": second.files[0].path, "modifier": "EQUALS"}},
        },
        filter=dict(PAGE),
        fragment="id",
    )
    assert [s["id"] for s in either] == ["1", "2"]
    word = first.title.split(" ")[0]
    hits = stash.find_scenes(q=word, filter=dict(PAGE), fragment="id title files { path }")
    assert hits
    assert all(word.lower() in (s["title"] + " ".join(f["path"] for f in s["files"])).lower() for s in hits)
    not_first = stash.find_scenes(
        f={"NOT": {"id": {"value": 1, "modifier": "EQUALS"}}}, filter={"per_page": -1}, fragment="id"
    )
    assert len(not_first) == SCENES - 1


# -- path filter semantics -------------------------------------------------------------------


@pytest.fixture(scope="module")
def stash_paths() -> Iterator[tuple[StashSimulator, StashInterface, dict[str, int]]]:
    """A server whose scenes have deliberately awkward paths."""
    paths = [
        "/m/a_b.mp4",
        "/m/aXb.mp4",
        "/m/A_B.MP4",
        "/m/50%.mp4",
        "/m/50 percent.mp4",
        "/m/Émile.mp4",
        "/m/émile.mp4",
        "/v/My Videos/x.mp4",
        "/v/My/other.mp4",
        "/v/Videos/y.mp4",
        "/v/zzz.mp4",
    ]
    with StashSimulator(api_key=KEY) as sim:
        ids = {path: sim.add_scene(path).id for path in paths}
        extra = sim.add_scene("/w/main.mp4", "/w/Other Version.mkv")
        ids["/w/main.mp4"] = ids["/w/Other Version.mkv"] = extra.id
        yield sim, stash_client(sim), ids


def test_path_equals_is_like_with_wildcards_and_ascii_case_folding(stash_paths: Any) -> None:
    _sim, stash, ids = stash_paths

    def expect(*paths: str) -> list[str]:
        return sorted((str(ids[p]) for p in paths), key=int)

    # `_` matches any one character and ASCII letters compare case-insensitively.
    assert by_path(stash, "/m/a_b.mp4") == expect("/m/a_b.mp4", "/m/aXb.mp4", "/m/A_B.MP4")
    # `%` matches any run, spaces included.
    assert by_path(stash, "/m/50%.mp4") == expect("/m/50%.mp4", "/m/50 percent.mp4")
    # Case folding is ASCII-only, as in SQLite: É and é stay distinct.
    assert by_path(stash, "/m/émile.mp4") == expect("/m/émile.mp4")
    assert by_path(stash, "/M/ÉMILE.MP4") == expect("/m/Émile.mp4")
    # Exact, non-wildcard paths; a second file of a scene matches too.
    assert by_path(stash, "/v/zzz.mp4") == expect("/v/zzz.mp4")
    assert by_path(stash, "/w/other version.MKV") == expect("/w/main.mp4")
    assert by_path(stash, "/v/zzz") == []  # EQUALS adds no wildcards
    everything = {str(i) for i in ids.values()}
    assert set(by_path(stash, "/m/a_b.mp4", "NOT_EQUALS")) == everything - set(
        expect("/m/a_b.mp4", "/m/aXb.mp4", "/m/A_B.MP4")
    )


def test_path_includes_splits_words_unless_quoted(stash_paths: Any) -> None:
    _sim, stash, ids = stash_paths

    def expect(*paths: str) -> list[str]:
        return sorted({str(ids[p]) for p in paths}, key=int)

    words = expect("/v/My Videos/x.mp4", "/v/My/other.mp4", "/v/Videos/y.mp4")
    assert by_path(stash, "/v/ My Videos", "INCLUDES") == expect(
        "/v/My Videos/x.mp4", "/v/My/other.mp4", "/v/Videos/y.mp4", "/v/zzz.mp4"
    )
    assert by_path(stash, "my   videos", "INCLUDES") == words
    assert by_path(stash, '"/v/My Videos/"', "INCLUDES") == expect("/v/My Videos/x.mp4")
    remaining = by_path(stash, "My Videos", "EXCLUDES")
    assert str(ids["/v/zzz.mp4"]) in remaining
    assert not set(words) & set(remaining)


# -- updated_at ------------------------------------------------------------------------------


def test_updated_at_is_server_local_text_and_compared_as_text() -> None:
    with StashSimulator(scenes=30, seed=SEED, api_key=KEY, utc_offset="+02:00") as sim:
        stash = stash_client(sim)
        seed_scene = generate_library(30, SEED).scenes[4]
        scene = stash.find_scene(5, fragment="updated_at created_at")
        instant = datetime.fromisoformat(seed_scene.updated_at)
        assert scene["updated_at"].endswith("+02:00")
        assert datetime.fromisoformat(scene["updated_at"]) == instant
        # The same instant written in UTC compares wrongly as text: the trap for watermarks.
        as_utc = seed_scene.updated_at  # ...Z
        wrong = stash.find_scenes(
            f={"updated_at": {"value": as_utc, "modifier": "GREATER_THAN"}}, filter={"per_page": -1}, fragment="id"
        )
        assert "5" in {s["id"] for s in wrong}  # "…T20:…+02:00" > "…T18:…Z" though it is the same instant
        right = stash.find_scenes(
            f={"updated_at": {"value": scene["updated_at"], "modifier": "GREATER_THAN"}},
            filter={"per_page": -1},
            fragment="id updated_at",
        )
        assert "5" not in {s["id"] for s in right}
        assert all(s["updated_at"] > scene["updated_at"] for s in right)
        equal = stash.find_scenes(
            f={"updated_at": {"value": scene["updated_at"], "modifier": "EQUALS"}},
            filter={"per_page": -1},
            fragment="id",
        )
        assert "5" in {s["id"] for s in equal}


def test_an_iana_zone_stores_two_offsets_across_daylight_saving_time() -> None:
    with StashSimulator(scenes=120, seed=2, api_key=KEY, utc_offset="Europe/Berlin") as sim:
        stash = stash_client(sim)
        stamps = [s["updated_at"] for s in stash.find_scenes(filter={"per_page": -1}, fragment="updated_at")]
    assert {stamp[-6:] for stamp in stamps} == {"+01:00", "+02:00"}
    expected = [datetime.fromisoformat(s.updated_at) for s in generate_library(120, 2).scenes]
    assert [datetime.fromisoformat(stamp) for stamp in stamps] == expected


def test_edits_bump_updated_at_and_a_watermark_query_sees_them(stash_fresh: StashSimulator) -> None:
    stash = stash_client(stash_fresh)
    stash_fresh.freeze_time(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    watermark = stash_fresh.now_text()
    assert watermark == "2026-01-05T09:00:00Z"  # Go writes Z for a zero offset
    stash_fresh.advance_time(5)
    stash_fresh.update_scene(3, title="Edited in the UI")
    stash.update_scene({"id": 4, "details": "edited through GraphQL"})
    changed = stash.find_scenes(
        f={"updated_at": {"value": watermark, "modifier": "GREATER_THAN"}},
        filter={"per_page": 100, "page": 1, "sort": "updated_at", "direction": "ASC"},
        fragment="id title updated_at",
    )
    assert sorted(s["id"] for s in changed) == ["3", "4"]
    assert {s["updated_at"] for s in changed} == {"2026-01-05T09:00:05Z"}
    # Equal timestamps are ordered by title (Stash's final sort key), not by id.
    assert [s["title"] for s in changed] == sorted((s["title"] for s in changed), key=str.lower)
    between = stash.find_scenes(
        f={"updated_at": {"value": watermark, "modifier": "BETWEEN"}}, filter={"per_page": -1}, fragment="id"
    )
    assert {s["id"] for s in between} == {"3", "4"}


# -- mutations and helpers -------------------------------------------------------------------


def test_renames_do_not_bump_scenes_and_helpers_change_state(stash_fresh: StashSimulator) -> None:
    stash = stash_client(stash_fresh)
    target = next(s for s in stash_fresh.scenes if s.tag_ids and s.performer_ids)
    before = stash.find_scene(target.id, fragment="updated_at tags { id name } performers { id name }")
    tag_id = before["tags"][0]["id"]
    stash.update_tag({"id": tag_id, "name": "Renamed Tag"})
    stash_fresh.rename_performer(before["performers"][0]["id"], "Renamed Performer")
    after = stash.find_scene(target.id, fragment="updated_at tags { id name } performers { id name }")
    assert after["updated_at"] == before["updated_at"]
    assert "Renamed Tag" in {t["name"] for t in after["tags"]}
    assert after["performers"][0]["name"] == "Renamed Performer"
    # Tag names are unique; tagUpdate is nullable, so stashapi logs the error and does not raise.
    taken = stash_fresh.tag(int(tag_id) % 20 + 1).name
    stash.update_tag({"id": tag_id, "name": taken})
    assert stash_fresh.tag(tag_id).name == "Renamed Tag"

    added = stash_fresh.add_scene("/data/library/New/fresh_scene.mp4", title="Fresh")
    found = by_path(stash, "/data/library/New/fresh_scene.mp4")
    assert found == [str(added.id)]
    assert added.created_at == added.updated_at
    stash_fresh.move_file("/data/library/New/fresh_scene.mp4", "/data/library/New/moved.mp4")
    assert by_path(stash, "/data/library/New/fresh_scene.mp4") == []
    assert by_path(stash, "/data/library/New/moved.mp4") == [str(added.id)]
    assert stash.destroy_scene(added.id) is True
    assert stash.find_scene(added.id, fragment="id") is None
    assert by_path(stash, "/data/library/New/moved.mp4") == []
    stash_fresh.destroy_scene(1)
    assert stash_fresh.scene_by_path(generate_library(20, SEED, ROOT).scenes[0].files[0].path) is None


def test_scene_update_through_stashapi(stash_fresh: StashSimulator) -> None:
    stash = stash_client(stash_fresh)
    assert stash.update_scene({"id": 2, "title": "T", "tag_ids": [1, 2], "organized": True, "rating100": 80}) == "2"
    scene = stash_fresh.scene(2)
    assert (scene.title, scene.tag_ids, scene.organized, scene.rating100) == ("T", [1, 2], True, 80)
    stash.update_scenes({"ids": [2, 3], "tag_ids": {"mode": "ADD", "ids": [5]}})
    assert 5 in stash_fresh.scene(2).tag_ids
    assert 5 in stash_fresh.scene(3).tag_ids
    # sceneUpdate is nullable: a failed update is partial data, and stashapi then indexes None.
    with pytest.raises(TypeError, match="'NoneType' object is not subscriptable"):
        stash.update_scene({"id": 2, "studio_id": 999})


# -- images ----------------------------------------------------------------------------------


def test_screenshot_and_performer_images_are_png_bytes(stash_sim: StashSimulator, stash: StashInterface) -> None:
    scene = stash.find_scene(5, fragment="paths { screenshot } performers { id image_path }")
    screenshot = requests.get(scene["paths"]["screenshot"], headers={"ApiKey": KEY}, timeout=5)
    assert screenshot.status_code == 200
    assert screenshot.headers["Content-Type"] == "image/png"
    assert screenshot.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert screenshot.content == stash_sim.screenshot_bytes(5)
    assert scene["paths"]["screenshot"].startswith(f"{stash_sim.url}/scene/5/screenshot?t=")
    performers = stash.find_performers(filter={"per_page": -1}, fragment="id image_path")
    with_image = next(p for p in performers if not p["image_path"].endswith("&default=true"))
    without = next(p for p in performers if p["image_path"].endswith("&default=true"))
    assert not stash_sim.performer(without["id"]).has_image
    own = requests.get(with_image["image_path"], params={"apikey": KEY}, timeout=5)
    assert own.content == stash_sim.performer_image_bytes(with_image["id"])
    placeholder = requests.get(without["image_path"], headers={"ApiKey": KEY}, timeout=5)
    assert placeholder.status_code == 200  # Stash serves a placeholder, not a 404
    assert placeholder.content == image_bytes("stash-default-performer")
    assert (
        requests.get(f"{stash_sim.url}/scene/99999/screenshot", headers={"ApiKey": KEY}, timeout=5).status_code == 404
    )


def test_images_carry_a_content_etag_and_a_match_is_answered_304(stash_sim: StashSimulator) -> None:
    """As Stash's ServeStaticContent: ETag = quoted MD5, If-None-Match as Go's ServeContent reads it."""
    url = f"{stash_sim.url}/scene/5/screenshot?t=1"
    first = requests.get(url, headers={"ApiKey": KEY}, timeout=5)
    etag = first.headers["ETag"]
    assert etag == '"' + hashlib.md5(first.content, usedforsecurity=False).hexdigest() + '"'
    assert first.headers["Cache-Control"] == "private, max-age=31536000, immutable"  # ?t= pins the version
    for header in (etag, f"W/{etag}", f'"something-else", {etag}', "*"):
        again = requests.get(url, headers={"ApiKey": KEY, "If-None-Match": header}, timeout=5)
        assert again.status_code == 304, header
        assert again.content == b""
        assert again.headers["ETag"] == etag
        assert "Content-Type" not in again.headers
    other = requests.get(url, headers={"ApiKey": KEY, "If-None-Match": '"something-else"'}, timeout=5)
    assert other.status_code == 200
    assert other.content == first.content

    stash_sim.update_scene(5, cover=image_bytes("a new cover"))
    changed = requests.get(url, headers={"ApiKey": KEY, "If-None-Match": etag}, timeout=5)
    assert changed.status_code == 200
    assert changed.content == image_bytes("a new cover")
    assert changed.headers["ETag"] != etag
    unpinned = requests.get(f"{stash_sim.url}/scene/5/screenshot", headers={"ApiKey": KEY}, timeout=5)
    assert unpinned.headers["Cache-Control"] == "no-cache"


def test_images_with_the_plugin_cookie_and_uploaded_images() -> None:
    with StashSimulator(scenes=5, seed=1, session_cookie="cookie") as sim:
        stash = StashInterface({**sim.server_connection(), "Logger": LOG})
        url = stash.find_scene(1, fragment="paths { screenshot }")["paths"]["screenshot"]
        response = stash.s.get(url, timeout=5)  # the session stashapi built carries the cookie
        assert response.content == sim.screenshot_bytes(1)
        sim.set_performer_image(1, b"\x89PNG\r\n\x1a\nown")
        image_path = stash.find_performer(1, fragment="image_path")["image_path"]
        assert not image_path.endswith("default=true")
        assert stash.s.get(image_path, timeout=5).content == b"\x89PNG\r\n\x1a\nown"
        sim.set_performer_image(1, None)
        assert stash.find_performer(1, fragment="image_path")["image_path"].endswith("&default=true")


# -- plugins ---------------------------------------------------------------------------------


def test_plugin_settings_round_trip() -> None:
    settings = {"stash2plex": {"plexUrl": "http://plex:32400", "dryRun": True, "batchSize": 50}}
    with StashSimulator(scenes=1, api_key=KEY, plugin_settings=settings) as sim:
        stash = stash_client(sim)
        assert stash.find_plugin_config("stash2plex") == settings["stash2plex"]
        assert stash.find_plugin_config("unknownPlugin") == {}  # never configured: absent
        assert stash.get_configuration()["plugins"] == settings
        stash.configure_plugin("stash2plex", {"dryRun": False})  # stashapi merges, then writes all
        assert sim.plugin_settings["stash2plex"] == {"plexUrl": "http://plex:32400", "dryRun": False, "batchSize": 50}
        sim.set_plugin_settings("stash2plex", {"plexUrl": "http://other"})  # replaces: keys vanish
        assert stash.find_plugin_config("stash2plex") == {"plexUrl": "http://other"}
    parsed = parse_plugin_settings(
        ["stash2plex.plexUrl=http://x:32400", "stash2plex.dryRun=true", "stash2plex.batchSize=50", 'other.token="007"']
    )
    assert parsed == {
        "stash2plex": {"plexUrl": "http://x:32400", "dryRun": True, "batchSize": 50},
        "other": {"token": "007"},
    }
    with pytest.raises(ValueError, match=r"PLUGIN_ID\.KEY=VALUE"):
        parse_plugin_settings(["nodot=1"])


def test_run_plugin_task_is_recorded_and_jobs_finish(stash_fresh: StashSimulator) -> None:
    stash = stash_client(stash_fresh)
    job_id = stash.run_plugin_task("stash2plex", "Full sync", args={"mode": "full", "limit": 3})
    # stashapi checks int before bool and sends True as {"i": true}, which the server rejects.
    with pytest.raises(Exception, match=r"422 Unprocessable (Entity|Content)"):
        stash.run_plugin_task("stash2plex", "Full sync", args={"dry_run": True})
    run = stash_fresh.plugin_task_runs[-1]
    assert isinstance(run, PluginTaskRun)
    assert (run.plugin_id, run.task_name, run.args, run.job_id, run.used_args_list) == (
        "stash2plex",
        "Full sync",
        {"mode": "full", "limit": 3},
        job_id,
        True,
    )
    assert stash.find_job(job_id)["status"] == "FINISHED"
    mapped = stash.call_GQL(
        "mutation($p: ID!, $t: String, $a: Map) { runPluginTask(plugin_id: $p, task_name: $t, args_map: $a) }",
        {"p": "stash2plex", "t": "Sync scene", "a": {"scene_id": "12"}},
    )["runPluginTask"]
    assert stash_fresh.plugin_task_runs[-1].args == {"scene_id": "12"}
    assert stash_fresh.plugin_task_runs[-1].used_args_list is False
    assert mapped != job_id

    started = threading.Event()
    release = threading.Event()

    def handler(run: PluginTaskRun) -> None:
        started.set()
        release.wait(5)
        if run.args.get("fail"):
            raise RuntimeError("plugin failed")

    stash_fresh.plugin_task_handler = handler
    slow = stash.run_plugin_task("stash2plex", "Full sync", args={"fail": ""})
    assert started.wait(5)
    assert stash.find_job(slow)["status"] == "RUNNING"
    release.set()
    failing = stash.run_plugin_task("stash2plex", "Full sync", args={"fail": "yes"})
    deadline = time.monotonic() + 5
    while {stash.find_job(slow)["status"], stash.find_job(failing)["status"]} != {"FINISHED", "FAILED"}:
        assert time.monotonic() < deadline
        time.sleep(0.02)


# -- faults: what stashapi does with each ----------------------------------------------------


def test_http_faults_raise_in_stashapi(stash_fresh: StashSimulator) -> None:
    stash = stash_client(stash_fresh)
    stash_fresh.faults.add(Fault(path="^/graphql$", status=503, times=1))
    with pytest.raises(Exception, match="503 Service Unavailable query failed"):
        stash.find_scene(1, fragment="id")
    assert stash.find_scene(1, fragment="id")["id"] == "1"  # times=1: the next call works
    stash_fresh.faults.add(Fault(path="^/graphql$", status=401, times=1))
    with pytest.raises(Exception, match="401 Unauthorized"):
        stash.find_scene(1, fragment="id")
    stash_fresh.faults.add(Fault(path="^/graphql$", action="malformed", times=1))
    with pytest.raises(Exception, match="200 OK query failed"):  # unparseable JSON is "data is null"
        stash.find_scene(1, fragment="id")
    stash_fresh.faults.add(Fault(path="^/graphql$", action="reset", times=1))
    with pytest.raises(requests.ConnectionError):
        stash.find_scene(1, fragment="id")
    stash_fresh.faults.add(Fault(path="^/graphql$", action="delay", delay=0.3, times=1))
    started = time.monotonic()
    assert stash.find_scene(1, fragment="id")["id"] == "1"  # slow but fine: stashapi has no timeout
    assert time.monotonic() - started >= 0.3


def test_hang_needs_a_client_timeout(stash_fresh: StashSimulator) -> None:
    stash_fresh.faults.add(Fault(path="^/graphql$", action="hang", delay=5, times=1))
    with pytest.raises(requests.ReadTimeout):  # stashapi itself would wait for the full hang
        requests.post(
            stash_fresh.graphql_url, json={"query": "{ version { hash } }"}, headers={"ApiKey": KEY}, timeout=0.3
        )


def test_refused_connections(stash_fresh: StashSimulator) -> None:
    stash = stash_client(stash_fresh)
    stash_fresh.refuse()
    with pytest.raises(requests.ConnectionError):
        stash.find_scene(1, fragment="id")
    stash_fresh.accept()
    assert stash.find_scene(1, fragment="id")["id"] == "1"


def test_graphql_faults_raise_or_return_none(stash_fresh: StashSimulator, caplog: pytest.LogCaptureFixture) -> None:
    stash = stash_client(stash_fresh)
    # Whole-response errors, data null: stashapi logs and raises.
    stash_fresh.graphql_faults.add(GraphQLFault(operation="^FindScenes$", message="boom", times=1))
    with caplog.at_level(logging.ERROR, logger=LOG.name), pytest.raises(Exception, match="query failed"):
        stash.find_scenes(filter=dict(PAGE), fragment="id")
    assert any("GRAPHQL_ERROR:['findScenes'] boom" in r.message for r in caplog.records)
    # A nullable field failing: partial data, stashapi logs and returns None without raising.
    stash_fresh.graphql_faults.add(GraphQLFault(field="findScene", message="partial", times=1))
    assert stash.find_scene(1, fragment="id") is None
    # A non-null nested field failing nulls the scene: still None, still no exception.
    stash_fresh.graphql_faults.add(GraphQLFault(field="Scene.files", times=1))
    assert stash.find_scene(1, fragment="id files { path }") is None
    # A non-null root field failing nulls data: stashapi raises.
    stash_fresh.graphql_faults.add(GraphQLFault(field="findScenes", times=1))
    with pytest.raises(Exception, match="query failed"):
        stash.find_scenes(filter=dict(PAGE), fragment="id")
    # SQLite busy: stashapi singles it out (DATABASE_LOCKED) and raises.
    caplog.clear()
    stash_fresh.graphql_faults.add(GraphQLFault.database_locked(operation="sceneUpdate", times=1))
    with caplog.at_level(logging.ERROR, logger=LOG.name), pytest.raises(Exception, match="query failed"):
        stash.update_scene({"id": 1, "title": "x"})
    assert any("DATABASE_LOCKED" in r.message for r in caplog.records)
    # after= skips matching operations first.
    stash_fresh.graphql_faults.add(GraphQLFault(field="findScene", after=1, times=1))
    assert stash.find_scene(2, fragment="id") == {"id": "2"}
    assert stash.find_scene(2, fragment="id") is None
    assert stash.find_scene(2, fragment="id") == {"id": "2"}


def test_protocol_errors_follow_gqlgen(stash_sim: StashSimulator) -> None:
    headers = {"ApiKey": KEY}
    bad_json = requests.post(
        stash_sim.graphql_url, data=b"{nope", headers={**headers, "Content-Type": "application/json"}, timeout=5
    )
    assert bad_json.status_code == 400
    syntax = requests.post(stash_sim.graphql_url, json={"query": "{ findScene("}, headers=headers, timeout=5)
    assert syntax.status_code == 422
    assert syntax.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    variables = requests.post(
        stash_sim.graphql_url,
        json={"query": "query($id: ID!) { findScene(id: $id) { id } }", "variables": {}},
        headers=headers,
        timeout=5,
    )
    assert variables.status_code == 422
    get = requests.get(stash_sim.graphql_url, params={"query": "{ version { version } }"}, headers=headers, timeout=5)
    assert get.json()["data"]["version"]["version"] == "v0.30.1"
    assert requests.get(f"{stash_sim.url}/nothing", headers=headers, timeout=5).status_code == 404


# -- determinism and the command line --------------------------------------------------------


def test_same_arguments_describe_the_same_files_as_generate_library() -> None:
    expected = generate_library(45, 99, "/lib")
    with StashSimulator(scenes=45, seed=99, library_root="/lib", api_key=KEY) as sim:
        stash = stash_client(sim)
        scenes = stash.find_scenes(filter={"per_page": -1, "sort": "id"}, fragment="id files { id path }")
    assert [s["id"] for s in scenes] == [s.id for s in expected.scenes]
    assert [[f["path"] for f in s["files"]] for s in scenes] == [[f.path for f in s.files] for s in expected.scenes]
    assert [[f["id"] for f in s["files"]] for s in scenes] == [[f.id for f in s.files] for s in expected.scenes]


def test_serve_prints_the_url_and_runs_until_interrupted() -> None:
    code = (
        "from stash2plex_backends.simulators.stash import serve\n"
        "serve(host='127.0.0.1', port=0, api_key='cli-key', scenes=12, seed=3, library_root='/media',\n"
        "      plugin_settings={'stash2plex': {'dryRun': True}})\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2] / "src"), *sys.path])}
    with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env) as process:
        assert process.stdout is not None
        line = process.stdout.readline()
        url = line.split(" on ")[1].split()[0]
        port = int(url.rpartition(":")[2])
        stash = StashInterface(
            {"scheme": "http", "host": "127.0.0.1", "port": port, "ApiKey": "cli-key", "Logger": LOG}
        )
        assert len(stash.find_scenes(filter={"per_page": -1}, fragment="id")) == 12
        assert stash.find_plugin_config("stash2plex") == {"dryRun": True}
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0


def test_serve_in_a_thread_with_ready_callback() -> None:
    holder: list[StashSimulator] = []
    thread = threading.Thread(target=serve, kwargs={"port": 0, "scenes": 2, "ready": holder.append}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not holder:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    sim = holder[0]
    assert requests.post(sim.graphql_url, json={"query": "{ version { version } }"}, timeout=5).ok
    sim.stop()
    thread.join(timeout=5)
    assert not thread.is_alive()
