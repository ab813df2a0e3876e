"""The simulated Stash's data: records, indexes, queries and mutations.

Everything is guarded by one re-entrant lock: the HTTP app holds it for a whole GraphQL
execution, so a request sees a consistent library, as it would inside one SQLite read
transaction. ``version`` increases on every mutation; query results are cached per version
so paging through 50,000 scenes filters and sorts once, not once per page.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from datetime import tzinfo
from typing import Any
from typing import TypeVar

from stash2plex_backends.simulators.seedlib import SeedLibrary
from stash2plex_backends.simulators.stash import _filters as flt
from stash2plex_backends.simulators.stash._models import PluginTaskRun
from stash2plex_backends.simulators.stash._models import SimFile
from stash2plex_backends.simulators.stash._models import SimFolder
from stash2plex_backends.simulators.stash._models import SimGroup
from stash2plex_backends.simulators.stash._models import SimJob
from stash2plex_backends.simulators.stash._models import SimPerformer
from stash2plex_backends.simulators.stash._models import SimScene
from stash2plex_backends.simulators.stash._models import SimStudio
from stash2plex_backends.simulators.stash._models import SimTag
from stash2plex_backends.simulators.stash._timefmt import format_time
from stash2plex_backends.simulators.stash._timefmt import to_zone


T = TypeVar("T")

_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
_GENDERS = ("FEMALE", "MALE", None, "FEMALE", "NON_BINARY", "MALE", "TRANSGENDER_FEMALE")
_DATE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")
_SCENE_FIELDS = frozenset(
    {
        "title",
        "code",
        "details",
        "director",
        "urls",
        "date",
        "rating100",
        "organized",
        "studio_id",
        "performer_ids",
        "tag_ids",
        "group_ids",
        "groups",
        "cover",
        "o_counter",
        "play_count",
        "play_duration",
        "resume_time",
        "interactive",
        "primary_file_id",
    }
)
_CONTAINERS = {".mp4": ("mp4", "h264", "aac", 29.97), ".mkv": ("matroska", "hevc", "opus", 23.976)}
_CACHE_SIZE = 16


class NotFoundError(LookupError):
    """A referenced record does not exist (a GraphQL error in Stash)."""


def decode_image(value: str) -> bytes:
    """Stash accepts ``data:<mime>;base64,<payload>`` for cover and profile images."""
    head, sep, payload = value.partition(",")
    if not sep or not head.startswith("data:") or not head.endswith(";base64"):
        raise ValueError("the simulator accepts only base64 data URLs for images")
    try:
        return base64.b64decode(payload, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"invalid base64 image: {exc}") from exc


class StashState:
    """Scenes, files, performers, studios, tags, groups, plugin settings and jobs."""

    def __init__(self, *, tz: tzinfo, library_root: str = "/data/library") -> None:
        self.lock = threading.RLock()
        self.tz = tz
        self.library_root = library_root.rstrip("/") or "/"
        self.scenes: dict[int, SimScene] = {}
        self.performers: dict[int, SimPerformer] = {}
        self.studios: dict[int, SimStudio] = {}
        self.tags: dict[int, SimTag] = {}
        self.groups: dict[int, SimGroup] = {}
        self.folders: dict[str, SimFolder] = {}
        self.plugin_settings: dict[str, dict[str, Any]] = {}
        self.plugin_task_runs: list[PluginTaskRun] = []
        self.jobs: dict[int, SimJob] = {}
        self.version = 0
        self._next: dict[str, int] = {}
        self._frozen: datetime | None = None
        self._shift = timedelta(0)
        self._path_keys: list[str] = []
        self._path_ids: list[int] = []
        self._paths_dirty = True
        self._cache: OrderedDict[tuple[Any, ...], tuple[int, list[int]]] = OrderedDict()

    # -- clock ----------------------------------------------------------------------------

    def now(self) -> datetime:
        """The server's current time, second precision, in its own zone."""
        base = self._frozen if self._frozen is not None else datetime.now(UTC)
        return (base + self._shift).astimezone(self.tz).replace(microsecond=0)

    def now_text(self) -> str:
        return format_time(self.now())

    def freeze_time(self, moment: datetime | None) -> None:
        """Stop the clock at ``moment`` (aware), or let it run again with ``None``."""
        with self.lock:
            self._frozen = moment
            self._shift = timedelta(0)

    def advance_time(self, seconds: float) -> None:
        with self.lock:
            self._shift += timedelta(seconds=seconds)

    def _seed_time(self, minutes: int) -> str:
        return format_time((_EPOCH + timedelta(minutes=minutes)).astimezone(self.tz))

    def _new_id(self, kind: str, table: Mapping[int, Any] | None = None) -> int:
        current = self._next.get(kind)
        if current is None:
            current = max(table, default=0) + 1 if table is not None else 1
        self._next[kind] = current + 1
        return current

    def touch(self) -> None:
        """Record a mutation: cached query results are stale from now on."""
        self.version += 1
        self._cache.clear()

    # -- seeding --------------------------------------------------------------------------

    def seed(self, library: SeedLibrary) -> None:
        """Load a generated library: the same scenes and files the Plex simulator describes."""
        with self.lock:
            tz = self.tz
            for i, sp in enumerate(library.performers):
                stamp = self._seed_time(int(sp.id))
                pid = int(sp.id)
                self.performers[pid] = SimPerformer(
                    id=pid,
                    name=sp.name,
                    created_at=stamp,
                    updated_at=stamp,
                    gender=_GENDERS[i % len(_GENDERS)],
                    disambiguation="the second" if i % 11 == 10 else None,
                    alias_list=[sp.name.split(" ")[0]] if i % 9 == 4 else [],
                    has_image=sp.has_image,
                )
            for ss in library.studios:
                stamp = self._seed_time(int(ss.id))
                sid = int(ss.id)
                self.studios[sid] = SimStudio(
                    id=sid,
                    name=ss.name,
                    created_at=stamp,
                    updated_at=stamp,
                    parent_id=int(ss.parent_id) if ss.parent_id else None,
                )
            for st in library.tags:
                stamp = self._seed_time(int(st.id))
                self.tags[int(st.id)] = SimTag(id=int(st.id), name=st.name, created_at=stamp, updated_at=stamp)
            for sg in library.groups:
                stamp = self._seed_time(int(sg.id))
                self.groups[int(sg.id)] = SimGroup(id=int(sg.id), name=sg.name, created_at=stamp, updated_at=stamp)
            for scene in library.scenes:
                created = to_zone(scene.created_at, tz)
                updated = to_zone(scene.updated_at, tz)
                files = [
                    self._make_file(
                        int(f.id),
                        f.path,
                        size=f.size,
                        duration=f.duration,
                        width=f.width,
                        height=f.height,
                        stamp=created,
                    )
                    for f in scene.files
                ]
                sid = int(scene.id)
                self.scenes[sid] = SimScene(
                    id=sid,
                    title=scene.title,
                    code=scene.code,
                    details=scene.details,
                    director=scene.director,
                    urls=[],
                    date=scene.date,
                    rating100=scene.rating100,
                    organized=False,
                    studio_id=int(scene.studio_id) if scene.studio_id else None,
                    performer_ids=[int(p) for p in scene.performer_ids],
                    tag_ids=[int(t) for t in scene.tag_ids],
                    group_links=[(int(g), None) for g in scene.group_ids],
                    files=files,
                    created_at=created,
                    updated_at=updated,
                )
            self._paths_dirty = True
            self.touch()

    def _make_file(
        self, file_id: int, path: str, *, size: int, duration: float, width: int, height: int, stamp: str
    ) -> SimFile:
        ext = path[path.rfind(".") :].lower() if "." in path.rpartition("/")[2] else ""
        container, vcodec, acodec, rate = _CONTAINERS.get(ext, ("mp4", "h264", "aac", 29.97))
        self._folder(path.rpartition("/")[0] or "/", stamp)
        return SimFile(
            id=file_id,
            path=path,
            size=size,
            duration=duration,
            width=width,
            height=height,
            video_codec=vcodec,
            audio_codec=acodec,
            format=container,
            frame_rate=rate,
            bit_rate=int(size * 8 / duration) if duration else 0,
            mod_time=stamp,
            created_at=stamp,
            updated_at=stamp,
        )

    def _folder(self, path: str, stamp: str) -> SimFolder:
        """The folder row for ``path``, creating parents up to the library root."""
        folder = self.folders.get(path)
        if folder is not None:
            return folder
        parent: str | None = path.rpartition("/")[0] or "/"
        if path in {"/", self.library_root}:
            parent = None
        elif parent is not None:
            self._folder(parent, stamp)
        folder = SimFolder(
            id=len(self.folders) + 1,
            path=path,
            parent_path=parent,
            mod_time=stamp,
            created_at=stamp,
            updated_at=stamp,
        )
        self.folders[path] = folder
        return folder

    # -- lookups --------------------------------------------------------------------------

    def get(self, table: Mapping[int, T], kind: str, item_id: int | str) -> T:
        try:
            return table[int(item_id)]
        except (KeyError, ValueError):
            raise NotFoundError(f"{kind} with id {item_id} not found") from None

    def scene(self, scene_id: int | str) -> SimScene:
        return self.get(self.scenes, "scene", scene_id)

    def tag_tree(self, tag_id: int, depth: int) -> set[int]:
        """A tag and its descendants ``depth`` levels down (``-1``: all)."""
        found = {tag_id}
        frontier = {tag_id}
        level = 0
        while frontier and (depth < 0 or level < depth):
            frontier = {t.id for t in self.tags.values() if frontier & set(t.parent_ids)} - found
            found |= frontier
            level += 1
        return found

    def studio_tree(self, studio_id: int, depth: int) -> set[int]:
        found = {studio_id}
        frontier = {studio_id}
        level = 0
        while frontier and (depth < 0 or level < depth):
            frontier = {s.id for s in self.studios.values() if s.parent_id in frontier} - found
            found |= frontier
            level += 1
        return found

    def _ensure_path_index(self) -> None:
        if not self._paths_dirty:
            return
        entries = sorted((flt.ascii_fold(f.path), scene.id) for scene in self.scenes.values() for f in scene.files)
        self._path_keys = [key for key, _ in entries]
        self._path_ids = [sid for _, sid in entries]
        self._paths_dirty = False

    def path_candidates(self, pattern: str) -> set[int]:
        """Scenes with a file whose path is ``LIKE pattern``, found through a sorted index.

        The literal prefix before the first wildcard narrows the range; the compiled LIKE
        regex decides within it.
        """
        self._ensure_path_index()
        folded = flt.ascii_fold(pattern)
        cut = next((i for i, char in enumerate(folded) if char in "%_"), len(folded))
        prefix = folded[:cut]
        keys = self._path_keys
        index = bisect.bisect_left(keys, prefix)
        found: set[int] = set()
        if cut == len(folded):
            while index < len(keys) and keys[index] == prefix:
                found.add(self._path_ids[index])
                index += 1
            return found
        regex = flt.like_regex(pattern)
        while index < len(keys) and keys[index].startswith(prefix):
            if regex.fullmatch(keys[index]):
                found.add(self._path_ids[index])
            index += 1
        return found

    # -- filter specs ---------------------------------------------------------------------

    def _now_plus_day(self, used: list[bool]) -> Callable[[], str]:
        def compute() -> str:
            used.append(True)
            return format_time(self.now() + timedelta(days=1))

        return compute

    def scene_spec(self, used_now: list[bool]) -> dict[str, flt.Handler]:
        plus_day = self._now_plus_day(used_now)

        def column(name: str) -> flt.Getter:
            return lambda s, _f: getattr(s, name)

        def of_file(name: str) -> flt.Getter:
            return lambda _s, f: None if f is None else getattr(f, name)

        def text(get: flt.Getter) -> flt.Handler:
            return lambda c: flt.text_criterion(get, c, plus_day)

        def counted(get: Callable[[SimScene], Sequence[Any]]) -> flt.Handler:
            return lambda c: flt.int_criterion(lambda s, _f: len(get(s)), c)

        spec: dict[str, flt.Handler] = {
            "id": lambda c: flt.int_criterion(column("id"), c),
            "path": flt.path_criterion,
            "url": lambda c: flt.string_list_criterion(column("urls"), c),
            "rating100": lambda c: flt.int_criterion(column("rating100"), c),
            "organized": lambda v: flt.bool_criterion(column("organized"), v),
            "interactive": lambda v: flt.bool_criterion(column("interactive"), v),
            "duration": lambda c: flt.int_criterion(lambda _s, f: None if f is None else int(f.duration), c),
            "file_count": counted(lambda s: s.files),
            "performer_count": counted(lambda s: s.performer_ids),
            "tag_count": counted(lambda s: s.tag_ids),
            "created_at": text(column("created_at")),
            "updated_at": text(column("updated_at")),
            "date": text(column("date")),
            "performers": lambda c: flt.multi_criterion(lambda s: s.performer_ids, c),
            "tags": lambda c: flt.multi_criterion(lambda s: s.tag_ids, c, self.tag_tree),
            "studios": lambda c: flt.multi_criterion(
                lambda s: () if s.studio_id is None else (s.studio_id,), _studio_modifier(c), self.studio_tree
            ),
            "groups": lambda c: flt.multi_criterion(lambda s: [g for g, _ in s.group_links], c),
            "is_missing": _scene_missing,
        }
        for name in ("title", "code", "details", "director"):
            spec[name] = _string_handler(column(name))
        for name in ("oshash", "checksum", "phash"):
            spec[name] = _string_handler(of_file("md5" if name == "checksum" else name))
        return spec

    def entity_spec(self, kind: str, used_now: list[bool]) -> dict[str, flt.Handler]:
        plus_day = self._now_plus_day(used_now)

        def column(name: str) -> flt.Getter:
            return lambda r, _f: getattr(r, name)

        spec: dict[str, flt.Handler] = {
            "name": lambda c: flt.string_criterion(column("name"), c),
            "created_at": lambda c: flt.text_criterion(column("created_at"), c, plus_day),
            "updated_at": lambda c: flt.text_criterion(column("updated_at"), c, plus_day),
        }
        if kind in {"performer", "studio", "tag"}:
            spec["favorite"] = lambda v: flt.bool_criterion(column("favorite"), v)
        if kind == "performer":
            spec["disambiguation"] = lambda c: flt.string_criterion(column("disambiguation"), c)
            spec["aliases"] = lambda c: flt.string_list_criterion(column("alias_list"), c)
            spec["details"] = lambda c: flt.string_criterion(column("details"), c)
        elif kind in {"studio", "tag"}:
            spec["aliases"] = lambda c: flt.string_list_criterion(column("aliases"), c)
            spec["details" if kind == "studio" else "description"] = lambda c: flt.string_criterion(
                column("details" if kind == "studio" else "description"), c
            )
        if kind == "studio":
            spec["url"] = lambda c: flt.string_list_criterion(column("urls"), c)
            spec["parents"] = lambda c: flt.multi_criterion(lambda s: () if s.parent_id is None else (s.parent_id,), c)
        if kind == "group":
            spec["director"] = lambda c: flt.string_criterion(column("director"), c)
            spec["synopsis"] = lambda c: flt.string_criterion(column("synopsis"), c)
            spec["url"] = lambda c: flt.string_list_criterion(column("urls"), c)
        return spec

    # -- queries --------------------------------------------------------------------------

    def query_scenes(
        self,
        scene_filter: Mapping[str, Any] | None,
        find_filter: Mapping[str, Any],
        ids: Sequence[int] | None,
    ) -> list[int]:
        """Matching scene ids in Stash's order (before pagination)."""
        q = find_filter.get("q") or ""
        sort = find_filter.get("sort") or ""
        direction = find_filter.get("direction") or "ASC"
        key = (
            "scene",
            flt.filter_key(scene_filter),
            q,
            sort,
            direction,
            tuple(ids) if ids is not None else None,
        )
        cached = self._cache.get(key)
        if cached is not None and cached[0] == self.version:
            self._cache.move_to_end(key)
            return cached[1]
        used_now: list[bool] = []
        pred = flt.compile_filter(self.scene_spec(used_now), scene_filter)
        search = flt.search_predicate(_scene_columns, q)
        candidates = self._scene_candidates(scene_filter, ids)
        matched: list[SimScene] = []
        for scene in candidates:
            if pred is not None and not flt.matches_rows(pred, scene, scene.files):
                continue
            if search is not None and not flt.matches_rows(search, scene, scene.files):
                continue
            matched.append(scene)
        ordered = self._sort_scenes(matched, sort, direction)
        if not used_now:
            self._cache[key] = (self.version, ordered)
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return ordered

    def _scene_candidates(self, scene_filter: Mapping[str, Any] | None, ids: Sequence[int] | None) -> list[SimScene]:
        wanted: set[int] | None = None if ids is None else set(ids)
        if scene_filter and scene_filter.get("OR") is None:
            path = scene_filter.get("path")
            if path is not None and path.get("modifier") == "EQUALS":
                found = self.path_candidates(path["value"])
                wanted = found if wanted is None else wanted & found
            id_crit = scene_filter.get("id")
            if id_crit is not None and id_crit.get("modifier") == "EQUALS":
                one = {id_crit["value"]}
                wanted = one if wanted is None else wanted & one
        if wanted is None:
            return list(self.scenes.values())
        return [self.scenes[i] for i in sorted(wanted) if i in self.scenes]

    def _sort_scenes(self, scenes: list[SimScene], sort: str, direction: str) -> list[int]:
        """Stash's ORDER BY: the sort key, then ``COALESCE(title, id)`` naturally, ascending."""
        if not sort:
            return sorted(s.id for s in scenes)
        if sort.startswith("random"):
            return flt.random_order(sorted(s.id for s in scenes), sort)
        key = self._scene_sort_key(sort)
        scenes.sort(key=lambda s: (flt.natural_key(s.title if s.title is not None else str(s.id)), s.id))
        scenes.sort(key=key, reverse=direction == "DESC")  # stable: ties keep the ascending tie-break
        return [s.id for s in scenes]

    def _scene_sort_key(self, sort: str) -> Callable[[SimScene], Any]:
        def primary(s: SimScene) -> SimFile | None:
            return s.files[0] if s.files else None

        def file_attr(name: str) -> Callable[[SimScene], Any]:
            return lambda s: flt.null_first(None if not s.files else getattr(s.files[0], name))

        def column(name: str) -> Callable[[SimScene], Any]:
            return lambda s: flt.null_first(getattr(s, name))

        def title_key(s: SimScene) -> Any:
            first = primary(s)
            shown = s.title if s.title is not None else (first.basename if first else "")
            return (flt.natural_key(shown), flt.natural_key(first.folder_path if first else ""))

        def path_key(s: SimScene) -> Any:
            first = primary(s)
            return flt.natural_key((first.folder_path + first.basename) if first else "")

        def studio_key(s: SimScene) -> Any:
            studio = self.studios.get(s.studio_id) if s.studio_id is not None else None
            return flt.null_first(None if studio is None else studio.name)

        def resolution_key(s: SimScene) -> Any:
            first = primary(s)
            return flt.null_first(None if first is None else min(first.width, first.height))

        keys: dict[str, Callable[[SimScene], Any]] = {
            "id": lambda s: s.id,
            "title": title_key,
            "path": path_key,
            "studio": studio_key,
            "resolution": resolution_key,
            "filesize": file_attr("size"),
            "duration": file_attr("duration"),
            "file_mod_time": file_attr("mod_time"),
            "bitrate": file_attr("bit_rate"),
            "framerate": file_attr("frame_rate"),
            "rating": column("rating100"),
            "file_count": lambda s: len(s.files),
            "tag_count": lambda s: len(s.tag_ids),
            "performer_count": lambda s: len(s.performer_ids),
        }
        for name in (
            "date",
            "code",
            "created_at",
            "updated_at",
            "organized",
            "o_counter",
            "play_count",
            "play_duration",
            "resume_time",
            "last_played_at",
            "interactive",
            "interactive_speed",
        ):
            keys[name] = column(name)
        try:
            return keys[sort]
        except KeyError:
            raise flt.FilterError(f"invalid sort: {sort}") from None

    def query_entities(
        self,
        kind: str,
        table: Mapping[int, Any],
        entity_filter: Mapping[str, Any] | None,
        find_filter: Mapping[str, Any],
        ids: Sequence[int] | None,
    ) -> list[int]:
        """Performers, studios, tags or groups: filter, ``q`` on names and aliases, sort."""
        used_now: list[bool] = []
        pred = flt.compile_filter(self.entity_spec(kind, used_now), entity_filter)
        search = flt.search_predicate(_entity_columns, find_filter.get("q"))
        rows = table.values() if ids is None else [table[i] for i in ids if i in table]
        matched = [
            r for r in rows if (pred is None or pred(r, None) is True) and (search is None or search(r, None) is True)
        ]
        sort = find_filter.get("sort") or ""
        matched.sort(key=lambda r: (flt.natural_key(r.name), r.id))
        if not sort:
            return sorted(r.id for r in matched)
        if sort.startswith("random"):
            return flt.random_order([r.id for r in matched], sort)
        keys: dict[str, Callable[[Any], Any]] = {
            "id": lambda r: r.id,
            "name": lambda r: flt.natural_key(r.name),
            "created_at": lambda r: r.created_at,
            "updated_at": lambda r: r.updated_at,
            "scenes_count": lambda r: self.scene_count(kind, r.id),
        }
        if sort not in keys:
            raise flt.FilterError(f"invalid sort: {sort}")
        matched.sort(key=keys[sort], reverse=(find_filter.get("direction") or "ASC") == "DESC")
        return [r.id for r in matched]

    def scene_count(self, kind: str, item_id: int) -> int:
        if kind == "performer":
            return sum(1 for s in self.scenes.values() if item_id in s.performer_ids)
        if kind == "tag":
            return sum(1 for s in self.scenes.values() if item_id in s.tag_ids)
        if kind == "studio":
            return sum(1 for s in self.scenes.values() if s.studio_id == item_id)
        return sum(1 for s in self.scenes.values() if any(g == item_id for g, _ in s.group_links))

    # -- scene mutations ------------------------------------------------------------------

    def add_scene(self, paths: Sequence[str], **fields: Any) -> SimScene:
        """A scan finding new files: a new scene, ``created_at == updated_at == now``."""
        if not paths:
            raise ValueError("a scene needs at least one file path")
        with self.lock:
            taken = {f.path for s in self.scenes.values() for f in s.files}
            for path in paths:
                if not path.startswith("/"):
                    raise ValueError(f"file paths are absolute: {path!r}")
                if path in taken:
                    raise ValueError(f"file {path!r} already belongs to a scene")
            stamp = self.now_text()
            if "file" not in self._next:
                self._next["file"] = max((f.id for s in self.scenes.values() for f in s.files), default=0) + 1
            files = [
                self._make_file(
                    self._new_id("file"),
                    path,
                    size=734_003_200,
                    duration=1800.0,
                    width=1920,
                    height=1080,
                    stamp=stamp,
                )
                for path in paths
            ]
            scene = SimScene(
                id=self._new_id("scene", self.scenes),
                title=None,
                code=None,
                details=None,
                director=None,
                urls=[],
                date=None,
                rating100=None,
                organized=False,
                studio_id=None,
                performer_ids=[],
                tag_ids=[],
                group_links=[],
                files=files,
                created_at=stamp,
                updated_at=stamp,
            )
            self.scenes[scene.id] = scene
            self._paths_dirty = True
            if fields:
                self._apply_scene_fields(scene, fields)
            self.touch()
            return scene

    def update_scene(self, scene_id: int | str, fields: Mapping[str, Any], *, touch: bool = True) -> SimScene:
        """Apply ``fields`` and, like Stash's partial update, set ``updated_at`` to now."""
        with self.lock:
            scene = self.scene(scene_id)
            self._apply_scene_fields(scene, fields)
            if touch:
                scene.updated_at = self.now_text()
            self.touch()
            return scene

    def _apply_scene_fields(self, scene: SimScene, fields: Mapping[str, Any]) -> None:
        unknown = set(fields) - _SCENE_FIELDS
        if unknown:
            raise ValueError(f"unknown scene fields: {sorted(unknown)}")
        values = dict(fields)
        if values.get("date") is not None and not _DATE.fullmatch(values["date"]):
            raise ValueError(f"invalid date: {values['date']}")
        if values.get("studio_id") is not None:
            values["studio_id"] = self.get(self.studios, "studio", values["studio_id"]).id
        relations: tuple[tuple[str, Mapping[int, Any], str], ...] = (
            ("performer_ids", self.performers, "performer"),
            ("tag_ids", self.tags, "tag"),
        )
        for key, table, kind in relations:
            if key in values:
                values[key] = _unique(self.get(table, kind, i).id for i in values[key] or [])
        if "group_ids" in values:
            values["groups"] = [(i, None) for i in values.pop("group_ids") or []]
        if "groups" in values:
            links = []
            for link in values.pop("groups") or []:
                gid, index = (link["group_id"], link.get("scene_index")) if isinstance(link, Mapping) else link
                links.append((self.get(self.groups, "group", gid).id, index))
            scene.group_links = links
        if "primary_file_id" in values:
            wanted = int(values.pop("primary_file_id"))
            ordered = sorted(scene.files, key=lambda f: f.id != wanted)
            if ordered[0].id != wanted:
                raise ValueError(f"file {wanted} is not a file of scene {scene.id}")
            scene.files = ordered
        if "urls" in values:
            values["urls"] = list(values["urls"] or [])
        for key, value in values.items():
            setattr(scene, key, value)

    def destroy_scene(self, scene_id: int | str) -> SimScene:
        with self.lock:
            scene = self.scene(scene_id)
            del self.scenes[scene.id]
            self._paths_dirty = True
            self.touch()
            return scene

    def move_file(self, old_path: str, new_path: str, *, touch_scene: bool = False) -> SimScene:
        """A file renamed or moved on disk and rescanned: same scene, new path."""
        with self.lock:
            for scene in self.scenes.values():
                for file in scene.files:
                    if file.path == old_path:
                        file.path = new_path
                        file.updated_at = self.now_text()
                        self._folder(new_path.rpartition("/")[0] or "/", file.updated_at)
                        if touch_scene:
                            scene.updated_at = file.updated_at
                        self._paths_dirty = True
                        self.touch()
                        return scene
            raise NotFoundError(f"no file at {old_path!r}")

    # -- other records --------------------------------------------------------------------

    def update_record(self, table: Mapping[int, T], kind: str, item_id: int | str, fields: Mapping[str, Any]) -> T:
        """Update a performer, studio, tag or group; scenes keep their ``updated_at``.

        That is Stash's behaviour: renaming a tag changes what a scene shows without
        bumping the scene, and fires no scene hook.
        """
        with self.lock:
            found = self.get(table, kind, item_id)
            record: Any = found
            others: list[Any] = [r for r in table.values() if r is not found]
            values = dict(fields)
            for image_key in ("image", "front_image"):
                if image_key in values:
                    image = values.pop(image_key)
                    if isinstance(image, str):
                        image = decode_image(image)
                    flag = "has_image" if image_key == "image" else "has_front_image"
                    setattr(record, flag, image is not None)
                    setattr(record, image_key, image)
            if "name" in values and kind in {"tag", "studio"}:
                wanted = str(values["name"]).lower()
                clash = next((r for r in others if r.name.lower() == wanted), None)
                if clash is not None:
                    raise ValueError(f"name '{values['name']}' already used by {kind} '{clash.name}'")
            for key, value in values.items():
                if not hasattr(record, key):
                    raise ValueError(f"unknown {kind} field {key!r}")
                setattr(record, key, value)
            record.updated_at = self.now_text()
            self.touch()
            return found

    def add_record(self, table: dict[int, Any], kind: str, factory: Callable[..., T], **fields: Any) -> T:
        with self.lock:
            stamp = self.now_text()
            record = factory(id=self._new_id(kind, table), created_at=stamp, updated_at=stamp, **fields)
            table[getattr(record, "id")] = record  # noqa: B009 - T has no declared id
            self.touch()
            return record

    # -- plugins and jobs -----------------------------------------------------------------

    def plugin_config(self, include: Iterable[str] | None) -> dict[str, dict[str, Any]]:
        if include is None:
            return {k: dict(v) for k, v in self.plugin_settings.items()}
        return {k: dict(self.plugin_settings[k]) for k in include if k in self.plugin_settings}

    def configure_plugin(self, plugin_id: str, values: Mapping[str, Any]) -> dict[str, Any]:
        """``configurePlugin`` replaces the whole map, as Stash does."""
        with self.lock:
            self.plugin_settings[plugin_id] = dict(values)
            return dict(values)

    def new_job(self, description: str, status: str) -> SimJob:
        with self.lock:
            stamp = self.now_text()
            job = SimJob(id=self._new_id("job", self.jobs), status=status, description=description, addTime=stamp)
            if status == "FINISHED":
                job.startTime = job.endTime = stamp
                job.progress = 1.0
            self.jobs[job.id] = job
            return job


