"""Fixtures for the metadata provider: a seeded in-memory Stash behind the real ASGI stack.

Path layout used throughout: Stash sees ``/stash/media/...``, Plex sees
``/plex/Movies/...`` and the Plex library root is ``/plex/Movies``; Plex sends filenames
relative to that root, e.g. ``Studio A/scene 1.mp4``.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any

import pytest


with warnings.catch_warnings():
    # Starlette >= 1.x prefers httpx2 and warns once when its TestClient falls back to httpx.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from stash2plex_backends.memory import MemoryPlex
from stash2plex_backends.memory import MemoryQueue
from stash2plex_backends.memory import MemoryStash
from stash2plex_backends.memory import MemoryStateStore
from stash2plex_core.app import App
from stash2plex_core.app import build_app
from stash2plex_core.clocks import SystemClock
from stash2plex_core.models.matching import PathRule
from stash2plex_core.models.stash import StashGroup
from stash2plex_core.models.stash import StashPerformer
from stash2plex_core.models.stash import StashScene
from stash2plex_core.models.stash import StashStudio
from stash2plex_core.models.stash import StashTag
from stash2plex_core.plugin import BackendRegistry
from stash2plex_core.settings import Settings
from stash2plex_integrations.plex_provider.web import create_app


STASH_ROOT = "/stash/media"
PLEX_ROOT = "/plex/Movies"
RULE = PathRule(
    name="media",
    stash_pattern=r"/stash/media/(?P<rest>.+)",
    plex_template="/plex/Movies/{rest}",
    plex_pattern=r"/plex/Movies/(?P<rest>.+)",
    stash_template="/stash/media/{rest}",
    library_root=PLEX_ROOT,
    samples=("/stash/media/a/b.mp4",),
)
SECRET = "s3cr3t-canary-9f1c"
JPEG = b"\xff\xd8\xff\xe0" + b"stash-jpeg" * 20
PNG = b"\x89PNG\r\n\x1a\n" + b"stash-png" * 20


def settings(**values: Any) -> Settings:
    base: dict[str, Any] = {
        "path_rules": (RULE,),
        "content_rating": "XXX",
        "provider_gap_schedule": "none",
        "sync_group_collections": True,
    }
    base.update(values)
    return Settings(**base)


def full_scene(stash: MemoryStash) -> StashScene:
    """Scene 1: every field of the field map filled, photos for one of two performers."""
    stash.images["http://stash.local/scene/1/screenshot?t=1"] = JPEG
    stash.images["http://stash.local/performer/7/image?t=2"] = PNG
    scene = StashScene(
        id="1",
        title="Ünïcode Title: 1",
        code="ABC-123",
        details="First line.\nSecond line.",
        director="Dee Rector",
        date="2023-04-05",
        rating100=85,
        studio=StashStudio(id="3", name="Studio A"),
        performers=(
            StashPerformer(id="7", name="Alice", image_url="http://stash.local/performer/7/image?t=2"),
            StashPerformer(id="8", name="Bob", image_url="http://stash.local/performer/8/image?t=3&default=true"),
        ),
        tags=(StashTag(id="1", name="Tag One"), StashTag(id="2", name="Tag Two")),
        groups=(StashGroup(id="4", name="Group Ω"),),
        files=(f"{STASH_ROOT}/Studio A/scene 1.mp4",),
        screenshot_url="http://stash.local/scene/1/screenshot?t=1",
        updated_at="2026-01-01T00:00:00Z",
        duration=1234.5,
    )
    stash.put_scene(scene)
    return scene


def seeded_stash() -> MemoryStash:
    stash = MemoryStash()
    full_scene(stash)
    stash.put_scene(StashScene(id="2", title="Plain", files=(f"{STASH_ROOT}/plain/ä ö ü — 日本.mkv",)))
    stash.put_scene(StashScene(id="3", title="Wild", files=(f"{STASH_ROOT}/x/100%_real_file.mp4",)))
    # A decoy that Stash's LIKE filter would confuse with scene 3 ("_" and "%" are wildcards).
    stash.put_scene(StashScene(id="4", title="Decoy", files=(f"{STASH_ROOT}/x/100XXreal-file.mp4",)))
    # Outside every rule: only reachable by file name.
    stash.put_scene(StashScene(id="5", title="Elsewhere", files=("/other/disk/unique name.mp4",)))
    # Two scenes with the same file name in different folders.
    stash.put_scene(StashScene(id="6", title="Twin A", files=("/other/a/twin.mp4",)))
    stash.put_scene(StashScene(id="9", title="Twin B", files=("/other/b/twin.mp4",)))
    return stash


def make_app(config: Settings, stash: MemoryStash, registry: BackendRegistry) -> App:
    clock = SystemClock()
    return build_app(
        config,
        registry=registry,
        overrides={
            "stash": stash,
            "clock": clock,
            "queue": MemoryQueue(clock),
            "state": MemoryStateStore(clock),
            "plex": MemoryPlex(section_root=PLEX_ROOT, clock=clock),
        },
    )


class Provider:
    """A provider under test: its client, its Stash, its app and settings."""

    def __init__(self, client: TestClient, stash: MemoryStash, app: App, config: Settings) -> None:
        self.client = client
        self.stash = stash
        self.app = app
        self.settings = config

    @property
    def service(self) -> Any:
        return self.client.app.state.service  # type: ignore[attr-defined]

    def reindex(self) -> None:
        """Rebuild the provider's scene snapshot now (as its hourly full rebuild would)."""
        index = self.service.index

        async def rebuild() -> None:
            if index._running is not None:
                await index._running  # a refresh that began before the caller's changes
            before = index.builds
            index.built_at = None
            while index.builds == before:
                running = index.refresh()
                if running is not None:
                    await running

        self.client.portal.call(rebuild)

    def refresh(self) -> None:
        """Apply Stash's changes since the snapshot's watermark now (as the periodic refresh would)."""
        index = self.service.index

        async def update() -> None:
            if index._running is not None:
                await index._running
            before = index.refreshes
            while index.refreshes == before:
                if index._running is not None:
                    await index._running
                index.refreshed_at = -1e9
                running = index.refresh()
                if running is not None:
                    await running

        self.client.portal.call(update)

    def match(self, **hints: Any) -> Any:
        response = self.client.post("/library/metadata/matches", json={"type": 1, **hints})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        return response.json()["MediaContainer"]


@pytest.fixture
def make_provider(registry: BackendRegistry) -> Iterator[Any]:
    opened: list[TestClient] = []

    def make(stash: MemoryStash | None = None, **values: Any) -> Provider:
        config = settings(**values)
        stash = stash if stash is not None else seeded_stash()
        app = make_app(config, stash, registry)
        client = TestClient(create_app(config, app=app, schedule=False), base_url="http://plex-sees-me:9090")
        client.__enter__()
        opened.append(client)
        return Provider(client, stash, app, config)

    yield make
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture
def provider(make_provider: Any) -> Provider:
    return make_provider()


class Served:
    """A real uvicorn server for an ASGI app on 127.0.0.1 (an ephemeral port), in a thread."""

    def __init__(self, application: Any) -> None:
        import uvicorn

        config = uvicorn.Config(
            application, host="127.0.0.1", port=0, log_config=None, access_log=False, lifespan="on", log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="provider-under-test", daemon=True)
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the provider did not start")
            time.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
