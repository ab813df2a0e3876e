"""Path rules: translate file paths between Stash's view and Plex's view, safely.

A :class:`~stash2plex_core.models.matching.PathRule` holds two regexes with named groups
and two ``str.format``-style templates, one pair per direction. :meth:`PathMapper.compile`
checks every rule once, when settings load, and reports every bad rule at once, each by
name and with the reason:

* the patterns compile with the safe engine and their named groups are exactly the fields
  of the opposite template (a group the template drops would lose part of the path);
* each ``samples`` entry (a Stash path) maps to Plex and back to itself, through this rule,
  and no earlier rule takes it first.

Rules come from users, so a pattern must never run away (CWE-1333). With ``google-re2``
installed (``pip install stash2plex[re2]``) patterns run in linear time. Without it the
stdlib engine is used behind a guard that admits only patterns whose backtracking is
provably bounded (no backreferences or lookarounds, no nested or alternated repeats, at
most two ambiguous variable-length repeats, few alternatives) and that maps paths of at
most :data:`FALLBACK_MAX_PATH_CHARS` characters, which keeps every match far below 50 ms.

Mapped paths never escape (CWE-22): patterns always see forward slashes (a Windows path,
``C:\\x`` or ``\\\\server\\share``, is read with ``/``); the result is normalised
(duplicate separators and ``.`` segments dropped), refused if it contains ``..`` (or
dot-only) segments or NUL, and, when the rule has a ``library_root``, refused unless it
lies under that root. A template written with backslashes yields a backslash path.
"""

from __future__ import annotations

import importlib
import re
import string
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any
from typing import Final
from typing import Literal

import attrs

from stash2plex_core.errors import InvalidSettingsError
from stash2plex_core.errors import SettingProblem
from stash2plex_core.models.matching import PathRule


#: Most rules one configuration may hold.
MAX_RULES: Final = 100
#: Longest pattern or template accepted.
MAX_PATTERN_CHARS: Final = 1_000
#: Longest path mapped with google-re2 (PATH_MAX on Linux); longer paths map to ``None``.
MAX_PATH_CHARS: Final = 4_096
#: Longest path mapped by the bounded stdlib fallback.
FALLBACK_MAX_PATH_CHARS: Final = 1_024
#: Most ambiguous variable-length repeats the fallback admits (its worst case is n**degree).
FALLBACK_MAX_DEGREE: Final = 2
#: Most alternative ways through a pattern's alternations the fallback admits.
FALLBACK_MAX_ALTERNATIVES: Final = 8

EngineName = Literal["auto", "re2", "re"]
Groups = Mapping[str, str | None]


class _PatternError(ValueError):
    """A pattern the chosen engine refuses, with the reason in words."""


# --- path normalisation -----------------------------------------------------------------

_DRIVE: Final = re.compile(r"^[A-Za-z]:[\\/]")


def _windows_style(path: str) -> bool:
    """Whether backslashes in ``path`` are separators: a drive or UNC path, or no ``/`` at all."""
    return bool(_DRIVE.match(path)) or path.startswith(("\\\\", "//")) or ("\\" in path and "/" not in path)


def _unsafe_segment(segment: str) -> bool:
    # ".." climbs; Windows also trims trailing dots and spaces, so "..." and ". ." do too.
    return segment.count(".") >= 2 and set(segment) <= {".", " "}


def clean_path(path: str) -> str | None:
    """``path`` with ``/`` separators, duplicate separators and ``.`` segments removed.

    ``None`` when the path is empty, holds NUL, or has a ``..`` (or dot-only) segment:
    such a path is never mapped. A leading ``//`` (a UNC share) is kept.
    """
    if not path or "\x00" in path:
        return None
    text = path.replace("\\", "/") if _windows_style(path) else path
    lead = "//" if text.startswith("//") and not text.startswith("///") else "/" if text.startswith("/") else ""
    segments = [s for s in text.split("/") if s not in ("", ".")]
    if any(_unsafe_segment(s) for s in segments):
        return None
    cleaned = lead + "/".join(segments)
    return cleaned or None


