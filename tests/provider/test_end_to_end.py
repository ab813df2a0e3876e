"""End to end: a simulated Plex scan against the real Stash simulator, over real HTTP.

The provider runs under uvicorn on 127.0.0.1; it reads the simulated Stash through the real
``StashApiGateway`` (stashapi over HTTP); the test plays Plex with ``requests``: root
document, then per file a match with the ``filename`` relative to the library root, then the
metadata of the match, then its images — as PMS does when it scans a library.
"""

from __future__ import annotations

import concurrent.futures
import posixpath
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from stash2plex_backends.memory import MemoryPlex
from stash2plex_backends.memory import MemoryQueue
from stash2plex_backends.memory import MemoryStateStore
from stash2plex_backends.simulators.stash import StashSimulator
from stash2plex_core.app import App
from stash2plex_core.app import build_app
from stash2plex_core.clocks import SystemClock
from stash2plex_core.models.matching import PathRule
from stash2plex_core.services.mapping import desired_state
from stash2plex_core.services.sanitize import sanitize_name
from stash2plex_core.settings import Secret
from stash2plex_core.settings import Settings
from stash2plex_integrations.plex_provider.web import create_app
from stash2plex_integrations.plex_provider.web import provider_settings
from tests.provider.conftest import Served


KEY = "e2e-stash-api-key"
SECRET = "e2e-provider-secret"
STASH_ROOT = "/data/library"
PLEX_ROOT = "/media/Plex Library"
RULE = PathRule(
    name="library",
    stash_pattern=r"/data/library/(?P<rest>.+)",
    plex_template="/media/Plex Library/{rest}",
    plex_pattern=r"/media/Plex Library/(?P<rest>.+)",
    stash_template="/data/library/{rest}",
    library_root=PLEX_ROOT,
    samples=("/data/library/a b/c.mp4",),
)


def provider_config(sim: StashSimulator, **values: Any) -> Settings:
    base: dict[str, Any] = {
        "stash_url": sim.url,
        "stash_api_key": Secret(KEY),
        "stash_backend": "stashapi",
        "path_rules": (RULE,),
        "provider_secret": Secret(SECRET),
        "provider_gap_schedule": "none",
        "content_rating": "XXX",
    }
    base.update(values)
    return Settings(**base)


def real_app(config: Settings, registry: Any) -> App:
    clock = SystemClock()
    return build_app(
        provider_settings(config),
        registry=registry,
        overrides={
            "clock": clock,
            "queue": MemoryQueue(clock),
            "state": MemoryStateStore(clock),
            "plex": MemoryPlex(section_root=PLEX_ROOT, clock=clock),
        },
    )


@pytest.fixture(scope="module")
def sim() -> Iterator[StashSimulator]:
    with StashSimulator(scenes=60, seed=11, library_root=STASH_ROOT, api_key=KEY) as simulator:
        yield simulator


@pytest.fixture
def served(sim: StashSimulator, registry: Any) -> Iterator[tuple[Served, App]]:
    config = provider_config(sim)
    app = real_app(config, registry)
    with Served(create_app(config, app=app, schedule=False)) as server:
        yield server, app
    app.close()


def plex_files(sim: StashSimulator) -> list[tuple[str, str]]:
    """(relative filename as Plex sends it, scene id) for every file of the seeded library."""
    return [(f.path.removeprefix(STASH_ROOT + "/"), scene.id) for scene in sim.library.scenes for f in scene.files]


