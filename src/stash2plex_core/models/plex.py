"""Plex-side values: the metadata we want, what an item has now, and the edit between them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from enum import StrEnum

import attrs

from stash2plex_core.models._convert import to_frozenset
from stash2plex_core.models._convert import to_mapping
from stash2plex_core.models._convert import to_tuple


class ImageKind(StrEnum):
    POSTER = "poster"
    ART = "art"


@attrs.frozen
class Actor:
    """A performer as a Plex role; ``photo_url`` is what Plex fetches for the role's thumb."""

    name: str
    role: str | None = None
    photo_url: str | None = None


#: Scalar fields in Plex's own edit names, in the order they are edited.
SCALAR_FIELDS: tuple[str, ...] = (
    "title",
    "titleSort",
    "originalTitle",
    "summary",
    "tagline",
    "studio",
    "originallyAvailableAt",
    "year",
    "contentRating",
    "userRating",
)
#: Tag fields in Plex's edit names (``genre[0].tag.tag=…``).
TAG_FIELDS: tuple[str, ...] = ("genre", "collection", "actor", "director", "writer", "label")


@attrs.frozen
class PlexMetadata:
    """Metadata of one Plex item in Plex's terms.

    The same shape serves as the *desired* state (computed from Stash) and the *current*
    state (read from Plex), so planning is a field-by-field diff. Text is already sanitised;
    ``None`` means "empty" for scalars, an empty tuple for tag lists.
    """

    title: str | None = None
    sort_title: str | None = None
    original_title: str | None = None
    summary: str | None = None
    tagline: str | None = None
    studio: str | None = None
    originally_available_at: dt.date | None = None
    year: int | None = None
    content_rating: str | None = None
    #: Plex's 0-10 user rating.
    user_rating: float | None = None
    genres: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)
    collections: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)
    actors: tuple[Actor, ...] = attrs.field(default=(), converter=to_tuple)
    directors: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)
    writers: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)
    labels: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)


@attrs.frozen
class ImageFingerprint:
    """What identifies an image's content: SHA-1 of the bytes (what Plex keys uploads by).

    ``sha1`` is ``""`` when a batched read saw the image but not its hash
    (:meth:`PlexGateway.with_image_hashes <stash2plex_core.ports.plex.PlexGateway.with_image_hashes>`).
    """

    sha1: str


@attrs.frozen
class PlexItemRef:
    """A Plex item as a listing shows it: enough to index and match, not to plan."""

    rating_key: str
    section_key: str
    title: str | None
    #: Every file of every version and part of the item.
    part_paths: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)
    #: Plex's ``updatedAt`` (epoch seconds); it moves whenever the item changes.
    updated_at: int | None = None


@attrs.frozen
class PlexItemState:
    """One item's full current state, as read from its detail page."""

    rating_key: str
    section_key: str
    metadata: PlexMetadata
    #: Plex field names whose value is locked against agents (e.g. ``"title"``, ``"genre"``).
    locked_fields: frozenset[str] = attrs.field(default=frozenset(), converter=to_frozenset)
    #: Fingerprint of the selected image of each kind, when Plex holds one we uploaded.
    images: Mapping[ImageKind, ImageFingerprint] = attrs.field(factory=dict, converter=to_mapping, hash=False)
    part_paths: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)
    updated_at: int | None = None


@attrs.frozen
class TagEdit:
    """How one tag field changes: the full wanted list plus the explicit removals.

    Plex appends tags on edit, so dropping a tag needs an explicit removal; the full list
    also works on servers that replace.
    """

    values: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)
    removed: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)
    #: Only for ``actor``: photo URL per name, where one is reachable.
    photos: Mapping[str, str] = attrs.field(factory=dict, converter=to_mapping, hash=False)


@attrs.frozen
class ImageUpload:
    kind: ImageKind
    data: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    sha1: str = ""


