"""The GraphQL documents we send, and decoding their answers into core models.

Every document names its operation (it shows in Stash's logs) and carries its own
fragment with exactly the fields :class:`~stash2plex_core.models.stash.StashScene` needs,
so stashapi's generated ``...Scene`` fragment (every field of a scene, files, markers,
play history) is never used. Filters are built fresh for each request because stashapi
converts variables in place and shares default dicts between calls.
"""

from __future__ import annotations

import re
import unicodedata
import urllib.parse
from collections.abc import Mapping
from typing import Any
from typing import Final

from stash2plex_core.models.stash import StashGroup
from stash2plex_core.models.stash import StashPerformer
from stash2plex_core.models.stash import StashScene
from stash2plex_core.models.stash import StashStudio
from stash2plex_core.models.stash import StashTag


SCENE_FRAGMENT: Final = """
fragment Stash2PlexScene on Scene {
  id
  title
  code
  details
  director
  date
  rating100
  updated_at
  studio { id name parent_studio { id name } }
  performers { id name image_path }
  tags { id name }
  groups { group { id name } }
  files { path duration }
  paths { screenshot }
}
"""

VERSION: Final = "query Stash2PlexVersion { version { version hash build_time } }"

FIND_SCENE: Final = (
    """
query Stash2PlexFindScene($id: ID!) {
  findScene(id: $id) { ...Stash2PlexScene }
}
"""
    + SCENE_FRAGMENT
)

FIND_SCENES: Final = (
    """
query Stash2PlexFindScenes($filter: FindFilterType, $scene_filter: SceneFilterType) {
  findScenes(filter: $filter, scene_filter: $scene_filter) { scenes { ...Stash2PlexScene } }
}
"""
    + SCENE_FRAGMENT
)

#: A batch by id (``ids: [ID!]``, Stash v0.25+; the older ``scene_ids`` is deprecated).
FIND_SCENES_BY_IDS: Final = (
    """
query Stash2PlexFindScenesByIds($ids: [ID!], $filter: FindFilterType) {
  findScenes(ids: $ids, filter: $filter) { scenes { ...Stash2PlexScene } }
}
"""
    + SCENE_FRAGMENT
)


def ids_variables(scene_ids: list[str]) -> dict[str, Any]:
    """Variables for :data:`FIND_SCENES_BY_IDS`: one page holding all of them (the default is 25)."""
    return {
        "ids": list(scene_ids),
        "filter": {"page": 1, "per_page": len(scene_ids), "sort": "id", "direction": "ASC"},
    }


def page_variables(scene_filter: Mapping[str, Any], *, after_id: int, per_page: int) -> dict[str, Any]:
    """Variables for one keyset page: scenes with ``id > after_id``, by id ascending.

    Keyset paging (always page 1, moving the id floor) instead of page numbers: a scene
    added or removed while we iterate cannot shift the pages, so nothing is skipped or
    repeated, and every request is as cheap as the first.
    """
    criteria: dict[str, Any] = {key: dict(value) for key, value in scene_filter.items()}
    if after_id:
        criteria["id"] = {"value": after_id, "modifier": "GREATER_THAN"}
    return {
        "filter": {"page": 1, "per_page": per_page, "sort": "id", "direction": "ASC"},
        "scene_filter": criteria,
    }


def path_filter(path: str) -> dict[str, Any]:
    """Stash's ``EQUALS`` path criterion: a case-insensitive LIKE where ``_`` and ``%`` are
    wildcards, so it returns a superset that the caller narrows to exact matches."""
    return {"path": {"value": path, "modifier": "EQUALS"}}


def _loose_char(ch: str) -> str:
    """``ch`` for a widened LIKE value: ``_`` (any one character) unless LIKE already matches it loosely.

    SQLite's LIKE folds ASCII case only, so a non-ASCII character with case (``É``/``é``)
    becomes ``_``; so does a separator (``/`` against ``\\``). Caseless characters that NFC
    leaves alone (CJK, combining marks) stay, to keep the candidate set small.
    """
    if ch in "/\\":
        return "_"
    if ch.isascii():
        return ch
    if unicodedata.decomposition(ch) == "" and ch.lower() == ch == ch.upper() == ch.casefold():
        return ch
    return "_"


