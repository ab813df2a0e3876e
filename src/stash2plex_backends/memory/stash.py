"""In-memory StashGateway: scenes and images in dicts."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from collections.abc import Iterator
from typing import ClassVar
from typing import Self

from stash2plex_core.errors import NotFoundError
from stash2plex_core.models.plex import ServerInfo
from stash2plex_core.models.stash import StashScene
from stash2plex_core.ports.clock import Clock
from stash2plex_core.ports.stash import StashGateway
from stash2plex_core.ports.stash import check_path_match
from stash2plex_core.ports.stash import path_key
from stash2plex_core.settings import Settings


class MemoryStash(StashGateway):
    """Scenes by id; paths compared loosely, a superset like Stash's filter (the port narrows it)."""

    id: ClassVar[str] = "memory"
    priority: ClassVar[int] = 0

    def __init__(
        self, scenes: Iterable[StashScene] = (), images: dict[str, bytes] | None = None, *, path_match: str = "exact"
    ) -> None:
        self.path_match = check_path_match(path_match)
        self._scenes: dict[str, StashScene] = {s.id: s for s in scenes}
        self.images: dict[str, bytes] = dict(images or {})
        self._lock = threading.RLock()
        self.calls: dict[str, int] = {}

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock) -> Self:
        return cls(path_match=settings.stash_path_match)

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    def put_scene(self, scene: StashScene) -> None:
        with self._lock:
            self._scenes[scene.id] = scene

    def delete_scene(self, scene_id: str) -> None:
        with self._lock:
            self._scenes.pop(scene_id, None)

    def ping(self) -> ServerInfo:
        self._count("ping")
        return ServerInfo(name="memory", version="0")

    def _get_scene(self, scene_id: str) -> StashScene | None:
        self._count("get_scene")
        with self._lock:
            return self._scenes.get(scene_id)

    def _get_scenes(self, scene_ids: list[str]) -> dict[str, StashScene]:
        self._count("get_scenes")
        with self._lock:
            return {s: self._scenes[s] for s in scene_ids if s in self._scenes}

    def _find_by_path(self, path: str) -> list[StashScene]:
        self._count("find_by_path")
        wanted = path_key(path, "normalised")
        with self._lock:
            return [s for s in self._scenes.values() if any(path_key(f, "normalised") == wanted for f in s.files)]

    def iter_scenes(self, *, updated_since: str | None = None) -> Iterator[StashScene]:
        self._count("iter_scenes")
        with self._lock:
            scenes = sorted(self._scenes.values(), key=lambda s: (len(s.id), s.id))
        return iter(
            [s for s in scenes if updated_since is None or (s.updated_at is not None and s.updated_at >= updated_since)]
        )

    def fetch_image(self, url: str) -> bytes:
        self._count("fetch_image")
        try:
            return self.images[url]
        except KeyError:
            raise NotFoundError(f"Stash serves no image at {url}") from None


__all__ = ["MemoryStash"]
