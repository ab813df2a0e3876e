"""The planner: the smallest :class:`PlexEdit` that brings an item to its desired state.

It diffs a :class:`DesiredPlexState` (from :func:`~stash2plex_core.services.mapping.desired_state`)
against the item's :class:`PlexItemState` read from Plex's detail page. Only managed fields
are considered. The rules (DESIGN §4-5, plex-protocol §3):

* scalars are compared as Plex spells them; a managed field empty in Stash is sent as
  ``""``, which clears it;
* a tag field that differs as a *set* (order is ignored; case and spacing are not) is sent
  as the full desired list plus explicit removals, so it is right whether the server
  appends or replaces; actors also differ when a wanted photo differs;
* managed fields not yet locked are locked (``settings.lock_fields``); nothing is unlocked;
* the poster is uploaded only when the SHA-1 of its bytes differs from the item's;
* in "preserve Plex edits" mode only fields empty in Plex are filled, nothing is cleared or
  removed, no lock is touched, and a poster is uploaded only if the item has none of ours
  and no chosen (locked) one.
"""

from __future__ import annotations

import hashlib
from typing import Final

from stash2plex_core.models.plex import SCALAR_ATTRS
from stash2plex_core.models.plex import SCALAR_FIELDS
from stash2plex_core.models.plex import TAG_ATTRS
from stash2plex_core.models.plex import TAG_FIELDS
from stash2plex_core.models.plex import Actor
from stash2plex_core.models.plex import DesiredPlexState
from stash2plex_core.models.plex import ImageKind
from stash2plex_core.models.plex import ImageUpload
from stash2plex_core.models.plex import PlexEdit
from stash2plex_core.models.plex import PlexItemState
from stash2plex_core.models.plex import PlexMetadata
from stash2plex_core.models.plex import TagEdit
from stash2plex_core.models.plex import scalar_to_plex
from stash2plex_core.settings import Settings


#: Plex refuses images over about 10 MB with a 500 that retrying cannot fix (plex-protocol §3.7).
MAX_IMAGE_BYTES: Final = 10_480_000


def _names(meta: PlexMetadata, field: str) -> tuple[str, ...]:
    values = getattr(meta, TAG_ATTRS[field])
    if field == "actor":
        return tuple(a.name for a in values)
    return tuple(values)


def _wanted_photos(actors: tuple[Actor, ...]) -> dict[str, str]:
    return {a.name: a.photo_url for a in actors if a.photo_url}


def _tags_differ(field: str, want: PlexMetadata, have: PlexMetadata) -> bool:
    if set(_names(want, field)) != set(_names(have, field)):
        return True
    if field != "actor":
        return False
    # Photos are compared only where we have one: a performer without an image leaves
    # whatever Plex shows for the role alone, so nothing flip-flops.
    current = {a.name: a.photo_url for a in have.actors}
    return any(current.get(name) != url for name, url in _wanted_photos(want.actors).items())


def _tag_edit(field: str, want: PlexMetadata, have: PlexMetadata, *, remove: bool) -> TagEdit:
    values = _names(want, field)
    wanted = set(values)
    removed = tuple(sorted({n for n in _names(have, field) if n not in wanted})) if remove else ()
    photos = _wanted_photos(want.actors) if field == "actor" else {}
    return TagEdit(values=values, removed=removed, photos=photos)


def poster_upload(
    desired: DesiredPlexState, current: PlexItemState, poster: bytes | None, *, preserve: bool = False
) -> ImageUpload | None:
    """The poster upload the item needs, or ``None`` (same bytes, no poster, too big)."""
    if not poster or desired.poster_url is None or len(poster) > MAX_IMAGE_BYTES:
        return None
    sha1 = hashlib.sha1(poster).hexdigest()  # noqa: S324 - Plex names uploads by SHA-1; not for security
    fingerprint = current.images.get(ImageKind.POSTER)
    if preserve and (fingerprint is not None or "thumb" in current.locked_fields):
        return None
    if fingerprint is not None and fingerprint.sha1 == sha1:
        return None
    return ImageUpload(kind=ImageKind.POSTER, data=poster, sha1=sha1)


def _scalar_changes(desired: DesiredPlexState, current: PlexItemState, *, preserve: bool) -> dict[str, str]:
    fields: dict[str, str] = {}
    for field in SCALAR_FIELDS:
        if field not in desired.managed_fields:
            continue
        wanted = scalar_to_plex(field, getattr(desired.metadata, SCALAR_ATTRS[field]))
        present = scalar_to_plex(field, getattr(current.metadata, SCALAR_ATTRS[field]))
        if (preserve and present == "" and wanted != "") or (not preserve and wanted != present):
            fields[field] = wanted
    return fields


def _tag_changes(desired: DesiredPlexState, current: PlexItemState, *, preserve: bool) -> dict[str, TagEdit]:
    want, have = desired.metadata, current.metadata
    tags: dict[str, TagEdit] = {}
    for field in TAG_FIELDS:
        if field not in desired.managed_fields:
            continue
        if preserve:
            if not _names(have, field) and _names(want, field):
                tags[field] = _tag_edit(field, want, have, remove=False)
        elif _tags_differ(field, want, have):
            tags[field] = _tag_edit(field, want, have, remove=True)
    return tags


def plan(
    desired: DesiredPlexState, current: PlexItemState, settings: Settings, *, poster: bytes | None = None
) -> PlexEdit:
    """The smallest edit that makes ``current`` look like ``desired``; empty when nothing differs.

    :param poster: the poster's bytes when the caller fetched them; without them no
        upload is planned.
    """
    preserve = settings.preserve_plex_edits
    locks: dict[str, bool] = {}
    if settings.lock_fields and not preserve:
        locks = {
            field: True
            for field in (*SCALAR_FIELDS, *TAG_FIELDS)
            if field in desired.managed_fields and field not in current.locked_fields
        }
    upload = poster_upload(desired, current, poster, preserve=preserve) if settings.sync_poster else None
    return PlexEdit(
        fields=_scalar_changes(desired, current, preserve=preserve),
        tags=_tag_changes(desired, current, preserve=preserve),
        locks=locks,
        images=(upload,) if upload else (),
    )


__all__ = ["MAX_IMAGE_BYTES", "plan", "poster_upload"]
