"""A warm, in-memory snapshot of Stash's scenes: how scans are answered without a Stash call each.

During a library scan Plex fires match and metadata requests by the thousand, dozens at a
time. Asking Stash for each would make Stash the bottleneck (a GraphQL path lookup costs
milliseconds of Stash's time), so the provider keeps a snapshot: one paged pass over Stash
(``iter_scenes``) at start-up, then every few seconds only the scenes updated since the
newest ``updated_at`` it holds (one small request), and a full rebuild every
``provider_index_seconds`` (which also drops deleted scenes). Scenes are served from the
snapshot only while its last refresh is younger than ``provider_cache_seconds``, the same
bound as the short cache; otherwise, and for every path the snapshot does not know (a file
added since the last refresh), the provider asks Stash directly.

Repeated performers, tags, studios and groups are stored once, so memory stays a small
constant per scene. The snapshot is replaced or updated on the event loop only; the work
of reading Stash happens on one background thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import attrs

from stash2plex_core.models.stash import StashScene
from stash2plex_core.ports.stash import StashGateway
from stash2plex_core.services.reconcile import stash_time_after


log = logging.getLogger("stash2plex.provider")


def basename(path: str) -> str:
    return path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


class _Interner:
    """One shared instance per distinct performer, tag, studio and group."""

    def __init__(self) -> None:
        self._seen: dict[Any, Any] = {}

    def one(self, value: Any) -> Any:
        return self._seen.setdefault(value, value)

    def scene(self, scene: StashScene) -> StashScene:
        return attrs.evolve(
            scene,
            studio=None if scene.studio is None else self.one(scene.studio),
            performers=tuple(self.one(p) for p in scene.performers),
            tags=tuple(self.one(t) for t in scene.tags),
            groups=tuple(self.one(g) for g in scene.groups),
        )


@attrs.define
class Snapshot:
    """Scenes by id, ids by exact file path and by case-folded file name."""

    scenes: dict[str, StashScene] = attrs.field(factory=dict)
    by_path: dict[str, list[str]] = attrs.field(factory=dict)
    by_name: dict[str, list[str]] = attrs.field(factory=dict)
    #: The newest ``updated_at`` string held (Stash's own spelling): the next refresh starts there.
    watermark: str | None = None
    interner: _Interner = attrs.field(factory=_Interner)

    @staticmethod
    def _drop(index: dict[str, list[str]], key: str, scene_id: str) -> None:
        ids = index.get(key)
        if ids is not None and scene_id in ids:
            ids.remove(scene_id)
            if not ids:
                del index[key]

    def put(self, scene: StashScene) -> None:
        old = self.scenes.get(scene.id)
        if old is not None:
            for path in old.files:
                self._drop(self.by_path, path, scene.id)
                self._drop(self.by_name, basename(path).casefold(), scene.id)
        scene = self.interner.scene(scene)
        self.scenes[scene.id] = scene
        for path in scene.files:
            for index, key in ((self.by_path, path), (self.by_name, basename(path).casefold())):
                ids = index.setdefault(key, [])
                if scene.id not in ids:
                    ids.append(scene.id)
        if stash_time_after(scene.updated_at, self.watermark):
            self.watermark = scene.updated_at


class SceneIndex:
    """The snapshot, its refreshes, and the look-ups the provider makes on it.

    :param max_age: seconds between full rebuilds (``provider_index_seconds``); 0 disables
        the snapshot, and with it the file-name and title fallbacks.
    :param fresh_for: how old the last refresh may be for scenes to be served from the
        snapshot (``provider_cache_seconds``); 0 keeps the snapshot for fallbacks only.
    """

    def __init__(
        self,
        stash: StashGateway,
        max_age: float,
        fresh_for: float = 0.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stash = stash
        self.max_age = max_age
        self.fresh_for = fresh_for
        self._clock = clock
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="s2p-index")
        self._running: asyncio.Future[Any] | None = None
        self.snapshot: Snapshot | None = None
        self.built_at: float | None = None
        self.refreshed_at: float | None = None
        self.builds = 0
        self.refreshes = 0
        self.last_error: str | None = None

    @property
    def enabled(self) -> bool:
        return self.max_age > 0

    @property
    def size(self) -> int:
        return 0 if self.snapshot is None else len(self.snapshot.scenes)

    @property
    def fresh(self) -> bool:
        """Whether scenes may be served from the snapshot right now."""
        return (
            self.fresh_for > 0
            and self.snapshot is not None
            and self.refreshed_at is not None
            and self._clock() - self.refreshed_at <= self.fresh_for
        )

    # -- reading Stash (on the index thread)

    def _build(self) -> Snapshot:
        snapshot = Snapshot()
        for scene in self.stash.iter_scenes():
            snapshot.put(scene)
        return snapshot

    def _changes(self, since: str) -> list[StashScene]:
        return list(self.stash.iter_scenes(updated_since=since))

    # -- applying (on the event loop)

    def _built(self, began: float, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.built_at = self.refreshed_at = began
        self.builds += 1
        self.last_error = None
        log.info("indexed Stash's scenes", extra={"scenes": len(snapshot.scenes), "files": len(snapshot.by_path)})

    def _updated(self, began: float, scenes: Iterable[StashScene]) -> None:
        assert self.snapshot is not None
        for scene in scenes:
            self.snapshot.put(scene)
        self.refreshed_at = began
        self.refreshes += 1
        self.last_error = None

    def refresh(self) -> asyncio.Future[Any] | None:
        """Start what is due in the background: a full build, an update since the watermark, or nothing.

        Returns the running refresh (a new or an earlier one), or ``None`` when none runs.
        """
        if not self.enabled:
            return None
        if self._running is not None:
            return self._running
        now = self._clock()
        loop = asyncio.get_running_loop()
        snapshot = self.snapshot
        future: asyncio.Future[Any]
        if snapshot is None or self.built_at is None or now - self.built_at >= self.max_age:
            future = loop.run_in_executor(self._executor, self._build)
            apply: Callable[[Any], None] = lambda result: self._built(now, result)  # noqa: E731
        elif snapshot.watermark is not None and (
            self.refreshed_at is None or now - self.refreshed_at >= self.fresh_for / 2
        ):
            future = loop.run_in_executor(self._executor, self._changes, snapshot.watermark)
            apply = lambda result: self._updated(now, result)  # noqa: E731
        else:
            return None

        def done(finished: asyncio.Future[Any]) -> None:
            self._running = None
            if finished.cancelled():
                return
            error = finished.exception()
            if error is not None:
                self.last_error = f"{type(error).__name__}: {error}"
                log.warning("could not refresh the scene index: %s", self.last_error)
                return
            apply(finished.result())

        future.add_done_callback(done)
        self._running = future
        return future

    async def ready(self, timeout: float) -> bool:
        """Whether a snapshot is there to search (a stale one is used while a new one is built)."""
        running = self.refresh()
        if self.snapshot is not None:
            return True
        if running is None:
            return False
        try:
            await asyncio.wait_for(asyncio.shield(running), timeout)
        except Exception:  # noqa: BLE001 - timed out or failed (logged): no snapshot yet
            return False
        return self.snapshot is not None

    async def keep_fresh(self) -> None:
        """Refresh on time until cancelled (run as a task while the provider is up)."""
        pause = max(0.5, min(self.fresh_for / 2 if self.fresh_for > 0 else self.max_age, self.max_age) / 2)
        while True:
            running = self.refresh()
            if running is not None:
                try:
                    await asyncio.shield(running)
                except Exception:  # noqa: BLE001 - logged by the callback; try again later
                    await asyncio.sleep(min(30.0, max(pause, 1.0)))
            await asyncio.sleep(pause)

    # -- look-ups (event loop)

    def scene(self, scene_id: str) -> StashScene | None:
        return None if self.snapshot is None else self.snapshot.scenes.get(scene_id)

    def at_path(self, path: str) -> list[StashScene]:
        """Scenes with exactly ``path`` among their files, per the snapshot."""
        if self.snapshot is None:
            return []
        return [self.snapshot.scenes[i] for i in self.snapshot.by_path.get(path, ())]

    def by_filename(self, filename: str) -> list[str]:
        if self.snapshot is None:
            return []
        return list(self.snapshot.by_name.get(basename(filename).casefold(), ()))

    def by_title(self, title: str, limit: int = 20) -> list[tuple[str, bool]]:
        """``(scene id, exact)`` for scenes whose title equals, then contains, ``title`` (any case)."""
        wanted = title.casefold().strip()
        if not wanted or self.snapshot is None:
            return []
        exact: list[str] = []
        partial: list[str] = []
        for scene in self.snapshot.scenes.values():
            if scene.title:
                have = scene.title.casefold()
                if have == wanted:
                    exact.append(scene.id)
                elif wanted in have:
                    partial.append(scene.id)
        return [(sid, True) for sid in exact[:limit]] + [(sid, False) for sid in partial[: max(0, limit - len(exact))]]

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


__all__ = ["SceneIndex", "Snapshot", "basename"]
