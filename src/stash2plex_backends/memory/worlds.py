"""Worlds over the in-memory gateways, for the contract suites and for users' own tests."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence

from stash2plex_backends.memory.plex import MemoryPlex
from stash2plex_backends.memory.stash import MemoryStash
from stash2plex_core.models.plex import PlexMetadata
from stash2plex_core.models.stash import StashPerformer
from stash2plex_core.models.stash import StashScene
from stash2plex_core.models.stash import StashStudio
from stash2plex_core.models.stash import StashTag
from stash2plex_core.testing.worlds import SceneSpec


ORIGIN = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


class MemoryPlexWorld:
    def __init__(self, root: str = "/media/library") -> None:
        self.root = root
        self.gateway = MemoryPlex(section_root=root)

    def add_item(self, paths: Sequence[str], metadata: PlexMetadata | None = None) -> str:
        return self.gateway.add_item(paths, metadata).rating_key

    def stage(self, path: str) -> None:
        self.gateway.stage(path)


class MemoryStashWorld:
    def __init__(self, root: str = "/data/library") -> None:
        self.root = root
        self.gateway = MemoryStash()
        self._ids = itertools.count(1)

    def timestamp(self, offset_seconds: int) -> str:
        return (ORIGIN + dt.timedelta(seconds=offset_seconds)).isoformat().replace("+00:00", "Z")

    def image_bytes(self, url: str) -> bytes:
        return self.gateway.images[url]

    def add_scene(self, spec: SceneSpec) -> str:
        scene_id = str(next(self._ids))
        performers = []
        for name in spec.performers:
            url = f"memory://performer/{name}/image"
            self.gateway.images[url] = f"photo of {name}".encode()
            performers.append(StashPerformer(id=name, name=name, image_url=url))
        screenshot = None
        if spec.with_screenshot:
            screenshot = f"memory://scene/{scene_id}/screenshot"
            self.gateway.images[screenshot] = f"screenshot {scene_id}".encode()
        self.gateway.put_scene(
            StashScene(
                id=scene_id,
                title=spec.title,
                details=spec.details,
                date=spec.date,
                rating100=spec.rating100,
                studio=StashStudio(id=spec.studio, name=spec.studio) if spec.studio else None,
                performers=tuple(performers),
                tags=tuple(StashTag(id=t, name=t) for t in spec.tags),
                files=spec.files,
                screenshot_url=screenshot,
                updated_at=spec.updated_at or self.timestamp(int(scene_id)),
            )
        )
        return scene_id


__all__ = ["MemoryPlexWorld", "MemoryStashWorld"]
