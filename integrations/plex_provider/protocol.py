"""The Custom Metadata Provider wire format: documents, keys, GUIDs and image links.

Pure functions from our models to the JSON Plex expects (see ``plex-protocol.md`` §6 and
Plex's published ``MediaProvider``/``Metadata`` documents):

* the root document declares one movie provider with the ``match``, ``metadata`` and
  ``collection`` features, whose ``identifier`` is also the GUID scheme;
* every answer is a ``MediaContainer`` with ``offset``, ``totalSize``, ``identifier`` and
  ``size``;
* a scene's ratingKey is ``scene-<Stash id>`` (only ``[A-Za-z0-9_-]``, never a path), its
  GUID ``<identifier>://movie/scene-<id>``. The prefix keeps PMS-internal numeric keys, which
  Plex sends for items still bound to no agent, from ever naming a Stash scene;
* images point back at this provider (``/images/...``), signed when a shared secret is set,
  so Plex fetches them without Stash credentials;
* ``originallyAvailableAt`` is required on every item (§6.4), so an undated scene gets a
  stand-in (:func:`release_date`) rather than no date.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any
from typing import Final

from stash2plex_core.models.plex import DesiredPlexState
from stash2plex_core.models.stash import StashScene


MOVIE: Final = 1
METADATA_KEY: Final = "/library/metadata"
MATCH_KEY: Final = "/library/metadata/matches"
COLLECTION_KEY: Final = "/library/collections"
SCENE_PREFIX: Final = "scene-"
#: Plex's rule for ratingKeys (and our own for every id taken from a URL).
KEY_CHARS: Final = re.compile(r"^[A-Za-z0-9_-]{1,200}$")
#: Collection keys are names in base64 (a 255-character name can take 1,360 characters).
_COLLECTION_CHARS: Final = re.compile(r"^[A-Za-z0-9_-]{1,1400}$")
#: Scores on match results: an exact (mapped) path or our own GUID, a file name found once,
#: a file name found on several scenes, a title only (offered in "Fix match" lists).
SCORE_EXACT: Final = 100
SCORE_FILENAME: Final = 80
SCORE_AMBIGUOUS: Final = 50
SCORE_TITLE: Final = 40
#: The last-resort ``originallyAvailableAt``: nothing at all dates the scene.
UNKNOWN_DATE: Final = "1970-01-01"
_PARTIAL_DATE: Final = re.compile(r"^\s*(\d{4})(?:-(\d{1,2}))?")


def scene_key(scene_id: str) -> str:
    """The ratingKey of a Stash scene."""
    return f"{SCENE_PREFIX}{scene_id}"


def scene_id_from_key(rating_key: str) -> str | None:
    """The Stash scene id inside a ratingKey we issued, or ``None`` for anything else."""
    if not KEY_CHARS.match(rating_key) or not rating_key.startswith(SCENE_PREFIX):
        return None
    scene_id = rating_key[len(SCENE_PREFIX) :]
    return scene_id or None


def scene_guid(identifier: str, scene_id: str) -> str:
    return f"{identifier}://movie/{scene_key(scene_id)}"


def scene_id_from_guid(identifier: str, guid: object) -> str | None:
    """The scene id of one of *our* GUIDs (Plex sends it back when re-matching)."""
    prefix = f"{identifier}://movie/"
    if not isinstance(guid, str) or not guid.startswith(prefix):
        return None
    return scene_id_from_key(guid[len(prefix) :])


def collection_key(name: str) -> str:
    """A collection's ratingKey: its name in URL-safe base64, so it decodes back without state."""
    return base64.urlsafe_b64encode(name.encode("utf-8")).decode("ascii").rstrip("=")


def collection_name(key: str) -> str | None:
    if not _COLLECTION_CHARS.match(key):
        return None
    try:
        name = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return name if name and name.isprintable() and collection_key(name) == key else None


def root_document(identifier: str, title: str, version: str) -> dict[str, Any]:
    """``GET /``: the provider declaration Plex validates when the URL is added."""
    return {
        "MediaProvider": {
            "identifier": identifier,
            "title": title,
            "version": version,
            "Types": [{"type": MOVIE, "Scheme": [{"scheme": identifier}]}],
            "Feature": [
                {"type": "metadata", "key": METADATA_KEY},
                {"type": "match", "key": MATCH_KEY},
                {"type": "collection", "key": COLLECTION_KEY},
            ],
        }
    }


