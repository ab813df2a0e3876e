"""The PlexGateway port: everything stash2plex asks of a Plex Media Server."""

from __future__ import annotations

from abc import ABC
from abc import abstractmethod
from collections.abc import Iterator
from collections.abc import Sequence

import attrs

from stash2plex_core.errors import NotFoundError
from stash2plex_core.models.plex import ImageFingerprint
from stash2plex_core.models.plex import ImageKind
from stash2plex_core.models.plex import LibrarySection
from stash2plex_core.models.plex import PlexEdit
from stash2plex_core.models.plex import PlexItemRef
from stash2plex_core.models.plex import PlexItemState
from stash2plex_core.models.plex import ServerInfo
from stash2plex_core.ports._backend import BackendBase


def _key(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"a Plex ratingKey must be a non-empty string, got {value!r}")
    return value.strip()


class PlexGateway(BackendBase, ABC):
    """Reads and edits items of the movie sections of one Plex server.

    Rules every backend keeps (the contract checks them):

    * Every failure surfaces as a core error: 401 → :class:`AuthenticationError`, unknown
      item → :class:`NotFoundError`, 429/5xx/timeouts/connection errors/malformed
      responses → :class:`TransientError` (:class:`BackendUnavailableError` when the
      server is unreachable or answers 5xx) with ``retry_after`` when Plex sent one, other
      4xx → :class:`PermanentError`. No message contains the token.
    * :meth:`resolve_path` matches a file path **exactly** (case and separators included);
      fuzzier matching belongs to the matching service.
    * :meth:`apply` sends the scalar fields, tag changes and locks of one edit in one
      request, and uploads each image in :attr:`PlexEdit.images`; afterwards
      :meth:`get_item` shows every change, removed tags are gone, and an uploaded image's
      SHA-1 is the item's fingerprint for that kind.
    * :meth:`get_items` answers many ratingKeys with few requests (one per batch, never
      one per item) and silently omits keys that do not exist. Its image fingerprints may
      be *unhashed* (``sha1 == ""``: Plex shows an image that may be ours, but its hash
      would cost a request per item). :meth:`with_image_hashes` hashes them, for the one
      item an upload is being decided for; :meth:`get_item` does so itself; and
      :meth:`apply` never re-uploads an image Plex already shows.
    * Building the gateway does not connect; the first call does.
    """

    @abstractmethod
    def ping(self) -> ServerInfo:
        """Probe the server (Plex's ``/identity``); cheap enough for a health check."""

    @abstractmethod
    def sections(self) -> list[LibrarySection]:
        """The movie library sections in use."""

    def resolve_path(self, path: str) -> list[PlexItemRef]:
        """Items one of whose parts is exactly ``path`` (usually zero or one)."""
        if not path:
            raise ValueError("path must be non-empty")
        return self._resolve_path(path)

    @abstractmethod
    def _resolve_path(self, path: str) -> list[PlexItemRef]: ...

    def find_by_filename(self, filename: str) -> list[PlexItemRef]:
        """Items with a part whose file name (last path segment) equals ``filename``, ignoring case."""
        if not filename or "/" in filename or "\\" in filename:
            raise ValueError(f"expected a bare file name, got {filename!r}")
        return self._find_by_filename(filename)

    @abstractmethod
    def _find_by_filename(self, filename: str) -> list[PlexItemRef]: ...

    @abstractmethod
    def iter_items(self, section_key: str | None = None, *, updated_since: int | None = None) -> Iterator[PlexItemRef]:
        """Every item of one section (or of all sections in use), in pages, each once.

        With ``updated_since`` (epoch seconds, inclusive) only items whose ``updated_at`` is
        at or after it, so an index can refresh incrementally from its watermark; an
        unknown ``section_key`` raises :class:`NotFoundError`.
        """

    def get_items(self, rating_keys: Sequence[str]) -> list[PlexItemState]:
        """Full state of many items, in the order asked, omitting unknown keys.

        A batched read: an image fingerprint may be unhashed (see the class notes); pass
        the item to :meth:`with_image_hashes` before comparing hashes.
        """
        keys = list(dict.fromkeys(_key(k) for k in rating_keys))
        if not keys:
            return []
        found = {item.rating_key: item for item in self._get_items(keys)}
        return [found[k] for k in keys if k in found]

    @abstractmethod
    def _get_items(self, rating_keys: list[str]) -> list[PlexItemState]: ...

    def get_item(self, rating_key: str) -> PlexItemState:
        """Full state of one item, image hashes included; :class:`NotFoundError` if Plex has none."""
        items = self.get_items([rating_key])
        if not items:
            raise NotFoundError(f"Plex has no item with ratingKey {rating_key}")
        return self.with_image_hashes(items[0])

    def with_image_hashes(self, item: PlexItemState) -> PlexItemState:
        """``item`` with each unhashed image fingerprint hashed, or dropped if Plex shows no upload.

        Costs one request per unhashed image and nothing otherwise, so it belongs just
        before an upload is decided, never in a loop over a batch.
        """
        unhashed = [kind for kind, fingerprint in item.images.items() if not fingerprint.sha1]
        if not unhashed:
            return item
        images = dict(item.images)
        for kind in unhashed:
            sha1 = self._image_hash(item.rating_key, kind)
            if sha1:
                images[kind] = ImageFingerprint(sha1)
            else:
                del images[kind]
        return attrs.evolve(item, images=images)

    def _image_hash(self, rating_key: str, kind: ImageKind) -> str | None:
        """SHA-1 of the item's selected uploaded image of ``kind``, or ``None``.

        Only backends whose :meth:`get_items` leaves hashes unread need it (and wrappers,
        which delegate it to their inner gateway).
        """
        return None

    def apply(self, rating_key: str, edit: PlexEdit) -> None:
        """Apply ``edit`` to the item: one PUT for fields/tags/locks, one upload per image."""
        key = _key(rating_key)
        if edit.empty:
            return
        self._apply(key, edit)

    @abstractmethod
    def _apply(self, rating_key: str, edit: PlexEdit) -> None: ...

    def scan(self, path: str) -> None:
        """Ask Plex to scan the folder holding ``path`` so a new file becomes an item."""
        if not path:
            raise ValueError("path must be non-empty")
        self._scan(path)

    @abstractmethod
    def _scan(self, path: str) -> None: ...

    def limit_requests(self, requests: int | None) -> bool:
        """Keep at most ``requests`` HTTP requests to Plex in flight at once (``None``: no limit).

        Returns whether this gateway enforces the limit where requests leave the process.
        A gateway that can (the ``plexapi`` one) holds a slot only for the exchange itself,
        not while it parses answers, so the slots stay busy with requests. The default
        returns ``False`` and the caller limits whole calls instead.
        """
        return False

    def listening(self) -> bool | None:
        """Whether Plex accepts connections right now, found out without an HTTP request.

        ``None`` when this gateway cannot tell (the default; also a gateway behind a
        proxy). While the breaker is open because connections were refused, the worker
        asks four times a second and probes the moment it turns ``True``: a restarted
        Plex is seen within a second, at the cost of a TCP handshake, not a request.
        """
        return None

    def close(self) -> None:
        """Release connections."""


__all__ = ["PlexGateway"]
