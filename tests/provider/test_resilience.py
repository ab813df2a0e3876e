"""Fast answers under load: the scene snapshot, bounded Stash concurrency, timeouts, health."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx

from stash2plex_backends.memory import MemoryStash
from stash2plex_core.errors import BackendUnavailableError
from stash2plex_core.models.stash import StashPerformer
from stash2plex_core.models.stash import StashScene
from tests.provider.conftest import Provider
from tests.provider.conftest import seeded_stash


def title_of(provider: Provider, key: str) -> str:
    return provider.client.get(f"/library/metadata/{key}").json()["MediaContainer"]["Metadata"][0]["title"]


def test_a_scene_added_to_stash_matches_at_once(provider: Provider) -> None:
    provider.stash.put_scene(StashScene(id="60", title="Fresh", files=("/stash/media/New/fresh.mp4",)))
    found = provider.match(filename="New/fresh.mp4")["Metadata"]
    assert [m["ratingKey"] for m in found] == ["scene-60"]
    assert provider.stash.calls["find_by_path"] == 1  # the snapshot did not know the path: Stash was asked


def test_edits_reach_plex_within_the_refresh(provider: Provider) -> None:
    assert title_of(provider, "scene-2") == "Plain"
    scene = provider.stash.get_scene("2")
    provider.stash.put_scene(StashScene(id="2", title="Renamed", files=scene.files, updated_at="2026-02-01T00:00:00Z"))
    provider.refresh()  # what the provider does on its own every few seconds
    assert title_of(provider, "scene-2") == "Renamed"
    assert provider.stash.calls["iter_scenes"] == 2  # the start-up pass and one "updated since" query


def test_a_moved_file_is_found_by_asking_stash(provider: Provider) -> None:
    provider.stash.put_scene(StashScene(id="3", title="Wild", files=("/stash/media/moved/there.mp4",)))
    assert [m["ratingKey"] for m in provider.match(filename="moved/there.mp4")["Metadata"]] == ["scene-3"]


def test_deleted_scenes_leave_with_the_full_rebuild(provider: Provider) -> None:
    assert provider.client.get("/library/metadata/scene-4").status_code == 200
    provider.stash.delete_scene("4")
    provider.reindex()
    assert provider.client.get("/library/metadata/scene-4").status_code == 404


def test_a_stale_snapshot_is_not_served(make_provider) -> None:
    provider = make_provider(provider_cache_seconds=0.2)
    assert title_of(provider, "scene-1") == "Ünïcode Title: 1"
    provider.service.index.refreshed_at = -1e9  # refreshes failed for a while
    assert not provider.service.index.fresh
    assert title_of(provider, "scene-1") == "Ünïcode Title: 1"
    assert provider.stash.calls["get_scene"] == 1


def test_repeated_people_are_stored_once() -> None:
    from stash2plex_integrations.plex_provider.index import Snapshot

    snapshot = Snapshot()
    for i in range(3):
        snapshot.put(StashScene(id=str(i), performers=(StashPerformer(id="7", name="Alice"),), files=(f"/x/{i}.mp4",)))
    people = [s.performers[0] for s in snapshot.scenes.values()]
    assert all(p is people[0] for p in people)
    snapshot.put(StashScene(id="0", files=("/y/0.mp4",)))
    assert snapshot.by_path == {"/x/1.mp4": ["1"], "/x/2.mp4": ["2"], "/y/0.mp4": ["0"]}
    assert snapshot.by_name["0.mp4"] == ["0"]


class SlowStash(MemoryStash):
    """A Stash that takes ``delay`` per call and records how many calls overlap."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        for scene in seeded_stash().iter_scenes():
            self.put_scene(scene)
        self.delay = delay
        self.active = 0
        self.peak = 0
        self._gate = threading.Lock()

    def _enter(self) -> None:
        with self._gate:
            self.active += 1
            self.peak = max(self.peak, self.active)
        time.sleep(self.delay)
        with self._gate:
            self.active -= 1

    def _find_by_path(self, path: str):
        self._enter()
        return super()._find_by_path(path)

    def _get_scene(self, scene_id: str):
        self._enter()
        return super()._get_scene(scene_id)


