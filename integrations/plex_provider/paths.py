"""From the ``filename`` Plex sends to the Stash paths to look up, and the start-up check.

Plex sends a match's ``filename`` relative to the library root (``Movies/a.mp4``, sometimes
with a leading ``/``). Each path rule names the Plex ``library_root`` its paths live under,
and ``provider_library_roots`` adds roots for paths no rule needs to translate; the
provider joins the filename to every root, keeps the results that stay inside their root,
and maps each to Stash with the same :class:`~stash2plex_core.services.pathrules.PathMapper`
the sync uses. A filename that is absolute and already under a root is taken as it is.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from stash2plex_core.errors import InvalidSettingsError
from stash2plex_core.errors import SettingProblem
from stash2plex_core.services.pathrules import PathMapper
from stash2plex_core.services.pathrules import clean_path
from stash2plex_core.settings import Settings


#: Longest ``filename`` accepted from Plex (Linux's PATH_MAX).
MAX_FILENAME: int = 4096
#: The file name the start-up check maps under each library root.
PROBE: str = "stash2plex-probe/probe file.mp4"


class BadFilenameError(ValueError):
    """A ``filename`` no library file can have: empty, NUL, too long, or climbing with ``..``."""


@attrs.frozen
class Candidate:
    """One way to read a filename: the absolute Plex path and the Stash path it maps to."""

    plex_path: str
    stash_path: str


def _under(path: str, root: str) -> bool:
    root = root.rstrip("/")
    return path == root or path.startswith(root + "/")


class LibraryPaths:
    """The library roots and the mapper; turns Plex's relative filenames into Stash paths."""

    def __init__(self, mapper: PathMapper, roots: Sequence[str]) -> None:
        self.mapper = mapper
        cleaned = (clean_path(r) for r in roots)
        self.roots: tuple[str, ...] = tuple(dict.fromkeys(r.rstrip("/") or "/" for r in cleaned if r))

    @classmethod
    def from_settings(cls, settings: Settings, mapper: PathMapper | None = None) -> LibraryPaths:
        mapper = mapper or PathMapper.compile(settings.path_rules)
        roots = [r.library_root for r in settings.path_rules if r.library_root] + list(settings.provider_library_roots)
        return cls(mapper, roots)

    @staticmethod
    def clean_filename(filename: object) -> str:
        """``filename`` with ``/`` separators and no ``.``/empty segments, or :class:`BadFilenameError`."""
        if not isinstance(filename, str) or not filename.strip():
            raise BadFilenameError("filename must be a non-empty string")
        if len(filename) > MAX_FILENAME:
            raise BadFilenameError(f"filename is longer than {MAX_FILENAME} characters")
        cleaned = clean_path(filename)
        if cleaned is None:
            raise BadFilenameError("filename holds NUL or climbs out of the library with '..'")
        return cleaned

    def plex_paths(self, filename: str) -> list[str]:
        """Absolute Plex paths ``filename`` may name, one per root, each inside its root."""
        cleaned = self.clean_filename(filename)
        out: list[str] = []
        if cleaned.startswith("/") and any(_under(cleaned, root) for root in self.roots):
            out.append(cleaned)
        relative = cleaned.lstrip("/")
        for root in self.roots:
            joined = clean_path(f"{root.rstrip('/')}/{relative}")
            if joined is not None and _under(joined, root) and joined not in out:
                out.append(joined)
        return out

    def candidates(self, filename: str) -> list[Candidate]:
        """Every (Plex path, Stash path) pair worth a Stash lookup, best first."""
        out: list[Candidate] = []
        seen: set[str] = set()
        for plex_path in self.plex_paths(filename):
            stash_path = self.mapper.to_stash(plex_path)
            if stash_path is not None and stash_path not in seen:
                seen.add(stash_path)
                out.append(Candidate(plex_path, stash_path))
        return out


def check_library_roots(settings: Settings, paths: LibraryPaths) -> None:
    """Round-trip a file under every library root through the rules; stop start-up if one breaks.

    A root whose files no rule maps to Stash (or maps to a Stash path that does not come back
    to the same Plex path) would leave every match under it to the weaker filename fallback,
    so the provider refuses to start and names the rule (or setting) and the reason.
    """
    problems: list[SettingProblem] = []
    origins: list[tuple[str, str]] = [
        (f"path_rules[{index}] {rule.name!r}", rule.library_root)
        for index, rule in enumerate(settings.path_rules)
        if rule.library_root
    ]
    origins += [(f"provider_library_roots[{i}]", root) for i, root in enumerate(settings.provider_library_roots)]
    for where, root in origins:
        cleaned = clean_path(root)
        if cleaned is None:
            problems.append(SettingProblem(where, f"library_root {root!r} is empty or climbs out with '..'"))
            continue
        probe = f"{cleaned.rstrip('/')}/{PROBE}"
        stash = paths.mapper.to_stash(probe)
        if stash is None:
            problems.append(
                SettingProblem(
                    where,
                    f"a file under library_root {root!r} ({probe!r}) maps to no Stash path: "
                    "no rule's plex_pattern matches it",
                )
            )
            continue
        back = paths.mapper.to_plex(stash)
        if back != probe:
            problems.append(
                SettingProblem(
                    where,
                    f"a file under library_root {root!r} does not round-trip: {probe!r} maps to Stash path "
                    f"{stash!r}, and that back to {back!r}",
                )
            )
    if problems:
        raise InvalidSettingsError(problems)


__all__ = ["MAX_FILENAME", "BadFilenameError", "Candidate", "LibraryPaths", "check_library_roots"]
