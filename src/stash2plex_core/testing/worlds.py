"""Worlds: what a contract needs besides the adapter — a way to put data behind it.

A Plex or Stash contract must create items and scenes before it can read them; how that
happens depends on the backend (a dict for the fakes, a simulator for the real clients),
so a backend's test module provides a *world*: the gateway plus seeding methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import attrs

from stash2plex_core.models.plex import PlexMetadata
from stash2plex_core.ports.plex import PlexGateway
from stash2plex_core.ports.stash import StashGateway


class PlexWorld(Protocol):
    """A Plex server the contract can seed, and the gateway under test talking to it."""

    gateway: PlexGateway
    #: A folder inside the library section where seeded files may live.
    root: str

    def add_item(self, paths: Sequence[str], metadata: PlexMetadata | None = None) -> str:
        """Create an item whose parts are ``paths``; return its ratingKey."""

    def stage(self, path: str) -> None:
        """Put a file on "disk" that Plex has not scanned yet (scanning its folder reveals it)."""


@attrs.frozen
class SceneSpec:
    """A scene for a Stash world to create."""

    title: str
    files: tuple[str, ...]
    updated_at: str | None = None
    performers: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    studio: str | None = None
    details: str | None = None
    date: str | None = None
    rating100: int | None = None
    with_screenshot: bool = True


class StashWorld(Protocol):
    """A Stash server the contract can seed, and the gateway under test talking to it."""

    gateway: StashGateway
    #: A folder under which seeded files may live.
    root: str

    def add_scene(self, spec: SceneSpec) -> str:
        """Create a scene; return its id."""

    def image_bytes(self, url: str) -> bytes:
        """The exact bytes the server serves at ``url``."""

    def timestamp(self, offset_seconds: int) -> str:
        """An ``updated_at`` string ``offset_seconds`` after a fixed origin, as the server spells them."""


__all__ = ["PlexWorld", "SceneSpec", "StashWorld"]
