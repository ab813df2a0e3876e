"""In-memory PlexGateway: a Plex library in dicts, with Plex's edit semantics."""

from __future__ import annotations

import hashlib
import itertools
import posixpath
import threading
from collections.abc import Iterable
from collections.abc import Iterator
from typing import Any
from typing import ClassVar
from typing import Self

import attrs

from stash2plex_core.errors import NotFoundError
from stash2plex_core.models.plex import SCALAR_ATTRS
from stash2plex_core.models.plex import TAG_ATTRS
from stash2plex_core.models.plex import Actor
from stash2plex_core.models.plex import ImageFingerprint
from stash2plex_core.models.plex import LibrarySection
from stash2plex_core.models.plex import PlexEdit
from stash2plex_core.models.plex import PlexItemRef
from stash2plex_core.models.plex import PlexItemState
from stash2plex_core.models.plex import PlexMetadata
from stash2plex_core.models.plex import ServerInfo
from stash2plex_core.models.plex import scalar_from_plex
from stash2plex_core.ports.clock import Clock
from stash2plex_core.ports.plex import PlexGateway
from stash2plex_core.settings import Settings


def _basename(path: str) -> str:
    return posixpath.basename(path.replace("\\", "/"))


class MemoryPlex(PlexGateway):
    """One movie section held in memory; ``staged`` files appear only after :meth:`scan`.

    ``calls`` counts calls by method name, so tests can assert how much work was done.
    """

    id: ClassVar[str] = "memory"
    priority: ClassVar[int] = 0

    def __init__(self, *, section_root: str = "/", clock: Clock | None = None) -> None:
        self.section = LibrarySection(key="1", title="Movies", type="movie", locations=(section_root,))
        self._items: dict[str, PlexItemState] = {}
        self._staged: dict[str, PlexMetadata] = {}
        self._keys = itertools.count(1)
        self._tick = itertools.count(1_700_000_000)
        self._lock = threading.RLock()
        self.calls: dict[str, int] = {}

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock) -> Self:
        return cls(clock=clock)

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    # -- seeding (test helpers, not part of the port)

    def add_item(self, paths: Iterable[str], metadata: PlexMetadata | None = None) -> PlexItemRef:
        with self._lock:
            key = str(next(self._keys))
            item = PlexItemState(
                rating_key=key,
                section_key=self.section.key,
                metadata=metadata or PlexMetadata(),
                part_paths=tuple(paths),
                updated_at=next(self._tick),
            )
            self._items[key] = item
            return self._ref(item)

    def stage(self, path: str, metadata: PlexMetadata | None = None) -> None:
        """A file on disk that Plex has not scanned yet."""
        with self._lock:
            self._staged[path] = metadata or PlexMetadata(title=posixpath.splitext(_basename(path))[0])

    def remove_item(self, rating_key: str) -> None:
        with self._lock:
            del self._items[rating_key]

    @staticmethod
    def _ref(item: PlexItemState) -> PlexItemRef:
        return PlexItemRef(
            rating_key=item.rating_key,
            section_key=item.section_key,
            title=item.metadata.title,
            part_paths=item.part_paths,
            updated_at=item.updated_at,
        )

    # -- the port

    def ping(self) -> ServerInfo:
        self._count("ping")
        return ServerInfo(name="memory", version="0", machine_identifier="memory")

    def sections(self) -> list[LibrarySection]:
        self._count("sections")
        return [self.section]

    def _resolve_path(self, path: str) -> list[PlexItemRef]:
        self._count("resolve_path")
        with self._lock:
            return [self._ref(i) for i in self._items.values() if path in i.part_paths]

    def _find_by_filename(self, filename: str) -> list[PlexItemRef]:
        self._count("find_by_filename")
        wanted = filename.casefold()
        with self._lock:
            return [
                self._ref(i)
                for i in self._items.values()
                if any(_basename(p).casefold() == wanted for p in i.part_paths)
            ]

    def iter_items(self, section_key: str | None = None, *, updated_since: int | None = None) -> Iterator[PlexItemRef]:
        self._count("iter_items")
        if section_key not in (None, self.section.key):
            raise NotFoundError(f"no library section {section_key}")
        with self._lock:
            refs = [
                self._ref(i)
                for i in self._items.values()
                if updated_since is None or (i.updated_at is not None and i.updated_at >= updated_since)
            ]
        return iter(refs)

    def _get_items(self, rating_keys: list[str]) -> list[PlexItemState]:
        self._count("get_items")
        with self._lock:
            return [self._items[k] for k in rating_keys if k in self._items]

    def _apply(self, rating_key: str, edit: PlexEdit) -> None:
        self._count("apply")
        with self._lock:
            item = self._items.get(rating_key)
            if item is None:
                raise NotFoundError(f"Plex has no item with ratingKey {rating_key}")
            changes: dict[str, Any] = {}
            for field, raw in edit.fields.items():
                changes[SCALAR_ATTRS[field]] = scalar_from_plex(field, raw)
            for field, tag_edit in edit.tags.items():
                if field == "actor":
                    changes["actors"] = tuple(
                        Actor(name=name, photo_url=tag_edit.photos.get(name)) for name in tag_edit.values
                    )
                else:
                    changes[TAG_ATTRS[field]] = tuple(tag_edit.values)
            locked = set(item.locked_fields)
            for field, lock in edit.locks.items():
                (locked.add if lock else locked.discard)(field)
            images = dict(item.images)
            for upload in edit.images:
                images[upload.kind] = ImageFingerprint(hashlib.sha1(upload.data).hexdigest())  # noqa: S324 - Plex keys uploads by SHA-1
            self._items[rating_key] = attrs.evolve(
                item,
                metadata=attrs.evolve(item.metadata, **changes),
                locked_fields=frozenset(locked),
                images=images,
                updated_at=next(self._tick),
            )

    def _scan(self, path: str) -> None:
        self._count("scan")
        folder = posixpath.dirname(path.replace("\\", "/"))
        with self._lock:
            for staged in [p for p in self._staged if posixpath.dirname(p.replace("\\", "/")) == folder]:
                self.add_item([staged], self._staged.pop(staged))


__all__ = ["MemoryPlex"]