def container(identifier: str, items: Sequence[Mapping[str, Any]] = (), *, element: str = "Metadata") -> dict[str, Any]:
    """A ``MediaContainer`` holding ``items`` under ``element`` (``Metadata`` or ``Image``)."""
    return {
        "MediaContainer": {
            "offset": 0,
            "totalSize": len(items),
            "identifier": identifier,
            "size": len(items),
            element: list(items),
        }
    }


# --- image links --------------------------------------------------------------------------


def screenshot_path(scene_id: str) -> str:
    return f"/images/scene/{scene_id}/screenshot"


def performer_path(scene_id: str, performer_id: str) -> str:
    return f"/images/scene/{scene_id}/performer/{performer_id}"


def sign(secret: str, path: str) -> str:
    """The signature that lets Plex fetch one image path without knowing the secret."""
    return hmac.new(secret.encode("utf-8"), path.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def signature_ok(secret: str, path: str, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, path).encode(), signature.encode("utf-8", "replace"))


class Links:
    """Absolute image URLs on this provider for one request (base URL plus signature)."""

    def __init__(self, base_url: str, secret: str | None) -> None:
        self.base_url = base_url.rstrip("/")
        self.secret = secret

    def url(self, path: str) -> str:
        if self.secret:
            return f"{self.base_url}{path}?sig={sign(self.secret, path)}"
        return f"{self.base_url}{path}"


# --- metadata items -------------------------------------------------------------------------


def _fallback_title(scene: StashScene) -> str:
    if scene.files:
        name = scene.files[0].replace("\\", "/").rsplit("/", 1)[-1]
        stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
        if stem.strip():
            return stem.strip()
    return f"Scene {scene.id}"


def release_date(scene: StashScene, desired: DesiredPlexState) -> str:
    """``originallyAvailableAt`` (``YYYY-MM-DD``) for ``scene``; Plex requires one on every item.

    In order: the scene's date; a partial date (``YYYY`` or ``YYYY-MM``, kept as ``year``)
    as the first day of its year or month, so the two agree; the day Stash last updated
    the scene (the only other date Stash gives); else :data:`UNKNOWN_DATE`. A stand-in
    never sets ``year``, and Stash's date is used only while date sync is on.
    """
    meta = desired.metadata
    if meta.originally_available_at is not None:
        return meta.originally_available_at.isoformat()
    if meta.year is not None:
        month = 1
        partial = _PARTIAL_DATE.match(scene.date or "")
        if partial is not None and partial.group(2) is not None and int(partial.group(1)) == meta.year:
            month = int(partial.group(2)) if 1 <= int(partial.group(2)) <= 12 else 1
        return f"{meta.year:04d}-{month:02d}-01"
    if scene.updated_at:
        try:
            # The date as Stash wrote it, in the server's own offset.
            return dt.datetime.fromisoformat(scene.updated_at.strip()).date().isoformat()
        except ValueError:
            pass
    return UNKNOWN_DATE


def _tags(values: Iterable[str]) -> list[dict[str, Any]]:
    return [{"tag": value} for value in values]


def _performer_ids(scene: StashScene) -> dict[str, str]:
    """Photo URL → performer id, to turn the field map's photo URLs back into our own links."""
    out: dict[str, str] = {}
    for performer in scene.performers:
        if performer.image_url and performer.image_url.strip() not in out:
            out[performer.image_url.strip()] = performer.id
    return out


def roles(scene: StashScene, desired: DesiredPlexState, links: Links) -> list[dict[str, Any]]:
    """Performers as ``Role`` entries, in the field map's order, with photos served by us."""
    ids = _performer_ids(scene)
    out: list[dict[str, Any]] = []
    for order, actor in enumerate(desired.metadata.actors, start=1):
        role: dict[str, Any] = {"tag": actor.name, "order": order}
        if actor.role:
            role["role"] = actor.role
        performer_id = ids.get(actor.photo_url.strip()) if actor.photo_url else None
        if performer_id is not None:
            role["thumb"] = links.url(performer_path(scene.id, performer_id))
        out.append(role)
    return out


