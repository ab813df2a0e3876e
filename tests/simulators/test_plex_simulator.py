"""The simulated PMS, driven by the real, unmodified plexapi over HTTP on 127.0.0.1.

No plexapi configuration is needed: plexapi's defaults (auto-reload on, 100-item pages,
30 s timeout) are what production code starts from, and each test passes its own timeout.
Fixtures live in this module (prefixed ``plex_``) so they cannot collide with the Stash
simulator's.
"""

from __future__ import annotations

import hashlib
import math
import os
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from xml.etree.ElementTree import ParseError

import pytest
import requests
from plexapi.exceptions import BadRequest
from plexapi.exceptions import NotFound
from plexapi.exceptions import Unauthorized
from plexapi.library import MovieSection
from plexapi.server import PlexServer
from plexapi.video import Movie

from stash2plex_backends.simulators import Fault
from stash2plex_backends.simulators import generate_library
from stash2plex_backends.simulators.plex import PlexSimulator
from stash2plex_backends.simulators.plex import serve
from stash2plex_backends.simulators.seedlib import image_bytes


TOKEN = "test-token-123"
ROOT = "/data/library"
SEED = 11
ITEMS = 40


@pytest.fixture
def plex_sim() -> Iterator[PlexSimulator]:
    with PlexSimulator(items=ITEMS, seed=SEED, library_root=ROOT, token=TOKEN) as sim:
        yield sim


@pytest.fixture
def plex_server(plex_sim: PlexSimulator) -> PlexServer:
    return PlexServer(plex_sim.url, TOKEN, session=requests.Session(), timeout=5)


@pytest.fixture
def plex_section(plex_server: PlexServer) -> MovieSection:
    section = plex_server.library.section("Stash")
    assert isinstance(section, MovieSection)
    return section


def _raw(sim: PlexSimulator, path: str, method: str = "GET") -> requests.Response:
    """A bare request with the token header, for what plexapi cannot express."""
    return requests.request(method, sim.url + path, headers={"X-Plex-Token": TOKEN}, timeout=5)


def _plain_item(sim: PlexSimulator) -> int:
    """A ratingKey of an item with a single version and a single part."""
    return next(rk for rk in sim.rating_keys() if len(sim.item(rk).files) == 1)


# -- connecting, auth, unknown paths ---------------------------------------------------------


def test_connect_reads_root_identity_and_sections(plex_sim: PlexSimulator, plex_server: PlexServer) -> None:
    assert plex_server.friendlyName == "stash2plex-sim"
    assert len(plex_server.machineIdentifier) == 40
    assert plex_server.version
    identity = requests.get(plex_sim.url + "/identity", timeout=5)  # no token: a liveness probe
    assert identity.status_code == 200
    assert 'claimed="1"' in identity.text
    (section,) = plex_server.library.sections()
    assert isinstance(section, MovieSection)
    assert (section.key, section.type, section.title) == (plex_sim.section_id, "movie", "Stash")
    assert section.locations == [ROOT]
    assert section.agent == "tv.plex.agents.none"
    assert plex_server.library.sectionByID(section.key).uuid == section.uuid
    assert plex_sim.requests.count("GET", r"^/$") == 1
    first = plex_sim.requests.all()[0]
    assert first.headers["X-Plex-Token"] == TOKEN
    assert "X-Plex-Token" not in first.query


def test_wrong_or_missing_token_is_401_with_html(plex_sim: PlexSimulator) -> None:
    with pytest.raises(Unauthorized, match=r"^\(401\) unauthorized; .*<html>.*401 Unauthorized"):
        PlexServer(plex_sim.url, "wrong-token", timeout=5)
    missing = requests.get(plex_sim.url + "/library/sections", timeout=5)
    assert missing.status_code == 401
    assert missing.headers["Content-Type"].startswith("text/html")
    as_query = requests.get(plex_sim.url + "/library/sections", params={"X-Plex-Token": TOKEN}, timeout=5)
    assert as_query.status_code == 200


