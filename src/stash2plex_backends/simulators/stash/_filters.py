"""Stash's filter, search and sort semantics, reproduced in Python.

Stash turns a ``SceneFilterType`` into SQL over ``scenes`` left-joined to their files and
folders, so a scene matches when *any one* of its file rows satisfies the whole clause, and
SQL's three-valued logic applies (a ``NULL`` title matches neither ``EQUALS`` nor
``NOT_EQUALS``). Predicates here therefore take ``(record, file_or_None)`` and return
``True``, ``False`` or ``None`` (SQL ``NULL``).

The traps worth reproducing: string ``EQUALS`` is ``LIKE`` without an ``ESCAPE`` clause, so
``_`` and ``%`` are wildcards and ASCII letters (only ASCII) compare case-insensitively;
``INCLUDES`` splits on whitespace unless the value is wrapped in double quotes; timestamps
compare as text.
"""

from __future__ import annotations

import functools
import json
import random
import re
import string
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

from graphql import GraphQLError


Tri = bool | None
Predicate = Callable[[Any, Any], Tri]

_ASCII_FOLD = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_WHITESPACE = re.compile(r"\s+")
_DIGITS = re.compile(r"(\d+)")


class FilterError(GraphQLError):
    """An invalid filter or sort; Stash answers these as GraphQL errors."""


def ascii_fold(text: str) -> str:
    """Lower-case ASCII letters only, as SQLite's ``LIKE`` does."""
    return text.translate(_ASCII_FOLD)


@functools.lru_cache(maxsize=8192)
def like_regex(pattern: str) -> re.Pattern[str]:
    """Compile an SQL ``LIKE`` pattern (no ESCAPE): ``%`` any run, ``_`` one character."""
    parts: list[str] = []
    for char in pattern:
        if char == "%":
            parts.append(".*")
        elif char == "_":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.ASCII | re.IGNORECASE | re.DOTALL)


def like(value: str | None, pattern: str) -> Tri:
    if value is None:
        return None
    return like_regex(pattern).fullmatch(value) is not None


def _not(value: Tri) -> Tri:
    return None if value is None else not value


def _all(values: Iterable[Tri]) -> Tri:
    result: Tri = True
    for value in values:
        if value is False:
            return False
        if value is None:
            result = None
    return result


def _any(values: Iterable[Tri]) -> Tri:
    result: Tri = False
    for value in values:
        if value is True:
            return True
        if value is None:
            result = None
    return result


def search_words(value: str) -> list[str]:
    """Stash's ``INCLUDES`` split: trimmed, then whitespace-separated unless quoted.

    A value that starts or ends with ``"`` is one phrase (quotes stripped); otherwise each
    word becomes its own ``%word%`` clause.
    """
    trimmed = value.strip()
    unquoted = trimmed.strip('"')
    if unquoted != trimmed:
        return [unquoted]
    return _WHITESPACE.sub(" ", trimmed).split(" ")


@functools.lru_cache(maxsize=1024)
def _regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise FilterError(f"error parsing regexp: {exc}") from exc


# -- criterion handlers ---------------------------------------------------------------------

Getter = Callable[[Any, Any], Any]


def string_criterion(get: Getter, criterion: Mapping[str, Any]) -> Predicate:
    """``stringCriterionHandler``: EQUALS is ``LIKE``, INCLUDES splits words, and so on."""
    value: str = criterion["value"]
    modifier: str = criterion["modifier"]
    if modifier == "EQUALS":
        return lambda r, f: like(get(r, f), value)
    if modifier == "NOT_EQUALS":
        return lambda r, f: _not(like(get(r, f), value))
    if modifier in {"INCLUDES", "EXCLUDES"}:
        patterns = [f"%{word}%" for word in search_words(value)]
        if modifier == "INCLUDES":
            return lambda r, f: _any(like(get(r, f), p) for p in patterns)
        return lambda r, f: _all(_not(like(get(r, f), p)) for p in patterns)
    if modifier == "MATCHES_REGEX":
        regex = _regex(value)

        def matches(r: Any, f: Any) -> Tri:
            current = get(r, f)
            return current is not None and regex.search(current) is not None

        return matches
    if modifier == "NOT_MATCHES_REGEX":
        regex = _regex(value)

        def not_matches(r: Any, f: Any) -> Tri:
            current = get(r, f)
            return current is None or regex.search(current) is None

        return not_matches
    if modifier == "IS_NULL":
        return lambda r, f: (v := get(r, f)) is None or v.strip(" ") == ""
    if modifier == "NOT_NULL":
        return lambda r, f: (v := get(r, f)) is not None and v.strip(" ") != ""
    raise FilterError(f"unsupported string filter modifier {modifier}")


