"""``StashApiGateway``: the StashGateway port over stashapi's ``StashInterface``."""

from __future__ import annotations

import importlib.util
import logging
import re
import threading
import time
import urllib.parse
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from datetime import datetime
from datetime import timedelta
from typing import TYPE_CHECKING
from typing import Any
from typing import ClassVar
from typing import NoReturn
from typing import Self

from stash2plex_backends.stash import _errors
from stash2plex_backends.stash import _queries
from stash2plex_backends.stash._errors import CallRecord
from stash2plex_backends.stash._errors import GraphQLErrorInfo
from stash2plex_backends.stash._errors import Scrubber
from stash2plex_backends.stash._session import StashapiLog
from stash2plex_backends.stash._session import configure_session
from stash2plex_backends.stash._session import interface_class
from stash2plex_backends.stash._timestamps import WATERMARK_OVERLAP
from stash2plex_backends.stash._timestamps import parse_instant
from stash2plex_backends.stash._timestamps import watermark_floor
from stash2plex_core.errors import ConfigurationError
from stash2plex_core.errors import PermanentError
from stash2plex_core.errors import Stash2PlexError
from stash2plex_core.models.plex import ServerInfo
from stash2plex_core.models.stash import StashImage
from stash2plex_core.models.stash import StashScene
from stash2plex_core.ports.clock import Clock
from stash2plex_core.ports.stash import StashGateway
from stash2plex_core.ports.stash import check_path_match
from stash2plex_core.ports.stash import path_key


if TYPE_CHECKING:
    import requests

    from stash2plex_core.settings import Settings


log = logging.getLogger(__name__)
_stashapi_log = logging.getLogger("stash2plex_backends.stash.stashapi")

#: Stash's image routes; a URL on another origin (Stash's ``external_host``) is re-based
#: onto the address we talk to, so credentials never travel to another host.
_IMAGE_ROUTE = re.compile(r"/(?:scene|performer|studio|tag|group)/\d+/(?:screenshot|image|frontimage|backimage)$")
#: Immediate retries (seconds to wait before each) for blips: a refused or reset connection,
#: SQLite's "database is locked". Longer trouble is the job queue's to reschedule.
RETRY_DELAYS: tuple[float, ...] = (0.1, 0.2, 0.4)
_LOOPBACK_ALIASES = frozenset({"0.0.0.0", "::", "[::]", ""})  # noqa: S104 - hosts Stash binds, not us
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme)


class _Blip(Exception):
    """A failure worth an immediate retry; carries the core error to raise if retries run out."""

    def __init__(self, error: Stash2PlexError, cause: BaseException | None) -> None:
        super().__init__()  # no text: the error's message is scrubbed only when it is raised
        self.error = error
        self.cause = cause


