"""Routing of the simulated PMS: ``app(Request) -> Response`` for the loopback server.

Every request passes the token check (header or query argument, like PMS), then one route;
anything unrouted answers 404 with an HTML body so unexpected calls show up in tests.
Requests are handled one at a time under the state lock, which keeps each response a
consistent snapshot.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable

from stash2plex_backends.simulators.plex import _xml
from stash2plex_backends.simulators.plex._edits import EditError
from stash2plex_backends.simulators.plex._edits import EditRequest
from stash2plex_backends.simulators.plex._edits import apply_edit
from stash2plex_backends.simulators.plex._edits import parse_edit
from stash2plex_backends.simulators.plex._state import MOVIE_TYPE
from stash2plex_backends.simulators.plex._state import ImageEntry
from stash2plex_backends.simulators.plex._state import ImageSet
from stash2plex_backends.simulators.plex._state import Item
from stash2plex_backends.simulators.plex._state import PlexState
from stash2plex_backends.simulators.plex._state import Section
from stash2plex_backends.simulators.plex._state import SortError
from stash2plex_backends.simulators.plex._state import now
from stash2plex_backends.simulators.plex._state import parse_sort
from stash2plex_backends.simulators.plex._state import scanned_title
from stash2plex_backends.simulators.plex._state import sha1_hex
from stash2plex_backends.simulators.server import Request
from stash2plex_backends.simulators.server import Response


XML = "text/xml;charset=utf-8"
_REASONS = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 500: "Internal Server Error"}
#: Listing arguments the simulator understands or may safely ignore; other filters answer 400,
#: so a client relying on a filter the simulator does not implement finds out.
_LISTING_ARGS = frozenset(
    {
        "type",
        "title",
        "file",
        "sort",
        "limit",
        "includeGuids",
        "includeMeta",
        "includeAdvanced",
        "includeCollections",
        "includeExternalMedia",
        "excludeFields",
        "excludeElements",
        "includeFields",
        "includeElements",
        "checkFiles",
        "includeDetails",
    }
)
_IMAGE_FIELD = {"posters": "thumb", "arts": "art"}

Handler = Callable[[Request, re.Match[str]], Response]


class HTTPError(Exception):
    def __init__(self, status: int, detail: str = "") -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _error(status: int, detail: str = "") -> Response:
    reason = _REASONS.get(status, "Error")
    return Response(status, _xml.html_error(status, reason, detail), "text/html; charset=utf-8")


def _ok() -> Response:
    return Response(200, b"", XML)


def _int_arg(request: Request, name: str) -> int | None:
    raw = request.arg(name)
    if raw is None:
        raw = request.header(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise HTTPError(400, f"{name} must be an integer") from None


def _csv(request: Request, name: str) -> frozenset[str]:
    raw = request.arg(name) or ""
    return frozenset(part.strip() for part in raw.split(",") if part.strip())


class PlexApp:
    """The PMS HTTP surface over a :class:`PlexState`."""

    def __init__(self, state: PlexState, token: str, friendly_name: str = "stash2plex-sim") -> None:
        self.state = state
        self.token = token
        self.friendly_name = friendly_name
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("GET", re.compile(r"/"), self._root),
            ("GET", re.compile(r"/identity/?"), self._identity),
            ("GET", re.compile(r"/library/?"), self._library),
            ("GET", re.compile(r"/library/sections/?"), self._sections),
            ("GET", re.compile(r"/library/sections/(\d+)/all/?"), self._listing),
            ("PUT", re.compile(r"/library/sections/(\d+)/all/?"), self._section_edit),
            ("GET", re.compile(r"/library/sections/(\d+)/collections/?"), self._collections),
            ("GET", re.compile(r"/library/sections/(\d+)/refresh/?"), self._scan),
            ("DELETE", re.compile(r"/library/sections/(\d+)/refresh/?"), self._cancel_scan),
            ("GET", re.compile(r"/library/all/?"), self._all_listing),
            ("GET", re.compile(r"/library/metadata/(\d+(?:,\d+)*)/?"), self._detail),
            ("PUT", re.compile(r"/library/metadata/(\d+(?:,\d+)*)/?"), self._item_edit),
            ("DELETE", re.compile(r"/library/metadata/(\d+)/?"), self._delete_item),
            ("PUT", re.compile(r"/library/metadata/(\d+)/(refresh|analyze)/?"), self._item_refresh),
            ("GET", re.compile(r"/library/metadata/(\d+)/(posters|arts)/?"), self._photos),
            ("POST", re.compile(r"/library/metadata/(\d+)/(posters|arts)/?"), self._upload),
            ("PUT", re.compile(r"/library/metadata/(\d+)/(poster|art)/?"), self._select),
            ("DELETE", re.compile(r"/library/metadata/(\d+)/(thumb|art)/?"), self._delete_image),
            ("GET", re.compile(r"/library/metadata/(\d+)/(thumb|art)(?:/\d+)?/?"), self._image),
            ("GET", re.compile(r"/library/metadata/(\d+)/file/?"), self._image_file),
        ]

    def __call__(self, request: Request) -> Response:
        path = request.path
        if path.rstrip("/") != "/identity" and not self._authorised(request):
            return _error(401)
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(path)
            if match is None or method != request.method:
                continue
            try:
                with self.state.lock:
                    self.state.promote()
                    return handler(request, match)
            except HTTPError as exc:
                return _error(exc.status, exc.detail)
            except EditError as exc:
                return _error(exc.status, exc.message)
        return _error(404)

    def _authorised(self, request: Request) -> bool:
        if not self.token:
            return True
        given = request.header("X-Plex-Token") or request.arg("X-Plex-Token") or ""
        return hmac.compare_digest(given.encode(), self.token.encode())

    # -- lookups ---------------------------------------------------------------------------

    def _section(self, key: str) -> Section:
        section = self.state.sections.get(int(key))
        if section is None:
            raise HTTPError(404, f"no library section {key}")
        return section

    def _item(self, key: str) -> Item:
        item = self.state.items.get(int(key))
        if item is None:
            raise HTTPError(404, f"no metadata item {key}")
        return item

    # -- server ----------------------------------------------------------------------------

    def _root(self, request: Request, match: re.Match[str]) -> Response:
        return Response(200, _xml.root(self.state, self.friendly_name), XML)

    def _identity(self, request: Request, match: re.Match[str]) -> Response:
        return Response(200, _xml.identity(self.state), XML)

    def _library(self, request: Request, match: re.Match[str]) -> Response:
        return Response(200, _xml.library(), XML)

    def _sections(self, request: Request, match: re.Match[str]) -> Response:
        return Response(200, _xml.sections(self.state), XML)

    # -- listings --------------------------------------------------------------------------

    def _listing(self, request: Request, match: re.Match[str]) -> Response:
        section = self._section(match.group(1))
        return self._list(request, [section], _xml.section_container(section, "All Videos"), section)

    def _all_listing(self, request: Request, match: re.Match[str]) -> Response:
        header = [
            ("allowSync", 1),
            ("identifier", "com.plexapp.plugins.library"),
            ("mediaTagPrefix", "/system/bundle/media/flags/"),
            ("mediaTagVersion", _xml.MEDIA_TAG_VERSION),
        ]
        return self._list(request, list(self.state.sections.values()), header, None)

    def _list(
        self,
        request: Request,
        sections: list[Section],
        header: list[tuple[str, object]],
        meta_section: Section | None,
    ) -> Response:
        state = self.state
        unknown = sorted(key for key in request.query if key not in _LISTING_ARGS and not key.startswith("X-Plex-"))
        if unknown:
            raise HTTPError(400, f"the simulator does not implement the filter(s) {', '.join(unknown)}")
        try:
            sort = parse_sort(request.arg("sort") or "") if request.arg("sort") else ()
        except SortError as exc:
            raise HTTPError(400, str(exc)) from None
        kind = request.arg("type")
        title = (request.arg("title") or "").casefold()
        file_value = request.arg("file")
        if file_value is not None and state.options.file_filter == "error":
            raise HTTPError(400, "file is not a valid filter")
        if file_value is not None and state.options.file_filter == "ignore":
            file_value = None
        matches: list[Item] = []
        if kind in (None, "", str(MOVIE_TYPE)):
            for section in sections:
                if file_value:
                    found = state.file_matches(section.key, file_value, neighbours=state.options.file_filter == "loose")
                    candidates = (
                        [item for item in state.ordered(section.key, sort) if item.rating_key in found]
                        if len(found) > 64
                        else state.sort_items([state.items[rk] for rk in found], sort)
                    )
                else:
                    candidates = state.ordered(section.key, sort)
                if title:
                    candidates = [item for item in candidates if title in item.title.casefold()]
                matches.extend(candidates)
        limit = _int_arg(request, "limit")
        if limit is not None and limit >= 0:
            matches = matches[:limit]
        start = max(_int_arg(request, "X-Plex-Container-Start") or 0, 0)
        size = _int_arg(request, "X-Plex-Container-Size")
        page = matches[start:] if size is None else matches[start : start + max(size, 0)]
        counts: list[tuple[str, object]] = [("size", len(page))]
        if state.options.emit_total_size:
            counts.append(("totalSize", len(matches)))
        counts.append(("offset", start))
        extra = _xml.meta(meta_section) if meta_section is not None and request.arg("includeMeta") == "1" else ""
        limits = state.options.listing_tag_limits
        include_guids = request.arg("includeGuids") == "1"
        exclude_fields = _csv(request, "excludeFields")
        exclude_elements = _csv(request, "excludeElements")
        videos = (
            _xml.video(
                item,
                state.sections[item.section_id],
                detail=False,
                limits=limits,
                include_guids=include_guids,
                exclude_fields=exclude_fields,
                exclude_elements=exclude_elements,
            )
            for item in page
        )
        body = _xml.items_document([*counts, *header], videos, extra)
        headers = {"X-Plex-Container-Start": str(start)}
        if state.options.emit_total_size:
            headers["X-Plex-Container-Total-Size"] = str(len(matches))
        return Response(200, body, XML, headers)

    def _collections(self, request: Request, match: re.Match[str]) -> Response:
        section = self._section(match.group(1))
        header = [
            ("size", 0),
            ("totalSize", 0),
            ("offset", 0),
            *_xml.section_container(section, "All Collections"),
        ]
        return Response(200, _xml.document(header), XML)

    def _detail(self, request: Request, match: re.Match[str]) -> Response:
        """Complete items for one or more ids; unknown ids are skipped, none known is 404.

        Paging arguments are ignored: the id list in the URL already bounds the answer.
        """
        keys = [int(key) for key in match.group(1).split(",")]
        found = [self.state.items[key] for key in keys if key in self.state.items]
        if not found:
            raise HTTPError(404, f"no metadata item {match.group(1)}")
        header: list[tuple[str, object]] = [("size", len(found))]
        section_ids = {item.section_id for item in found}
        if len(section_ids) == 1:
            header.extend(
                pair
                for pair in _xml.section_container(self.state.sections[found[0].section_id], "")
                if pair[0] not in ("title1", "title2", "viewGroup")
            )
        else:
            header.extend([("allowSync", 1), ("identifier", "com.plexapp.plugins.library")])
        exclude_fields = _csv(request, "excludeFields")
        exclude_elements = _csv(request, "excludeElements")
        videos = (
            _xml.video(
                item,
                self.state.sections[item.section_id],
                detail=True,
                limits={},
                include_guids=True,
                exclude_fields=exclude_fields,
                exclude_elements=exclude_elements,
            )
            for item in found
        )
        return Response(200, _xml.items_document(header, videos), XML)

    # -- edits -----------------------------------------------------------------------------

    def _section_edit(self, request: Request, match: re.Match[str]) -> Response:
        section = self._section(match.group(1))
        edit = parse_edit(request.query)
        self._check_type(edit)
        if edit.ids is None:
            self.state.violations.append(
                f"PUT {request.path} without id would edit every item of the section: {sorted(request.query)}"
            )
            if self.state.options.strict:
                raise HTTPError(400, "refusing an edit without id (it would edit the whole section)")
            targets = [item for item in self.state.items.values() if item.section_id == section.key]
        else:
            targets = [self._item(str(key)) for key in edit.ids]
            strangers = [item.rating_key for item in targets if item.section_id != section.key]
            if strangers:
                raise HTTPError(404, f"items {strangers} are not in section {section.key}")
        self._apply(targets, edit)
        return _ok()

    def _item_edit(self, request: Request, match: re.Match[str]) -> Response:
        targets = [self._item(key) for key in match.group(1).split(",")]
        edit = parse_edit(request.query)
        self._check_type(edit)
        if edit.ids is not None and sorted(edit.ids) != sorted(item.rating_key for item in targets):
            raise HTTPError(400, "id argument does not match the item in the path")
        self._apply(targets, edit)
        return _ok()

    def _check_type(self, edit: EditRequest) -> None:
        if edit.type is not None and edit.type != str(MOVIE_TYPE):
            raise HTTPError(400, f"type {edit.type} does not match the items (movies are type 1)")

    def _apply(self, targets: list[Item], edit: EditRequest) -> None:
        if edit.empty:
            return
        for item in targets:
            apply_edit(self.state, item, edit, self.state.options.tag_mode)

    def _delete_item(self, request: Request, match: re.Match[str]) -> Response:
        self.state.remove_item(self._item(match.group(1)).rating_key)
        return _ok()

    def _item_refresh(self, request: Request, match: re.Match[str]) -> Response:
        item = self._item(match.group(1))
        if match.group(2) == "refresh":
            self.state.refreshes.append(item.rating_key)
            if self.state.options.refresh_resets_unlocked:
                self._reset_unlocked(item)
        return _ok()

    def _reset_unlocked(self, item: Item) -> None:
        """What an agent with nothing to offer does to fields nobody locked."""
        locks = item.locks or set()
        title, year = scanned_title(item.files[0]) if item.files else (item.title, None)
        changed = set()
        for field in list(item.values):
            if field not in locks:
                changed.add(field)
                del item.values[field]
        if "title" not in locks:
            item.values["title"] = title
        if "year" not in locks and year is not None:
            item.values["year"] = str(year)
        if item.tags:
            for field in list(item.tags):
                if field not in locks:
                    del item.tags[field]
        self.state.touch(item, changed)

    # -- scans -----------------------------------------------------------------------------

    def _scan(self, request: Request, match: re.Match[str]) -> Response:
        section = self._section(match.group(1))
        self.state.scan(section, request.arg("path") or None, request.arg("force") == "1")
        return _ok()

    def _cancel_scan(self, request: Request, match: re.Match[str]) -> Response:
        self._section(match.group(1))
        return _ok()

    # -- images ----------------------------------------------------------------------------

    def _images(self, item: Item, kind: str) -> ImageSet:
        return item.poster_set() if kind in ("posters", "poster", "thumb") else item.art_set()

    def _photos(self, request: Request, match: re.Match[str]) -> Response:
        item = self._item(match.group(1))
        return Response(200, _xml.photos(item, self._images(item, match.group(2))), XML)

    def _upload(self, request: Request, match: re.Match[str]) -> Response:
        item = self._item(match.group(1))
        kind = match.group(2)
        url = request.arg("url")
        if url:
            digest = sha1_hex(url.encode())
        elif request.body:
            if len(request.body) > self.state.options.max_upload_bytes:
                raise HTTPError(500, f"image of {len(request.body)} bytes is over the upload limit")
            digest = sha1_hex(request.body)
            self.state.blobs.setdefault(digest, request.body)
        else:
            raise HTTPError(400, "an upload needs a url argument or a body")
        self._choose(item, kind, f"upload://{kind}/{digest}", digest)
        return _ok()

    def _choose(self, item: Item, kind: str, rating_key: str, digest: str | None) -> None:
        """Select (adding if new) a candidate, lock the image field and move the image URL."""
        images = self._images(item, kind)
        if not any(entry.rating_key == rating_key for entry in images.entries):
            images.entries.append(ImageEntry(rating_key, digest))
        images.selected = rating_key
        images.stamp = max(now(), images.stamp + 1)
        field = _IMAGE_FIELD["posters" if kind in ("posters", "poster") else "arts"]
        if item.locks is None:
            item.locks = set()
        item.locks.add(field)
        self.state.touch(item, {field})

    def _select(self, request: Request, match: re.Match[str]) -> Response:
        item = self._item(match.group(1))
        kind = match.group(2)
        wanted = request.arg("url")
        if not wanted:
            raise HTTPError(400, "url argument missing")
        images = self._images(item, kind)
        if any(entry.rating_key == wanted for entry in images.entries):
            self._choose(item, kind, wanted, None)
        elif wanted.startswith(("http://", "https://")):
            self._choose(item, kind, wanted, sha1_hex(wanted.encode()))
        else:
            raise HTTPError(404, f"no {kind} candidate {wanted}")
        return _ok()

    def _delete_image(self, request: Request, match: re.Match[str]) -> Response:
        item = self._item(match.group(1))
        images = self._images(item, match.group(2))
        images.selected = None
        self.state.touch(item, {match.group(2)})
        return _ok()

    def _image(self, request: Request, match: re.Match[str]) -> Response:
        item = self._item(match.group(1))
        kind = "posters" if match.group(2) == "thumb" else "arts"
        data = self.state.image_bytes_for(item, kind)
        if data is None:
            raise HTTPError(404, "no image")
        return Response(200, data, _image_type(data))

    def _image_file(self, request: Request, match: re.Match[str]) -> Response:
        item = self._item(match.group(1))
        wanted = request.arg("url") or ""
        kind = "arts" if wanted.startswith("upload://arts/") else "posters"
        data = self.state.image_bytes_for(item, kind, wanted)
        if data is None:
            data = self.state.image_bytes_for(item, "arts", wanted)
        if data is None:
            raise HTTPError(404, "no such image")
        return Response(200, data, _image_type(data))


def _image_type(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    return "application/octet-stream"


__all__ = ["PlexApp"]
