"""The StashGateway port: everything stash2plex reads from Stash."""

from __future__ import annotations

from abc import ABC
from abc import abstractmethod
from collections.abc import Iterator
from collections.abc import Sequence
from typing import Final
from typing import cast

from stash2plex_core.models.plex import ServerInfo
from stash2plex_core.models.stash import StashImage
from stash2plex_core.models.stash import StashScene
from stash2plex_core.ports._backend import BackendBase


#: :attr:`StashGateway.path_match` values (the ``stash_path_match`` setting).
PATH_MATCHES: Final = ("exact", "normalised")


def check_path_match(value: str) -> str:
    """``value`` if it is one of :data:`PATH_MATCHES`; a clear ``ValueError`` otherwise."""
    if value not in PATH_MATCHES:
        raise ValueError(f"path_match must be one of {', '.join(PATH_MATCHES)}, got {value!r}")
    return value


def path_key(path: str, path_match: str) -> str:
    """What :meth:`StashGateway.find_by_path` compares: the path itself, or its normalised form.

    ``normalised`` is the matching service's normalisation
    (:func:`~stash2plex_core.services.matching.normalise_path`: NFC, case-folded, ``\\``
    as ``/``, no doubled or trailing separators), so a look-up is exactly as loose as the
    matcher's "normalised path" tier.
    """
    if path_match == "exact":
        return path
    from stash2plex_core.services.matching import normalise_path  # services import ports

    return normalise_path(path)


class StashGateway(BackendBase, ABC):
    """Reads scenes and images from one Stash server.

    Rules every backend keeps (the contract checks them):

    * :meth:`find_by_path` is **exact** (or, with :attr:`path_match` ``"normalised"``,
      exact after :func:`path_key`'s normalisation): Stash's own path filter treats ``_``
      and ``%`` as wildcards and ignores ASCII case, so a backend must compare the
      returned paths itself, and with normalisation must ask Stash broadly enough to see
      every file that normalises alike.
    * :meth:`iter_scenes` yields every scene exactly once, page by page, and with
      ``updated_since`` only scenes whose ``updated_at`` is at or after it, comparing the
      way Stash compares (its own timestamp strings).
    * A missing scene is ``None`` from :meth:`get_scene`, never an exception; failures are
      core errors (401 → :class:`AuthenticationError`, timeouts/5xx →
      :class:`TransientError`, a GraphQL error → :class:`TransientError` or
      :class:`PermanentError`), never a silent ``None``. No message contains the API key.
    """

    #: How :meth:`find_by_path` compares paths: ``"exact"`` (the default) or ``"normalised"``.
    path_match: str = "exact"

    @abstractmethod
    def ping(self) -> ServerInfo:
        """Probe the server (its version query)."""

    def get_scene(self, scene_id: str) -> StashScene | None:
        if not isinstance(cast(object, scene_id), str) or not scene_id:  # callers are untyped too
            raise ValueError(f"scene id must be a non-empty string, got {scene_id!r}")
        return self._get_scene(scene_id)

    @abstractmethod
    def _get_scene(self, scene_id: str) -> StashScene | None: ...

    def get_scenes(self, scene_ids: Sequence[str]) -> dict[str, StashScene]:
        """The scenes among ``scene_ids`` that exist, by id; a missing one is simply absent.

        A worker hydrating several claimed jobs asks once instead of once per job. The
        default asks :meth:`get_scene` for each; a backend may answer in one request.
        """
        ids = list(dict.fromkeys(scene_ids))
        for scene_id in ids:
            if not isinstance(cast(object, scene_id), str) or not scene_id:
                raise ValueError(f"scene id must be a non-empty string, got {scene_id!r}")
        return self._get_scenes(ids) if ids else {}

    def _get_scenes(self, scene_ids: list[str]) -> dict[str, StashScene]:
        found = {scene_id: self._get_scene(scene_id) for scene_id in scene_ids}
        return {scene_id: scene for scene_id, scene in found.items() if scene is not None}

    def find_by_path(self, path: str) -> list[StashScene]:
        """Scenes one of whose files is ``path``: exactly, or alike after normalisation (:attr:`path_match`)."""
        if not path:
            raise ValueError("path must be non-empty")
        if self.path_match == "exact":
            return [s for s in self._find_by_path(path) if path in s.files]
        wanted = path_key(path, self.path_match)
        return [s for s in self._find_by_path(path) if any(path_key(f, self.path_match) == wanted for f in s.files)]

    @abstractmethod
    def _find_by_path(self, path: str) -> list[StashScene]: ...

    @abstractmethod
    def iter_scenes(self, *, updated_since: str | None = None) -> Iterator[StashScene]:
        """Every scene (or those updated at or after ``updated_since``), in pages."""

    @abstractmethod
    def fetch_image(self, url: str) -> bytes:
        """Download an image Stash serves (screenshot, performer photo) with our credentials."""

    def fetch_image_if_changed(self, url: str, etag: str | None = None) -> StashImage | None:
        """Download an image unless it still has entity tag ``etag``; ``None`` when it does.

        The bytes come with the tag Stash gave them, to pass back next time: an unchanged
        cover then costs a ``304`` and no download, however often the scene is edited (its
        URL changes with every edit, its bytes rarely). The default always downloads
        (through :meth:`fetch_image`) and keeps no tag.
        """
        return StashImage(self.fetch_image(url))

    def close(self) -> None:
        """Release connections."""


__all__ = ["PATH_MATCHES", "StashGateway", "check_path_match", "path_key"]
