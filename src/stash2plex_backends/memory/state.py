"""In-memory StateStore: documents in a dict under a lock (not durable)."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from collections.abc import Iterator
from typing import ClassVar
from typing import Self

from stash2plex_core.clocks import ManualClock
from stash2plex_core.ports.clock import Clock
from stash2plex_core.ports.state import Document
from stash2plex_core.ports.state import StateStore
from stash2plex_core.settings import Settings


class MemoryStateStore(StateStore):
    id: ClassVar[str] = "memory"
    priority: ClassVar[int] = 0

    def __init__(self, clock: Clock | None = None) -> None:
        super().__init__(clock or ManualClock())
        self._data: dict[str, dict[str, Document]] = {}
        self._lock = threading.RLock()

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock) -> Self:
        return cls(clock)

    def _get(self, namespace: str, key: str) -> Document | None:
        with self._lock:
            found = self._data.get(namespace, {}).get(key)
            return copy.deepcopy(found) if found is not None else None

    def _put_many(self, namespace: str, documents: dict[str, Document]) -> None:
        with self._lock:
            self._data.setdefault(namespace, {}).update(copy.deepcopy(documents))

    def _put_all(self, batch: dict[str, dict[str, Document]]) -> None:
        with self._lock:  # atomic as a whole
            for namespace, documents in batch.items():
                self._put_many(namespace, documents)

    def _delete(self, namespace: str, key: str) -> bool:
        with self._lock:
            return self._data.get(namespace, {}).pop(key, None) is not None

    def _items(self, namespace: str) -> Iterator[tuple[str, Document]]:
        with self._lock:
            snapshot = copy.deepcopy(self._data.get(namespace, {}))
        return iter(sorted(snapshot.items()))

    def _update(self, namespace: str, key: str, fn: Callable[[Document | None], Document | None]) -> Document | None:
        with self._lock:
            result = fn(self._get(namespace, key))
            if result is None:
                self._delete(namespace, key)
            else:
                self._put_many(namespace, {key: result})
            return copy.deepcopy(result)


__all__ = ["MemoryStateStore"]