def images(scene: StashScene, desired: DesiredPlexState, links: Links, title: str) -> list[dict[str, Any]]:
    """The item's ``Image`` entries: the screenshot as cover poster and as background."""
    if not desired.poster_url:
        return []
    url = links.url(screenshot_path(scene.id))
    return [
        {"type": "coverPoster", "url": url, "alt": title},
        {"type": "background", "url": url, "alt": title},
    ]


def summary_item(
    identifier: str,
    scene: StashScene,
    desired: DesiredPlexState,
    links: Links,
    *,
    score: int | None = None,
) -> dict[str, Any]:
    """The fields every item carries: what a match result needs (plus ``score``)."""
    meta = desired.metadata
    key = scene_key(scene.id)
    title = meta.title or _fallback_title(scene)
    item: dict[str, Any] = {
        "ratingKey": key,
        "key": f"{METADATA_KEY}/{key}",
        "guid": scene_guid(identifier, scene.id),
        "type": "movie",
        "title": title,
        "originallyAvailableAt": release_date(scene, desired),
    }
    if meta.year is not None:
        item["year"] = meta.year
    if desired.poster_url:
        item["thumb"] = links.url(screenshot_path(scene.id))
    if score is not None:
        item["score"] = score
    return item


def metadata_item(identifier: str, scene: StashScene, desired: DesiredPlexState, links: Links) -> dict[str, Any]:
    """The full movie item for ``GET /library/metadata/{ratingKey}``: every mapped field."""
    meta = desired.metadata
    managed = desired.managed_fields
    item = summary_item(identifier, scene, desired, links)
    title = item["title"]
    for name, value in (
        ("summary", meta.summary),
        ("tagline", meta.tagline),
        ("studio", meta.studio),
        ("contentRating", meta.content_rating),
        ("titleSort", meta.sort_title),
        ("originalTitle", meta.original_title),
    ):
        if value:
            item[name] = value
    if scene.duration is not None and scene.duration > 0:
        item["duration"] = round(scene.duration * 1000)
    if desired.poster_url:
        item["art"] = item["thumb"]
    item["Image"] = images(scene, desired, links, title)
    if "genre" in managed:
        item["Genre"] = _tags(meta.genres)
    if meta.studio:
        item["Studio"] = [{"tag": meta.studio}]
    if "actor" in managed:
        item["Role"] = roles(scene, desired, links)
    if "director" in managed:
        item["Director"] = _tags(meta.directors)
    if meta.writers:
        item["Writer"] = _tags(meta.writers)
    if "collection" in managed:
        item["Collection"] = [
            {
                "guid": f"{identifier}://collection/{collection_key(name)}",
                "key": f"{COLLECTION_KEY}/{collection_key(name)}",
                "tag": name,
            }
            for name in meta.collections
        ]
    if meta.user_rating is not None:
        # Plex knows badges only for its own sources; ours names the provider so Plex shows
        # a plain audience score instead of passing Stash's rating off as IMDb's.
        item["Rating"] = [{"image": f"{identifier}://image.rating", "type": "audience", "value": meta.user_rating}]
    return item


def collection_item(identifier: str, name: str) -> dict[str, Any]:
    key = collection_key(name)
    return {
        "ratingKey": key,
        "key": f"{COLLECTION_KEY}/{key}",
        "guid": f"{identifier}://collection/{key}",
        "type": "collection",
        "title": name,
    }


def iso_now(now: dt.datetime) -> str:
    return now.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


__all__ = [
    "COLLECTION_KEY",
    "KEY_CHARS",
    "MATCH_KEY",
    "METADATA_KEY",
    "MOVIE",
    "SCORE_AMBIGUOUS",
    "SCORE_EXACT",
    "SCORE_FILENAME",
    "SCORE_TITLE",
    "UNKNOWN_DATE",
    "Links",
    "collection_item",
    "collection_key",
    "collection_name",
    "container",
    "images",
    "metadata_item",
    "performer_path",
    "release_date",
    "roles",
    "root_document",
    "scene_guid",
    "scene_id_from_guid",
    "scene_id_from_key",
    "scene_key",
    "screenshot_path",
    "sign",
    "signature_ok",
    "summary_item",
]
