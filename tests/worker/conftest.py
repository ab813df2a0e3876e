"""A small world for worker tests: in-memory backends, a manual clock and a Plex that can fail.

``FlakyPlex`` is a fake (a subclass of the in-memory gateway) that raises core errors the
way a real gateway translates them; nothing here mocks plexapi or requests.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from typing import Any

import pytest

from stash2plex_backends.memory import MemoryPlex
from stash2plex_backends.memory import MemoryQueue
from stash2plex_backends.memory import MemoryStash
from stash2plex_backends.memory import MemoryStateStore
from stash2plex_core.clocks import ManualClock
from stash2plex_core.errors import AuthenticationError
from stash2plex_core.errors import BackendUnavailableError
from stash2plex_core.errors import Stash2PlexError
from stash2plex_core.errors import TransientError
from stash2plex_core.models.plex import LibrarySection
from stash2plex_core.models.plex import PlexEdit
from stash2plex_core.models.plex import PlexItemRef
from stash2plex_core.models.plex import PlexItemState
from stash2plex_core.models.plex import ServerInfo
from stash2plex_core.models.stash import StashScene
from stash2plex_core.models.stash import StashTag
from stash2plex_core.services.worker import JobOutcome
from stash2plex_core.services.worker import SyncWorker
from stash2plex_core.settings import Settings


ROOT = "/media"


class FlakyPlex(MemoryPlex):
    """The in-memory Plex with switchable faults: outage windows, random 5xx/429, 401, one-off errors."""

    def __init__(self, clock: ManualClock, seed: int = 0) -> None:
        super().__init__(section_root=ROOT, clock=clock)
        self.clock = clock
        self.rng = random.Random(seed)
        self.down_from: dt.datetime | None = None
        self.down_until: dt.datetime | None = None
        self.refuse = False
        self.error_rate = 0.0
        self.throttle_rate = 0.0
        self.retry_after = 2.0
        self.unauthorized = False
        self.fail_next: list[Stash2PlexError] = []
        self.requests = 0
        self.failed_while_down = 0
        self.throttled: list[dt.datetime] = []
        self.scans: list[dt.datetime] = []
        #: Seconds every request takes on the manual clock (so jobs take time and rates exist).
        self.latency = 0.0

    def down(self, seconds: float) -> None:
        self.down_from = self.clock.now()
        self.down_until = self.down_from + dt.timedelta(seconds=seconds)

    def is_down(self) -> bool:
        now = self.clock.now()
        return self.down_from is not None and self.down_until is not None and self.down_from <= now < self.down_until

    def _gate(self, name: str) -> None:
        self.requests += 1
        if self.latency:
            self.clock.advance(self.latency)
        if self.unauthorized:
            raise AuthenticationError("Plex answered 401 Unauthorized")
        if self.is_down():
            self.failed_while_down += 1
            if self.refuse:
                raise BackendUnavailableError(f"cannot reach Plex for {name}") from ConnectionRefusedError(
                    111, "Connection refused"
                )
            raise BackendUnavailableError(f"Plex answered 503 to {name}")
        if self.fail_next and name in ("get_items", "apply"):  # one-off faults hit the sync itself
            raise self.fail_next.pop(0)
        if name == "ping":
            return
        roll = self.rng.random()
        if roll < self.error_rate:
            raise BackendUnavailableError(f"Plex answered 503 to {name}")
        if roll < self.error_rate + self.throttle_rate:
            self.throttled.append(self.clock.now())
            raise TransientError(f"Plex answered 429 to {name}", retry_after=self.retry_after)

    def ping(self) -> ServerInfo:
        self._gate("ping")
        return super().ping()

    def sections(self) -> list[LibrarySection]:
        self._gate("sections")
        return super().sections()

    def _resolve_path(self, path: str) -> list[PlexItemRef]:
        self._gate("resolve_path")
        return super()._resolve_path(path)

    def _find_by_filename(self, filename: str) -> list[PlexItemRef]:
        self._gate("find_by_filename")
        return super()._find_by_filename(filename)

    def iter_items(self, section_key: str | None = None, *, updated_since: int | None = None) -> Iterator[PlexItemRef]:
        self._gate("iter_items")
        return super().iter_items(section_key, updated_since=updated_since)

    def _get_items(self, rating_keys: list[str]) -> list[PlexItemState]:
        self._gate("get_items")
        return super()._get_items(rating_keys)

    def _apply(self, rating_key: str, edit: PlexEdit) -> None:
        self._gate("apply")
        super()._apply(rating_key, edit)

    def _scan(self, path: str) -> None:
        self._gate("scan")
        self.scans.append(self.clock.now())
        super()._scan(path)


class World:
    def __init__(self, **settings: Any) -> None:
        self.clock = ManualClock()
        self.queue = MemoryQueue(self.clock)
        self.state = MemoryStateStore(self.clock)
        self.plex = FlakyPlex(self.clock)
        self.stash = MemoryStash()
        self.settings = Settings(**{"plex_concurrency": 1, **settings})
        self.keys: dict[str, str] = {}

    @staticmethod
    def path(scene_id: str) -> str:
        return f"{ROOT}/movies/scene {scene_id}.mp4"

    def scene(
        self,
        scene_id: str,
        *,
        title: str | None = None,
        tags: tuple[str, ...] = ("tag a", "tag b"),
        in_plex: bool = True,
        version: int = 1,
        path: str | None = None,
    ) -> StashScene:
        url = f"http://stash.local/scene/{scene_id}/screenshot?t={version}"
        self.stash.images[url] = f"screenshot {scene_id} v{version}".encode()
        scene = StashScene(
            id=scene_id,
            title=title or f"Scene {scene_id}",
            details=f"About scene {scene_id}",
            tags=tuple(StashTag(id=t, name=t) for t in tags),
            files=(path or self.path(scene_id),),
            screenshot_url=url,
            updated_at=f"2026-01-01T00:00:{version:02d}Z",
        )
        self.stash.put_scene(scene)
        if in_plex and scene_id not in self.keys:
            self.keys[scene_id] = self.plex.add_item(scene.files).rating_key
        return scene

    def scenes(self, count: int, **kwargs: Any) -> list[str]:
        ids = [str(n) for n in range(1, count + 1)]
        for scene_id in ids:
            self.scene(scene_id, **kwargs)
        self.queue.enqueue_many(ids)
        return ids

    def worker(self, seed: int = 0, **kwargs: Any) -> SyncWorker:
        return SyncWorker(
            queue=self.queue,
            state=self.state,
            plex=self.plex,
            stash=self.stash,
            clock=self.clock,
            settings=self.settings,
            rng=random.Random(seed),
            **kwargs,
        )

    def item(self, scene_id: str) -> PlexItemState:
        return self.plex._items[self.keys[scene_id]]

    def drive(self, worker: SyncWorker, *, limit: int = 200_000) -> list[tuple[dt.datetime, JobOutcome]]:
        """run_once until the queue is empty, advancing the clock while nothing is due."""
        seen: list[tuple[dt.datetime, JobOutcome]] = []
        worker.refresh_index()
        for _ in range(limit):
            outcome = worker.run_once()
            if outcome is not None:
                seen.append((self.clock.now(), outcome))
                continue
            if worker.stopped():
                break
            wait = worker._idle_wait(600.0)
            if wait is None:
                break
            self.clock.advance(max(wait, 0.001))
        else:
            raise AssertionError("the queue never emptied")
        worker.flush()
        return seen


@pytest.fixture
def world() -> World:
    return World()