def _under(path: str, root: str, *, case_sensitive: bool) -> bool:
    if not case_sensitive:
        path, root = path.casefold(), root.casefold()
    root = root.rstrip("/")
    return path == root or path.startswith(root + "/") or (root == "" and path.startswith("/"))


# --- templates --------------------------------------------------------------------------


@attrs.frozen
class _Template:
    """A ``str.format``-style template reduced to literal text and group names."""

    source: str
    parts: tuple[tuple[str, str | None], ...]
    backslashes: bool

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(name for _, name in self.parts if name is not None)

    @classmethod
    def parse(cls, source: str) -> _Template:
        parts: list[tuple[str, str | None]] = []
        try:
            parsed = list(string.Formatter().parse(source))
        except ValueError as exc:
            raise _PatternError(f"is not a valid template: {exc}") from None
        for literal, name, spec, conversion in parsed:
            if name is not None and (not name.isidentifier() or spec or conversion):
                shown = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
                raise _PatternError(f"field {shown} must be a plain group name such as {{rest}}")
            parts.append((literal, name))
        literal_text = "".join(lit for lit, _ in parts)
        return cls(source, tuple(parts), backslashes=_windows_style(literal_text) and "\\" in literal_text)

    def render(self, groups: Groups) -> str:
        return "".join(literal + (groups.get(name) or "" if name else "") for literal, name in self.parts)


# --- engines ----------------------------------------------------------------------------


class _Pattern:
    """A compiled pattern: full match only, named groups out."""

    def __init__(self, fullmatch: Callable[[str], Any], groups: frozenset[str], max_input: int) -> None:
        self._fullmatch = fullmatch
        self.groups = groups
        self.max_input = max_input

    def match(self, text: str) -> Groups | None:
        if len(text) > self.max_input:
            return None
        try:
            found = self._fullmatch(text)
        except UnicodeError:  # re2 cannot encode lone surrogates
            return None
        return None if found is None else dict(found.groupdict())


def _re2_module() -> Any | None:
    try:
        return importlib.import_module("re2")
    except ImportError:
        return None


def _compile_re2(re2: Any, pattern: str, *, case_sensitive: bool) -> _Pattern:
    options = re2.Options()
    options.log_errors = False
    options.case_sensitive = case_sensitive
    try:
        compiled = re2.compile(pattern, options)
    except re2.error as exc:
        detail = exc.args[0] if exc.args else exc
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        raise _PatternError(f"does not compile with re2: {detail}") from None
    return _Pattern(compiled.fullmatch, frozenset(compiled.groupindex), MAX_PATH_CHARS)


def _compile_re(pattern: str, *, case_sensitive: bool) -> _Pattern:
    try:
        compiled = re.compile(pattern, 0 if case_sensitive else re.IGNORECASE)
    except re.error as exc:
        raise _PatternError(f"does not compile: {exc}") from None
    reason = _unbounded_reason(pattern, compiled.flags)
    if reason is not None:
        raise _PatternError(f"{reason}; without google-re2 (pip install 'stash2plex[re2]') it could run away")
    return _Pattern(compiled.fullmatch, frozenset(compiled.groupindex), FALLBACK_MAX_PATH_CHARS)


# --- the stdlib guard ---------------------------------------------------------------------
#
# Backtracking cost comes from choices the matcher may revisit. With the constructs we admit,
# the only revisitable choices are (1) where a variable-length repeat stops and (2) which
# alternative of an alternation is taken. A repeat of one character class C that is followed
# by a character that C cannot match (``[^/]*/``) or by the end is *guarded*: giving back any
# character makes the next step fail at once, so it costs O(run) and adds no choices. Every
# other variable-length repeat is *ambiguous* and multiplies the work by up to n. So the
# worst case is O(alternatives * n ** degree), where degree counts the ambiguous repeats
# (plus one when a guarded repeat is re-entered after an ambiguous one). Anything we cannot
# reason about is refused.