def test_unknown_paths_and_items_are_404(plex_sim: PlexSimulator, plex_server: PlexServer) -> None:
    with pytest.raises(NotFound, match=r"^\(404\) not_found"):
        plex_server.query("/no/such/endpoint")
    with pytest.raises(NotFound):
        plex_server.fetchItem(999_999)
    with pytest.raises(NotFound):
        plex_server.query("/library/sections/42/all")
    response = _raw(plex_sim, "/library/sections/1/all", method="POST")
    assert response.status_code == 404
    assert "<html>" in response.text


# -- seeding ---------------------------------------------------------------------------------


def test_seed_describes_the_same_files_as_generate_library(plex_sim: PlexSimulator) -> None:
    library = generate_library(ITEMS, SEED, ROOT)
    stacks = {s.stack_key for s in library.scenes if s.stack_key}
    assert len(plex_sim) == len(library.scenes) - len(stacks)
    seen_multi_version = seen_stacked = False
    for scene in library.scenes:
        for file in scene.files:
            item = plex_sim.item_by_path(file.path)
            assert item is not None, file.path
            if scene.stack_key:
                (version,) = item.media
                assert len(version) == 2
                assert version == tuple(sorted(version))  # part1, part2
                seen_stacked = True
            elif len(scene.files) == 2:
                assert item.media == tuple((f.path,) for f in scene.files)
                seen_multi_version = True
            else:
                assert item.files == (file.path,)
        # Nothing an agent would have added: the sync from Stash has real work to do.
        assert set(item.values) <= {"title", "year"}
        assert not item.tags
        assert not item.locks
    assert seen_stacked
    assert seen_multi_version
    # Every file of the library is in Plex, and nothing else.
    assert sorted(p for rk in plex_sim.rating_keys() for p in plex_sim.item(rk).files) == sorted(
        f.path for s in library.scenes for f in s.files
    )


def test_seed_is_deterministic_and_titles_come_from_file_names() -> None:
    def describe(sim: PlexSimulator) -> list[tuple[int, str, tuple[str, ...], int]]:
        return [(i.rating_key, i.title, i.files, i.added_at) for i in sim.items()]

    first = PlexSimulator(items=30, seed=5, library_root="/srv/x")
    second = PlexSimulator(items=30, seed=5, library_root="/srv/x")
    other = PlexSimulator(items=30, seed=6, library_root="/srv/x")
    assert describe(first) == describe(second)
    assert describe(first) != describe(other)
    scene = generate_library(30, 5, "/srv/x").scenes[0]
    item = first.item_by_path(scene.files[0].path)
    assert item is not None
    stem = Path(scene.files[0].path).stem
    year = stem.split("(")[1][:4]
    assert item.values["year"] == year
    assert item.title == stem.replace(f" ({year})", "")


# -- listings --------------------------------------------------------------------------------


def test_paged_listing_uses_headers_and_reports_total_size(plex_sim: PlexSimulator, plex_section: MovieSection) -> None:
    plex_sim.requests.clear()
    items = plex_section.search(libtype="movie", container_size=7)
    listing = [r for r in plex_sim.requests.all() if r.path.endswith("/all")]
    assert len(listing) == math.ceil(len(plex_sim) / 7)
    assert [r.headers["X-Plex-Container-Start"] for r in listing] == [str(i * 7) for i in range(len(listing))]
    assert listing[0].query["type"] == ["1"]
    assert listing[0].query["includeGuids"] == ["1"]
    assert sorted(i.ratingKey for i in items) == sorted(plex_sim.rating_keys())
    # Default order is titleSort, case-insensitively.
    titles = [i.titleSort.casefold() for i in items]
    assert titles == sorted(titles)
    assert all(isinstance(i, Movie) and i.librarySectionID == plex_section.key for i in items)
    assert plex_section.totalViewSize() == len(plex_sim)