class StashApiGateway(StashGateway):
    """Reads Stash through one lazily built ``StashInterface``.

    Build it with :meth:`from_settings` (``stash_url`` plus ``stash_api_key``) or, inside
    the Stash plugin, :meth:`from_server_connection` (the session cookie Stash hands the
    plugin). Nothing connects until the first call; then one ``StashInterface`` serves the
    gateway's whole life. Every request has a timeout (``stash_timeout``), every failure is
    a core error, and the API key never appears in a message or a log.
    """

    id: ClassVar[str] = "stashapi"
    priority: ClassVar[int] = 10
    #: Scenes per ``findScenes`` request when iterating (and for path look-ups).
    default_page_size: ClassVar[int] = 1000

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        session_cookie: str | None = None,
        timeout: float = 30.0,
        verify_tls: bool = True,
        force_api_key: bool = False,
        page_size: int | None = None,
        watermark_overlap: timedelta = WATERMARK_OVERLAP,
        retry_delays: tuple[float, ...] = RETRY_DELAYS,
        clock: Clock | None = None,
        path_match: str = "exact",
    ) -> None:
        self.path_match = check_path_match(path_match)
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(f"invalid Stash URL {base_url!r}: expected http(s)://host[:port]")
        if parts.query or parts.fragment:
            raise ConfigurationError("the Stash URL must not carry a query or fragment (pass the API key separately)")
        self.base_url = base_url.rstrip("/")
        self.page_size = page_size or self.default_page_size
        if self.page_size < 1:
            raise ValueError("page_size must be at least 1")
        if watermark_overlap < timedelta(seconds=1):
            raise ValueError("watermark_overlap must be at least one second (the query is strictly greater-than)")
        self.watermark_overlap = watermark_overlap
        self._timeout = timeout
        self._retry_delays = tuple(retry_delays)
        self._sleep: Callable[[float], None] = clock.sleep if clock is not None else time.sleep
        self._verify_tls = verify_tls
        self._force_api_key = force_api_key
        self._api_key = api_key or None
        self._session_cookie = session_cookie or None
        self._scrub = Scrubber([self._api_key, self._session_cookie])
        self._stash: Any = None
        self._build_lock = threading.Lock()
        self._local = threading.local()

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def viable(cls) -> bool:
        """Needs ``stashapi`` (PyPI ``stashapp-tools``) and ``requests``; checked without importing them."""
        return all(importlib.util.find_spec(name) is not None for name in ("stashapi", "requests"))

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock | None = None) -> Self:
        """``stash_url`` + ``stash_api_key`` (optional when Stash has no credentials set)."""
        if not settings.stash_url:
            raise ConfigurationError("stash_url is not set (e.g. http://127.0.0.1:9999)")
        key = settings.stash_api_key.reveal() if settings.stash_api_key else None
        return cls(
            settings.stash_url,
            api_key=key,
            timeout=settings.stash_timeout,
            verify_tls=settings.stash_verify_tls,
            clock=clock,
            path_match=settings.stash_path_match,
        )

    @classmethod
    def from_server_connection(
        cls, conn: Mapping[str, Any], settings: Settings, *, force_api_key: bool = False
    ) -> Self:
        """From the ``server_connection`` object Stash writes to a plugin's stdin.

        Uses its ``Scheme``/``Host``/``Port`` (a Stash bound to ``0.0.0.0`` is reached on
        ``127.0.0.1``) and its session cookie, which keeps Stash's hook-loop protection. A
        configured ``stash_api_key`` is sent too. With ``force_api_key``, the gateway reads
        Stash's own API key through the cookie and switches to it (it never expires during
        a long task, but drops the cookie and with it the loop protection: read-only tasks
        only).
        """
        keys = {str(k).lower(): v for k, v in conn.items()}
        scheme = str(keys.get("scheme") or "http").lower()
        host = str(keys.get("host") or "").strip()
        if host in _LOOPBACK_ALIASES:
            host = "127.0.0.1"
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        port = keys.get("port") or _DEFAULT_PORTS.get(scheme, 9999)
        cookie = keys.get("sessioncookie")
        cookie_value = cookie.get("Value") if isinstance(cookie, Mapping) else None
        key = settings.stash_api_key.reveal() if settings.stash_api_key else None
        return cls(
            f"{scheme}://{host}:{int(port)}",
            api_key=key,
            session_cookie=str(cookie_value) if cookie_value else None,
            timeout=settings.stash_timeout,
            verify_tls=settings.stash_verify_tls,
            force_api_key=force_api_key,
            path_match=settings.stash_path_match,
        )

    def __repr__(self) -> str:
        auth = "api key" if self._api_key else "session cookie" if self._session_cookie else "no credentials"
        return f"<{type(self).__name__} {self.base_url} ({auth})>"

    def _conn(self) -> dict[str, Any]:
        parts = urllib.parse.urlsplit(self.base_url)
        conn: dict[str, Any] = {
            "Scheme": parts.scheme,
            "Host": parts.hostname,
            "Port": parts.port or _DEFAULT_PORTS[parts.scheme],
            "Logger": StashapiLog(_stashapi_log, self._scrub),
        }
        if self._api_key:
            conn["ApiKey"] = self._api_key
        if self._session_cookie:
            conn["SessionCookie"] = {"Name": "session", "Value": self._session_cookie}
        return conn

    def _interface(self) -> Any:
        """The ``StashInterface``, built on first use (its constructor makes 3 requests)."""
        stash = self._stash
        if stash is not None:
            return stash
        with self._build_lock:
            if self._stash is None:
                cls = interface_class()

                def configure(session: requests.Session) -> None:
                    configure_session(session, timeout=self._timeout, hook=self._record_response)

                self._stash = self._guard(
                    "connecting",
                    lambda: cls(
                        self._conn(),
                        endpoint=f"{self.base_url}/graphql",
                        configure=configure,
                        verify_tls=self._verify_tls,
                        force_api_key=self._force_api_key,
                    ),
                )
                log.debug("connected to Stash at %s", self.base_url)
            return self._stash

    def close(self) -> None:
        """Close the HTTP session; a later call connects again."""
        with self._build_lock:
            stash, self._stash = self._stash, None
        if stash is not None:
            stash.s.close()

    # -- one guarded call --------------------------------------------------------------------

    def _record_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """Session hook: keep the status, ``Retry-After`` and GraphQL errors of this call."""
        record: CallRecord | None = getattr(self._local, "record", None)
        if record is None:
            return
        record.status = response.status_code
        record.reason = response.reason or ""
        record.retry_after = _errors.retry_after_seconds(response.headers.get("Retry-After"))
        content_type = response.headers.get("Content-Type", "")
        if "json" not in content_type or b'"errors"' not in response.content:
            return
        try:
            body = response.json()
        except ValueError:
            return
        errors = body.get("errors") if isinstance(body, dict) else None
        if isinstance(errors, list):
            record.errors.extend(GraphQLErrorInfo.from_json(e) for e in errors)

    def _fail(self, error: Stash2PlexError, cause: BaseException | None) -> NoReturn:
        error.args = tuple(self._scrub(a) if isinstance(a, str) else a for a in error.args)
        log.debug("%s", error.args[0] if error.args else error)
        raise error from cause

    def _guard(self, what: str, call: Callable[[], Any]) -> Any:
        """Run one stashapi call (all are reads), retrying blips a few times at once."""
        for delay in (*self._retry_delays, None):
            try:
                return self._guard_once(what, call)
            except _Blip as blip:
                if delay is None:
                    self._fail(blip.error, blip.cause)
                log.debug("retrying in %.1fs after: %s", delay, self._scrub(str(blip.error)))
                self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _guard_once(self, what: str, call: Callable[[], Any]) -> Any:
        """One stashapi call; any failure, or GraphQL errors it let through, raise core errors."""
        import requests

        context = f"Stash at {self.base_url}: {what}"
        record = CallRecord()
        self._local.record = record
        try:
            result = call()
        except requests.RequestException as exc:
            error = _errors.from_requests(exc, context=context)
            if _errors.is_connection_blip(exc):
                raise _Blip(error, exc) from exc
            self._fail(error, exc)
        except Stash2PlexError:
            raise
        except Exception as exc:
            error = _errors.from_stashapi(exc, record, context=context)
            if any(e.locked for e in record.errors):
                raise _Blip(error, exc) from exc
            self._fail(error, exc)
        finally:
            self._local.record = None
        if record.errors:
            # Partial data: stashapi logged the errors and returned nulls in their place.
            error = _errors.from_graphql_errors(record.errors, context=context)
            if any(e.locked for e in record.errors):
                raise _Blip(error, None)
            self._fail(error, None)
        return result

    def _graphql(self, what: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        stash = self._interface()
        data = self._guard(what, lambda: stash.call_GQL(query, variables or {}))
        if not isinstance(data, dict):
            self._fail(PermanentError(f"Stash at {self.base_url}: {what}: answer has no data object"), None)
        return data

    def _decode(self, what: str, raw: Mapping[str, Any]) -> StashScene:
        try:
            return _queries.decode_scene(raw)
        except (KeyError, TypeError, ValueError) as exc:
            self._fail(
                PermanentError(
                    f"Stash at {self.base_url}: {what}: unexpected scene shape ({type(exc).__name__}: {exc})"
                ),
                exc,
            )

    # -- the port ----------------------------------------------------------------------------

    def ping(self) -> ServerInfo:
        data = self._graphql("version query", _queries.VERSION)
        version = data.get("version") or {}
        return ServerInfo(
            name="Stash",
            version=str(version.get("version") or version.get("hash") or "unknown"),
            machine_identifier=None,
        )

    def plugin_settings(self, plugin_id: str) -> dict[str, Any]:
        """The settings a user saved for a Stash plugin (``{}`` when none were ever touched).

        Not part of the port: only the Stash plugin integration needs it, to read its own
        configuration through the session Stash handed it.
        """
        data = self._graphql(f"plugin settings of {plugin_id}", _queries.PLUGIN_SETTINGS, {"ids": [plugin_id]})
        plugins = (data.get("configuration") or {}).get("plugins") or {}
        found = plugins.get(plugin_id) if isinstance(plugins, dict) else None
        return dict(found) if isinstance(found, dict) else {}

    def _get_scene(self, scene_id: str) -> StashScene | None:
        if not scene_id.isdigit():
            return None  # Stash ids are integers: no such scene can exist
        what = f"findScene {scene_id}"
        data = self._graphql(what, _queries.FIND_SCENE, {"id": scene_id})
        raw = data.get("findScene")
        return None if raw is None else self._decode(what, raw)

    def _get_scenes(self, scene_ids: list[str]) -> dict[str, StashScene]:
        """``findScenes(ids: …)``, :attr:`page_size` ids a request; ids Stash cannot have are absent."""
        wanted = [s for s in scene_ids if s.isdigit()]
        found: dict[str, StashScene] = {}
        for start in range(0, len(wanted), self.page_size):
            chunk = wanted[start : start + self.page_size]
            what = f"findScenes by {len(chunk)} id(s)"
            data = self._graphql(what, _queries.FIND_SCENES_BY_IDS, _queries.ids_variables(chunk))
            try:
                page: list[dict[str, Any]] = data["findScenes"]["scenes"]
            except (KeyError, TypeError) as exc:
                self._fail(PermanentError(f"Stash at {self.base_url}: {what}: unexpected answer shape"), exc)
            asked = set(chunk)
            for raw in page:
                scene = self._decode(what, raw)
                if scene.id in asked:
                    found[scene.id] = scene
        return found

    def _pages(self, what: str, scene_filter: Mapping[str, Any]) -> Iterator[list[dict[str, Any]]]:
        """Keyset pages of ``findScenes`` (id ascending, ``id > last``) until a short page."""
        after = 0
        while True:
            variables = _queries.page_variables(scene_filter, after_id=after, per_page=self.page_size)
            data = self._graphql(what, _queries.FIND_SCENES, variables)
            try:
                scenes: list[dict[str, Any]] = data["findScenes"]["scenes"]
                last = int(scenes[-1]["id"]) if scenes else after
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                self._fail(PermanentError(f"Stash at {self.base_url}: {what}: unexpected page shape"), exc)
            if scenes and last <= after:
                self._fail(PermanentError(f"Stash at {self.base_url}: {what}: ids did not increase"), None)
            yield scenes
            if len(scenes) < self.page_size:
                return
            after = last

    def _find_by_path(self, path: str) -> list[StashScene]:
        """``path EQUALS`` (a LIKE with wildcards, case-insensitive), then exact matches only.

        With :attr:`path_match` ``"normalised"`` the LIKE values are widened first (see
        :func:`~stash2plex_backends.stash._queries.loose_path_patterns`: one request, two
        when the path's NFC and NFD forms differ), and "exact" means equal once normalised.
        """
        what = "findScenes by path"
        wanted = path_key(path, self.path_match)
        patterns = [path] if self.path_match == "exact" else _queries.loose_path_patterns(path)
        found: dict[str, StashScene] = {}
        for pattern in patterns:
            for page in self._pages(what, _queries.path_filter(pattern)):
                for raw in page:
                    files = raw.get("files") or ()
                    if str(raw.get("id")) not in found and any(
                        isinstance(f.get("path"), str) and path_key(f["path"], self.path_match) == wanted for f in files
                    ):
                        scene = self._decode(what, raw)
                        found[scene.id] = scene
        return list(found.values())

    def iter_scenes(self, *, updated_since: str | None = None) -> Iterator[StashScene]:
        """Every scene by id, or those whose ``updated_at`` is at or after ``updated_since``.

        ``updated_since`` should be one of Stash's own ``updated_at`` strings. The server is
        asked for ``updated_at > updated_since - watermark_overlap`` (written in the
        watermark's offset, since Stash compares text), and we keep the scenes whose
        instant is at or after the watermark.
        """
        if updated_since is None:
            return self._iter({}, None)
        try:
            floor_text, since = watermark_floor(updated_since, self.watermark_overlap)
        except ValueError as exc:
            raise ValueError(f"updated_since {updated_since!r} is not an RFC 3339 timestamp: {exc}") from None
        return self._iter(_queries.updated_filter(floor_text), since)

    def _iter(self, scene_filter: Mapping[str, Any], since: datetime | None) -> Iterator[StashScene]:
        what = "findScenes" if since is None else "findScenes updated since"
        for page in self._pages(what, scene_filter):
            for raw in page:
                scene = self._decode(what, raw)
                if since is not None and (scene.updated_at is None or parse_instant(scene.updated_at) < since):
                    continue
                yield scene

    def fetch_image(self, url: str) -> bytes:
        """GET an image Stash serves, with the gateway's credentials, and insist on ``image/*``.

        Without valid credentials Stash redirects image routes to its login page, which is
        a 200 HTML page if followed; we do not follow it and report an
        :class:`~stash2plex_core.errors.AuthenticationError`.
        """
        image = self._get_image(url, None)
        assert image is not None  # only a conditional request can come back unchanged
        return image.data

    def fetch_image_if_changed(self, url: str, etag: str | None = None) -> StashImage | None:
        """:meth:`fetch_image` with ``If-None-Match: etag``: ``None`` on ``304 Not Modified``."""
        return self._get_image(url, etag)

    def _get_image(self, url: str, etag: str | None) -> StashImage | None:
        import requests

        target = self._image_target(url)
        stash = self._interface()
        context = f"Stash at {self.base_url}: image {urllib.parse.urlsplit(target).path}"
        headers = {"Accept": "image/*"}
        if etag:
            headers["If-None-Match"] = etag
        response = None
        for delay in (*self._retry_delays, None):
            try:
                response = stash.s.get(target, headers=headers, allow_redirects=False)
                break
            except requests.RequestException as exc:
                if delay is None or not _errors.is_connection_blip(exc):
                    self._fail(_errors.from_requests(exc, context=context), exc)
                log.debug("%s: retrying in %.1fs after %s", context, delay, type(exc).__name__)
                self._sleep(delay)
        assert response is not None
        with response:
            status = response.status_code
            if status == 304 and etag:
                return None
            if status in (301, 302, 303, 307, 308):
                location = response.headers.get("Location", "")
                if "/login" in location:
                    self._fail(_errors.from_status(401, "redirected to the login page", context=context), None)
                self._fail(PermanentError(f"{context}: unexpected redirect (HTTP {status})"), None)
            if status != 200:
                retry = _errors.retry_after_seconds(response.headers.get("Retry-After"))
                self._fail(_errors.for_image(status, response.reason or "", context=context, retry_after=retry), None)
            content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if not content_type.startswith("image/"):
                self._fail(
                    PermanentError(f"{context}: Stash answered {content_type or 'no content type'}, not an image"),
                    None,
                )
            data: bytes = response.content
            tag = response.headers.get("ETag") or None
        if not data:
            self._fail(PermanentError(f"{context}: empty image"), None)
        return StashImage(data, tag)

    def _image_target(self, url: str) -> str:
        """``url`` if it is on our Stash origin; re-based onto it if it is a Stash image route."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise PermanentError(f"not an http(s) image URL: {self._scrub(url)!r}")
        if _origin(url) == _origin(self.base_url):
            return url
        match = _IMAGE_ROUTE.search(parts.path)
        if match is None:
            raise PermanentError(
                f"refusing to send Stash credentials to {parts.scheme}://{parts.netloc}: "
                f"the image URL is not on the Stash server at {self.base_url}"
            )
        rebased = self.base_url + match.group(0) + (f"?{parts.query}" if parts.query else "")
        log.debug("re-basing image URL from %s://%s onto %s", parts.scheme, parts.netloc, self.base_url)
        return rebased


__all__ = ["StashApiGateway"]
