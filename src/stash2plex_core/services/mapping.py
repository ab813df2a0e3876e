"""The field map (DESIGN §5): what a Stash scene should look like in Plex.

:func:`desired_state` is pure and total: every Stash value goes through the one sanitiser,
every field has a switch in :class:`~stash2plex_core.settings.Settings`, and a switched-on
field is *managed* even when Stash leaves it empty (so Plex is cleared to match).
:func:`digest` fingerprints the result so the worker can skip items where nothing changed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import posixpath
import re
import urllib.parse
from collections.abc import Iterable
from typing import Any
from typing import Final

import attrs

from stash2plex_core.models.plex import Actor
from stash2plex_core.models.plex import DesiredPlexState
from stash2plex_core.models.plex import PlexMetadata
from stash2plex_core.models.stash import StashScene
from stash2plex_core.services.sanitize import sanitize_name
from stash2plex_core.services.sanitize import sanitize_summary
from stash2plex_core.settings import Settings


#: Bumped whenever the field map changes meaning, so every recorded digest goes stale once.
DIGEST_VERSION: Final = 1

_DATE: Final = re.compile(r"^\s*(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?")
_DIRECTOR_SPLIT: Final = re.compile(r"\s*[,;]\s*")
#: Stash URLs that serve video, never images (the predecessor uploaded the preview MP4 as art).
_VIDEO_PATH: Final = re.compile(r"/(?:preview|stream|webp|vtt)(?:[./].*)?$|\.(?:mp4|m4v|webm|mkv|avi|mov|wmv)$", re.I)


def parse_date(value: str | None) -> tuple[dt.date | None, int | None]:
    """``(full date, year)`` from Stash's possibly partial ``YYYY[-MM[-DD]]``.

    A partial or impossible date keeps its year (when the year is valid) but gives no full
    date: Plex's ``originallyAvailableAt`` needs a day, and inventing one would be a lie.
    """
    match = _DATE.match(value or "")
    if match is None:
        return None, None
    year = int(match.group(1))
    if year < 1:
        return None, None
    if match.group(3) is None:
        return None, year
    try:
        return dt.date(year, int(match.group(2)), int(match.group(3))), year
    except ValueError:
        return None, year


def rating_to_plex(rating100: int | None) -> float | None:
    """Stash's 1-100 rating as Plex's 0-10 user rating, one decimal (85 → 8.5)."""
    if rating100 is None:
        return None
    return round(min(max(rating100, 0), 100) / 10, 1)


def _names(values: Iterable[str | None]) -> list[str]:
    """Sanitised, non-empty names, first spelling kept for names equal but for case.

    Plex shares tags library-wide and matches them without regard to case, so sending
    ``Blonde`` and ``blonde`` would leave a difference that never settles.
    """
    seen: set[str] = set()
    out: list[str] = []
    for raw in values:
        name = sanitize_name(raw)
        if name is None or name.casefold() in seen:
            continue
        seen.add(name.casefold())
        out.append(name)
    return out


def _sorted_names(values: Iterable[str | None]) -> list[str]:
    """:func:`_names` in name order, so caps and digests ignore the order Stash used."""
    cleaned: list[str] = [name for name in map(sanitize_name, values) if name is not None]
    cleaned.sort(key=lambda n: (n.casefold(), n))
    return _names(cleaned)


def _image_url(url: str | None) -> str | None:
    """A usable image URL, or ``None`` for empty, placeholder or video URLs."""
    if not url or not url.strip():
        return None
    url = url.strip()
    parts = urllib.parse.urlsplit(url)
    if _VIDEO_PATH.search(parts.path):
        return None
    if "default=true" in parts.query.lower():  # Stash's generated placeholder
        return None
    return url


def _title(scene: StashScene) -> str | None:
    """The scene title, or the primary file's name as Stash shows it when there is none.

    Plex cannot hold an empty title (it falls back to the scanned name), so "clearing" it
    would never settle; the file name is what both Stash and Plex display anyway.
    """
    title = sanitize_name(scene.title)
    if title is None and scene.files:
        name = posixpath.basename(scene.files[0].replace("\\", "/"))
        title = sanitize_name(posixpath.splitext(name)[0] or name)
    return title


def _actors(scene: StashScene, settings: Settings) -> list[Actor]:
    """Performers as actors, by name, capped; a photo only where the performer has one."""
    named = [(sanitize_name(p.name), p) for p in scene.performers]
    actors: list[Actor] = []
    seen: set[str] = set()
    for name, performer in sorted(
        ((n, p) for n, p in named if n is not None), key=lambda np: (np[0].casefold(), np[0], np[1].id)
    ):
        if name.casefold() in seen:
            continue
        seen.add(name.casefold())
        photo = _image_url(performer.image_url) if settings.sync_performer_photos else None
        actors.append(Actor(name=name, photo_url=photo))
    return actors[: settings.max_performers]


def desired_state(scene: StashScene, settings: Settings) -> DesiredPlexState:
    """The Plex state ``scene`` maps to under ``settings`` (DESIGN §5).

    Only switched-on fields are filled and listed in ``managed_fields`` (Plex field names);
    the rest stay ``None``/empty and are never touched. Lists are sorted by name so the
    result (and the cap) does not depend on the order Stash returned them in.
    """
    managed: set[str] = set()
    meta = PlexMetadata()

    def put(fields: Iterable[str], **changes: Any) -> None:
        nonlocal meta
        managed.update(fields)
        meta = attrs.evolve(meta, **changes)

    if settings.sync_title:
        put(["title"], title=_title(scene))
    if settings.sync_summary:
        put(["summary"], summary=sanitize_summary(scene.details))
    if settings.sync_date:
        date, year = parse_date(scene.date)
        put(["originallyAvailableAt", "year"], originally_available_at=date, year=year)
    if settings.sync_studio:
        put(["studio"], studio=sanitize_name(scene.studio.name) if scene.studio else None)
    if settings.sync_code:
        put(["tagline"], tagline=sanitize_name(scene.code))
    if settings.sync_rating:
        put(["userRating"], user_rating=rating_to_plex(scene.rating100))
    if settings.content_rating is not None:
        put(["contentRating"], content_rating=sanitize_name(settings.content_rating))
    if settings.sync_tags:
        put(["genre"], genres=_sorted_names(t.name for t in scene.tags)[: settings.max_tags])
    if settings.sync_studio_collection or settings.sync_group_collections:
        studio = [scene.studio.name] if settings.sync_studio_collection and scene.studio else []
        groups = _sorted_names(g.name for g in scene.groups) if settings.sync_group_collections else []
        put(["collection"], collections=_names([*studio, *groups]))
    if settings.sync_performers:
        put(["actor"], actors=_actors(scene, settings))
    if settings.sync_director:
        put(["director"], directors=_names(_DIRECTOR_SPLIT.split(scene.director or "")))

    poster_url = _image_url(scene.screenshot_url) if settings.sync_poster else None
    return DesiredPlexState(
        metadata=meta,
        managed_fields=frozenset(managed),
        poster_url=poster_url,
        lock_fields=settings.lock_fields,
        preserve_plex_edits=settings.preserve_plex_edits,
    )


def _canonical(desired: DesiredPlexState, poster_sha1: str | None) -> dict[str, object]:
    meta = desired.metadata
    return {
        "v": DIGEST_VERSION,
        "managed": sorted(desired.managed_fields),
        "lock": desired.lock_fields,
        "preserve": desired.preserve_plex_edits,
        "poster_url": desired.poster_url,
        "poster_sha1": poster_sha1,
        "title": meta.title,
        "sort_title": meta.sort_title,
        "original_title": meta.original_title,
        "summary": meta.summary,
        "tagline": meta.tagline,
        "studio": meta.studio,
        "date": meta.originally_available_at.isoformat() if meta.originally_available_at else None,
        "year": meta.year,
        "content_rating": meta.content_rating,
        "user_rating": None if meta.user_rating is None else f"{meta.user_rating:g}",
        # Plex keeps tag fields unordered, and so does the planner: so does the digest.
        "genres": sorted(meta.genres),
        "collections": sorted(meta.collections),
        "actors": sorted(json.dumps([a.name, a.role, a.photo_url]) for a in meta.actors),
        "directors": sorted(meta.directors),
        "writers": sorted(meta.writers),
        "labels": sorted(meta.labels),
    }


def digest(desired: DesiredPlexState, poster_sha1: str | None = None) -> str:
    """A stable SHA-256 (hex) of everything that decides what the planner sends.

    Equal across processes and runs for equal input; different when any field, switch,
    the poster URL or the poster's bytes (``poster_sha1``) differ.
    """
    text = json.dumps(_canonical(desired, poster_sha1), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


__all__ = ["DIGEST_VERSION", "desired_state", "digest", "parse_date", "rating_to_plex"]