def string_list_criterion(get: Getter, criterion: Mapping[str, Any]) -> Predicate:
    """A joined list of strings (aliases, URLs): any element, except EXCLUDES (none)."""
    modifier = criterion["modifier"]
    if modifier == "EXCLUDES":
        pattern = f"%{criterion['value']}%"
        return lambda r, f: not any(like(v, pattern) for v in get(r, f))
    inner = string_criterion(lambda value, _f: value, criterion)

    def check(r: Any, f: Any) -> Tri:
        values = get(r, f)
        if not values:
            return inner(None, None)
        return _any(inner(v, None) for v in values)

    return check


def path_criterion(criterion: Mapping[str, Any]) -> Predicate:
    """``pathCriterionHandler`` on ``folder || sep || basename`` of one file row."""
    value: str = criterion["value"]
    modifier: str = criterion["modifier"]

    def path(_r: Any, f: Any) -> str | None:
        return None if f is None else f.path

    if modifier == "EQUALS":
        return lambda r, f: like(path(r, f), value)
    if modifier == "NOT_EQUALS":
        return lambda r, f: _not(like(path(r, f), value))
    if modifier in {"INCLUDES", "EXCLUDES"}:
        return string_criterion(path, criterion)
    if modifier == "MATCHES_REGEX":
        regex = _regex(value)
        return lambda r, f: f is not None and regex.search(f.path) is not None
    if modifier == "NOT_MATCHES_REGEX":
        regex = _regex(value)
        return lambda r, f: f is None or regex.search(f.path) is None
    if modifier == "IS_NULL":
        return lambda r, f: f is None
    if modifier == "NOT_NULL":
        return lambda r, f: f is not None
    raise FilterError(f"unsupported string filter modifier {modifier}")


def int_criterion(get: Getter, criterion: Mapping[str, Any]) -> Predicate:
    value: int = criterion["value"]
    upper: int = criterion.get("value2") or 0
    modifier: str = criterion["modifier"]
    compare: Callable[[int], bool]
    if modifier == "IS_NULL":
        return lambda r, f: get(r, f) is None
    if modifier == "NOT_NULL":
        return lambda r, f: get(r, f) is not None
    if modifier == "EQUALS":
        compare = lambda v: v == value  # noqa: E731
    elif modifier == "NOT_EQUALS":
        compare = lambda v: v != value  # noqa: E731
    elif modifier == "GREATER_THAN":
        compare = lambda v: v > value  # noqa: E731
    elif modifier == "LESS_THAN":
        compare = lambda v: v < value  # noqa: E731
    elif modifier == "BETWEEN":
        compare = lambda v: value <= v <= upper  # noqa: E731
    elif modifier == "NOT_BETWEEN":
        compare = lambda v: not value <= v <= upper  # noqa: E731
    else:
        raise FilterError(f"unsupported int filter modifier {modifier}")

    def check(r: Any, f: Any) -> Tri:
        current = get(r, f)
        return None if current is None else compare(current)

    return check