def test_paging_as_query_parameters_and_counts_only(plex_sim: PlexSimulator) -> None:
    counts = _raw(plex_sim, "/library/sections/1/all?X-Plex-Container-Start=0&X-Plex-Container-Size=0")
    assert f'size="0" totalSize="{len(plex_sim)}" offset="0"' in counts.text
    assert "<Video" not in counts.text
    assert counts.headers["X-Plex-Container-Total-Size"] == str(len(plex_sim))
    page = _raw(plex_sim, "/library/sections/1/all?X-Plex-Container-Start=5&X-Plex-Container-Size=3")
    assert page.text.count("<Video ") == 3
    assert 'offset="5"' in page.text
    beyond = _raw(plex_sim, "/library/sections/1/all?X-Plex-Container-Start=9999&X-Plex-Container-Size=3")
    assert f'size="0" totalSize="{len(plex_sim)}"' in beyond.text


def test_without_total_size_plexapi_silently_stops_after_one_page(plex_sim: PlexSimulator) -> None:
    plex_sim.options.emit_total_size = False
    section = PlexServer(plex_sim.url, TOKEN, timeout=5).library.sectionByID(plex_sim.section_id)
    assert len(section.search(libtype="movie", container_size=10)) == 10  # the documented trap


def test_listings_truncate_tags_and_details_are_complete(
    plex_sim: PlexSimulator, plex_server: PlexServer, plex_section: MovieSection
) -> None:
    rk = _plain_item(plex_sim)
    genres = ["G1", "G2", "G3", "G4"]
    actors = ["Anaïs Müller", "Zoë Øst", "Björn Ng", "Kai Lee", "Mia Smith"]
    plex_sim.edit_item(rk, tags={"genre": genres, "actor": actors, "label": ["x"]}, locks=["title"])
    (listed,) = [i for i in plex_section.search(libtype="movie") if i.ratingKey == rk]
    listed._autoReload = False
    assert [g.tag for g in listed.genres] == genres[:2]
    assert [r.tag for r in listed.roles] == actors[:3]
    assert listed.labels == []
    assert listed.fields == []
    detail = plex_server.fetchItem(rk)
    assert [g.tag for g in detail.genres] == genres
    assert [r.tag for r in detail.roles] == actors
    assert [label.tag for label in detail.labels] == ["x"]
    assert [(f.name, f.locked) for f in detail.fields] == [("title", True)]
    assert detail.media[0].parts[0].file == plex_sim.item(rk).files[0]
    assert detail.media[0].parts[0].streams


def test_title_filter_sort_and_limit(plex_sim: PlexSimulator, plex_section: MovieSection) -> None:
    target = plex_sim.item(_plain_item(plex_sim))
    needle = target.title[:-1].upper()  # case-insensitive "contains"
    found = plex_section.search(title=needle)
    assert target.rating_key in [i.ratingKey for i in found]
    assert all(needle.casefold() in i.title.casefold() for i in found)
    assert plex_section.get(target.title).ratingKey == target.rating_key
    newest = plex_section.search(sort="addedAt:desc", maxresults=5)  # validated through <Meta>
    added = sorted((i.added_at for i in plex_sim.items()), reverse=True)[:5]
    assert [int(i.addedAt.timestamp()) for i in newest] == added
    assert len(_raw(plex_sim, "/library/sections/1/all?limit=3").text.split("<Video ")) == 4
    assert _raw(plex_sim, "/library/sections/1/all?sort=bogus").status_code == 400
    assert _raw(plex_sim, "/library/sections/1/all?genre=Drama").status_code == 400  # not simulated


def test_file_filter_is_loose_and_must_be_verified(plex_sim: PlexSimulator, plex_section: MovieSection) -> None:
    target = plex_sim.item(_plain_item(plex_sim))
    path = target.files[0]
    key = f"/library/sections/{plex_section.key}/all?type=1&file={urllib.parse.quote(path, safe='')}"
    found = plex_section.fetchItems(key, cls=Movie)
    keys = {i.ratingKey for i in found}
    neighbours = {i.rating_key for i in plex_sim.items() if any(Path(f).parent == Path(path).parent for f in i.files)}
    assert keys == neighbours  # the exact item plus everything in its folder
    assert len(keys) > 1
    exact = [i for i in found if path in i.locations]
    assert [i.ratingKey for i in exact] == [target.rating_key]
    by_name = plex_section.fetchItems(
        f"/library/sections/1/all?type=1&file={urllib.parse.quote(Path(path).name)}", cls=Movie
    )
    assert [i.ratingKey for i in by_name] == [target.rating_key]
    plex_sim.options.file_filter = "exact"
    assert [i.ratingKey for i in plex_section.fetchItems(key, cls=Movie)] == [target.rating_key]
    plex_sim.options.file_filter = "ignore"
    assert len(plex_section.fetchItems(key, cls=Movie)) == len(plex_sim)
    plex_sim.options.file_filter = "error"
    with pytest.raises(BadRequest, match=r"^\(400\)"):
        plex_section.fetchItems(key, cls=Movie)


