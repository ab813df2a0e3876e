"""Parsing and applying the edit PUT that every plexapi edit helper becomes.

The query string is decoded once by the server (``parse_qs``); tag removals arrive with a
second, inner layer of quoting that is undone here per name, exactly as PMS must do for
names that contain commas. Every key is validated before anything changes, so a bad request
never leaves an item half-edited.
"""

from __future__ import annotations

import datetime as dt
import re
import urllib.parse

import attrs

from stash2plex_backends.simulators.plex._state import IMAGE_FIELDS
from stash2plex_backends.simulators.plex._state import LOCKABLE_FIELDS
from stash2plex_backends.simulators.plex._state import SCALAR_FIELDS
from stash2plex_backends.simulators.plex._state import TAG_FIELDS
from stash2plex_backends.simulators.plex._state import Item
from stash2plex_backends.simulators.plex._state import PlexState
from stash2plex_backends.simulators.plex._state import Tag
from stash2plex_backends.simulators.plex._state import TagMode
from stash2plex_backends.simulators.plex._state import scanned_title


_TAG_ADD = re.compile(r"^(\w+)\[(\d*)\]\.tag\.tag(-?)$")
_TAG_CLEAR = re.compile(r"^(\w+)\[\]\.tag$")
_TAGGING = re.compile(r"^(\w+)\[(\d+)\]\.tagging\.(\w+)$")
_TAG_THUMB = re.compile(r"^(\w+)\[(\d+)\]\.tag\.thumb$")
_FIELD = re.compile(r"^(\w+)\.(value|locked)$")
#: Query keys that are not edits: the token and other client headers PMS accepts as arguments.
_IGNORED_PREFIX = "X-Plex-"


