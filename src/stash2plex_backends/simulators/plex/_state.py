"""The simulated Plex library: sections, items, tags, locks, images and staged files.

Everything here is plain in-memory state guarded by one re-entrant lock, shaped for a
100,000-item library: items use slotted classes, scalar fields live in a small dict holding
only the values that are set, and listing orders are cached until an edit could change them.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import re
import threading
import time
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence
from typing import Literal

import attrs

from stash2plex_backends.simulators.seedlib import SeedFile
from stash2plex_backends.simulators.seedlib import generate_library
from stash2plex_backends.simulators.seedlib import image_bytes


TagMode = Literal["append", "replace"]
FileFilterMode = Literal["loose", "exact", "ignore", "error"]

#: Tag fields by their edit name, with the XML element each is rendered as.
TAG_FIELDS: dict[str, str] = {
    "genre": "Genre",
    "collection": "Collection",
    "label": "Label",
    "actor": "Role",
    "director": "Director",
    "writer": "Writer",
    "producer": "Producer",
    "country": "Country",
    "similar": "Similar",
    "mood": "Mood",
    "style": "Style",
}
#: Scalar fields a movie accepts as ``<field>.value``.
SCALAR_FIELDS: tuple[str, ...] = (
    "title",
    "titleSort",
    "originalTitle",
    "summary",
    "tagline",
    "studio",
    "contentRating",
    "originallyAvailableAt",
    "year",
    "userRating",
    "rating",
    "audienceRating",
    "editionTitle",
    "addedAt",
)
#: Image fields: lockable, but not editable as values.
IMAGE_FIELDS: tuple[str, ...] = ("thumb", "art", "theme", "clearLogo", "squareArt")
LOCKABLE_FIELDS: frozenset[str] = frozenset(SCALAR_FIELDS) | frozenset(IMAGE_FIELDS) | frozenset(TAG_FIELDS)
#: How many tags of each field a listing shows (PMS truncates listings; details are complete).
DEFAULT_LISTING_TAG_LIMITS: dict[str, int] = {
    "genre": 2,
    "director": 1,
    "writer": 1,
    "country": 1,
    "actor": 3,
}
#: PMS answers 500 for uploads over about 10 MB.
MAX_UPLOAD_BYTES = 10_000_000
MOVIE_TYPE = 1

_YEAR = re.compile(r"\s*\((\d{4})\)")
_STACK = re.compile(r"\s*[-_. ]\s*(?:part|cd|disc|pt)\s*\d+$", re.IGNORECASE)
_SPACES = re.compile(r"\s+")
_CONTAINERS = {
    "mkv": "mkv",
    "mp4": "mp4",
    "m4v": "mp4",
    "avi": "avi",
    "mov": "mov",
    "wmv": "asf",
    "webm": "webm",
}


def now() -> int:
    return int(time.time())


def sha1_hex(data: bytes) -> str:
    """SHA-1 as PMS keys uploads by (an identifier, not a security measure)."""
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


def _dirname(path: str) -> str:
    """``posixpath.dirname`` without its cost (seeding calls it 100,000 times)."""
    head = path.rpartition("/")[0]
    return head or ("/" if path.startswith("/") else "")


def scanned_title(path: str) -> tuple[str, int | None]:
    """Title and year the way a scan without a useful agent names a file."""
    name = path.rpartition("/")[2]
    stem = name.rpartition(".")[0] or name
    stem = _STACK.sub("", stem)
    year: int | None = None
    found = _YEAR.search(stem)
    if found is not None:
        year = int(found.group(1))
        stem = stem[: found.start()] + stem[found.end() :]
    title = _SPACES.sub(" ", stem).strip()
    return title or name, year


def _year_text(year: int, _cache: dict[int, str] = {}) -> str:  # noqa: B006 - a deliberate intern table
    """One shared string per year: a 100,000-item library repeats a few dozen values."""
    text = _cache.get(year)
    if text is None:
        text = _cache[year] = str(year)
    return text


def _container(path: str) -> str:
    name = path.rpartition("/")[2]
    return _CONTAINERS.get(name.rpartition(".")[2].lower() if "." in name else "", "mp4")


@attrs.define(eq=False)
class Part:
    """One file of a media version."""

    id: int
    file: str
    size: int
    duration: int
    container: str


@attrs.define(eq=False)
class MediaVersion:
    """One version of an item (``<Media>``); stacked files are several parts of one version."""

    id: int
    parts: tuple[Part, ...]
    width: int
    height: int

    @property
    def duration(self) -> int:
        return sum(p.duration for p in self.parts)

    @property
    def container(self) -> str:
        return self.parts[0].container if self.parts else "mp4"

    @property
    def bitrate(self) -> int:
        seconds = max(self.duration // 1000, 1)
        return sum(p.size for p in self.parts) * 8 // 1000 // seconds


@attrs.define(eq=False)
class Tag:
    """A tag associated with one item; ``thumb`` and ``role`` only matter for actors."""

    id: int
    name: str
    thumb: str | None = None
    role: str | None = None


@attrs.define(eq=False)
class ImageEntry:
    """One poster or art candidate as ``/posters`` lists it."""

    rating_key: str
    sha1: str | None
    provider: str | None = None


@attrs.define(eq=False)
class ImageSet:
    """Candidates of one image kind plus the selected one (``None``: no image)."""

    entries: list[ImageEntry] = attrs.field(factory=list)
    selected: str | None = None
    #: Timestamp in the item's ``thumb``/``art`` URL; moves whenever the selection changes.
    stamp: int = 0


@attrs.define(eq=False)
class Item:
    """One movie item.

    ``values`` holds only scalar fields that are set, as the strings PMS renders; ``tags``,
    ``locks``, ``posters`` and ``arts`` stay ``None`` until first used, to keep a large
    library small.
    """

    rating_key: int
    section_id: int
    values: dict[str, str]
    media: tuple[MediaVersion, ...]
    added_at: int
    updated_at: int
    tags: dict[str, list[Tag]] | None = None
    locks: set[str] | None = None
    guids: tuple[str, ...] = ()
    posters: ImageSet | None = None
    arts: ImageSet | None = None

    @property
    def title(self) -> str:
        return self.values.get("title", "")

    @property
    def title_sort(self) -> str:
        return self.values.get("titleSort") or self.title

    @property
    def duration(self) -> int:
        return self.media[0].duration if self.media else 0

    @property
    def files(self) -> list[str]:
        return [p.file for m in self.media for p in m.parts]

    def tag_list(self, field: str) -> list[Tag]:
        if self.tags is None:
            return []
        return self.tags.get(field, [])

    @property
    def default_poster(self) -> str:
        """A scanned item starts with one poster: a frame grabbed from its video."""
        return f"media://sim/{self.rating_key}/thumb.jpg"

    def poster_set(self) -> ImageSet:
        if self.posters is None:
            key = self.default_poster
            self.posters = ImageSet([ImageEntry(key, None, "local")], key, self.added_at)
        return self.posters

    def art_set(self) -> ImageSet:
        if self.arts is None:
            self.arts = ImageSet()
        return self.arts


@attrs.define(eq=False)
class Section:
    """A movie library section with its folders."""

    key: int
    title: str
    locations: list[str]
    uuid: str
    created_at: int
    agent: str = "tv.plex.agents.none"
    scanner: str = "Plex Video Files Scanner"
    language: str = "xn"
    scanned_at: int = 0

    def covers(self, path: str) -> bool:
        return any(_under(path, root) for root in self.locations)


@attrs.define(eq=False)
class StagedFile:
    """A file on disk that Plex has not scanned yet.

    It joins the library after ``scans`` scans that cover its folder, plus ``delay`` seconds
    (scans are asynchronous in PMS).
    """

    path: str
    size: int
    #: Seconds.
    duration: float
    width: int
    height: int
    title: str | None
    scans: int
    delay: float
    ready_at: float | None = None


@attrs.frozen
class ScanRecord:
    """One scan request: section, folder (``None`` for the whole section), force flag."""

    section_id: int
    path: str | None
    force: bool
    at: float


@attrs.define
class Options:
    """Fidelity knobs of the simulator; change them at any time."""

    #: ``append``: indexed tags join the existing ones (PMS); ``replace``: they become the set.
    tag_mode: TagMode = "append"
    #: Refuse (400) an edit PUT without ``id`` instead of editing the whole section.
    strict: bool = True
    listing_tag_limits: dict[str, int] = attrs.field(factory=lambda: dict(DEFAULT_LISTING_TAG_LIMITS))
    #: ``loose``: ``file=`` matches the path, a path ending with it, or any file in its folder
    #: (the reported PMS behaviour); ``exact``: only the path or paths ending with it;
    #: ``ignore``: the parameter is ignored; ``error``: the listing answers 400.
    file_filter: FileFilterMode = "loose"
    emit_total_size: bool = True
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    #: An agent refresh resets unlocked scalar fields to what the scan gave.
    refresh_resets_unlocked: bool = False


def _under(path: str, folder: str) -> bool:
    folder = folder.rstrip("/")
    return path == folder or path.startswith(folder + "/") or folder == ""


class SortError(ValueError):
    """An unsupported ``sort=`` field or direction."""


def _float_or(item: Item, field: str) -> float:
    value = item.values.get(field)
    return float(value) if value else -1.0


_SORTS: dict[str, tuple[Callable[[Item], object], frozenset[str]]] = {
    "titleSort": (lambda i: i.title_sort.casefold(), frozenset({"title", "titleSort"})),
    "title": (lambda i: i.title.casefold(), frozenset({"title"})),
    "addedAt": (lambda i: i.added_at, frozenset({"addedAt"})),
    "updatedAt": (lambda i: i.updated_at, frozenset({"*"})),
    "originallyAvailableAt": (
        lambda i: i.values.get("originallyAvailableAt", ""),
        frozenset({"originallyAvailableAt"}),
    ),
    "year": (lambda i: int(i.values.get("year") or 0), frozenset({"year"})),
    "duration": (lambda i: i.duration, frozenset()),
    "id": (lambda i: i.rating_key, frozenset()),
    "rating": (lambda i: _float_or(i, "rating"), frozenset({"rating"})),
    "audienceRating": (lambda i: _float_or(i, "audienceRating"), frozenset({"audienceRating"})),
    "userRating": (lambda i: _float_or(i, "userRating"), frozenset({"userRating"})),
    "summary": (lambda i: i.values.get("summary", ""), frozenset({"summary"})),
    "tagline": (lambda i: i.values.get("tagline", ""), frozenset({"tagline"})),
}
SORT_KEYS: tuple[str, ...] = tuple(_SORTS)


def parse_sort(spec: str) -> tuple[tuple[str, bool], ...]:
    """``movie.titleSort:desc,addedAt`` → ``(("titleSort", True), ("addedAt", False))``."""
    parsed: list[tuple[str, bool]] = []
    for raw in spec.split(","):
        field, _, direction = raw.strip().partition(":")
        field = field.rpartition(".")[2]
        if field not in _SORTS:
            raise SortError(f"unknown sort field {field!r}")
        if direction not in ("", "asc", "desc", "nullsLast"):
            raise SortError(f"unknown sort direction {direction!r}")
        parsed.append((field, direction == "desc"))
    return tuple(parsed)


class PlexState:
    """The library and every test-visible record of what happened to it."""

    def __init__(self, options: Options, machine_identifier: str) -> None:
        self.options = options
        self.machine_identifier = machine_identifier
        self.lock = threading.RLock()
        self.created_at = now()
        self.sections: dict[int, Section] = {}
        self.items: dict[int, Item] = {}
        self.staged: list[StagedFile] = []
        self.scans: list[ScanRecord] = []
        self.refreshes: list[int] = []
        self.violations: list[str] = []
        #: Uploaded image bytes by SHA-1 (deduplicated).
        self.blobs: dict[str, bytes] = {}
        self._by_path: dict[str, int] = {}
        self._by_dir: dict[str, set[int]] = {}
        self._tag_ids: dict[tuple[str, str], int] = {}
        self._order_cache: dict[tuple[int, tuple[tuple[str, bool], ...]], list[Item]] = {}
        self._next_rating_key = 1001
        self._next_media = 1
        self._next_part = 1
        self._next_tag = 1
        self._next_section = 1
        self._next_location = 1

    # -- sections --------------------------------------------------------------------------

    def add_section(self, title: str, locations: Sequence[str]) -> Section:
        with self.lock:
            key = self._next_section
            self._next_section += 1
            uuid = sha1_hex(f"{self.machine_identifier}:{key}".encode())
            section = Section(
                key=key,
                title=title,
                locations=[loc.rstrip("/") or "/" for loc in locations],
                uuid=f"{uuid[:8]}-{uuid[8:12]}-4{uuid[13:16]}-8{uuid[17:20]}-{uuid[20:32]}",
                created_at=self.created_at,
                scanned_at=self.created_at,
            )
            self.sections[key] = section
            return section

    def location_ids(self, section: Section) -> list[int]:
        """Stable ids for ``<Location>`` elements."""
        return [section.key * 100 + i for i in range(len(section.locations))]

    def section_for(self, path: str) -> Section | None:
        for section in self.sections.values():
            if section.covers(path):
                return section
        return None

    # -- items -----------------------------------------------------------------------------

    def new_media(self, files: Sequence[SeedFile | tuple[str, int, float, int, int]]) -> MediaVersion:
        """One version from its (stacked) files."""
        parts = []
        width = height = 0
        for spec in files:
            if isinstance(spec, SeedFile):
                path, size, duration, w, h = spec.path, spec.size, spec.duration, spec.width, spec.height
            else:
                path, size, duration, w, h = spec
            width, height = width or w, height or h
            parts.append(Part(self._next_part, path, size, round(duration * 1000), _container(path)))
            self._next_part += 1
        media = MediaVersion(self._next_media, tuple(parts), width, height)
        self._next_media += 1
        return media

    def add_item(
        self,
        section_id: int,
        media: Sequence[MediaVersion],
        *,
        title: str | None = None,
        added_at: int | None = None,
        values: dict[str, str] | None = None,
        guids: Sequence[str] = (),
    ) -> Item:
        with self.lock:
            if section_id not in self.sections:
                raise KeyError(f"no section {section_id}")
            first = media[0].parts[0].file if media and media[0].parts else "untitled"
            scanned, year = scanned_title(first)
            fields: dict[str, str] = {"title": title or scanned}
            if year is not None:
                fields["year"] = _year_text(year)
            fields.update(values or {})
            stamp = added_at if added_at is not None else now()
            item = Item(
                rating_key=self._next_rating_key,
                section_id=section_id,
                values=fields,
                media=tuple(media),
                added_at=stamp,
                updated_at=stamp,
                guids=tuple(guids),
            )
            self._next_rating_key += 1
            self.items[item.rating_key] = item
            self._index(item)
            self._order_cache.clear()
            return item

    def remove_item(self, rating_key: int) -> Item:
        with self.lock:
            item = self.items.pop(rating_key)
            for path in item.files:
                if self._by_path.get(path) == rating_key:
                    del self._by_path[path]
                members = self._by_dir.get(_dirname(path))
                if members is not None:
                    members.discard(rating_key)
            self._order_cache.clear()
            return item

    def _index(self, item: Item) -> None:
        for path in item.files:
            self._by_path[path] = item.rating_key
            self._by_dir.setdefault(_dirname(path), set()).add(item.rating_key)

    def item_by_path(self, path: str) -> Item | None:
        with self.lock:
            key = self._by_path.get(path)
            return self.items.get(key) if key is not None else None

    def seed(self, count: int, seed: int, root: str, section_id: int) -> None:
        """Describe the files of ``generate_library(count, seed, root)`` as a fresh scan would.

        One item per scene; a scene's extra files are extra versions; the two scenes of a
        two-part film are one item whose version stacks both files.
        """
        with _no_gc(), self.lock:
            scenes = generate_library(count, seed, root).scenes
            i = 0
            while i < len(scenes):
                scene = scenes[i]
                group = [scene]
                if scene.stack_key is not None:
                    while i + len(group) < len(scenes) and scenes[i + len(group)].stack_key == scene.stack_key:
                        group.append(scenes[i + len(group)])
                i += len(group)
                versions = len(group[0].files)
                media = [self.new_media([s.files[v] for s in group if v < len(s.files)]) for v in range(versions)]
                added = _epoch(scene.created_at)
                self.add_item(section_id, media, added_at=added)

    # -- tags ------------------------------------------------------------------------------

    def tag_id(self, field: str, name: str) -> int:
        """PMS keeps one tag row per (type, name), shared by every item that has it."""
        key = (field, name.casefold())
        found = self._tag_ids.get(key)
        if found is None:
            found = self._tag_ids[key] = self._next_tag
            self._next_tag += 1
        return found

    # -- change tracking -------------------------------------------------------------------

    def touch(self, item: Item, changed: Iterable[str] = ()) -> None:
        """Bump ``updatedAt`` (strictly increasing, so change detection never misses an edit)."""
        item.updated_at = max(now(), item.updated_at + 1)
        self.invalidate_orders(set(changed) | {"*"})

    def invalidate_orders(self, changed: set[str]) -> None:
        for key in list(self._order_cache):
            if any(changed & (_SORTS[field][1]) for field, _ in key[1]):
                del self._order_cache[key]

    def ordered(self, section_id: int, sort: tuple[tuple[str, bool], ...]) -> list[Item]:
        """Items of a section in listing order (default ``titleSort``), cached."""
        sort = sort or (("titleSort", False),)
        cache_key = (section_id, sort)
        cached = self._order_cache.get(cache_key)
        if cached is not None:
            return cached
        order = self.sort_items([item for item in self.items.values() if item.section_id == section_id], sort)
        self._order_cache[cache_key] = order
        return order

    @staticmethod
    def sort_items(items: list[Item], sort: tuple[tuple[str, bool], ...]) -> list[Item]:
        """Sort by each key in turn (stable sorts, last key first), ties by ratingKey."""
        order = sorted(items, key=lambda i: i.rating_key)
        for field, desc in reversed(sort or (("titleSort", False),)):
            order.sort(key=_SORTS[field][0], reverse=desc)  # type: ignore[arg-type]
        return order

    # -- listings --------------------------------------------------------------------------

    def file_matches(self, section_id: int, value: str, *, neighbours: bool = True) -> set[int]:
        """The reported "neighbourhood" behaviour of ``file=``: exact, suffix or same folder."""
        found: set[int] = set()
        exact = self._by_path.get(value)
        if exact is not None:
            found.add(exact)
        if not value.startswith("/"):
            found |= {rk for path, rk in self._by_path.items() if path.endswith(value)}
        elif neighbours:
            found |= self._by_dir.get(_dirname(value), set())
        return {rk for rk in found if self.items[rk].section_id == section_id}

    # -- scans -----------------------------------------------------------------------------

    def stage(self, staged: StagedFile) -> None:
        with self.lock:
            self.staged.append(staged)

    def scan(self, section: Section, path: str | None, force: bool) -> None:
        """Count a scan toward every staged file it covers."""
        with self.lock:
            at = time.monotonic()
            self.scans.append(ScanRecord(section.key, path, force, time.time()))
            section.scanned_at = now()
            folder = path.rstrip("/") if path else None
            for staged in self.staged:
                if not section.covers(staged.path):
                    continue
                if folder is not None and not _under(staged.path, folder):
                    continue
                if staged.ready_at is None:
                    staged.scans -= 1
                    if staged.scans <= 0:
                        staged.ready_at = at + staged.delay
            self.promote()

    def promote(self) -> list[Item]:
        """Move staged files whose scan has finished into the library."""
        with self.lock:
            if not self.staged:
                return []
            at = time.monotonic()
            ready = [s for s in self.staged if s.ready_at is not None and s.ready_at <= at]
            added = []
            for staged in ready:
                self.staged.remove(staged)
                section = self.section_for(staged.path)
                if section is None or staged.path in self._by_path:
                    continue
                media = self.new_media([(staged.path, staged.size, staged.duration, staged.width, staged.height)])
                added.append(self.add_item(section.key, [media], title=staged.title))
            return added

    # -- images ----------------------------------------------------------------------------

    def image_bytes_for(self, item: Item, kind: str, rating_key: str | None = None) -> bytes | None:
        """Bytes of an item's selected (or named) image; generated ones for frames and URLs."""
        images = item.poster_set() if kind == "posters" else item.art_set()
        wanted = rating_key or images.selected
        entry = next((e for e in images.entries if e.rating_key == wanted), None)
        if entry is None:
            return None
        if entry.sha1 is not None and entry.sha1 in self.blobs:
            return self.blobs[entry.sha1]
        return image_bytes(f"plex-sim:{item.rating_key}:{entry.rating_key}")


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic collector while building many objects that are all kept.

    Its repeated full passes over the growing heap otherwise double the seeding time.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _epoch(timestamp: str) -> int:
    """``2024-05-06T07:08:09Z`` → unix seconds, without datetime's parsing cost per item."""
    import calendar

    return calendar.timegm(
        (
            int(timestamp[0:4]),
            int(timestamp[5:7]),
            int(timestamp[8:10]),
            int(timestamp[11:13]),
            int(timestamp[14:16]),
            int(timestamp[17:19]),
            0,
            0,
            0,
        )
    )


__all__ = [
    "DEFAULT_LISTING_TAG_LIMITS",
    "IMAGE_FIELDS",
    "LOCKABLE_FIELDS",
    "MAX_UPLOAD_BYTES",
    "SCALAR_FIELDS",
    "SORT_KEYS",
    "TAG_FIELDS",
    "FileFilterMode",
    "ImageEntry",
    "ImageSet",
    "Item",
    "MediaVersion",
    "Options",
    "Part",
    "PlexState",
    "ScanRecord",
    "Section",
    "SortError",
    "StagedFile",
    "Tag",
    "TagMode",
    "parse_sort",
    "scanned_title",
    "sha1_hex",
]