def test_fetch_item_and_comma_separated_ids(plex_sim: PlexSimulator, plex_server: PlexServer) -> None:
    first, second = plex_sim.rating_keys()[:2]
    plex_sim.requests.clear()
    both = plex_server.fetchItems([first, second])
    assert [i.ratingKey for i in both] == [first, second]
    assert [r.path for r in plex_sim.requests.all()] == [f"/library/metadata/{first},{second}"]
    partly = plex_server.fetchItems(f"/library/metadata/{first},999999")
    assert [i.ratingKey for i in partly] == [first]
    with pytest.raises(NotFound):
        plex_server.fetchItems("/library/metadata/999998,999999")
    movie = plex_server.fetchItem(first)
    assert movie.key == f"/library/metadata/{first}"
    assert movie.librarySectionID == plex_sim.section_id
    assert movie.locations == list(plex_sim.item(first).files)
    stacked = next(rk for rk in plex_sim.rating_keys() if len(plex_sim.item(rk).media[0]) == 2)
    assert len(plex_server.fetchItem(stacked).media[0].parts) == 2
    versions = next(rk for rk in plex_sim.rating_keys() if len(plex_sim.item(rk).media) == 2)
    assert len(plex_server.fetchItem(versions).media) == 2


# -- edits -------------------------------------------------------------------------------------


def test_field_edits_values_locks_and_updated_at(plex_sim: PlexSimulator, plex_server: PlexServer) -> None:
    rk = _plain_item(plex_sim)
    before = plex_sim.item(rk).updated_at
    movie = plex_server.fetchItem(rk)
    plex_sim.requests.clear()
    summary = "Ünïcode & more, 100%\nsecond line\twith tab"
    movie.editTitle("Nouveau Titre").editSummary(summary).editStudio("Café Noir", locked=False)
    movie.editOriginallyAvailable("2023-04-05")
    movie.edit(**{"year.value": 2023, "year.locked": 1})
    puts = [r for r in plex_sim.requests.all() if r.method == "PUT"]
    assert len(puts) == 5
    assert all(r.path == f"/library/sections/{plex_sim.section_id}/all" for r in puts)
    assert puts[0].query["id"] == [str(rk)]
    movie.reload()
    assert movie.title == "Nouveau Titre"
    assert movie.summary == summary
    assert movie.studio == "Café Noir"
    assert movie.originallyAvailableAt.strftime("%Y-%m-%d") == "2023-04-05"
    assert movie.year == 2023
    assert {f.name for f in movie.fields} == {"title", "summary", "originallyAvailableAt", "year"}
    state = plex_sim.item(rk)
    assert state.updated_at >= before + 5  # strictly increasing, one bump per edit
    movie.editSummary(None).editTitle("Nouveau Titre", locked=False).editSortTitle("Sort Me")
    movie.reload()
    assert movie.summary is None
    assert movie.titleSort == "Sort Me"
    assert not movie.isLocked("title")
    movie.editSortTitle("")
    movie.reload()
    assert movie.titleSort == "Nouveau Titre"  # a cleared titleSort falls back to the title


@pytest.mark.parametrize("tag_mode", ["append", "replace"])
def test_tag_helpers_add_remove_with_double_quoting(
    plex_sim: PlexSimulator, plex_server: PlexServer, tag_mode: str
) -> None:
    plex_sim.tag_mode = tag_mode  # type: ignore[assignment]
    movie = plex_server.fetchItem(_plain_item(plex_sim))
    movie.addGenre(["A,1", "B/2", "100% Real"])
    movie.reload()
    assert [g.tag for g in movie.genres] == ["A,1", "B/2", "100% Real"]
    assert movie.isLocked("genre")
    movie.removeGenre(["A,1", "100% real"])  # removal matches names case-insensitively
    movie.reload()
    assert [g.tag for g in movie.genres] == ["B/2"]
    movie.addGenre("C")  # plexapi re-sends the existing list plus the new name
    movie.reload()
    assert [g.tag for g in movie.genres] == ["B/2", "C"]