def _concurrently(provider: Provider, bodies: list[dict]) -> list[httpx.Response]:
    app = provider.client.app

    async def fire() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://plex") as client:
            return await asyncio.gather(*(client.post("/library/metadata/matches", json=b) for b in bodies))

    return provider.client.portal.call(fire)


def test_stash_concurrency_is_bounded(make_provider) -> None:
    stash = SlowStash(delay=0.02)
    provider = make_provider(stash, provider_stash_concurrency=3, provider_index_seconds=0)
    bodies = [{"type": 1, "filename": f"many/file {i}.mp4"} for i in range(24)]
    responses = _concurrently(provider, bodies)
    assert all(r.status_code == 200 for r in responses)
    assert stash.peak == 3


def test_identical_concurrent_requests_share_one_stash_call(make_provider) -> None:
    stash = SlowStash(delay=0.05)
    provider = make_provider(stash, provider_index_seconds=0)
    responses = _concurrently(provider, [{"type": 1, "filename": "Studio A/scene 1.mp4"}] * 64)
    assert {r.json()["MediaContainer"]["Metadata"][0]["ratingKey"] for r in responses} == {"scene-1"}
    assert stash.calls["find_by_path"] == 1


def test_a_slow_stash_is_given_up_well_inside_plex_timeout(make_provider) -> None:
    stash = SlowStash(delay=1.0)
    provider = make_provider(stash, provider_upstream_timeout=0.2, provider_index_seconds=0)
    began = time.monotonic()
    response = provider.client.post("/library/metadata/matches", json={"type": 1, "filename": "Studio A/scene 1.mp4"})
    assert response.status_code == 504
    assert "did not answer within 0.2 s" in response.json()["error"]
    assert time.monotonic() - began < 0.8
    assert provider.client.get("/library/metadata/scene-1").status_code == 504
    assert provider.client.get("/gaps").json()["unmatched"]["count"] == 0  # a timeout is no gap


class DownStash(MemoryStash):
    def ping(self):
        raise BackendUnavailableError("connection refused")


def test_health_reports_stash_reachability(make_provider) -> None:
    provider = make_provider()
    health = provider.client.get("/health").json()
    assert health["status"] == "ok"
    assert health["stash"]["reachable"] is True
    assert health["identifier"] == "tv.plex.agents.custom.stash2plex"
    assert health["path_rules"] == 1
    assert health["library_roots"] == 1
    assert health["index"]["scenes"] == 7
    assert {"uptime_seconds", "version", "counters", "unmatched_files", "last_comparison"} <= set(health)
    down = make_provider(DownStash())
    response = down.client.get("/health")
    assert response.status_code == 200  # the provider itself is alive
    assert response.json()["status"] == "degraded"
    assert response.json()["stash"] == {"reachable": False, "error": "BackendUnavailableError"}


def test_keep_alive_requests_do_not_stall(make_provider) -> None:
    """Goal G19: no ~40 ms Nagle/delayed-ACK stall per response on a kept-alive connection."""
    import requests

    from stash2plex_integrations.plex_provider.web import create_app
    from tests.provider.conftest import Served
    from tests.provider.conftest import make_app
    from tests.provider.conftest import settings

    provider = make_provider()
    config = settings()
    with (
        Served(
            create_app(config, app=make_app(config, seeded_stash(), provider.app.registry), schedule=False)
        ) as server,
        requests.Session() as session,
    ):
        url = f"{server.url}/library/metadata/scene-1"
        for _ in range(5):
            assert session.get(url, timeout=5).status_code == 200
        began = time.perf_counter()
        for _ in range(50):
            session.get(url, timeout=5)
        per_request = (time.perf_counter() - began) / 50
    assert per_request < 0.02, f"{per_request * 1000:.1f} ms per request on a kept-alive connection"