_SRE: Any = importlib.import_module("re._parser")
_C: Any = importlib.import_module("re._constants")
_SINGLE: Final = frozenset({_C.LITERAL, _C.NOT_LITERAL, _C.IN, _C.ANY})
_REPEATS: Final = frozenset(
    op for op in (_C.MAX_REPEAT, _C.MIN_REPEAT, getattr(_C, "POSSESSIVE_REPEAT", None)) if op is not None
)
_GROUPS: Final = frozenset(op for op in (_C.SUBPATTERN, getattr(_C, "ATOMIC_GROUP", None)) if op is not None)
_FORBIDDEN: Final = {
    _C.GROUPREF: "uses a backreference",
    _C.GROUPREF_EXISTS: "uses a conditional group",
    _C.ASSERT: "uses a lookaround",
    _C.ASSERT_NOT: "uses a lookaround",
}
_ENDS: Final = frozenset({_C.AT_END, _C.AT_END_STRING})


@attrs.define
class _Shape:
    variable_repeats: int = 0
    ambiguous: int = 0
    guarded_after_ambiguous: bool = False
    alternatives: int = 1

    @property
    def degree(self) -> int:
        return self.ambiguous + (1 if self.guarded_after_ambiguous else 0)


def _flatten(items: Any) -> list[tuple[Any, Any]]:
    out: list[tuple[Any, Any]] = []
    for op, av in items:
        if op == _C.SUBPATTERN:
            out.extend(_flatten(av[3]))
        elif op in _GROUPS:
            out.extend(_flatten(av))
        else:
            out.append((op, av))
    return out


def _category(category: Any, ch: str) -> bool | None:
    """Whether ``\\d``-style ``category`` matches ``ch``; ``None`` when Unicode and ASCII rules disagree."""
    tests: dict[str, tuple[bool, bool]] = {
        "DIGIT": (ch.isdecimal(), ch in string.digits),
        "SPACE": (ch.isspace(), ch in " \t\n\r\f\v"),
        "WORD": (ch.isalnum() or ch == "_", ch in string.ascii_letters + string.digits + "_"),
    }
    name = str(category).removeprefix("CATEGORY_")
    negate = name.startswith("NOT_")
    pair = tests.get(name.removeprefix("NOT_"))
    if pair is None or pair[0] != pair[1]:
        return None
    return pair[0] != negate


def _might_match(item: tuple[Any, Any], ch: str) -> bool:
    """Whether the one-character matcher ``item`` could match ``ch`` (``True`` when unsure)."""
    op, av = item
    if op == _C.LITERAL:
        return chr(av) == ch
    if op == _C.NOT_LITERAL:
        return chr(av) != ch
    if op == _C.IN:
        negate = bool(av) and av[0][0] == _C.NEGATE
        results: list[bool | None] = []
        for sub_op, sub_av in av[1:] if negate else av:
            if sub_op == _C.LITERAL:
                results.append(chr(sub_av) == ch)
            elif sub_op == _C.RANGE:
                results.append(sub_av[0] <= ord(ch) <= sub_av[1])
            elif sub_op == _C.CATEGORY:
                results.append(_category(sub_av, ch))
            else:
                results.append(None)
        if negate:
            return not any(r is True for r in results)
        return any(r is not False for r in results)
    return True


def _explicit_chars(item: tuple[Any, Any]) -> set[str] | None:
    """The characters ``item`` matches when it is a short explicit set of non-letters."""
    op, av = item
    chars: set[str] = set()
    if op == _C.LITERAL:
        chars.add(chr(av))
    elif op == _C.IN and av and av[0][0] != _C.NEGATE:
        for sub_op, sub_av in av:
            if sub_op == _C.LITERAL:
                chars.add(chr(sub_av))
            elif sub_op == _C.RANGE and sub_av[1] - sub_av[0] < 64:
                chars.update(map(chr, range(sub_av[0], sub_av[1] + 1)))
            else:
                return None
    else:
        return None
    # Letters may match other letters under case folding (long s and s): not provable.
    return None if any(c.isalpha() for c in chars) else chars


def _single_body(body: Any) -> tuple[Any, Any] | None:
    atoms = [a for a in _flatten(body) if a[0] != _C.AT]
    return atoms[0] if len(atoms) == 1 and atoms[0][0] in _SINGLE else None