@attrs.frozen
class PlexEdit:
    """The smallest change that brings an item to its desired state.

    ``fields`` maps Plex scalar field names (:data:`SCALAR_FIELDS`) to their new value,
    ``""`` meaning "clear"; ``tags`` maps tag fields (:data:`TAG_FIELDS`) to a
    :class:`TagEdit`; ``locks`` maps field names to lock (``True``) or unlock (``False``).
    A gateway sends all of it as **one** PUT for the item, plus one upload per image.
    """

    fields: Mapping[str, str] = attrs.field(factory=dict, converter=to_mapping, hash=False)
    tags: Mapping[str, TagEdit] = attrs.field(factory=dict, converter=to_mapping, hash=False)
    locks: Mapping[str, bool] = attrs.field(factory=dict, converter=to_mapping, hash=False)
    images: tuple[ImageUpload, ...] = attrs.field(default=(), converter=to_tuple)

    @property
    def empty(self) -> bool:
        return not (self.fields or self.tags or self.locks or self.images)

    @property
    def needs_put(self) -> bool:
        return bool(self.fields or self.tags or self.locks)


@attrs.frozen
class LibrarySection:
    key: str
    title: str
    type: str
    locations: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)


@attrs.frozen
class ServerInfo:
    """Identity of a server as its health probe reports it."""

    name: str
    version: str
    machine_identifier: str | None = None


@attrs.frozen
class DesiredPlexState:
    """What Stash says a Plex item should look like.

    ``managed_fields`` names the Plex fields stash2plex owns (scalar and tag field names);
    they are set, cleared when empty, and locked. ``poster_url`` is where the poster comes
    from (the scene's screenshot), never a preview video.
    """

    metadata: PlexMetadata
    managed_fields: frozenset[str] = attrs.field(default=frozenset(), converter=to_frozenset)
    poster_url: str | None = None
    #: How the planner writes (copied from settings), so the digest moves when the user
    #: switches locking or "preserve Plex edits" and the next sync is not skipped.
    lock_fields: bool = True
    preserve_plex_edits: bool = False


#: Plex scalar field name → :class:`PlexMetadata` attribute.
SCALAR_ATTRS: Mapping[str, str] = {
    "title": "title",
    "titleSort": "sort_title",
    "originalTitle": "original_title",
    "summary": "summary",
    "tagline": "tagline",
    "studio": "studio",
    "originallyAvailableAt": "originally_available_at",
    "year": "year",
    "contentRating": "content_rating",
    "userRating": "user_rating",
}
#: Plex tag field name → :class:`PlexMetadata` attribute.
TAG_ATTRS: Mapping[str, str] = {
    "genre": "genres",
    "collection": "collections",
    "actor": "actors",
    "director": "directors",
    "writer": "writers",
    "label": "labels",
}


def scalar_to_plex(field: str, value: object) -> str:
    """A metadata value as Plex's edit API spells it (``""`` clears the field)."""
    if value is None:
        return ""
    if isinstance(value, dt.date):
        return value.isoformat()
    if field == "userRating":
        return f"{float(value):g}"  # type: ignore[arg-type]
    return str(value)


def scalar_from_plex(field: str, raw: str | None) -> object:
    """Parse a value Plex returned (or an edit sent) back into the metadata attribute's type."""
    if raw is None or raw == "":
        return None
    if field == "originallyAvailableAt":
        return dt.date.fromisoformat(raw[:10])
    if field == "year":
        return int(raw)
    if field == "userRating":
        return float(raw)
    return raw


__all__ = [
    "SCALAR_ATTRS",
    "SCALAR_FIELDS",
    "TAG_ATTRS",
    "TAG_FIELDS",
    "Actor",
    "DesiredPlexState",
    "ImageFingerprint",
    "ImageKind",
    "ImageUpload",
    "LibrarySection",
    "PlexEdit",
    "PlexItemRef",
    "PlexItemState",
    "PlexMetadata",
    "ServerInfo",
    "TagEdit",
    "scalar_from_plex",
    "scalar_to_plex",
]
