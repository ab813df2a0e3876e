"""What Stash tells us about a scene, already decoded from GraphQL."""

from __future__ import annotations

import attrs

from stash2plex_core.models._convert import to_tuple


@attrs.frozen
class StashStudio:
    id: str
    name: str
    parent: StashStudio | None = None


@attrs.frozen
class StashPerformer:
    id: str
    name: str
    #: URL of the performer's photo, ``None`` when Stash has none (never a default placeholder).
    image_url: str | None = None


@attrs.frozen
class StashTag:
    id: str
    name: str


@attrs.frozen
class StashGroup:
    id: str
    name: str


@attrs.frozen
class StashScene:
    """A Stash scene with exactly the fields stash2plex uses.

    ``updated_at`` is kept as the string Stash sent (RFC 3339 in the server's offset):
    watermarks reuse Stash's own strings so comparisons match the server's.
    """

    id: str
    title: str | None = None
    code: str | None = None
    details: str | None = None
    director: str | None = None
    #: ``YYYY-MM-DD`` as Stash stores it (it may be partial, e.g. ``YYYY`` or ``YYYY-MM``).
    date: str | None = None
    #: Stash's 1-100 rating, ``None`` when unrated.
    rating100: int | None = None
    studio: StashStudio | None = None
    performers: tuple[StashPerformer, ...] = attrs.field(default=(), converter=to_tuple)
    tags: tuple[StashTag, ...] = attrs.field(default=(), converter=to_tuple)
    groups: tuple[StashGroup, ...] = attrs.field(default=(), converter=to_tuple)
    #: Absolute paths of the scene's files as Stash sees them; the first is the primary file.
    files: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)
    screenshot_url: str | None = None
    updated_at: str | None = None
    #: Running time of the primary file in seconds, ``None`` when Stash does not know it.
    duration: float | None = None


@attrs.frozen
class StashImage:
    """An image as Stash served it, with its entity tag (``None`` if Stash sent none).

    Stash tags images by content (the MD5 of the bytes), so asking again with the tag
    (``If-None-Match``) answers ``304 Not Modified`` without the bytes when nothing changed.
    """

    data: bytes = attrs.field(repr=lambda data: f"<{len(data)} bytes>")
    etag: str | None = None


__all__ = ["StashGroup", "StashImage", "StashPerformer", "StashScene", "StashStudio", "StashTag"]