def _guarded(atoms: list[tuple[Any, Any]], index: int) -> bool:
    op, (_low, _high, body) = atoms[index]
    if op == getattr(_C, "POSSESSIVE_REPEAT", None):
        return True  # never gives characters back
    repeated = _single_body(body)
    if repeated is None:
        return False
    for next_op, next_av in atoms[index + 1 :]:
        if next_op == _C.AT:
            if next_av in _ENDS:
                return True
            continue
        following: tuple[Any, Any] | None = (next_op, next_av) if next_op in _SINGLE else None
        if next_op in _REPEATS and next_av[0] >= 1:
            following = _single_body(next_av[2])
        if following is None:
            return False
        chars = _explicit_chars(following)
        return chars is not None and not any(_might_match(repeated, c) for c in chars)
    return True  # last in the pattern: a full match cannot backtrack into it usefully


def _check_repeat_body(body: Any) -> str | None:
    for op, av in _flatten(body):
        if op == _C.BRANCH:
            return "repeats an alternation"
        if op in _REPEATS and (av[0] != av[1] or _single_body(av[2]) is None):
            return "has a nested quantifier"
        if op in _FORBIDDEN:
            return _FORBIDDEN[op]
    return None


def _branch_ways(alternatives: Any) -> int | str:
    ways = 0
    for alternative in alternatives:
        inner = _shape(alternative)
        if isinstance(inner, str):
            return inner
        if inner.variable_repeats:
            return "has a variable-length repeat inside an alternation"
        ways += inner.alternatives
    return ways


def _shape(items: Any) -> _Shape | str:
    shape = _Shape()
    atoms = _flatten(items)
    for index, (op, av) in enumerate(atoms):
        if op in _FORBIDDEN:
            return _FORBIDDEN[op]
        if op in _SINGLE or op == _C.AT:
            continue
        if op == _C.BRANCH:
            ways = _branch_ways(av[1])
            if isinstance(ways, str):
                return ways
            shape.alternatives *= ways
        elif op in _REPEATS:
            low, high, body = av
            problem = _check_repeat_body(body)
            if problem is not None:
                return problem
            if low == high:
                continue  # a fixed count leaves nothing to choose
            shape.variable_repeats += 1
            if _guarded(atoms, index):
                shape.guarded_after_ambiguous |= shape.ambiguous > 0
            else:
                shape.ambiguous += 1
        else:
            return f"uses a construct ({op}) whose cost cannot be bounded"
    return shape


def _unbounded_reason(pattern: str, flags: int) -> str | None:
    """Why the stdlib engine might backtrack on ``pattern`` without bound, or ``None``."""
    shape = _shape(_SRE.parse(pattern, flags))
    if isinstance(shape, str):
        return shape
    if shape.degree > FALLBACK_MAX_DEGREE:
        return (
            f"could backtrack in time n**{shape.degree} (at most n**{FALLBACK_MAX_DEGREE} is allowed): "
            f"{shape.ambiguous} variable-length repeat(s) are ambiguous; follow a repeat by a character "
            "it cannot match, e.g. [^/]*/"
        )
    if shape.alternatives > FALLBACK_MAX_ALTERNATIVES:
        return f"has {shape.alternatives} ways through its alternations (at most {FALLBACK_MAX_ALTERNATIVES})"
    return None


# --- rules and the mapper ---------------------------------------------------------------


@attrs.frozen(eq=False)
class _Direction:
    pattern: _Pattern
    template: _Template
    root: str | None
    case_sensitive: bool

    def apply(self, path: str) -> tuple[str | None, str]:
        """``(mapped path, "")`` or ``(None, why)``; ``why`` is empty when the rule does not match."""
        cleaned = clean_path(path)
        if cleaned is None:
            return None, "the path is empty or unsafe"
        groups = self.pattern.match(cleaned)
        if groups is None:
            return None, ""
        rendered = self.template.render(groups)
        if (self.template.backslashes or _windows_style(rendered)) and any("\\" in (v or "") for v in groups.values()):
            # A backslash that is part of a POSIX file name would become a separator.
            return None, f"it maps to {rendered!r}, where a backslash from a file name would become a separator"
        result = clean_path(rendered.replace("\\", "/") if self.template.backslashes else rendered)
        if result is None:
            return None, f"it maps to {rendered!r}, which climbs out of its folder or is empty"
        if self.root is not None and not _under(result, self.root, case_sensitive=self.case_sensitive):
            return None, f"it maps to {result!r}, outside library_root {self.root!r}"
        return (result.replace("/", "\\") if self.template.backslashes else result), ""