def loose_path_patterns(path: str) -> list[str]:
    """LIKE values that, between them, match every file whose normalised path equals ``path``'s.

    One per Unicode form (NFC and NFD: macOS stores decomposed names) with
    :func:`_loose_char` applied, inner separator runs as one ``_``, trailing ones dropped
    and a leading run as ``%`` (``/share/x`` normalises like the UNC ``\\\\share\\x``);
    a superset the caller narrows by comparing normalised paths. Case, composition and
    separator differences are covered; a case mapping that changes length (``ß``/``SS``)
    is not.
    """
    lead = re.match(r"[\\/]+", path)
    rest = re.sub(r"[\\/]+", "/", path[lead.end() :] if lead else path).rstrip("/")
    if not rest:
        return [path]
    patterns: list[str] = []
    for form in ("NFC", "NFD"):
        pattern = ("%" if lead else "") + "".join(_loose_char(ch) for ch in unicodedata.normalize(form, rest))
        if pattern not in patterns:
            patterns.append(pattern)
    return patterns


def updated_filter(value: str) -> dict[str, Any]:
    return {"updated_at": {"value": value, "modifier": "GREATER_THAN"}}


def _text(value: Any) -> str | None:
    """Stash sends ``null`` or ``""`` for an empty text field; both mean "empty"."""
    if value is None:
        return None
    text = str(value)
    return text or None


def _studio(raw: Any) -> StashStudio | None:
    if not raw:
        return None
    return StashStudio(id=str(raw["id"]), name=str(raw["name"]), parent=_studio(raw.get("parent_studio")))


def is_placeholder_image(url: str | None) -> bool:
    """Stash's ``image_path`` ends in ``default=true`` when it would serve a placeholder."""
    if not url:
        return True
    query = urllib.parse.urlsplit(url).query
    return "true" in urllib.parse.parse_qs(query).get("default", [])


def decode_scene(raw: Mapping[str, Any]) -> StashScene:
    """One ``Stash2PlexScene`` result as a :class:`StashScene`."""
    rating = raw.get("rating100")
    paths = raw.get("paths") or {}
    files = raw.get("files") or ()
    duration = files[0].get("duration") if files else None
    return StashScene(
        id=str(raw["id"]),
        title=_text(raw.get("title")),
        code=_text(raw.get("code")),
        details=_text(raw.get("details")),
        director=_text(raw.get("director")),
        date=_text(raw.get("date")),
        rating100=int(rating) if rating is not None else None,
        studio=_studio(raw.get("studio")),
        performers=tuple(
            StashPerformer(
                id=str(p["id"]),
                name=str(p["name"]),
                image_url=None if is_placeholder_image(p.get("image_path")) else p["image_path"],
            )
            for p in raw.get("performers") or ()
        ),
        tags=tuple(StashTag(id=str(t["id"]), name=str(t["name"])) for t in raw.get("tags") or ()),
        groups=tuple(
            StashGroup(id=str(g["group"]["id"]), name=str(g["group"]["name"]))
            for g in raw.get("groups") or ()
            if g.get("group")
        ),
        files=tuple(str(f["path"]) for f in files),
        screenshot_url=_text(paths.get("screenshot")),
        updated_at=_text(raw.get("updated_at")),
        duration=float(duration) if duration else None,
    )


#: The plugin's own settings (Stash keeps them in its config under ``plugins.<id>``).
PLUGIN_SETTINGS: Final = """
query Stash2PlexPluginSettings($ids: [ID!]) {
  configuration { plugins(include: $ids) }
}
"""


__all__ = [
    "FIND_SCENE",
    "FIND_SCENES",
    "PLUGIN_SETTINGS",
    "SCENE_FRAGMENT",
    "VERSION",
    "decode_scene",
    "is_placeholder_image",
    "page_variables",
    "path_filter",
    "updated_filter",
]