def test_a_simulated_plex_scan_describes_every_file(sim: StashSimulator, served: tuple[Served, App]) -> None:
    server, _ = served
    root = f"{server.url}/{SECRET}"  # the URL registered in Plex
    session = requests.Session()
    provider = session.get(root, timeout=5)
    assert provider.status_code == 200
    assert provider.headers["Content-Type"] == "application/json"
    document = provider.json()["MediaProvider"]
    features = {f["type"]: f["key"] for f in document["Feature"]}
    identifier = document["identifier"]
    files = plex_files(sim)
    assert len(files) > 60  # multi-version scenes add files
    sim.requests.clear()
    described: dict[str, dict[str, Any]] = {}
    for filename, scene_id in files:
        title = posixpath.splitext(posixpath.basename(filename))[0]
        match = session.post(
            root + features["match"], json={"type": 1, "title": title, "filename": filename}, timeout=10
        )
        assert match.status_code == 200, (filename, match.text)
        results = match.json()["MediaContainer"]["Metadata"]
        assert [r["ratingKey"] for r in results] == [f"scene-{scene_id}"], filename
        assert results[0]["guid"] == f"{identifier}://movie/scene-{scene_id}"
        metadata = session.get(root + features["metadata"] + "/" + results[0]["ratingKey"], timeout=10)
        assert metadata.status_code == 200
        item = metadata.json()["MediaContainer"]["Metadata"][0]
        seeded = sim.scene(scene_id)
        assert item["title"] == sanitize_name(seeded.title)
        assert item["contentRating"] == "XXX"
        assert item["duration"] == round(seeded.files[0].duration * 1000)
        if seeded.date:
            assert item["originallyAvailableAt"] == seeded.date
        if seeded.studio_id:
            assert item["studio"] == sim.studio(seeded.studio_id).name
        assert sorted(g["tag"] for g in item["Genre"]) == sorted({sim.tag(t).name for t in seeded.tag_ids})
        assert sorted(r["tag"] for r in item["Role"]) == sorted({sim.performer(p).name for p in seeded.performer_ids})
        # Then the images endpoint, and Plex downloads what it lists from the provider itself,
        # without Stash credentials.
        images = session.get(root + features["metadata"] + "/" + results[0]["ratingKey"] + "/images", timeout=10)
        assert images.status_code == 200
        assert images.headers["Content-Type"] == "application/json"
        listed = images.json()["MediaContainer"]["Image"]
        assert listed == item["Image"]
        assert {i["type"] for i in listed} == {"coverPoster", "background"}
        for image in listed:
            poster = requests.get(image["url"], timeout=10)
            assert poster.status_code == 200
            assert poster.content == sim.screenshot_bytes(scene_id)
            assert poster.headers["Content-Type"].startswith("image/")
        for role in item["Role"]:
            performer = next(p for p in seeded.performer_ids if sim.performer(p).name == role["tag"])
            if "thumb" in role:
                photo = requests.get(role["thumb"], timeout=10)
                assert photo.status_code == 200
                assert photo.content == sim.performer_image_bytes(performer)
            else:
                assert not sim.performer(performer).has_image  # placeholders are never served
        described[filename] = item
    # Every file of the library ends up described: its own scene, with the required fields.
    assert sorted(described) == sorted(f for f, _ in files)
    for filename, scene_id in files:
        item = described[filename]
        assert item["ratingKey"] == f"scene-{scene_id}"
        assert item["title"]
        assert len(item["originallyAvailableAt"]) == 10
        assert item["Image"]
    # About one Stash request per file: the exact-path lookup. Metadata comes from the
    # scene the match read; images are fetched once each.
    graphql = [r for r in sim.requests.all() if r.path == "/graphql"]
    assert len(graphql) <= len(files) + 5


def test_gaps_and_health_over_http(sim: StashSimulator, served: tuple[Served, App]) -> None:
    server, _ = served
    root = f"{server.url}/{SECRET}"
    miss = requests.post(root + "/library/metadata/matches", json={"type": 1, "filename": "New/unknown.mp4"}, timeout=5)
    assert miss.json()["MediaContainer"]["Metadata"] == []
    gaps = requests.get(root + "/gaps", timeout=5).json()
    assert gaps["unmatched"]["items"][0]["stash_paths"] == [f"{STASH_ROOT}/New/unknown.mp4"]
    health = requests.get(server.url + "/health", timeout=5).json()
    assert health["status"] == "ok"
    assert health["stash"]["reachable"] is True
    assert health["stash"]["version"].startswith("v0.")
    report = requests.post(root + "/gaps/run", timeout=30).json()
    assert report["stash_scenes"] == len(sim.scenes)
    assert report["plex_without_stash"]["count"] == 1
    assert requests.get(server.url + "/library/metadata/scene-1", timeout=5).status_code == 401


def test_wildcard_characters_in_real_stash_paths(sim: StashSimulator, served: tuple[Served, App]) -> None:
    server, _ = served
    root = f"{server.url}/{SECRET}"
    exact = sim.add_scene(f"{STASH_ROOT}/odd/100%_sure [x].mp4", title="Percent")
    decoy = sim.add_scene(f"{STASH_ROOT}/odd/100ab_sure [x].mp4", title="Decoy")
    accent = sim.add_scene(f"{STASH_ROOT}/odd/Ça va — 東京.mp4", title="Accent")
    for filename, scene in [
        ("odd/100%_sure [x].mp4", exact),
        ("odd/100ab_sure [x].mp4", decoy),
        ("odd/Ça va — 東京.mp4", accent),
    ]:
        found = requests.post(root + "/library/metadata/matches", json={"type": 1, "filename": filename}, timeout=5)
        assert [m["ratingKey"] for m in found.json()["MediaContainer"]["Metadata"]] == [f"scene-{scene.id}"]