@attrs.frozen(eq=False)
class _CompiledRule:
    rule: PathRule
    to_plex: _Direction
    to_stash: _Direction


def _compile_parts(
    rule: PathRule, compile_pattern: Callable[[str, bool], _Pattern]
) -> tuple[dict[str, _Pattern], dict[str, _Template], list[str]]:
    problems: list[str] = []
    patterns: dict[str, _Pattern] = {}
    templates: dict[str, _Template] = {}
    for attr in ("stash_pattern", "plex_pattern", "plex_template", "stash_template"):
        source = getattr(rule, attr)
        if not _is_text(source) or not source:
            problems.append(f"{attr} is empty")
            continue
        if len(source) > MAX_PATTERN_CHARS:
            problems.append(f"{attr} is longer than {MAX_PATTERN_CHARS} characters")
            continue
        try:
            if attr.endswith("_pattern"):
                patterns[attr] = compile_pattern(source, rule.case_sensitive)
            else:
                templates[attr] = _Template.parse(source)
        except _PatternError as exc:
            problems.append(f"{attr} {exc}")
            continue
        if attr in templates:
            literal = "".join(lit for lit, _ in templates[attr].parts).replace("\\", "/")
            if any(_unsafe_segment(s) for s in literal.split("/")):
                problems.append(f"{attr} climbs out of its folder with '..'")
    return patterns, templates, problems


def _compile_rule(rule: PathRule, compile_pattern: Callable[[str, bool], _Pattern]) -> _CompiledRule | list[str]:
    patterns, templates, problems = _compile_parts(rule, compile_pattern)
    for pattern_attr, template_attr in (("stash_pattern", "plex_template"), ("plex_pattern", "stash_template")):
        if pattern_attr in patterns and template_attr in templates:
            groups, fields = patterns[pattern_attr].groups, templates[template_attr].fields
            problems.extend(
                f"{template_attr} uses {{{name}}} but {pattern_attr} has no group named {name!r}"
                for name in sorted(fields - groups)
            )
            problems.extend(
                f"{pattern_attr} group {name!r} is not used by {template_attr} (that part of a path would be lost)"
                for name in sorted(groups - fields)
            )
    root = None
    if rule.library_root is not None:
        root = clean_path(rule.library_root)
        if root is None:
            problems.append(f"library_root {rule.library_root!r} is empty or climbs out with '..'")
    if problems:
        return problems
    return _CompiledRule(
        rule,
        _Direction(patterns["stash_pattern"], templates["plex_template"], root, rule.case_sensitive),
        _Direction(patterns["plex_pattern"], templates["stash_template"], None, rule.case_sensitive),
    )


def _is_text(value: object) -> bool:
    return isinstance(value, str)


def _check_samples(compiled: _CompiledRule, earlier: Sequence[_CompiledRule]) -> list[str]:
    problems: list[str] = []
    for sample in compiled.rule.samples:
        if not _is_text(sample) or clean_path(sample) is None:
            problems.append(f"sample {sample!r} is empty or unsafe")
            continue
        plex, why = compiled.to_plex.apply(sample)
        if plex is None:
            problems.append(f"sample {sample!r} " + (f"is refused: {why}" if why else "does not match stash_pattern"))
            continue
        back, why = compiled.to_stash.apply(plex)
        if back is None:
            problems.append(
                f"sample {sample!r} maps to {plex!r}, which "
                + (f"is refused on the way back: {why}" if why else "does not match plex_pattern")
            )
            continue
        expected = clean_path(sample)
        if back != expected and clean_path(back) != expected:
            problems.append(f"sample {sample!r} does not round-trip: it maps to {plex!r}, and that back to {back!r}")
            continue
        for other in earlier:
            if other.to_plex.apply(sample)[0] is not None:
                problems.append(f"sample {sample!r} is taken by earlier rule {other.rule.name!r}")
                break
            if other.to_stash.apply(plex)[0] is not None:
                problems.append(f"sample's Plex path {plex!r} is taken back by earlier rule {other.rule.name!r}")
                break
    return problems