def _string_handler(get: flt.Getter) -> flt.Handler:
    return lambda criterion: flt.string_criterion(get, criterion)


def _unique(values: Iterable[int]) -> list[int]:
    return list(dict.fromkeys(values))


def _studio_modifier(criterion: Mapping[str, Any]) -> Mapping[str, Any]:
    """Stash treats studio EQUALS as INCLUDES_ALL and NOT_EQUALS as EXCLUDES."""
    modifier = {"EQUALS": "INCLUDES_ALL", "NOT_EQUALS": "EXCLUDES"}.get(criterion["modifier"])
    return criterion if modifier is None else {**criterion, "modifier": modifier}


def _scene_missing(what: str) -> flt.Predicate:
    checks: dict[str, Callable[[SimScene], bool]] = {
        "title": lambda s: not s.title,
        "details": lambda s: not s.details,
        "code": lambda s: not s.code,
        "director": lambda s: not s.director,
        "date": lambda s: not s.date,
        "url": lambda s: not s.urls,
        "studio": lambda s: s.studio_id is None,
        "performers": lambda s: not s.performer_ids,
        "tags": lambda s: not s.tag_ids,
        "groups": lambda s: not s.group_links,
        "rating": lambda s: s.rating100 is None,
        "cover": lambda _s: False,
    }
    check = checks.get(what)
    if check is None:
        raise flt.FilterError(f"is_missing value {what!r} is not supported by the simulator")
    return lambda s, _f: check(s)


def _scene_columns(scene: SimScene, file: SimFile | None) -> list[str | None]:
    """What ``q`` searches in a scene row: title, details, code, path and fingerprints."""
    values: list[str | None] = [scene.title, scene.details, scene.code]
    if file is not None:
        values += [file.path, file.oshash, file.md5]
    return values


def _entity_columns(record: Any, _file: Any) -> list[str | None]:
    values: list[str | None] = [record.name]
    for attr in ("alias_list", "aliases"):
        extra = getattr(record, attr, None)
        if isinstance(extra, list):
            values += extra
        elif isinstance(extra, str):
            values.append(extra)
    if getattr(record, "disambiguation", None):
        values.append(record.disambiguation)
    return values


__all__ = ["NotFoundError", "StashState", "decode_image"]
