"""A small world over the in-memory fakes for reconciliation tests.

Stash files live under ``/data/library`` and Plex sees them under ``/media/library``
(one path rule), so every test exercises path mapping.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

import attrs

from stash2plex_backends.memory import ManualClock
from stash2plex_backends.memory import MemoryPlex
from stash2plex_backends.memory import MemoryQueue
from stash2plex_backends.memory import MemoryStash
from stash2plex_backends.memory import MemoryStateStore
from stash2plex_core.models.health import SyncRecord
from stash2plex_core.models.matching import PathRule
from stash2plex_core.models.plex import PlexMetadata
from stash2plex_core.models.stash import StashPerformer
from stash2plex_core.models.stash import StashScene
from stash2plex_core.models.stash import StashStudio
from stash2plex_core.models.stash import StashTag
from stash2plex_core.serde import from_document
from stash2plex_core.services.reconcile import Reconciler
from stash2plex_core.settings import Settings
from tests.reconcile._worker import drain


STASH_ROOT = "/data/library"
PLEX_ROOT = "/media/library"
RULE = PathRule(
    name="library",
    stash_pattern=r"/data/library/(?P<rest>.+)",
    plex_template="/media/library/{rest}",
    plex_pattern=r"/media/library/(?P<rest>.+)",
    stash_template="/data/library/{rest}",
    samples=("/data/library/Studio/file.mp4",),
)


def stamp(n: int) -> str:
    """Stash's own ``updated_at`` text, ``n`` minutes after a fixed origin."""
    return f"2026-01-01T{n // 60:02d}:{n % 60:02d}:00+01:00"


TAGS = {
    name: StashTag(id=str(i), name=name) for i, name in enumerate(["Outdoor", "Drama", "Comédie", "Night_Shoot"], 1)
}
PERFORMERS = {
    name: StashPerformer(id=str(i), name=name, image_url=None)
    for i, name in enumerate(["Anaïs Müller", "Zoë Ødegaard", "Иван Smith"], 1)
}
STUDIO = StashStudio(id="1", name="Café Noir")


@attrs.define
class World:
    settings: Settings
    clock: ManualClock = attrs.field(factory=ManualClock)
    plex: MemoryPlex = attrs.field(factory=lambda: MemoryPlex(section_root=PLEX_ROOT))
    stash: MemoryStash = attrs.field(factory=MemoryStash)
    state: MemoryStateStore = attrs.field(init=False)
    queue: MemoryQueue = attrs.field(init=False)
    _ids: Any = attrs.field(factory=lambda: itertools.count(1))
    _minute: Any = attrs.field(factory=lambda: itertools.count(1))

    def __attrs_post_init__(self) -> None:
        self.state = MemoryStateStore(self.clock)
        self.queue = MemoryQueue(self.clock)

    # -- seeding

    def next_stamp(self) -> str:
        return stamp(next(self._minute))

    def scene(
        self,
        *files: str,
        title: str = "A scene",
        tags: Iterable[str] = ("Outdoor", "Drama"),
        performers: Iterable[str] = ("Anaïs Müller",),
        in_plex: bool = True,
        scene_id: str | None = None,
    ) -> StashScene:
        """A Stash scene (paths relative to the Stash root) and, unless told otherwise, its Plex item."""
        sid = scene_id or str(next(self._ids))
        scene = StashScene(
            id=sid,
            title=title,
            details=f"Details of {title}",
            date="2024-05-06",
            rating100=80,
            studio=STUDIO,
            tags=tuple(TAGS[t] for t in tags),
            performers=tuple(PERFORMERS[p] for p in performers),
            files=tuple(f"{STASH_ROOT}/{f}" for f in files),
            updated_at=self.next_stamp(),
        )
        self.stash.put_scene(scene)
        if in_plex:
            self.plex.add_item([f"{PLEX_ROOT}/{f}" for f in files], PlexMetadata(title=files[0].rsplit("/", 1)[-1]))
        return scene

    def update(self, scene_id: str, *, touch: bool = True, **changes: Any) -> StashScene:
        """Change a scene in Stash; ``touch=False`` leaves ``updated_at`` (tag/performer renames)."""
        scene = self.stash.get_scene(scene_id)
        assert scene is not None
        if touch:
            changes["updated_at"] = self.next_stamp()
        scene = attrs.evolve(scene, **changes)
        self.stash.put_scene(scene)
        return scene

    # -- running

    def reconciler(self, **overrides: Any) -> Reconciler:
        settings = attrs.evolve(self.settings, **overrides) if overrides else self.settings
        return Reconciler(
            settings=settings,
            plex=self.plex,
            stash=self.stash,
            state=self.state,
            queue=self.queue,
            clock=self.clock,
        )

    def record(self, scene_id: str) -> SyncRecord | None:
        document = self.state.get("sync", scene_id)
        return None if document is None else from_document(SyncRecord, document)

    def queued(self) -> set[str]:
        return {job.scene_id for job in self.queue.pending(10_000)}

    def drain(self) -> int:
        """Work the queue the way the worker does: hydrate, match, plan, apply, record."""
        return drain(
            settings=self.settings,
            stash=self.stash,
            plex=self.plex,
            state=self.state,
            queue=self.queue,
            clock=self.clock,
        )

    def sync_everything(self) -> None:
        self.queue.enqueue_many([s.id for s in self.stash.iter_scenes()])
        self.drain()


def make_world(**settings: Any) -> World:
    return World(settings=Settings(path_rules=(RULE,), **settings))


__all__ = ["PERFORMERS", "PLEX_ROOT", "STASH_ROOT", "TAGS", "World", "make_world", "stamp"]
