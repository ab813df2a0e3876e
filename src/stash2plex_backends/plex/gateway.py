"""The PlexGateway over the real ``plexapi`` client.

plexapi and requests are imported on first use, never at import time, so loading the
backend registry (which imports this module) stays cheap for the Stash hook path.

Auto-reload cannot fire: plexapi's ``PlexPartialObject`` (``Movie``) reloads itself on an
empty attribute, but we never build one. Reads go through ``PlexServer.query`` and the XML
it parses (see :mod:`stash2plex_backends.plex._parse`), so no process-wide
``PLEXAPI_PLEXAPI_AUTORELOAD`` setting is needed and every request is one we chose to send.

Request budget (what the request-count tests pin down):

* first call of a gateway: ``GET /`` (``PlexServer``) and ``GET /library/sections``, once;
* :meth:`~PlexApiGateway.resolve_path`: one ``file=`` listing in the section holding the path
  (one more per 1,000 candidates when Plex answers with a big folder, until the file is found);
* :meth:`~PlexApiGateway.iter_items`: one listing per 1,000 items (``updated_since`` walks
  newest first and stops at the first older item);
* :meth:`~PlexApiGateway.get_items`: one detail GET per 100 items, nothing more (a locked
  poster whose hash this gateway has not seen yet comes back unhashed);
* :meth:`~PlexApiGateway.with_image_hashes` (and so ``get_item``): one ``/posters`` GET per
  such unhashed poster, once, for the item an upload is being decided for;
* :meth:`~PlexApiGateway.apply`: one PUT, plus one POST per image whose SHA-1 differs from
  what Plex last showed us (and one ``/posters`` GET first if only a batched read saw it).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
import urllib.parse
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence
from typing import Any
from typing import ClassVar
from typing import Self
from typing import TypeVar

from stash2plex_backends.plex import _parse
from stash2plex_backends.plex._edit import MOVIE_TYPE
from stash2plex_backends.plex._edit import edit_args
from stash2plex_backends.plex._errors import scrub
from stash2plex_backends.plex._errors import translate
from stash2plex_core.errors import ConfigurationError
from stash2plex_core.errors import NotFoundError
from stash2plex_core.errors import PermanentError
from stash2plex_core.errors import TransientError
from stash2plex_core.models.plex import ImageFingerprint
from stash2plex_core.models.plex import ImageKind
from stash2plex_core.models.plex import LibrarySection
from stash2plex_core.models.plex import PlexEdit
from stash2plex_core.models.plex import PlexItemRef
from stash2plex_core.models.plex import PlexItemState
from stash2plex_core.models.plex import ServerInfo
from stash2plex_core.ports.clock import Clock
from stash2plex_core.ports.plex import PlexGateway
from stash2plex_core.settings import Settings


log = logging.getLogger(__name__)
T = TypeVar("T")

#: Tag elements a listing need not send: we index paths, and listings truncate tags anyway.
_LISTING_EXCLUDED_ELEMENTS = "Genre,Country,Collection,Director,Writer,Producer,Role,Label,Guid"
#: Plex answers 500 for larger uploads, which retrying cannot fix (plex-protocol §3.7).
MAX_UPLOAD_BYTES = 10_000_000


def _server_class() -> type[Any]:
    """``PlexServer`` whose requests carry our client identity on top of plexapi's headers.

    plexapi merges its module-global ``BASE_HEADERS`` (a MAC-derived client identifier,
    product "PlexAPI") into every request; mutating that dict would change every other
    plexapi user in the process, so each gateway's server adds its own headers instead.
    """
    global _SERVER_CLASS  # noqa: PLW0603 - built once, on first use, to keep plexapi's import lazy
    if _SERVER_CLASS is None:
        from plexapi.server import PlexServer

        class _Server(PlexServer):
            def __init__(self, baseurl: str, token: str | None, **kwargs: Any) -> None:
                self._stash2plex_headers: dict[str, str] = kwargs.pop("extra_headers")
                super().__init__(baseurl, token, **kwargs)  # type: ignore[no-untyped-call]

            def _headers(self, **kwargs: str) -> dict[str, str]:
                headers: dict[str, str] = super()._headers()  # type: ignore[no-untyped-call]
                headers.update(self._stash2plex_headers)
                headers.update(kwargs)
                return headers

        _SERVER_CLASS = _Server
    return _SERVER_CLASS


_SERVER_CLASS: type[Any] | None = None


def _limited_adapter(slots: Callable[[], threading.Semaphore | None]) -> Any:
    """A ``requests`` transport adapter that holds one of ``slots()`` per HTTP exchange.

    The slot covers sending the request and reading the whole answer (Plex is busy until
    the last byte is out) and nothing else, so parsing XML and mapping metadata never keep
    a request slot idle. Transport adapters are requests' documented extension point.
    """
    from requests.adapters import HTTPAdapter

    class _LimitedAdapter(HTTPAdapter):
        def send(  # type: ignore[override,unused-ignore]  # requests' own signature
            self, request: Any, stream: bool = False, **kwargs: Any
        ) -> Any:
            held = slots()
            if held is None:
                return super().send(request, stream=stream, **kwargs)
            with held:
                response = super().send(request, stream=stream, **kwargs)
                if not stream:
                    _ = response.content  # the body, read while the slot is held
                return response

    return _LimitedAdapter()


def _chunks(values: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _parent(path: str) -> str:
    """The folder of ``path`` (``/`` or ``\\`` separated, as Plex reports it)."""
    cut = max(path.rfind("/"), path.rfind("\\"))
    if cut <= 0:
        return path[: cut + 1] if cut == 0 else path
    return path[:cut]


def _under(path: str, folder: str) -> bool:
    """Whether ``path`` lies in ``folder``; case-insensitive for Windows drive paths."""
    norm_path, norm_folder = path.replace("\\", "/"), folder.replace("\\", "/").rstrip("/")
    if len(norm_folder) >= 2 and norm_folder[1] == ":":
        norm_path, norm_folder = norm_path.casefold(), norm_folder.casefold()
    return norm_path == norm_folder or norm_path.startswith(norm_folder + "/") or not norm_folder


def _basename(path: str) -> str:
    return path[max(path.rfind("/"), path.rfind("\\")) + 1 :]


class PlexApiGateway(PlexGateway):
    """One Plex server through ``plexapi``: one ``PlexServer`` and one ``requests.Session``.

    Nothing connects until the first call. Every call translates foreign errors into core
    errors (see :mod:`stash2plex_backends.plex._errors`) and retries network blips
    (refused or reset connections; never timeouts or HTTP errors) a few times at once,
    sleeping on the :class:`~stash2plex_core.ports.clock.Clock`; longer retries are the
    queue's job.
    """

    id: ClassVar[str] = "plexapi"
    priority: ClassVar[int] = 10
    #: Items per listing page: plexapi's default of 100 makes a 10,000-item index 100 requests.
    PAGE_SIZE: ClassVar[int] = 1000
    #: Items per batched detail GET; the ids travel in the URL, which proxies limit.
    DETAIL_CHUNK: ClassVar[int] = 100
    #: Waits before the immediate retries of a network blip (seconds).
    RETRY_WAITS: ClassVar[tuple[float, ...]] = (0.1, 0.2, 0.4)

    def __init__(
        self,
        url: str | None,
        token: str | None = None,
        *,
        clock: Clock,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        verify_tls: bool = True,
        sections: Iterable[str] = (),
        page_size: int | None = None,
        retry_waits: Sequence[float] | None = None,
        client_identifier: str | None = None,
    ) -> None:
        import uuid

        self._url_problem: str | None = None
        if url:
            parts = urllib.parse.urlsplit(url)
            if parts.query or parts.fragment:
                # ``?X-Plex-Token=...`` would travel into logs and reprs: keep only the rest.
                self._url_problem = "plex_url must not carry a query string or fragment; put the token in plex_token"
                url = urllib.parse.urlunsplit(parts._replace(query="", fragment=""))
        self._url = url.rstrip("/") if url else None
        self._token = token or None
        self._clock = clock
        self._timeout = (connect_timeout, read_timeout)
        self._verify_tls = verify_tls
        self._wanted_sections = tuple(sections)
        self._page_size = page_size or self.PAGE_SIZE
        self._retry_waits = tuple(self.RETRY_WAITS if retry_waits is None else retry_waits)
        self._client_identifier = client_identifier or (
            "stash2plex-" + str(uuid.uuid5(uuid.NAMESPACE_URL, f"stash2plex:{self._url or ''}"))
        )
        self._lock = threading.RLock()
        self._local = threading.local()
        self._plex: Any = None
        self._session: Any = None
        self._sections: list[LibrarySection] | None = None
        self._file_filter = True
        #: ratingKey → section key, learnt from every read, so an edit needs no lookup.
        self._item_sections: dict[str, str] = {}
        #: (ratingKey, kind) → (image URL the fingerprint belongs to, SHA-1 or None).
        self._fingerprints: dict[tuple[str, str], tuple[str | None, str | None]] = {}
        #: (ratingKey, kind) → image URL a batched read saw locked but did not hash.
        self._unhashed: dict[tuple[str, str], str | None] = {}
        #: Held per HTTP exchange while a limit is set (:meth:`limit_requests`).
        self._request_slots: threading.BoundedSemaphore | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self._url!r})"

    @classmethod
    def viable(cls) -> bool:
        return all(importlib.util.find_spec(name) is not None for name in ("plexapi", "requests", "tenacity"))

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock) -> Self:
        return cls(
            settings.plex_url,
            settings.plex_token.reveal() if settings.plex_token else None,
            clock=clock,
            connect_timeout=settings.plex_connect_timeout,
            read_timeout=settings.plex_read_timeout,
            verify_tls=settings.plex_verify_tls,
            sections=settings.plex_sections,
        )

    # -- plumbing --------------------------------------------------------------------------

    def _on_response(self, response: Any, *args: object, **kwargs: object) -> None:
        """Session hook: keep the status and ``Retry-After`` plexapi's exceptions drop."""
        self._local.status = response.status_code
        self._local.retry_after = response.headers.get("Retry-After")

    def _is_blip(self, exc: BaseException) -> bool:
        """A refused or reset connection: worth an immediate retry.

        Timeouts are not blips: a hung Plex would hold the call for every attempt (four
        times the read timeout), so a timeout goes straight to the queue's durable retry
        schedule. ``ConnectTimeout`` is also a ``ConnectionError``, and a read timeout
        while the body streams arrives as a ``ConnectionError`` around urllib3's
        ``ReadTimeoutError``; both are excluded too.
        """
        import requests
        from urllib3.exceptions import ReadTimeoutError

        if not isinstance(exc, requests.exceptions.ConnectionError):
            return False
        if isinstance(exc, requests.exceptions.Timeout | requests.exceptions.SSLError):
            return False
        return not any(isinstance(arg, ReadTimeoutError) for arg in exc.args)

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one plexapi call with immediate retries for blips and core errors for failures."""
        import tenacity

        waits = self._retry_waits

        def attempt() -> T:
            self._local.status = None
            self._local.retry_after = None
            return fn(*args, **kwargs)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.debug("Plex request failed (%s), retry %d", self._scrub(repr(exc)), state.attempt_number)

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(self._is_blip),
            stop=tenacity.stop_after_attempt(len(waits) + 1),
            wait=lambda state: waits[min(state.attempt_number, len(waits)) - 1] if waits else 0.0,
            sleep=self._clock.sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            return retrying(attempt)
        except Exception as exc:
            error = translate(
                exc,
                secrets=[self._token],
                retry_after=getattr(self._local, "retry_after", None),
                last_status=getattr(self._local, "status", None),
                now=self._clock.now(),
            )
            if error is None:
                raise
            log.debug("Plex call failed: %s", error)
            raise error from None

    def _scrub(self, text: str) -> str:
        return scrub(text, [self._token])

    def _server(self) -> Any:
        with self._lock:
            if self._plex is None:
                if not self._url:
                    raise ConfigurationError("plex_url is not set; stash2plex cannot reach Plex")
                if self._url_problem:
                    raise ConfigurationError(self._url_problem)
                self._plex = self._call(self._connect)
            return self._plex

    def _connect(self) -> Any:
        import requests

        from stash2plex_core import __version__

        session = self._session
        if session is None:
            session = requests.Session()
            adapter = _limited_adapter(lambda: self._request_slots)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
        # Read the environment's proxy and CA-bundle settings once, here, instead of on every
        # request (requests' ``trust_env`` costs about half a millisecond per call).
        session.trust_env = False
        session.proxies.update(requests.utils.get_environ_proxies(self._url or ""))
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        session.verify = (bundle or True) if self._verify_tls else False
        if self._on_response not in session.hooks["response"]:
            session.hooks["response"].append(self._on_response)
        self._session = session
        headers = {
            "X-Plex-Client-Identifier": self._client_identifier,
            "X-Plex-Product": "stash2plex",
            "X-Plex-Version": str(__version__),
            "X-Plex-Device-Name": "stash2plex",
        }
        log.debug("connecting to Plex at %s", self._scrub(self._url or ""))
        return _server_class()(self._url, self._token, session=session, timeout=self._timeout, extra_headers=headers)

    def _get(
        self,
        key: str,
        params: dict[str, str] | None = None,
        *,
        start: int | None = None,
        size: int | None = None,
        allow_empty: bool = False,
    ) -> Any:
        server = self._server()
        headers = {}
        if start is not None and size is not None:
            headers = {"X-Plex-Container-Start": str(start), "X-Plex-Container-Size": str(size)}
        container = self._call(server.query, key, headers=headers, params=params)
        if container is None and not allow_empty:
            raise TransientError(f"Plex answered GET {key} with an empty body")
        return container

    def _pages(self, key: str, params: dict[str, str]) -> Iterator[Any]:
        """Every page of a listing; trusts ``totalSize`` and, without it, stops at a short page."""
        start = 0
        while True:
            container = self._get(key, params, start=start, size=self._page_size)
            count = len(container)
            yield container
            start += count
            total = _parse.total_size(container)
            if count == 0 or (start >= total if total is not None else count < self._page_size):
                return

    # -- sections --------------------------------------------------------------------------

    def _fetch_sections(self) -> list[LibrarySection]:
        movie = [s for s in _parse.sections(self._get("/library/sections")) if s.type == "movie"]
        if self._wanted_sections:
            chosen = [s for s in movie if s.key in self._wanted_sections or s.title in self._wanted_sections]
            known = {s.key for s in chosen} | {s.title for s in chosen}
            missing = [w for w in self._wanted_sections if w not in known]
            if missing:
                available = ", ".join(f"{s.title!r} ({s.key})" for s in movie) or "none"
                raise ConfigurationError(
                    f"plex_sections names {', '.join(map(repr, missing))}, which Plex does not have as a movie "
                    f"library; movie libraries: {available}"
                )
            movie = chosen
        self._sections = movie
        return movie

    def _in_use(self) -> list[LibrarySection]:
        with self._lock:
            return list(self._sections) if self._sections is not None else self._fetch_sections()

    def _covering(self, path: str) -> list[LibrarySection]:
        """Sections in use whose folders hold ``path``; all of them if none claims it."""
        in_use = self._in_use()
        return [s for s in in_use if any(_under(path, loc) for loc in s.locations)] or in_use

    # -- the port --------------------------------------------------------------------------

    def ping(self) -> ServerInfo:
        server = self._server()
        identity = self._get("/identity")
        return ServerInfo(
            name=server.friendlyName or "Plex Media Server",
            version=identity.get("version") or server.version or "unknown",
            machine_identifier=identity.get("machineIdentifier") or server.machineIdentifier,
        )

    def sections(self) -> list[LibrarySection]:
        """The movie sections in use, read afresh (later calls reuse this answer)."""
        with self._lock:
            return list(self._fetch_sections())

    def _resolve_path(self, path: str) -> list[PlexItemRef]:
        found: dict[str, PlexItemRef] = {}
        for section in self._covering(path):
            # A file is a part of one item per section, so the first exact match ends the pages.
            ref = next((ref for ref in self._file_lookup(section.key, path) if path in ref.part_paths), None)
            if ref is not None:
                found.setdefault(ref.rating_key, ref)
        return list(found.values())

    def _file_lookup(self, section_key: str, path: str) -> Iterator[PlexItemRef]:
        """Candidates from Plex's ``file=`` filter, or the whole section if Plex refuses it.

        The filter is a hint: PMS may answer the whole folder (sorted by title), so the
        caller keeps only exact part paths, and we page through every candidate.
        """
        if self._file_filter:
            params = {
                "type": MOVIE_TYPE,
                "file": path,
                "excludeFields": "summary",
                "excludeElements": _LISTING_EXCLUDED_ELEMENTS,
            }
            try:
                yield from self._listing(section_key, params)
            except PermanentError as exc:
                if isinstance(exc, NotFoundError):
                    raise
                log.info("Plex refused the file= filter (%s); resolving paths by listing instead", exc)
                self._file_filter = False
            else:
                return
        yield from self._walk(section_key, None)

    def _find_by_filename(self, filename: str) -> list[PlexItemRef]:
        wanted = filename.casefold()
        return [ref for ref in self.iter_items() if any(_basename(p).casefold() == wanted for p in ref.part_paths)]

    def iter_items(self, section_key: str | None = None, *, updated_since: int | None = None) -> Iterator[PlexItemRef]:
        """Items in pages of 1,000 (oldest added first), or only those updated since a time.

        With ``updated_since`` (epoch seconds, inclusive) the walk runs newest-updated first
        and stops at the first older item, so an incremental refresh costs about one request.
        """
        return self._iter_items(section_key, updated_since)

    def _iter_items(self, section_key: str | None, updated_since: int | None) -> Iterator[PlexItemRef]:
        if section_key is None:
            keys = [s.key for s in self._in_use()]
        else:
            in_use = {s.key for s in self._in_use()}
            if section_key not in in_use and section_key not in {s.key for s in self._all_movie()}:
                raise NotFoundError(f"Plex has no movie library section {section_key}")
            keys = [section_key]
        seen: set[str] = set()
        for key in keys:
            for ref in self._walk(key, updated_since):
                if ref.rating_key not in seen:
                    seen.add(ref.rating_key)
                    yield ref

    def _all_movie(self) -> list[LibrarySection]:
        return [s for s in _parse.sections(self._get("/library/sections")) if s.type == "movie"]

    def _walk(self, section_key: str, updated_since: int | None) -> Iterator[PlexItemRef]:
        params = {
            "type": MOVIE_TYPE,
            "sort": "addedAt" if updated_since is None else "updatedAt:desc",
            "excludeFields": "summary",
            "excludeElements": _LISTING_EXCLUDED_ELEMENTS,
        }
        for ref in self._listing(section_key, params):
            if updated_since is not None and ref.updated_at is not None and ref.updated_at < updated_since:
                return
            yield ref

    def _listing(self, section_key: str, params: dict[str, str]) -> Iterator[PlexItemRef]:
        for container in self._pages(f"/library/sections/{section_key}/all", params):
            for video in _parse.videos(container):
                ref = _parse.item_ref(video, container)
                self._item_sections[ref.rating_key] = ref.section_key
                yield ref

    def _get_items(self, rating_keys: list[str]) -> list[PlexItemState]:
        # Plex ratingKeys are numbers; anything else cannot exist (and would 404 the batch).
        numeric = [key for key in rating_keys if key.isdigit()]
        items: list[PlexItemState] = []
        for chunk in _chunks(numeric, self.DETAIL_CHUNK):
            try:
                container = self._get("/library/metadata/" + ",".join(chunk))
            except NotFoundError:
                continue  # none of this chunk exists
            items.extend(self._state(video, container) for video in _parse.videos(container))
        return items

    def _state(self, video: Any, container: Any) -> PlexItemState:
        rating_key = str(video.get("ratingKey"))
        section = _parse.section_key(video, container)
        self._item_sections[rating_key] = section
        locked = _parse.locked_fields(video)
        images: dict[ImageKind, ImageFingerprint] = {}
        for kind in ImageKind:
            sha1 = self._fingerprint(rating_key, kind, video, locked)
            if sha1 is not None:
                images[kind] = ImageFingerprint(sha1)
        updated = video.get("updatedAt")
        return PlexItemState(
            rating_key=rating_key,
            section_key=section,
            metadata=_parse.metadata(video),
            locked_fields=locked,
            images=images,
            part_paths=_parse.part_paths(video),
            updated_at=int(updated) if updated and updated.isdigit() else None,
        )

    def _fingerprint(self, rating_key: str, kind: ImageKind, video: Any, locked: frozenset[str]) -> str | None:
        """SHA-1 of the item's selected uploaded image of ``kind``, ``""`` if unhashed, or ``None``.

        Plex shows that hash only in the ``/posters`` (``/arts``) list, as
        ``upload://posters/<sha1>``; the item's own ``thumb`` URL carries a timestamp, not
        the hash (plex-protocol §3.7). Choosing or uploading an image locks its field and
        gives the item a new image URL, so: no lock, no upload of ours to find; same URL as
        when we last looked, same image; the first URL seen after our own upload, the image
        we uploaded; otherwise ``""`` (an image, hash unread): a read stays one request per
        batch however many posters are locked, and :meth:`_image_hash` spends the GET of
        the list only for the item an upload is being decided for.
        """
        attribute, lock, _listing = _parse.IMAGE_FIELDS[kind.value]
        slot = (rating_key, kind.value)
        if lock not in locked:
            self._fingerprints.pop(slot, None)
            self._unhashed.pop(slot, None)
            return None
        url = video.get(attribute)
        cached = self._fingerprints.get(slot)
        if cached is not None and cached[0] == url:
            return cached[1]
        if cached is not None and cached[0] is None:
            # Our own upload, read back for the first time: its new URL is the image we sent.
            self._fingerprints[slot] = (url, cached[1])
            return cached[1]
        self._fingerprints.pop(slot, None)  # a new URL: whatever we knew is stale
        self._unhashed[slot] = url
        return ""

    def _image_hash(self, rating_key: str, kind: ImageKind) -> str | None:
        slot = (rating_key, kind.value)
        cached = self._fingerprints.get(slot)
        if cached is not None:
            return cached[1]
        if not rating_key.isdigit():
            return None
        return self._read_hash(rating_key, kind, self._unhashed.get(slot))

    def _read_hash(self, rating_key: str, kind: ImageKind, url: str | None) -> str | None:
        """One GET of the item's image list: the SHA-1 of its selected upload, remembered for ``url``."""
        listing = _parse.IMAGE_FIELDS[kind.value][2]
        slot = (rating_key, kind.value)
        self._unhashed.pop(slot, None)
        try:
            photos = self._get(f"/library/metadata/{rating_key}/{listing}")
        except NotFoundError:
            return None
        sha1 = _parse.selected_upload_sha1(photos, listing)
        self._fingerprints[slot] = (url, sha1)
        return sha1

    def _section_of(self, rating_key: str) -> str:
        section = self._item_sections.get(rating_key)
        if section is not None:
            return section
        if not rating_key.isdigit():
            raise NotFoundError(f"Plex has no item with ratingKey {rating_key}")
        container = self._get(f"/library/metadata/{rating_key}", {"excludeElements": "Media"})
        for video in _parse.videos(container):
            section = _parse.section_key(video, container)
            self._item_sections[rating_key] = section
            return section
        raise NotFoundError(f"Plex has no movie with ratingKey {rating_key}")

    def _apply(self, rating_key: str, edit: PlexEdit) -> None:
        import hashlib

        from plexapi.utils import joinArgs

        server = self._server()
        if edit.needs_put:
            section = self._section_of(rating_key)
            key = f"/library/sections/{section}/all{joinArgs(edit_args(rating_key, edit))}"  # type: ignore[no-untyped-call]
            self._call(server.query, key, method=self._session.put)
        for upload in edit.images:
            _attribute, _lock, listing = _parse.IMAGE_FIELDS[upload.kind.value]
            sha1 = upload.sha1 or hashlib.sha1(upload.data, usedforsecurity=False).hexdigest()
            slot = (rating_key, upload.kind.value)
            known = self._fingerprints.get(slot)
            if known is None and slot in self._unhashed:
                # Planned from an unhashed read: learn what Plex shows before sending the bytes.
                self._image_hash(rating_key, upload.kind)
                known = self._fingerprints.get(slot)
            if known is not None and known[1] == sha1:
                log.debug("Plex already shows this %s for %s; not uploading it again", upload.kind.value, rating_key)
                continue
            if len(upload.data) > MAX_UPLOAD_BYTES:
                raise PermanentError(
                    f"the {upload.kind.value} image is {len(upload.data)} bytes; Plex refuses uploads over "
                    f"{MAX_UPLOAD_BYTES} bytes"
                )
            if not rating_key.isdigit():
                raise NotFoundError(f"Plex has no item with ratingKey {rating_key}")
            self._call(
                server.query, f"/library/metadata/{rating_key}/{listing}", method=self._session.post, data=upload.data
            )
            # The new image URL is unknown until the next read; the hash is ours.
            self._fingerprints[slot] = (None, sha1)
            self._unhashed.pop(slot, None)

    def _scan(self, path: str) -> None:
        folder = _parent(path)
        in_use = self._in_use()
        sections = [s for s in in_use if any(_under(folder, loc) for loc in s.locations)]
        if not sections:
            raise NotFoundError(f"no Plex library in use holds {folder}; check the library folders and path rules")
        for section in sections:
            self._get(f"/library/sections/{section.key}/refresh", {"path": folder}, allow_empty=True)

    def limit_requests(self, requests: int | None) -> bool:
        """Limit requests at the transport adapter: a slot is held only for each HTTP exchange."""
        self._request_slots = None if requests is None else threading.BoundedSemaphore(max(1, requests))
        return True

    def listening(self) -> bool | None:
        """Whether Plex's port accepts a TCP connection (no HTTP request; ``None`` behind a proxy)."""
        import socket

        import requests

        if not self._url or self._url_problem:
            return None
        parts = urllib.parse.urlsplit(self._url)
        if not parts.hostname or requests.utils.get_environ_proxies(self._url):
            return None  # a proxy answers for Plex: its port says nothing about Plex's
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            with socket.create_connection((parts.hostname, port), timeout=min(1.0, self._timeout[0])):
                return True
        except (OSError, ValueError):
            return False

    def close(self) -> None:
        with self._lock:
            if self._session is not None:
                self._session.close()
            self._plex = None
            self._session = None
            self._sections = None


__all__ = ["MAX_UPLOAD_BYTES", "PlexApiGateway"]
