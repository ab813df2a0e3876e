"""The StashGateway port: everything stash2plex reads from Stash."""

from __future__ import annotations

from abc import ABC
from abc import abstractmethod
from collections.abc import Iterator
from typing import cast

from stash2plex_core.models.plex import ServerInfo
from stash2plex_core.models.stash import StashScene
from stash2plex_core.ports._backend import BackendBase


class StashGateway(BackendBase, ABC):
    """Reads scenes and images from one Stash server.

    Rules every backend keeps (the contract checks them):

    * :meth:`find_by_path` is **exact**: Stash's own path filter treats ``_`` and ``%`` as
      wildcards and ignores case, so a backend must compare the returned paths itself.
    * :meth:`iter_scenes` yields every scene exactly once, page by page, and with
      ``updated_since`` only scenes whose ``updated_at`` is at or after it, comparing the
      way Stash compares (its own timestamp strings).
    * A missing scene is ``None`` from :meth:`get_scene`, never an exception; failures are
      core errors (401 → :class:`AuthenticationError`, timeouts/5xx →
      :class:`TransientError`, a GraphQL error → :class:`TransientError` or
      :class:`PermanentError`), never a silent ``None``. No message contains the API key.
    """

    @abstractmethod
    def ping(self) -> ServerInfo:
        """Probe the server (its version query)."""

    def get_scene(self, scene_id: str) -> StashScene | None:
        if not isinstance(cast(object, scene_id), str) or not scene_id:  # callers are untyped too
            raise ValueError(f"scene id must be a non-empty string, got {scene_id!r}")
        return self._get_scene(scene_id)

    @abstractmethod
    def _get_scene(self, scene_id: str) -> StashScene | None: ...

    def find_by_path(self, path: str) -> list[StashScene]:
        """Scenes one of whose files is exactly ``path``."""
        if not path:
            raise ValueError("path must be non-empty")
        return [s for s in self._find_by_path(path) if path in s.files]

    @abstractmethod
    def _find_by_path(self, path: str) -> list[StashScene]: ...

    @abstractmethod
    def iter_scenes(self, *, updated_since: str | None = None) -> Iterator[StashScene]:
        """Every scene (or those updated at or after ``updated_since``), in pages."""

    @abstractmethod
    def fetch_image(self, url: str) -> bytes:
        """Download an image Stash serves (screenshot, performer photo) with our credentials."""

    def close(self) -> None:
        """Release connections."""


__all__ = ["StashGateway"]
