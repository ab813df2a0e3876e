"""Matching a Stash scene to a Plex item, and the path rules that translate file paths."""

from __future__ import annotations

from enum import StrEnum

import attrs

from stash2plex_core.models.plex import PlexItemRef


class Confidence(StrEnum):
    HIGH = "high"
    LOW = "low"
    NONE = "none"


class MatchMethod(StrEnum):
    """How the match was found, in the order resolution tries them."""

    RECORDED = "recorded"
    EXACT_PATH = "exact_path"
    NORMALISED_PATH = "normalised_path"
    FILENAME = "filename"
    NONE = "none"


@attrs.frozen
class MatchResult:
    scene_id: str
    rating_key: str | None
    confidence: Confidence
    method: MatchMethod
    #: Every item considered plausible; more than one means the match was ambiguous.
    candidates: tuple[PlexItemRef, ...] = ()
    #: The Plex-side path the scene's file was mapped to.
    plex_path: str | None = None


@attrs.frozen
class PathRule:
    """One ordered rule translating paths between Stash and Plex.

    ``stash_pattern`` (a regex with named groups) matches a Stash path and
    ``plex_template`` (``str.format`` style, ``{name}`` per group) builds the Plex path;
    ``plex_pattern`` and ``stash_template`` do the reverse. Rules are checked at load by
    round-tripping sample paths. ``library_root`` is the Plex library folder the rule's
    paths live under (the metadata provider rebuilds absolute paths from it).
    """

    name: str
    stash_pattern: str
    plex_template: str
    plex_pattern: str
    stash_template: str
    library_root: str | None = None
    case_sensitive: bool = True
    samples: tuple[str, ...] = ()


__all__ = ["Confidence", "MatchMethod", "MatchResult", "PathRule"]