def test_indexed_tags_append_or_replace(plex_sim: PlexSimulator, plex_server: PlexServer) -> None:
    rk = _plain_item(plex_sim)
    plex_sim.edit_item(rk, tags={"genre": ["Old", "Keep"]})
    movie = plex_server.fetchItem(rk)
    movie.edit(**{"genre[0].tag.tag": "New"})
    assert plex_sim.item(rk).tags["genre"] == ("Old", "Keep", "New")  # append: a union
    plex_sim.tag_mode = "replace"
    movie.edit(**{"genre[0].tag.tag": "Only"})
    assert plex_sim.item(rk).tags["genre"] == ("Only",)  # replace: the list is the set


@pytest.mark.parametrize("tag_mode", ["append", "replace"])
def test_full_list_plus_removals_is_right_in_both_modes(
    plex_sim: PlexSimulator, plex_server: PlexServer, tag_mode: str
) -> None:
    plex_sim.tag_mode = tag_mode  # type: ignore[assignment]
    rk = _plain_item(plex_sim)
    plex_sim.edit_item(rk, tags={"genre": ["Drama", "Gone, Too", "Stay"]})
    movie = plex_server.fetchItem(rk)
    movie.edit(
        **{
            "genre[0].tag.tag": "Stay",
            "genre[1].tag.tag": "Added",
            "genre[].tag.tag-": ",".join(urllib.parse.quote(t) for t in ["Drama", "Gone, Too"]),
            "genre.locked": 1,
        }
    )
    state = plex_sim.item(rk)
    assert state.tags["genre"] == ("Stay", "Added")
    assert "genre" in state.locks


def test_clear_actor_photos_and_lock_only(plex_sim: PlexSimulator, plex_server: PlexServer) -> None:
    rk = _plain_item(plex_sim)
    movie = plex_server.fetchItem(rk)
    movie.edit(
        **{
            "actor[0].tag.tag": "Jane Doe",
            "actor[0].tag.thumb": "http://stash.local/performer/1/image",
            "actor[0].tagging.text": "Lead",
            "actor[1].tag.tag": "John Roe",
            "actor.locked": 1,
        }
    )
    movie.reload()
    assert [(r.tag, r.thumb, r.role) for r in movie.roles] == [
        ("Jane Doe", "http://stash.local/performer/1/image", "Lead"),
        ("John Roe", None, None),
    ]
    movie.edit(**{"actor.locked": 1})  # a lock alone removes nothing
    assert plex_sim.item(rk).tags["actor"] == ("Jane Doe", "John Roe")
    movie.edit(**{"actor[].tag": ""})  # clears the whole field
    movie.reload()
    assert movie.roles == []
    assert movie.isLocked("actor")


def test_batch_edits_send_one_put(plex_sim: PlexSimulator, plex_server: PlexServer) -> None:
    movie = plex_server.fetchItem(_plain_item(plex_sim))
    movie._autoReload = False
    plex_sim.requests.clear()
    movie.batchEdits().editTitle("T2").editSummary("S2").addGenre("G2").addLabel("L2").saveEdits()
    # plexapi looks the section up once per PlexServer (GET /library, /library/sections), then one PUT.
    assert [r.method for r in plex_sim.requests.all() if r.method != "GET"] == ["PUT"]
    state = plex_sim.item(movie.ratingKey)
    assert state.title == "T2"
    assert state.values["summary"] == "S2"
    assert state.tags == {"genre": ("G2",), "label": ("L2",)}
    assert {"title", "summary", "genre", "label"} <= state.locks


