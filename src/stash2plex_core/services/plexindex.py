"""A persistent file path → Plex item index, so a lookup costs no request.

Asking Plex for one path at a time costs a request per scene (and, without Plex's
undocumented ``file=`` filter, a walk of the whole library). The index is built once from
paged listings (:meth:`PlexGateway.iter_items`, about one request per 1,000 items), kept in
the :class:`StateStore` and refreshed incrementally from a watermark on Plex's
``updatedAt``; items are stable under their ratingKey, so the index stays valid across
runs. Deleted items are not listed by an incremental walk: callers verify a hit (the
detail's part paths), :meth:`PlexPathIndex.forget` stale keys, and a periodic
:meth:`PlexPathIndex.rebuild` (see ``full_every``) sweeps the rest.

Storage: namespace ``plex-index``; ``meta`` holds the watermark and the bucket count, and
each ``bucket-NNNN`` document holds the items whose ratingKey hashes to it, so a refresh
rewrites only the buckets that changed and 100,000 items are 200 documents of 500 rather
than 100,000 rows.
"""

from __future__ import annotations

import datetime as dt
import threading
import zlib
from collections.abc import Iterable
from collections.abc import Iterator
from typing import Any

import attrs

from stash2plex_core.models.plex import PlexItemRef
from stash2plex_core.ports.clock import Clock
from stash2plex_core.ports.plex import PlexGateway
from stash2plex_core.ports.state import StateStore


NAMESPACE = "plex-index"
_META = "meta"
_FORMAT = 1
#: Items per bucket document when the index is (re)built.
BUCKET_ITEMS = 500
#: Seconds before the watermark an incremental refresh lists again. ``updatedAt`` is
#: stamped per item, not read from one monotonic clock: an item changed twice within a
#: second can be stamped a second ahead (the simulated PMS does exactly that) and server
#: clocks step, so an item changed after the last refresh may carry a value just below
#: the newest one seen. Without the overlap the index would keep its old ``updatedAt`` and
#: the worker would read such items again instead of skipping them.
REFRESH_OVERLAP_SECONDS = 10


def _basename(path: str) -> str:
    return path[max(path.rfind("/"), path.rfind("\\")) + 1 :]


@attrs.frozen
class IndexUpdate:
    """What one build or refresh did."""

    #: Whether every item was listed (a build) rather than only recent ones.
    full: bool
    #: Items the listing yielded.
    listed: int
    #: Items added or changed in the index (for a build: every item).
    changed: int
    #: Items dropped (only a build can tell an item is gone).
    removed: int
    #: Items in the index afterwards.
    size: int