def test_stash_faults_become_http_errors_not_gaps(sim: StashSimulator, registry: Any) -> None:
    from stash2plex_backends.simulators import Fault

    config = provider_config(sim, provider_upstream_timeout=0.5, provider_cache_seconds=0, provider_index_seconds=0)
    app = real_app(config, registry)
    try:
        with Served(create_app(config, app=app, schedule=False)) as server:
            root = f"{server.url}/{SECRET}"
            body = {"type": 1, "filename": plex_files(sim)[0][0]}
            assert requests.post(root + "/library/metadata/matches", json=body, timeout=5).status_code == 200
            sim.faults.add(Fault(path="/graphql", method="POST", status=503))
            response = requests.post(root + "/library/metadata/matches", json=body, timeout=5)
            assert response.status_code == 503
            sim.faults.clear()
            sim.faults.add(Fault(path="/graphql", method="POST", action="delay", delay=2.0))
            began = time.monotonic()
            response = requests.post(root + "/library/metadata/matches", json=body, timeout=5)
            # Stash's own (capped) read timeout or the provider's deadline, whichever fires first.
            assert response.status_code in (503, 504)
            assert time.monotonic() - began < 1.5  # answered within the upstream timeout, not Stash's delay
            sim.faults.clear()
            assert requests.get(root + "/gaps", timeout=5).json()["unmatched"]["count"] == 0
    finally:
        sim.faults.clear()
        app.close()


def test_sixty_four_concurrent_plex_requests(sim: StashSimulator, served: tuple[Served, App]) -> None:
    server, _ = served
    root = f"{server.url}/{SECRET}"
    files = plex_files(sim)

    def scan(pair: tuple[str, str]) -> str:
        filename, _ = pair
        with requests.Session() as s:
            found = s.post(root + "/library/metadata/matches", json={"type": 1, "filename": filename}, timeout=30)
            key = found.json()["MediaContainer"]["Metadata"][0]["ratingKey"]
            assert s.get(f"{root}/library/metadata/{key}", timeout=30).status_code == 200
            return key

    with concurrent.futures.ThreadPoolExecutor(64) as pool:
        keys = list(pool.map(scan, files * 2))
    assert keys == [f"scene-{sid}" for _, sid in files * 2]


def test_images_and_collections_endpoints_over_http(sim: StashSimulator, served: tuple[Served, App]) -> None:
    server, _ = served
    root = f"{server.url}/{SECRET}"
    scene = next(s for s in sim.library.scenes if s.studio_id)
    item = requests.get(f"{root}/library/metadata/scene-{scene.id}", timeout=5).json()["MediaContainer"]["Metadata"][0]
    images = requests.get(f"{root}/library/metadata/scene-{scene.id}/images", timeout=5)
    assert images.status_code == 200
    assert images.headers["Content-Type"] == "application/json"
    entries = images.json()["MediaContainer"]["Image"]
    assert [e["type"] for e in entries] == ["coverPoster", "background"]
    assert requests.get(entries[0]["url"], timeout=5).content == sim.screenshot_bytes(scene.id)
    collection = item["Collection"][0]
    answer = requests.get(root + collection["key"], timeout=5)
    assert answer.status_code == 200
    assert answer.json()["MediaContainer"]["Metadata"][0]["title"] == collection["tag"]
    assert requests.get(f"{root}/library/metadata/scene-999999", timeout=5).status_code == 404
    bad = requests.post(
        root + "/library/metadata/matches", data=b"{oops", headers={"Content-Type": "application/json"}, timeout=5
    )
    assert bad.status_code == 400


def test_the_desired_state_is_the_sync_field_map(sim: StashSimulator, served: tuple[Served, App]) -> None:
    server, app = served
    scene = app.stash.get_scene("1")
    assert scene is not None
    desired = desired_state(scene, provider_config(sim))
    item = requests.get(f"{server.url}/{SECRET}/library/metadata/scene-1", timeout=5).json()["MediaContainer"][
        "Metadata"
    ][0]
    assert item["title"] == desired.metadata.title
    assert item.get("summary") == desired.metadata.summary
