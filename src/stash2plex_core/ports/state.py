"""The StateStore port: small JSON documents that must survive restarts."""

from __future__ import annotations

import json
from abc import ABC
from abc import abstractmethod
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from typing import Any

from stash2plex_core.ports._backend import BackendBase
from stash2plex_core.ports.clock import Clock


Document = dict[str, Any]
Updater = Callable[[Document | None], Mapping[str, Any] | None]


def _name(kind: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{kind} must be a non-empty string, got {value!r}")
    return value


def _document(value: Mapping[str, Any]) -> Document:
    """A deep, JSON-only copy; rejects anything JSON cannot hold."""
    if not isinstance(value, Mapping):
        raise TypeError(f"a state document must be a mapping, got {type(value).__name__}")
    try:
        copy: Document = json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"a state document must be plain JSON: {exc}") from None
    return copy


class StateStore(BackendBase, ABC):
    """Keyed JSON documents grouped in namespaces (``"sync"``, ``"breaker"``, ...).

    Rules every backend keeps (the contract checks them):

    * Writes are atomic: a reader sees the old document or the new one, never a mix, and
      a crash mid-write leaves the old one. ``put_many`` is atomic as a whole.
    * Writes are serialised under a lock that *waits* (up to a timeout, then
      :class:`~stash2plex_core.errors.StateLockTimeoutError`); a save is never skipped.
    * ``update`` is an atomic read-modify-write under that lock; the function may return
      ``None`` to delete.
    * ``put_all`` writes each namespace's documents atomically; whether it is atomic across
      namespaces too is the backend's to say (SQLite: yes, one transaction).
    * Documents go in and come out as deep copies: mutating one never changes the store.
    * Unreadable storage raises :class:`~stash2plex_core.errors.StateError` naming the file.
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def get(self, namespace: str, key: str) -> Document | None:
        return self._get(_name("namespace", namespace), _name("key", key))

    def get_many(self, namespace: str, keys: Iterable[str]) -> dict[str, Document]:
        """The documents among ``keys`` that exist, by key; a missing one is simply absent.

        A worker that claimed several jobs reads their records at once instead of once per
        job. The default asks :meth:`get` for each; a backend may read them in one go.
        """
        wanted = list(dict.fromkeys(_name("key", key) for key in keys))
        return self._get_many(_name("namespace", namespace), wanted) if wanted else {}

    def put(self, namespace: str, key: str, document: Mapping[str, Any]) -> None:
        self._put_many(_name("namespace", namespace), {_name("key", key): _document(document)})

    def put_many(self, namespace: str, documents: Mapping[str, Mapping[str, Any]]) -> None:
        checked = {_name("key", k): _document(v) for k, v in documents.items()}
        if checked:
            self._put_many(_name("namespace", namespace), checked)

    def put_all(self, batch: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> None:
        """``put_many`` for several namespaces (``{namespace: {key: document}}``) in one call.

        A sync writes its record and its poster memo together: a backend that can (SQLite)
        commits both at once, which halves the commits of a drain. Each namespace's
        documents are written atomically; across namespaces only where the backend can.
        """
        checked = {
            _name("namespace", namespace): {_name("key", k): _document(v) for k, v in documents.items()}
            for namespace, documents in batch.items()
        }
        checked = {namespace: documents for namespace, documents in checked.items() if documents}
        if checked:
            self._put_all(checked)

    def delete(self, namespace: str, key: str) -> bool:
        return self._delete(_name("namespace", namespace), _name("key", key))

    def items(self, namespace: str) -> Iterator[tuple[str, Document]]:
        """Every ``(key, document)`` in a namespace, in key order."""
        return self._items(_name("namespace", namespace))

    def keys(self, namespace: str) -> list[str]:
        return [key for key, _ in self.items(namespace)]

    def update(self, namespace: str, key: str, fn: Updater) -> Document | None:
        """Atomically replace a document with ``fn(current)``; returns the new one."""

        def checked(current: Document | None) -> Document | None:
            result = fn(current)
            return None if result is None else _document(result)

        return self._update(_name("namespace", namespace), _name("key", key), checked)

    def close(self) -> None:
        """Release resources; the store must not be used afterwards."""

    @abstractmethod
    def _get(self, namespace: str, key: str) -> Document | None: ...

    @abstractmethod
    def _put_many(self, namespace: str, documents: dict[str, Document]) -> None: ...

    def _get_many(self, namespace: str, keys: list[str]) -> dict[str, Document]:
        found = {key: self._get(namespace, key) for key in keys}
        return {key: document for key, document in found.items() if document is not None}

    def _put_all(self, batch: dict[str, dict[str, Document]]) -> None:
        for namespace, documents in batch.items():
            self._put_many(namespace, documents)

    @abstractmethod
    def _delete(self, namespace: str, key: str) -> bool: ...

    @abstractmethod
    def _items(self, namespace: str) -> Iterator[tuple[str, Document]]: ...

    @abstractmethod
    def _update(
        self, namespace: str, key: str, fn: Callable[[Document | None], Document | None]
    ) -> Document | None: ...


__all__ = ["Document", "StateStore", "Updater"]
