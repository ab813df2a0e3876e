"""Turn the XML plexapi hands back into core models.

We read the ``ElementTree`` that ``PlexServer.query`` parsed instead of building plexapi's
``Movie`` objects: those are partial objects that may auto-reload (one hidden GET per empty
attribute) and cost about four times as much CPU per listed item, which matters for a
100,000-item index. The element and attribute names are those of
``reference/plex-protocol.md`` section 4.3.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from stash2plex_core.models.plex import SCALAR_ATTRS
from stash2plex_core.models.plex import Actor
from stash2plex_core.models.plex import LibrarySection
from stash2plex_core.models.plex import PlexItemRef
from stash2plex_core.models.plex import PlexMetadata
from stash2plex_core.models.plex import scalar_from_plex


#: Tag elements of a detail ``<Video>`` → :class:`PlexMetadata` attribute (``Role`` is ``actor``).
_TAG_ELEMENTS = {
    "Genre": "genres",
    "Collection": "collections",
    "Director": "directors",
    "Writer": "writers",
    "Label": "labels",
}
#: Image kinds we fingerprint: the item attribute holding its URL, its lock name, its list path.
IMAGE_FIELDS = {"poster": ("thumb", "thumb", "posters"), "art": ("art", "art", "arts")}


def _int(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        return None


def videos(container: Any) -> Iterator[Any]:
    """The ``<Video>`` children of a ``MediaContainer`` (movies only)."""
    if container is None:
        return
    for element in container:
        if element.tag == "Video" and element.get("type", "movie") == "movie":
            yield element


def part_paths(video: Any) -> tuple[str, ...]:
    """Every part of every version, in Plex's order."""
    return tuple(
        file
        for media in video.iterfind("Media")
        for part in media.iterfind("Part")
        if (file := part.get("file")) is not None
    )


def section_key(video: Any, container: Any) -> str:
    return str(video.get("librarySectionID") or container.get("librarySectionID") or "")


def item_ref(video: Any, container: Any) -> PlexItemRef:
    """A listing ``<Video>`` as an index entry."""
    return PlexItemRef(
        rating_key=str(video.get("ratingKey")),
        section_key=section_key(video, container),
        title=video.get("title"),
        part_paths=part_paths(video),
        updated_at=_int(video.get("updatedAt")),
    )


def _scalar(field: str, raw: str | None) -> Any:
    """A scalar attribute, ``None`` when Plex sent something unreadable rather than failing the item."""
    try:
        return scalar_from_plex(field, raw)
    except ValueError:
        return None


def metadata(video: Any) -> PlexMetadata:
    """Scalar fields and complete tag lists of a detail ``<Video>``."""
    values: dict[str, Any] = {attr: _scalar(field, video.get(field)) for field, attr in SCALAR_ATTRS.items()}
    tags: dict[str, Any] = {attr: [] for attr in _TAG_ELEMENTS.values()}
    actors: list[Actor] = []
    for child in video:
        name = child.get("tag")
        if name is None:
            continue
        if child.tag == "Role":
            actors.append(Actor(name=name, role=child.get("role") or None, photo_url=child.get("thumb") or None))
        elif child.tag in _TAG_ELEMENTS:
            tags[_TAG_ELEMENTS[child.tag]].append(name)
    return PlexMetadata(**values, **tags, actors=tuple(actors))


def locked_fields(video: Any) -> frozenset[str]:
    return frozenset(
        name for field in video.iterfind("Field") if field.get("locked") == "1" and (name := field.get("name"))
    )


def selected_upload_sha1(container: Any, kind: str) -> str | None:
    """SHA-1 of the selected image in a ``/posters`` or ``/arts`` list, if we (anyone) uploaded it.

    Plex names an uploaded image ``upload://posters/<sha1 of the bytes>``; that list is the
    only place the hash shows (the item's ``thumb`` URL carries a timestamp, not the hash).
    """
    prefix = f"upload://{kind}/"
    for photo in container if container is not None else ():
        if photo.get("selected") in ("1", "true"):
            rating_key = photo.get("ratingKey") or ""
            return rating_key[len(prefix) :] if rating_key.startswith(prefix) else None
    return None


def sections(container: Any) -> list[LibrarySection]:
    """Every library section of ``/library/sections`` (all types; callers filter)."""
    found = []
    for directory in container if container is not None else ():
        if directory.tag != "Directory" or directory.get("key") is None:
            continue
        found.append(
            LibrarySection(
                key=str(directory.get("key")),
                title=directory.get("title") or "",
                type=directory.get("type") or "",
                locations=tuple(loc.get("path") for loc in directory.iterfind("Location") if loc.get("path")),
            )
        )
    return found


def total_size(container: Any) -> int | None:
    return _int(container.get("totalSize")) if container is not None else None


__all__ = [
    "IMAGE_FIELDS",
    "item_ref",
    "locked_fields",
    "metadata",
    "part_paths",
    "section_key",
    "sections",
    "selected_upload_sha1",
    "total_size",
    "videos",
]