class PathMapper:
    """Ordered, validated path rules; the first rule that matches wins.

    With no rules the mapping is the identity (paths are only checked for safety).
    Build it once per settings load; it is immutable and safe to share between threads.

    :raises InvalidSettingsError: listing every bad rule, by name, with the reason.
    """

    def __init__(self, rules: Sequence[PathRule] = (), *, engine: EngineName = "auto") -> None:
        re2 = _re2_module() if engine in ("auto", "re2") else None
        if engine == "re2" and re2 is None:
            raise InvalidSettingsError(
                [SettingProblem("path_rules", "google-re2 is not installed (pip install 'stash2plex[re2]')")]
            )
        self.engine: str = "re2" if re2 is not None else "re"

        def compile_pattern(source: str, case_sensitive: bool) -> _Pattern:
            if re2 is not None:
                return _compile_re2(re2, source, case_sensitive=case_sensitive)
            return _compile_re(source, case_sensitive=case_sensitive)

        problems: list[SettingProblem] = []
        if len(rules) > MAX_RULES:
            problems.append(SettingProblem("path_rules", f"{len(rules)} rules given; at most {MAX_RULES} are allowed"))
        compiled: list[_CompiledRule] = []
        names: dict[str, int] = {}
        for index, rule in enumerate(rules[:MAX_RULES]):
            key = f"path_rules[{index}] {rule.name!r}"
            reasons: list[str] = []
            if not rule.name or not rule.name.strip():
                reasons.append("name is empty")
            elif rule.name in names:
                reasons.append(f"name is already used by path_rules[{names[rule.name]}]")
            names.setdefault(rule.name, index)
            result = _compile_rule(rule, compile_pattern)
            if isinstance(result, list):
                reasons.extend(result)
            else:
                reasons.extend(_check_samples(result, compiled))
                compiled.append(result)
            problems.extend(SettingProblem(key, reason) for reason in reasons)
        if problems:
            raise InvalidSettingsError(problems)
        self._rules: tuple[_CompiledRule, ...] = tuple(compiled)

    @classmethod
    def compile(cls, rules: Sequence[PathRule], *, engine: EngineName = "auto") -> PathMapper:
        """Validate and compile ``rules`` (see the class); the usual way to build a mapper."""
        return cls(rules, engine=engine)

    @property
    def rules(self) -> tuple[PathRule, ...]:
        return tuple(c.rule for c in self._rules)

    def _map(self, path: str, *, to_plex: bool) -> str | None:
        if not self._rules:
            return path if clean_path(path) is not None else None
        for compiled in self._rules:
            result, why = (compiled.to_plex if to_plex else compiled.to_stash).apply(path)
            if result is not None or why:
                return result  # first matching rule wins, even when it refuses
        return None

    def to_plex(self, stash_path: str) -> str | None:
        """The Plex path of a Stash file, or ``None`` (no rule matches, or the result is unsafe)."""
        return self._map(stash_path, to_plex=True)

    def to_stash(self, plex_path: str) -> str | None:
        """The Stash path of a Plex file, or ``None`` (no rule matches, or the result is unsafe)."""
        return self._map(plex_path, to_plex=False)

    def __repr__(self) -> str:
        return f"PathMapper(rules={[c.rule.name for c in self._rules]!r}, engine={self.engine!r})"


__all__ = [
    "FALLBACK_MAX_ALTERNATIVES",
    "FALLBACK_MAX_DEGREE",
    "FALLBACK_MAX_PATH_CHARS",
    "MAX_PATH_CHARS",
    "MAX_PATTERN_CHARS",
    "MAX_RULES",
    "PathMapper",
    "clean_path",
]
