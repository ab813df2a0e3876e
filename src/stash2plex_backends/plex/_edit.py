"""The query arguments of the one edit PUT (``reference/plex-protocol.md`` sections 3.1 to 3.5).

We build the argument dict ourselves instead of chaining plexapi's ``addGenre``/``editTitle``
helpers: those rebuild tag lists from the object's cached (possibly stale or truncated) tags,
reuse indices inside a batch and may auto-reload before the PUT. The dict is encoded with
plexapi's own ``utils.joinArgs``, so the request is byte-for-byte what plexapi would send.
"""

from __future__ import annotations

import urllib.parse

from stash2plex_core.models.plex import PlexEdit


#: Plex's search type for movies; an edit's ``type`` must match the items.
MOVIE_TYPE = "1"


def edit_args(rating_key: str, edit: PlexEdit) -> dict[str, str]:
    """Every change of ``edit`` as PUT arguments for ``/library/sections/{id}/all``.

    * scalar fields: ``<field>.value`` (``""`` clears);
    * locks: ``<field>.locked`` = 1/0, exactly as the edit says (raw edits add no locks);
    * tags: the complete wanted list as ``<tag>[i].tag.tag`` (actors also
      ``actor[i].tag.thumb`` for a photo) plus the explicit removals as one
      ``<tag>[].tag.tag-`` whose names are quoted once here and once more by the query
      encoding, so a comma inside a name survives; an empty wanted list clears the field
      with ``<tag>[].tag=`` as well, which is what "no values" means in either tag mode.

    The item id is always present: a PUT without ``id`` edits every item of the section.
    """
    if not rating_key:
        raise ValueError("an edit needs the item's ratingKey")
    args: dict[str, str] = {"type": MOVIE_TYPE, "id": rating_key}
    for field, value in edit.fields.items():
        args[f"{field}.value"] = value
    for field, locked in edit.locks.items():
        args[f"{field}.locked"] = "1" if locked else "0"
    for field, tags in edit.tags.items():
        for index, name in enumerate(tags.values):
            args[f"{field}[{index}].tag.tag"] = name
            photo = tags.photos.get(name) if field == "actor" else None
            if photo:
                args[f"{field}[{index}].tag.thumb"] = photo
        if tags.removed:
            args[f"{field}[].tag.tag-"] = ",".join(urllib.parse.quote(name, safe="") for name in tags.removed)
        if not tags.values:
            args[f"{field}[].tag"] = ""
    return args


__all__ = ["MOVIE_TYPE", "edit_args"]