class PlexPathIndex:
    """Plex part paths → items, persisted and refreshed incrementally.

    :param full_every: :meth:`refresh` rebuilds instead when the last build is older than
        this (``None``: only when the index is empty), so deleted items do not linger.
    """

    def __init__(
        self,
        plex: PlexGateway,
        state: StateStore,
        clock: Clock,
        *,
        full_every: dt.timedelta | None = dt.timedelta(days=7),
        bucket_items: int = BUCKET_ITEMS,
    ) -> None:
        self._plex = plex
        self._state = state
        self._clock = clock
        self._full_every = full_every
        self._bucket_items = max(1, bucket_items)
        self._lock = threading.RLock()
        self._loaded = False
        self._items: dict[str, PlexItemRef] = {}
        self._paths: dict[str, list[str]] = {}
        self._names: dict[str, set[str]] | None = None
        self._members: dict[int, set[str]] = {}
        self._buckets = 1
        self._watermark: int | None = None
        self._built_at: dt.datetime | None = None

    # -- reading ---------------------------------------------------------------------------

    def __len__(self) -> int:
        with self._lock:
            self._load()
            return len(self._items)

    @property
    def watermark(self) -> int | None:
        """The newest ``updatedAt`` seen; the next refresh lists items updated since shortly before it."""
        with self._lock:
            self._load()
            return self._watermark

    @property
    def built_at(self) -> dt.datetime | None:
        with self._lock:
            self._load()
            return self._built_at

    def lookup(self, path: str) -> list[PlexItemRef]:
        """Indexed items with a part exactly ``path``; never asks Plex."""
        with self._lock:
            self._load()
            return [self._items[key] for key in self._paths.get(path, ())]

    def resolve(self, path: str) -> list[PlexItemRef]:
        """Items with a part exactly ``path``: from the index, else from Plex (and then remembered).

        A miss is not remembered, so a file Plex scans later is found on the next call.
        """
        found = self.lookup(path)
        if found:
            return found
        fresh = [ref for ref in self._plex.resolve_path(path) if path in ref.part_paths]
        if fresh:
            self.remember(fresh)
        return fresh

    def find_by_filename(self, filename: str) -> list[PlexItemRef]:
        """Indexed items with a part whose file name equals ``filename``, ignoring case."""
        wanted = filename.casefold()
        with self._lock:
            self._load()
            if self._names is None:
                self._names = {}
                for ref in self._items.values():
                    self._add_names(ref)
            return [self._items[key] for key in sorted(self._names.get(wanted, ()))]

    def refs(self) -> Iterator[PlexItemRef]:
        """Every indexed item (a snapshot)."""
        with self._lock:
            self._load()
            return iter(list(self._items.values()))

    # -- changing --------------------------------------------------------------------------

    def remember(self, refs: Iterable[PlexItemRef]) -> None:
        """Add or replace items (e.g. found by a direct lookup) and persist their buckets."""
        with self._lock:
            self._load()
            dirty = {self._put(ref) for ref in refs if self._items.get(ref.rating_key) != ref}
            if dirty:
                self._save(dirty)

    def forget(self, rating_key: str) -> bool:
        """Drop an item Plex no longer has (or whose paths changed); ``True`` if it was there."""
        with self._lock:
            self._load()
            if self._drop(rating_key) is None:
                return False
            self._save({self._bucket(rating_key)})
            return True

    def rebuild(self) -> IndexUpdate:
        """List every item and replace the index with what Plex has now."""
        started = self._clock.now()
        refs = list(self._plex.iter_items())
        with self._lock:
            self._load()
            before = set(self._items)
            self._items = {}
            self._paths = {}
            self._names = None
            self._members = {}
            self._buckets = max(1, -(-len(refs) // self._bucket_items))
            for ref in refs:
                self._put(ref)
            self._watermark = max((r.updated_at for r in refs if r.updated_at is not None), default=None)
            self._built_at = started
            self._save(set(range(self._buckets)), stale_from=self._stored_buckets())
            return IndexUpdate(
                full=True,
                listed=len(refs),
                changed=len(self._items),
                removed=len(before - set(self._items)),
                size=len(self._items),
            )

    def refresh(self) -> IndexUpdate:
        """Bring the index up to date: items updated since the watermark, or a full build.

        A build happens when the index is empty or older than ``full_every``.
        """
        with self._lock:
            self._load()
            watermark, built_at = self._watermark, self._built_at
        stale = (
            self._full_every is not None and built_at is not None and self._clock.now() - built_at >= self._full_every
        )
        if watermark is None or built_at is None or stale:
            return self.rebuild()
        refs = list(self._plex.iter_items(updated_since=max(0, watermark - REFRESH_OVERLAP_SECONDS)))
        with self._lock:
            dirty: set[int] = set()
            changed = 0
            for ref in refs:
                if self._items.get(ref.rating_key) != ref:
                    changed += 1
                    dirty.add(self._put(ref))
            newest = max((r.updated_at for r in refs if r.updated_at is not None), default=watermark)
            self._watermark = max(watermark, newest)
            self._save(dirty)
            return IndexUpdate(full=False, listed=len(refs), changed=changed, removed=0, size=len(self._items))

    # -- internals -------------------------------------------------------------------------

    def _bucket(self, rating_key: str) -> int:
        return zlib.crc32(rating_key.encode()) % self._buckets

    def _put(self, ref: PlexItemRef) -> int:
        self._drop(ref.rating_key)
        self._items[ref.rating_key] = ref
        for path in ref.part_paths:
            keys = self._paths.setdefault(path, [])
            if ref.rating_key not in keys:
                keys.append(ref.rating_key)
        if self._names is not None:
            self._add_names(ref)
        bucket = self._bucket(ref.rating_key)
        self._members.setdefault(bucket, set()).add(ref.rating_key)
        return bucket

    def _drop(self, rating_key: str) -> PlexItemRef | None:
        old = self._items.pop(rating_key, None)
        if old is None:
            return None
        self._members.get(self._bucket(rating_key), set()).discard(rating_key)
        for path in old.part_paths:
            keys = self._paths.get(path)
            if keys is not None and rating_key in keys:
                keys.remove(rating_key)
                if not keys:
                    del self._paths[path]
        if self._names is not None:
            for path in old.part_paths:
                self._names.get(_basename(path).casefold(), set()).discard(rating_key)
        return old

    def _add_names(self, ref: PlexItemRef) -> None:
        assert self._names is not None
        for path in ref.part_paths:
            self._names.setdefault(_basename(path).casefold(), set()).add(ref.rating_key)

    # -- persistence -----------------------------------------------------------------------

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        meta = self._state.get(NAMESPACE, _META)
        if not meta or meta.get("format") != _FORMAT:
            return
        self._buckets = int(meta["buckets"])
        self._watermark = meta.get("watermark")
        built = meta.get("built_at")
        self._built_at = dt.datetime.fromisoformat(built) if built else None
        wanted = {self._bucket_key(i) for i in range(self._buckets)}
        for key, document in self._state.items(NAMESPACE):
            if key not in wanted:
                continue
            for rating_key, section, title, paths, updated in document.get("items", ()):
                self._put(PlexItemRef(rating_key, section, title, tuple(paths), updated))

    @staticmethod
    def _bucket_key(bucket: int) -> str:
        return f"bucket-{bucket:04d}"

    def _stored_buckets(self) -> int:
        meta = self._state.get(NAMESPACE, _META)
        return int(meta.get("buckets", 0)) if meta else 0

    def _save(self, dirty: set[int], stale_from: int = 0) -> None:
        """Write the changed buckets and the meta document in one atomic ``put_many``."""
        documents: dict[str, dict[str, Any]] = {}
        for bucket in dirty:
            refs = (self._items[key] for key in sorted(self._members.get(bucket, ())))
            documents[self._bucket_key(bucket)] = {
                "items": [[r.rating_key, r.section_key, r.title, list(r.part_paths), r.updated_at] for r in refs]
            }
        documents[_META] = {
            "format": _FORMAT,
            "buckets": self._buckets,
            "watermark": self._watermark,
            "built_at": self._built_at.isoformat() if self._built_at else None,
            "size": len(self._items),
        }
        self._state.put_many(NAMESPACE, documents)
        for bucket in range(self._buckets, stale_from):
            self._state.delete(NAMESPACE, self._bucket_key(bucket))


__all__ = ["NAMESPACE", "REFRESH_OVERLAP_SECONDS", "IndexUpdate", "PlexPathIndex"]