def test_multi_item_edit(plex_sim: PlexSimulator, plex_server: PlexServer, plex_section: MovieSection) -> None:
    first, second = (plex_server.fetchItem(rk) for rk in plex_sim.rating_keys()[:2])
    plex_sim.requests.clear()
    plex_section.batchMultiEdits([first, second]).addLabel("bulk").saveMultiEdits()
    (put,) = plex_sim.requests.all()
    assert put.query["id"] == [f"{first.ratingKey},{second.ratingKey}"]
    assert plex_sim.item(first.ratingKey).tags["label"] == ("bulk",)
    assert plex_sim.item(second.ratingKey).tags["label"] == ("bulk",)


def test_bad_edits_are_refused_without_changing_anything(
    plex_sim: PlexSimulator, plex_server: PlexServer, plex_section: MovieSection
) -> None:
    rk = _plain_item(plex_sim)
    movie = plex_server.fetchItem(rk)
    before = plex_sim.item(rk)
    with pytest.raises(BadRequest, match=r"^\(400\) bad_request.*sortTitle"):
        movie.edit(**{"sortTitle.value": "x", "title.value": "changed"})
    with pytest.raises(BadRequest, match=r"^\(500\)"):
        movie.editOriginallyAvailable("2023-13-45")
    with pytest.raises(BadRequest, match=r"^\(400\)"):
        movie.edit(type=2, **{"title.value": "x"})
    with pytest.raises(NotFound):
        plex_server.query("/library/sections/1/all?type=1&id=999999&title.value=x", method=plex_server._session.put)
    assert plex_sim.item(rk) == before
    assert plex_sim.violations == []
    response = _raw(plex_sim, "/library/sections/1/all?type=1&title.value=everything", method="PUT")
    assert response.status_code == 400  # strict: a PUT without id would edit the whole section
    assert len(plex_sim.violations) == 1
    assert all(i.title != "everything" for i in plex_sim.items())
    other = plex_sim.add_section("Other", ["/data/other"])
    stranger = plex_sim.add_item("/data/other/film.mp4")
    assert plex_sim.item(stranger).section_id == other
    response = _raw(plex_sim, f"/library/sections/1/all?type=1&id={stranger}&title.value=x", method="PUT")
    assert response.status_code == 404


def test_item_level_put_and_refresh(plex_sim: PlexSimulator, plex_server: PlexServer) -> None:
    rk = _plain_item(plex_sim)
    response = _raw(plex_sim, f"/library/metadata/{rk}?title.value=Direct&title.locked=1", method="PUT")
    assert response.status_code == 200
    assert plex_sim.item(rk).title == "Direct"
    movie = plex_server.fetchItem(rk)
    movie.editSummary("unlocked", locked=False)
    movie.refresh()
    assert plex_sim.refreshes == [rk]
    assert plex_sim.item(rk).values["summary"] == "unlocked"  # default: nothing to revert to
    plex_sim.options.refresh_resets_unlocked = True
    movie.refresh()
    state = plex_sim.item(rk)
    assert state.title == "Direct"  # locked fields survive an agent refresh
    assert "summary" not in state.values


# -- images ------------------------------------------------------------------------------------


def test_upload_poster_keyed_by_sha1(plex_sim: PlexSimulator, plex_server: PlexServer) -> None:
    rk = _plain_item(plex_sim)
    movie = plex_server.fetchItem(rk)
    old_thumb = movie.thumb
    (frame,) = movie.posters()
    assert frame.selected
    assert frame.ratingKey.startswith("media://")
    png = image_bytes("scene-1-cover")
    sha1 = hashlib.sha1(png).hexdigest()
    plex_sim.requests.clear()
    movie.uploadPoster(filepath=png)
    (post,) = plex_sim.requests.all()
    assert (post.method, post.path, post.body) == ("POST", f"/library/metadata/{rk}/posters", png)
    movie.reload()
    assert movie.thumb != old_thumb
    assert movie.isLocked("thumb")
    posters = movie.posters()
    assert [(p.ratingKey, p.selected) for p in posters] == [
        (frame.ratingKey, False),
        (f"upload://posters/{sha1}", True),
    ]
    assert plex_sim.item(rk).poster_sha1 == sha1
    assert requests.get(movie.thumbUrl, timeout=5).content == png  # token in the query string
    movie.uploadPoster(filepath=png)  # same bytes: same entry
    assert len(movie.posters()) == 2
    movie.uploadPoster(url="http://stash.local/scene/1/screenshot")
    url_sha1 = hashlib.sha1(b"http://stash.local/scene/1/screenshot").hexdigest()
    assert plex_sim.item(rk).poster == f"upload://posters/{url_sha1}"
    movie.setPoster(posters[1])
    assert plex_sim.item(rk).poster_sha1 == sha1
    movie.uploadArt(filepath=image_bytes("art"))
    movie.reload()
    assert movie.art is not None
    assert movie.isLocked("art")
    assert [a.selected for a in movie.arts()] == [True]


