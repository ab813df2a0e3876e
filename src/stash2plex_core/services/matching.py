"""Finding the Plex item of a Stash scene, with a confidence (DESIGN §6).

Resolution tries, in order, and stops at the first that finds something:

1. **recorded** — the ratingKey stored after the last sync, *verified*: the item still
   exists and one of its parts is one of the scene's files (mapped through the path rules);
2. **exact path** — each of the scene's files, mapped to Plex, looked up exactly
   (:meth:`PlexGateway.resolve_path`), primary file first;
3. **normalised path** — among items with the same file name, one whose part equals a
   mapped path once case, separators and Unicode composition (NFC/NFD) are ignored;
4. **file name** — any item with a part of the same file name: high confidence only when
   exactly one item qualifies, low otherwise, with every candidate listed.

Exact and normalised matches are high confidence. Nothing found gives
``Confidence.NONE``; the caller raises :class:`~stash2plex_core.errors.NotInPlexYetError`
and asks Plex to scan :attr:`MatchResult.plex_path`'s folder. Whether a low-confidence
match is applied is :func:`should_apply`'s call (``settings.allow_low_confidence``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from collections.abc import Sequence
from typing import Final

from stash2plex_core.models.health import SyncRecord
from stash2plex_core.models.matching import Confidence
from stash2plex_core.models.matching import MatchMethod
from stash2plex_core.models.matching import MatchResult
from stash2plex_core.models.plex import PlexItemRef
from stash2plex_core.models.plex import PlexItemState
from stash2plex_core.models.stash import StashScene
from stash2plex_core.ports.plex import PlexGateway
from stash2plex_core.services.pathrules import PathMapper
from stash2plex_core.services.pathrules import clean_path
from stash2plex_core.settings import Settings


_SEPARATORS: Final = re.compile(r"[\\/]+")


def normalise_path(path: str) -> str:
    """``path`` for loose comparison: NFC, case-folded, ``\\`` as ``/``, no doubled or trailing separators.

    Two paths equal after this name the same file on a case-insensitive file system, or
    were written by tools that disagree on separators or Unicode composition (macOS
    stores NFD). Only for comparing; never send the result anywhere.
    """
    text = _SEPARATORS.sub("/", unicodedata.normalize("NFC", path))
    if len(text) > 1:
        text = text.rstrip("/")
    return unicodedata.normalize("NFC", text.casefold())


def file_name(path: str) -> str:
    """The last segment of ``path``, whichever separator it uses."""
    return _SEPARATORS.split(path)[-1]


def should_apply(result: MatchResult, settings: Settings) -> bool:
    """Whether a match may be written to: high always, low only when the user allows it."""
    if result.rating_key is None:
        return False
    if result.confidence is Confidence.HIGH:
        return True
    return result.confidence is Confidence.LOW and settings.allow_low_confidence


def _unique(refs: Iterable[PlexItemRef]) -> list[PlexItemRef]:
    seen: dict[str, PlexItemRef] = {}
    for ref in refs:
        seen.setdefault(ref.rating_key, ref)
    return list(seen.values())


def _ref(item: PlexItemState) -> PlexItemRef:
    return PlexItemRef(
        rating_key=item.rating_key,
        section_key=item.section_key,
        title=item.metadata.title,
        part_paths=item.part_paths,
        updated_at=item.updated_at,
    )


def _common_tail(a: str, b: str) -> int:
    """How many trailing path segments two normalised paths share (ranks ambiguous candidates)."""
    count = 0
    for x, y in zip(reversed(a.split("/")), reversed(b.split("/")), strict=False):
        if x != y:
            break
        count += 1
    return count


def _key_order(rating_key: str) -> tuple[int, int | str]:
    return (0, int(rating_key)) if rating_key.isdigit() else (1, rating_key)


class Matcher:
    """Resolves scenes to Plex items; holds no mutable state, so threads may share it."""

    def __init__(self, plex: PlexGateway, mapper: PathMapper, settings: Settings) -> None:
        self.plex = plex
        self.mapper = mapper
        self.settings = settings

    def _mapped(self, scene: StashScene) -> list[tuple[str, str | None]]:
        """Each usable file with its Plex path (``None`` when no rule maps it); unsafe paths are dropped."""
        return [(f, self.mapper.to_plex(f)) for f in dict.fromkeys(scene.files) if clean_path(f) is not None]

    def _part_is_scene_file(self, part: str, mapped: Sequence[tuple[str, str | None]]) -> bool:
        """Whether a Plex part is one of the scene's files (mapped either way, compared loosely)."""
        loose_part = normalise_path(part)
        back = self.mapper.to_stash(part)
        loose_back = normalise_path(back) if back is not None else None
        return any(
            (plex_path is not None and normalise_path(plex_path) == loose_part) or normalise_path(file) == loose_back
            for file, plex_path in mapped
        )

    def _by_file_name(self, mapped: Sequence[tuple[str, str | None]]) -> list[PlexItemRef]:
        names: dict[str, None] = {}
        for file, plex_path in mapped:
            name = file_name(plex_path if plex_path is not None else file)
            # Plex on macOS stores decomposed (NFD) names; Stash usually sends NFC.
            for variant in (unicodedata.normalize("NFC", name), unicodedata.normalize("NFD", name)):
                if variant:
                    names.setdefault(variant)
        return _unique(ref for name in names for ref in self.plex.find_by_filename(name))

    def match(self, scene: StashScene, record: SyncRecord | None = None) -> MatchResult:
        """Find ``scene``'s Plex item; see the module docstring for the order and confidence.

        :param record: the scene's last sync record, whose ratingKey is tried first.
        """
        mapped = self._mapped(scene)
        primary = next((plex_path for _, plex_path in mapped if plex_path is not None), None)

        def result(
            confidence: Confidence, method: MatchMethod, refs: Sequence[PlexItemRef] = (), path: str | None = None
        ) -> MatchResult:
            return MatchResult(
                scene_id=scene.id,
                rating_key=refs[0].rating_key if refs else None,
                confidence=confidence,
                method=method,
                candidates=tuple(refs),
                plex_path=path if path is not None else primary,
            )

        # 1 + 2: exact paths, which also verify a recorded ratingKey cheaply.
        exact: tuple[str, list[PlexItemRef]] | None = None
        for _, plex_path in mapped:
            if plex_path is None:
                continue
            refs = _unique(self.plex.resolve_path(plex_path))
            if record is not None:
                recorded = [r for r in refs if r.rating_key == record.rating_key]
                if recorded:
                    return result(Confidence.HIGH, MatchMethod.RECORDED, recorded, plex_path)
            if refs and exact is None:
                exact = (plex_path, refs)
                if record is None:
                    break
        if exact is not None:
            plex_path, refs = exact
            return result(
                Confidence.HIGH if len(refs) == 1 else Confidence.LOW, MatchMethod.EXACT_PATH, refs, plex_path
            )

        # 1, when the file moved in a way only loose comparison sees (case, NFD, separators).
        if record is not None and record.rating_key.strip() and mapped:
            for item in self.plex.get_items([record.rating_key]):
                part = next((p for p in item.part_paths if self._part_is_scene_file(p, mapped)), None)
                if part is not None:
                    return result(Confidence.HIGH, MatchMethod.RECORDED, [_ref(item)], part)

        # 3 + 4: everything with the same file name, loosely compared, then by name alone.
        candidates = self._by_file_name(mapped)
        loose = [(ref, part) for ref in candidates for part in ref.part_paths if self._part_is_scene_file(part, mapped)]
        loose_refs = _unique(ref for ref, _ in loose)
        if loose_refs:
            confidence = Confidence.HIGH if len(loose_refs) == 1 else Confidence.LOW
            return result(confidence, MatchMethod.NORMALISED_PATH, loose_refs, loose[0][1])
        if candidates:
            target = normalise_path(primary if primary is not None else mapped[0][0])
            ranked = sorted(
                candidates,
                key=lambda r: (
                    -max((_common_tail(normalise_path(p), target) for p in r.part_paths), default=0),
                    _key_order(r.rating_key),
                ),
            )
            confidence = Confidence.HIGH if len(ranked) == 1 else Confidence.LOW
            return result(confidence, MatchMethod.FILENAME, ranked)
        return result(Confidence.NONE, MatchMethod.NONE)


__all__ = ["Matcher", "file_name", "normalise_path", "should_apply"]