def text_criterion(get: Getter, criterion: Mapping[str, Any], now_plus_day: Callable[[], str]) -> Predicate:
    """``getTimestampWhereClause``: the value is bound unchanged and compared as text.

    Without ``value2``, BETWEEN uses now + 1 day (in the server's zone) as upper bound.
    """
    value: str = criterion["value"]
    modifier: str = criterion["modifier"]
    upper: str = criterion.get("value2") or (now_plus_day() if "BETWEEN" in modifier else "")
    compare: Callable[[str], bool]
    if modifier == "IS_NULL":
        return lambda r, f: get(r, f) is None
    if modifier == "NOT_NULL":
        return lambda r, f: get(r, f) is not None
    if modifier == "EQUALS":
        compare = lambda v: v == value  # noqa: E731
    elif modifier == "NOT_EQUALS":
        compare = lambda v: v != value  # noqa: E731
    elif modifier == "GREATER_THAN":
        compare = lambda v: v > value  # noqa: E731
    elif modifier == "LESS_THAN":
        compare = lambda v: v < value  # noqa: E731
    elif modifier == "BETWEEN":
        compare = lambda v: value <= v <= upper  # noqa: E731
    elif modifier == "NOT_BETWEEN":
        compare = lambda v: not value <= v <= upper  # noqa: E731
    else:
        raise FilterError(f"unsupported timestamp filter modifier {modifier}")

    def check(r: Any, f: Any) -> Tri:
        current = get(r, f)
        return None if current is None else compare(current)

    return check


def bool_criterion(get: Getter, value: bool) -> Predicate:
    return lambda r, f: get(r, f) == value


def multi_criterion(
    get: Callable[[Any], Iterable[int]],
    criterion: Mapping[str, Any],
    expand: Callable[[int, int], set[int]] | None = None,
) -> Predicate:
    """Multi and hierarchical multi criteria (performers, tags, studios, groups).

    ``expand(id, depth)`` returns an id with its descendants for hierarchical criteria.
    """
    modifier: str = criterion["modifier"]
    depth: int = criterion.get("depth") or 0
    values = [int(v) for v in criterion.get("value") or []]
    excludes = [int(v) for v in criterion.get("excludes") or []]
    if modifier == "IS_NULL":
        return lambda r, f: not set(get(r))
    if modifier == "NOT_NULL":
        return lambda r, f: bool(set(get(r)))
    if modifier == "NOT_EQUALS":
        raise FilterError("not equals modifier is not supported for multi criterion input")
    if modifier == "EXCLUDES":
        excludes = excludes + values
        values = []
        modifier = "INCLUDES_ALL"
    if modifier not in {"INCLUDES", "INCLUDES_ALL", "EQUALS"}:
        raise FilterError(f"unsupported multi criterion modifier {modifier}")

    def tree(item: int) -> set[int]:
        return expand(item, depth) if expand is not None else {item}

    wanted = [tree(v) for v in values]
    unwanted: set[int] = set().union(*(tree(v) for v in excludes)) if excludes else set()
    exact = set(values)

    def check(r: Any, _f: Any) -> Tri:
        have = set(get(r))
        if unwanted & have:
            return False
        if not wanted:
            return True
        if modifier == "INCLUDES":
            return any(w & have for w in wanted)
        if modifier == "EQUALS" and expand is None:
            return have == exact
        return all(w & have for w in wanted) and (modifier != "EQUALS" or len(have) == len(exact))

    return check


# -- whole filters --------------------------------------------------------------------------

Handler = Callable[[Any], Predicate]