def test_uploads_over_10_mb_answer_500(plex_sim: PlexSimulator, plex_server: PlexServer) -> None:
    movie = plex_server.fetchItem(_plain_item(plex_sim))
    with pytest.raises(BadRequest, match=r"^\(500\) internal_server_error"):
        movie.uploadPoster(filepath=b"\0" * 10_000_001)
    assert plex_sim.item(movie.ratingKey).poster_sha1 is None
    movie.uploadPoster(filepath=b"\0" * 10_000_000)
    assert plex_sim.item(movie.ratingKey).poster_sha1 == hashlib.sha1(b"\0" * 10_000_000).hexdigest()


# -- scans -------------------------------------------------------------------------------------


def test_partial_scan_reveals_a_staged_file(plex_sim: PlexSimulator, plex_section: MovieSection) -> None:
    path = f"{ROOT}/New Studio/Fresh Scene (2024).mp4"
    plex_sim.stage_file(path)
    key = f"/library/sections/1/all?type=1&file={urllib.parse.quote(path, safe='')}"
    assert plex_section.fetchItems(key) == []
    assert plex_sim.item_by_path(path) is None
    plex_section.update(path=f"{ROOT}/Other Folder")
    assert plex_sim.item_by_path(path) is None
    plex_section.update(path=f"{ROOT}/New Studio")
    (found,) = plex_section.fetchItems(key)
    assert found.locations == [path]
    assert found.title == "Fresh Scene"
    assert found.ratingKey > max(rk for rk in plex_sim.rating_keys() if rk != found.ratingKey)
    scan = plex_sim.scans[-1]
    assert (scan.section_id, scan.path, scan.force) == (1, f"{ROOT}/New Studio", False)
    assert plex_sim.requests.all()[-2].query["path"] == [f"{ROOT}/New Studio"]


def test_removed_item_comes_back_as_a_new_item_after_a_scan(
    plex_sim: PlexSimulator, plex_server: PlexServer, plex_section: MovieSection
) -> None:
    rk = _plain_item(plex_sim)
    path = plex_sim.item(rk).files[0]
    plex_sim.remove_item(rk)
    assert plex_sim.item_by_path(path) is None
    with pytest.raises(NotFound):
        plex_server.fetchItem(rk)
    plex_sim.stage_file(path)
    plex_section.update(path=str(Path(path).parent))
    again = plex_sim.item_by_path(path)
    assert again is not None
    assert again.rating_key != rk  # a new ratingKey: a stored one must be verified


def test_scans_can_take_several_polls_and_time(plex_sim: PlexSimulator, plex_section: MovieSection) -> None:
    slow = f"{ROOT}/Slow/a.mp4"
    later = f"{ROOT}/Later/b.mkv"
    outside = "/elsewhere/c.mp4"
    plex_sim.stage_file(slow, scans=2)
    plex_sim.stage_file(later, delay=0.3)
    plex_sim.stage_file(outside)
    plex_section.update(path=f"{ROOT}/Slow")
    assert plex_sim.item_by_path(slow) is None
    plex_section.update()  # a whole-section scan covers every folder
    assert plex_sim.item_by_path(slow) is not None
    assert plex_sim.item_by_path(later) is None  # the scan is still running
    time.sleep(0.35)
    assert plex_sim.item_by_path(later) is not None
    assert plex_sim.item_by_path(outside) is None  # not under any section location
    plex_section.refresh()
    assert plex_sim.scans[-1].force