class EditError(Exception):
    """An edit PMS would refuse: 400 for an unknown field, 500 for invalid data."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@attrs.define
class TagOps:
    """What one request does to one tag field."""

    clear: bool = False
    removals: list[str] = attrs.field(factory=list)
    adds: dict[int, str] = attrs.field(factory=dict)
    thumbs: dict[int, str] = attrs.field(factory=dict)
    roles: dict[int, str] = attrs.field(factory=dict)


@attrs.define
class EditRequest:
    """A parsed edit: target ids, item type, and the changes."""

    ids: list[int] | None = None
    type: str | None = None
    values: dict[str, str] = attrs.field(factory=dict)
    locks: dict[str, bool] = attrs.field(factory=dict)
    tags: dict[str, TagOps] = attrs.field(factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.values or self.locks or self.tags)


def _tag_field(name: str) -> str:
    if name not in TAG_FIELDS:
        raise EditError(400, f"a field name is not valid: {name!r} is not a tag field")
    return name


def _invalid(field: str, value: str) -> EditError:
    return EditError(500, f"invalid value for {field}: {value!r}")


def _number(field: str, value: str, kind: type[int] | type[float], low: float, high: float) -> str:
    try:
        number = kind(value)
    except ValueError:
        raise _invalid(field, value) from None
    if not low <= number <= high:
        raise _invalid(field, value)
    return f"{number:g}" if kind is float else str(number)


def _validate_value(field: str, value: str) -> str:
    """Normalise a scalar value, or raise 500 as PMS does for invalid data."""
    if value == "":
        if field == "addedAt":
            raise EditError(500, "addedAt cannot be cleared")
        return value
    if field == "year":
        return _number(field, value, int, 1, 9999)
    if field == "addedAt":
        return _number(field, value, int, 0, 2**40)
    if field in ("userRating", "rating", "audienceRating"):
        return _number(field, value, float, 0, 10)
    if field == "originallyAvailableAt":
        try:
            date = dt.date.fromisoformat(value)
        except ValueError:
            raise _invalid(field, value) from None
        if len(value) != 10:
            raise _invalid(field, value)
        return date.isoformat()
    return value


def parse_edit(query: dict[str, list[str]]) -> EditRequest:
    """Turn decoded query arguments into an :class:`EditRequest` (or raise :class:`EditError`)."""
    request = EditRequest()
    for key, values in query.items():
        value = values[-1] if values else ""
        if key.startswith(_IGNORED_PREFIX):
            continue
        if key == "id":
            if value.strip():
                try:
                    request.ids = [int(part) for part in value.split(",") if part.strip()]
                except ValueError:
                    raise EditError(400, f"invalid id list {value!r}") from None
            continue
        if key == "type":
            request.type = value
            continue
        if (match := _FIELD.match(key)) is not None:
            field, what = match.groups()
            if what == "locked":
                if field not in LOCKABLE_FIELDS:
                    raise EditError(400, f"a field name is not valid: {field!r}")
                if value not in ("0", "1"):
                    raise EditError(400, f"{key} must be 0 or 1, got {value!r}")
                request.locks[field] = value == "1"
            else:
                if field not in SCALAR_FIELDS:
                    kind = "an image field" if field in IMAGE_FIELDS else "not a field"
                    raise EditError(400, f"a field name is not valid: {field!r} is {kind}")
                request.values[field] = _validate_value(field, value)
            continue
        if (match := _TAG_ADD.match(key)) is not None:
            field, index, minus = match.groups()
            ops = request.tags.setdefault(_tag_field(field), TagOps())
            if minus:
                ops.removals.extend(urllib.parse.unquote(name) for name in value.split(",") if name.strip())
            elif index == "":
                raise EditError(400, f"{key}: a tag addition needs an index")
            elif value.strip():
                ops.adds[int(index)] = value
            continue
        if (match := _TAG_CLEAR.match(key)) is not None:
            ops = request.tags.setdefault(_tag_field(match.group(1)), TagOps())
            if value:
                raise EditError(400, f"{key} clears a field and takes an empty value")
            ops.clear = True
            continue
        if (match := _TAG_THUMB.match(key)) is not None:
            field, index = match.groups()
            request.tags.setdefault(_tag_field(field), TagOps()).thumbs[int(index)] = value
            continue
        if (match := _TAGGING.match(key)) is not None:
            field, index, attr = match.groups()
            ops = request.tags.setdefault(_tag_field(field), TagOps())
            if attr == "text":
                ops.roles[int(index)] = value
            elif attr == "thumb":
                ops.thumbs[int(index)] = value
            continue
        raise EditError(400, f"a field name is not valid: {key!r}")
    return request


def apply_edit(state: PlexState, item: Item, request: EditRequest, mode: TagMode) -> None:
    """Apply a validated edit to one item: values, locks, then tags; bump ``updatedAt``.

    Per tag field the order is clear → removals → additions, so "full desired list plus
    explicit removals" is correct in both tag modes.
    """
    changed: set[str] = set()
    for field, value in request.values.items():
        changed.add(field)
        if field == "addedAt":
            item.added_at = int(value)
        elif field == "title" and not value:
            item.values["title"] = scanned_title(item.files[0])[0] if item.files else ""
        elif value:
            item.values[field] = value
        else:
            item.values.pop(field, None)
    for field, locked in request.locks.items():
        if locked:
            if item.locks is None:
                item.locks = set()
            item.locks.add(field)
        elif item.locks is not None:
            item.locks.discard(field)
    for field, ops in request.tags.items():
        _apply_tags(state, item, field, ops, mode)
    state.touch(item, changed)


def _apply_tags(state: PlexState, item: Item, field: str, ops: TagOps, mode: TagMode) -> None:
    if item.tags is None:
        item.tags = {}
    current = [] if ops.clear else list(item.tags.get(field, []))
    if ops.removals:
        gone = {name.casefold() for name in ops.removals}
        current = [tag for tag in current if tag.name.casefold() not in gone]
    if ops.adds and mode == "replace":
        current = []
    by_name = {tag.name.casefold(): tag for tag in current}
    for index in sorted(ops.adds):
        name = ops.adds[index]
        tag = by_name.get(name.casefold())
        if tag is None:
            tag = Tag(state.tag_id(field, name), name)
            by_name[name.casefold()] = tag
            current.append(tag)
        if index in ops.thumbs:
            tag.thumb = ops.thumbs[index] or None
        if index in ops.roles:
            tag.role = ops.roles[index] or None
    if current:
        item.tags[field] = current
    else:
        item.tags.pop(field, None)


__all__ = ["EditError", "EditRequest", "TagOps", "apply_edit", "parse_edit"]