def compile_filter(spec: Mapping[str, Handler], data: Mapping[str, Any] | None) -> Predicate | None:
    """Compile a ``…FilterType`` input into a predicate (``None`` when it filters nothing).

    Own criteria are AND-ed; ``AND``/``OR``/``NOT`` combine them with one sub-filter, as
    Stash's filter builder does.
    """
    if not data:
        return None
    subs = [key for key in ("AND", "OR", "NOT") if data.get(key) is not None]
    if len(subs) > 1:
        raise FilterError("AND, OR and NOT are mutually exclusive")
    own: list[Predicate] = []
    for key, value in data.items():
        if key in {"AND", "OR", "NOT"} or value is None:
            continue
        handler = spec.get(key)
        if handler is None:
            raise FilterError(f"filter field {key} is not supported by the simulator")
        own.append(handler(value))

    def own_pred(r: Any, f: Any) -> Tri:
        return _all(p(r, f) for p in own)

    if not subs:
        return own_pred if own else None
    sub = compile_filter(spec, data[subs[0]])
    if sub is None:
        return own_pred if own else None
    if subs[0] == "AND":
        return (lambda r, f: _all((own_pred(r, f), sub(r, f)))) if own else sub
    if subs[0] == "OR":
        return (lambda r, f: _any((own_pred(r, f), sub(r, f)))) if own else sub
    if own:
        return lambda r, f: _all((own_pred(r, f), _not(sub(r, f))))
    return lambda r, f: _not(sub(r, f))


def filter_key(data: Mapping[str, Any] | None) -> str:
    return json.dumps(data, sort_keys=True, ensure_ascii=False, default=str)


def matches_rows(pred: Predicate, record: Any, rows: Sequence[Any]) -> bool:
    """A record matches when any of its joined rows (or the single NULL row) is true."""
    if not rows:
        return pred(record, None) is True
    return any(pred(record, row) is True for row in rows)


# -- free-text search (``FindFilterType.q``) ------------------------------------------------

_TOKEN = re.compile(r'-?"[^"]*"|\S+')


def parse_search(q: str) -> tuple[list[list[str]], list[str]]:
    """Split ``q`` like Stash's search: words AND-ed, ``"phrases"``, ``-negation``, ``a or b``.

    Returns ``(groups, negated)``: every group needs one of its terms to match.
    """
    groups: list[list[str]] = []
    negated: list[str] = []
    pending_or = False
    for token in _TOKEN.findall(q):
        if token.lower() == "or" and groups:
            pending_or = True
            continue
        negate = token.startswith("-") and len(token) > 1
        term = token[1:] if negate else token
        if term.startswith('"') and term.endswith('"') and len(term) >= 2:
            term = term[1:-1]
        if not term:
            continue
        if negate:
            negated.append(term)
        elif pending_or:
            groups[-1].append(term)
        else:
            groups.append([term])
        pending_or = False
    return groups, negated


def search_predicate(columns: Callable[[Any, Any], Sequence[str | None]], q: str | None) -> Predicate | None:
    if not q or not q.strip():
        return None
    groups, negated = parse_search(q)

    def check(r: Any, f: Any) -> Tri:
        values = columns(r, f)
        for group in groups:
            if not any(like(v, f"%{term}%") for term in group for v in values):
                return False
        return not any(like(v, f"%{term}%") for term in negated for v in values)

    return check


# -- sorting --------------------------------------------------------------------------------


def natural_key(text: str | None) -> tuple[Any, ...]:
    """Stash's ``NATURAL_CI`` collation: case-insensitive, digit runs compared as numbers."""
    if text is None:
        return ()
    parts = _DIGITS.split(text.lower())
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts))


def null_first(value: Any) -> tuple[int, Any]:
    """SQLite orders NULLs before everything ascending (and last descending)."""
    return (0, 0) if value is None else (1, value)


def random_order(ids: Sequence[int], sort: str) -> list[int]:
    """``random`` or ``random_<seed>``: a seeded shuffle, stable for a given seed."""
    seed_text = sort.partition("_")[2]
    seed = int(seed_text) if seed_text.isdigit() else 0
    shuffled = list(ids)
    random.Random(seed).shuffle(shuffled)
    return shuffled


__all__ = [
    "FilterError",
    "Predicate",
    "ascii_fold",
    "bool_criterion",
    "compile_filter",
    "filter_key",
    "int_criterion",
    "like",
    "like_regex",
    "matches_rows",
    "multi_criterion",
    "natural_key",
    "null_first",
    "parse_search",
    "path_criterion",
    "random_order",
    "search_predicate",
    "search_words",
    "string_criterion",
    "string_list_criterion",
    "text_criterion",
]