# -- faults ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error", "prefix"),
    [
        (401, Unauthorized, "(401) unauthorized"),
        (404, NotFound, "(404) not_found"),
        (429, BadRequest, "(429) too_many_requests"),
        (500, BadRequest, "(500) internal_server_error"),
        (503, BadRequest, "(503) service_unavailable"),
    ],
)
def test_status_faults_raise_what_plexapi_raises(
    plex_sim: PlexSimulator, plex_server: PlexServer, status: int, error: type[Exception], prefix: str
) -> None:
    rk = plex_sim.rating_keys()[0]
    plex_sim.faults.add(Fault(path=r"^/library/metadata/\d+$", status=status, after=1, times=1))
    plex_server.fetchItem(rk)  # the first matching call passes (after=1)
    with pytest.raises(error) as caught:
        plex_server.fetchItem(rk)
    assert str(caught.value).startswith(prefix)
    plex_server.fetchItem(rk)  # fired once (times=1)


def test_429_carries_retry_after(plex_sim: PlexSimulator) -> None:
    plex_sim.faults.add(Fault(path="^/identity$", status=429, headers={"Retry-After": "7"}, times=1))
    response = _raw(plex_sim, "/identity")
    assert (response.status_code, response.headers["Retry-After"]) == (429, "7")


def test_latency_hang_reset_and_malformed_faults(plex_sim: PlexSimulator) -> None:
    plex = PlexServer(plex_sim.url, TOKEN, timeout=0.5)
    plex_sim.faults.add(Fault(path="^/identity$", action="delay", delay=0.2, times=1))
    started = time.monotonic()
    plex.query("/identity")
    assert time.monotonic() - started >= 0.2
    plex_sim.faults.add(Fault(path="^/identity$", action="hang", delay=3, times=1))
    with pytest.raises(requests.exceptions.ReadTimeout):
        plex.query("/identity")
    plex_sim.faults.add(Fault(path="^/identity$", action="reset", times=1))
    with pytest.raises(requests.exceptions.ConnectionError):
        plex.query("/identity")
    plex_sim.faults.add(Fault(path="^/library/sections$", action="malformed", times=1))
    with pytest.raises(ParseError):
        plex.query("/library/sections")
    assert plex.query("/identity").attrib["claimed"] == "1"


def test_refused_connections_until_accept(plex_sim: PlexSimulator, plex_server: PlexServer) -> None:
    plex_sim.refuse()
    with pytest.raises(requests.exceptions.ConnectionError):
        plex_server.query("/identity")  # even on the kept-alive connection
    plex_sim.accept()
    assert plex_server.query("/identity").attrib["claimed"] == "1"


# -- scale and the command-line entry point ----------------------------------------------------


def test_large_library_seeds_and_pages_fast() -> None:
    started = time.monotonic()
    sim = PlexSimulator(items=10_000, seed=2, token=TOKEN)
    assert time.monotonic() - started < 5
    with sim:
        session = requests.Session()
        started = time.monotonic()
        total = 0
        for start in range(0, len(sim), 1000):
            page = session.get(
                sim.url + "/library/sections/1/all?type=1",
                headers={
                    "X-Plex-Token": TOKEN,
                    "X-Plex-Container-Start": str(start),
                    "X-Plex-Container-Size": "1000",
                },
                timeout=10,
            )
            total += page.text.count("<Video ")
        assert total == len(sim)
        assert time.monotonic() - started < 5


def test_serve_runs_until_interrupted() -> None:
    code = (
        "from stash2plex_backends.simulators.plex import serve\n"
        "serve(host='127.0.0.1', port=0, token='cli-token', items=12, seed=3, library_root='/media')\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2] / "src"), *sys.path])}
    with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env) as process:
        assert process.stdout is not None
        line = process.stdout.readline()
        url = line.split(" on ")[1].split()[0]
        assert url.startswith("http://127.0.0.1:")
        plex = PlexServer(url, "cli-token", timeout=5)
        section = plex.library.section("Stash")
        assert section.locations == ["/media"]
        assert section.totalViewSize() == len(PlexSimulator(items=12, seed=3, library_root="/media"))
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    assert callable(serve)
