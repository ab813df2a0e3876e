"""The HTTP face of the provider: a Starlette app Plex registers by URL.

Endpoints (all JSON unless noted; the secret rules are in :class:`Guard`):

* ``GET /`` — the ``MediaProvider`` root document;
* ``POST /library/metadata/matches`` — match Plex's hints (``filename``, ``guid``,
  ``title``, ``manual``) to Stash scenes;
* ``GET /library/metadata/{ratingKey}`` — the scene's full metadata; 404 for unknown keys;
* ``GET /library/metadata/{ratingKey}/images`` — the scene's ``Image`` entries;
* ``GET /library/collections/{key}`` — a collection (studio or group) by key;
* ``GET /images/scene/{id}/screenshot`` and ``GET /images/scene/{id}/performer/{pid}`` —
  image bytes, fetched from Stash with the provider's credentials;
* ``GET /gaps`` — unmatched files and the latest comparison report;
* ``POST /gaps/run`` — run the two-way comparison now (and wait for it);
* ``GET /health`` — liveness and Stash reachability (no secret needed).
"""

from __future__ import annotations

import contextlib
import functools
import hmac
import json
import logging
import os
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator
from collections.abc import Awaitable
from collections.abc import Callable
from typing import Any
from typing import Final

import attrs
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp
from starlette.types import Message
from starlette.types import Receive
from starlette.types import Scope
from starlette.types import Send

from stash2plex_core.app import App
from stash2plex_core.app import build_app
from stash2plex_core.errors import ConfigurationError
from stash2plex_core.errors import PermanentError
from stash2plex_core.errors import TransientError
from stash2plex_core.services.pathrules import PathMapper
from stash2plex_core.settings import Settings
from stash2plex_integrations.plex_provider import protocol
from stash2plex_integrations.plex_provider.paths import LibraryPaths
from stash2plex_integrations.plex_provider.paths import check_library_roots
from stash2plex_integrations.plex_provider.service import BadRequestError
from stash2plex_integrations.plex_provider.service import MatchHints
from stash2plex_integrations.plex_provider.service import ProviderService
from stash2plex_integrations.plex_provider.service import UpstreamTimeoutError


log = logging.getLogger("stash2plex.provider")
access_log = logging.getLogger("stash2plex.provider.access")

#: Largest request body accepted (a match request is a few hundred bytes).
MAX_BODY: Final = 64 * 1024
SECRET_HEADER: Final = "x-stash2plex-secret"  # noqa: S105 - a header name
SECRET_PARAM: Final = "secret"  # noqa: S105 - a parameter name
#: Paths served without the secret: the health probe, and images (which check a signature).
OPEN_PATHS: Final = ("/health",)
_AUTHORIZED: Final = "stash2plex.authorized"
_REQUEST_ID: Final = "stash2plex.request_id"


class BodyTooLargeError(Exception):
    """The request body passed :data:`MAX_BODY`."""


def _same(given: str, secret: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "replace"), secret.encode("utf-8"))


class Guard:
    """ASGI middleware: shared secret, body limit and one structured log line per request.

    With ``provider_secret`` set, a request must carry it in one of three ways:

    * as the first path segment (``http://host:9090/<secret>/...``): the form to register
      in Plex, because Plex joins its feature paths to the URL it was given and sends no
      custom headers;
    * in the ``X-Stash2Plex-Secret`` header, or ``Authorization: Bearer <secret>``;
    * as the ``secret`` query parameter.

    Comparisons take constant time. ``/health`` needs no secret; image URLs carry a
    per-path signature instead. The log line names the method, the path with the secret
    removed, the status and the duration, never the query string or headers.
    """

    def __init__(self, app: ASGIApp, secret: str | None, max_body: int = MAX_BODY) -> None:
        self.app = app
        self.secret = secret or None
        self.max_body = max_body
        self._quoted = urllib.parse.quote(secret, safe="") if secret else None

    def _authorize(self, scope: Scope) -> tuple[bool, str]:
        """Whether the request carries the secret, and its path without the secret prefix."""
        path: str = scope["path"]
        if self.secret is None:
            return True, path
        first, slash, rest = path.lstrip("/").partition("/")
        if first and _same(first, self.secret):
            return True, "/" + rest if slash or rest else "/"
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        given = headers.get(SECRET_HEADER)
        if given is None and headers.get("authorization", "").lower().startswith("bearer "):
            given = headers["authorization"][7:].strip()
        if given is None:
            query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
            values = query.get(SECRET_PARAM)
            given = values[0] if values else None
        return (given is not None and _same(given, self.secret)), path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        authorized, path = self._authorize(scope)
        scope = dict(scope, path=path, raw_path=urllib.parse.quote(path).encode("ascii"))
        scope[_AUTHORIZED] = authorized
        scope[_REQUEST_ID] = uuid.uuid4().hex[:12]
        status = {"code": 500}

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        shown = path if authorized else _masked(path)
        try:
            if not authorized and not path.startswith(OPEN_PATHS) and not path.startswith("/images/"):
                await _json(401, {"error": "unauthorized: the provider's shared secret is missing or wrong"})(
                    scope, receive, sending
                )
                return
            declared = dict(scope.get("headers", ())).get(b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > self.max_body:
                await _json(413, {"error": f"request body over {self.max_body} bytes"})(scope, receive, sending)
                return
            await self.app(scope, self._limited(receive), sending)
        finally:
            access_log.info(
                "%s %s %s",
                scope["method"],
                shown,
                status["code"],
                extra={
                    "method": scope["method"],
                    "path": shown,
                    "status": status["code"],
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "client": (scope.get("client") or ("-",))[0],
                    "request_id": scope[_REQUEST_ID],
                },
            )

    def _limited(self, receive: Receive) -> Receive:
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise BodyTooLargeError(f"request body over {self.max_body} bytes")
            return message

        return limited


#: First path segments of our own routes; anything else in a refused request may be a mistyped secret.
_ROUTE_HEADS: Final = frozenset({"", "library", "images", "gaps", "health"})


def _masked(path: str) -> str:
    """``path`` for the log of a refused request: a first segment that is no route of ours is hidden."""
    first, slash, rest = path.lstrip("/").partition("/")
    return path if first in _ROUTE_HEADS else "/***" + (slash + rest if slash else "")


def _json(status: int, content: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(content, status_code=status, headers=headers)


Endpoint = Callable[[Request], Awaitable[Response]]


def _error_response(exc: Exception, path: str) -> Response:
    """The JSON answer for a failure; no stack trace leaves the process."""
    where = {"path": path}
    if isinstance(exc, BadRequestError):
        return _json(400, {"error": str(exc)})
    if isinstance(exc, BodyTooLargeError):
        return _json(413, {"error": str(exc)})
    if isinstance(exc, UpstreamTimeoutError):
        log.warning("Stash timed out", extra=where)
        return _json(504, {"error": str(exc)})
    if isinstance(exc, TransientError):
        log.warning("Stash is unavailable: %s", exc, extra=where)
        retry = exc.retry_after if exc.retry_after is not None else 5
        return _json(503, {"error": f"Stash is unavailable: {exc}"}, {"Retry-After": str(max(1, round(retry)))})
    if isinstance(exc, ConfigurationError | PermanentError):
        what = "Stash refused the provider" if isinstance(exc, ConfigurationError) else "Stash failed"
        log.warning("%s: %s", what, exc, extra=where)
        return _json(502, {"error": f"{what}: {exc}"})
    log.error("internal error", exc_info=exc, extra=where)
    return _json(500, {"error": "internal error"})


def _answer_errors(endpoint: Endpoint) -> Endpoint:
    """Turn every failure of ``endpoint`` into a JSON error with the right status."""

    @functools.wraps(endpoint)
    async def wrapped(request: Request) -> Response:
        try:
            return await endpoint(request)
        except HTTPException:
            raise
        except Exception as exc:  # noqa: BLE001 - mapped to a status, logged, never leaked
            return _error_response(exc, request.url.path)

    return wrapped


def _service(request: Request) -> ProviderService:
    service: ProviderService = request.app.state.service
    return service


def _links(request: Request) -> protocol.Links:
    service = _service(request)
    base = service.settings.provider_public_url or f"{request.url.scheme}://{request.url.netloc}"
    return protocol.Links(base, service.secret)


# --- endpoints ----------------------------------------------------------------------------


async def root(request: Request) -> Response:
    service = _service(request)
    return _json(200, protocol.root_document(service.identifier, service.settings.provider_title, _version()))


async def health(request: Request) -> Response:
    data = await _service(request).health()
    data["version"] = _version()
    return _json(200, data)


async def _hints(request: Request) -> MatchHints:
    body = await request.body()
    data: dict[str, Any] = {k: v for k, v in request.query_params.items() if k != SECRET_PARAM}
    if body.strip():
        try:
            parsed = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BadRequestError(f"the body is not JSON: {exc}") from None
        if not isinstance(parsed, dict):
            raise BadRequestError("the body must be a JSON object of match hints")
        data.update(parsed)
    return MatchHints.parse(data)


async def match(request: Request) -> Response:
    service = _service(request)
    hints = await _hints(request)
    found = await service.match(hints)
    links = _links(request)
    items = [
        protocol.summary_item(service.identifier, m.scene, service.desired(m.scene), links, score=m.score)
        for m in found
    ]
    log.info(
        "match",
        extra={
            "plex_filename": hints.filename,
            "manual": hints.manual,
            "results": len(items),
            "best": items[0]["ratingKey"] if items else None,
            "method": found[0].method if found else None,
        },
    )
    return _json(200, protocol.container(service.identifier, items))


async def metadata(request: Request) -> Response:
    service = _service(request)
    rating_key = request.path_params["rating_key"]
    scene = await service.metadata(rating_key)
    if scene is None:
        return _json(404, {"error": f"no scene with ratingKey {rating_key!r}"})
    item = protocol.metadata_item(service.identifier, scene, service.desired(scene), _links(request))
    return _json(200, protocol.container(service.identifier, [item]))


async def metadata_images(request: Request) -> Response:
    service = _service(request)
    rating_key = request.path_params["rating_key"]
    scene = await service.metadata(rating_key)
    if scene is None:
        return _json(404, {"error": f"no scene with ratingKey {rating_key!r}"})
    desired = service.desired(scene)
    entries = protocol.images(scene, desired, _links(request), desired.metadata.title or scene.id)
    return _json(200, protocol.container(service.identifier, entries, element="Image"))


async def collection(request: Request) -> Response:
    service = _service(request)
    name = protocol.collection_name(request.path_params["key"])
    if name is None:
        return _json(404, {"error": "no such collection"})
    return _json(200, protocol.container(service.identifier, [protocol.collection_item(service.identifier, name)]))


async def _image(request: Request, scene_id: str, performer_id: str | None) -> Response:
    service = _service(request)
    if service.secret and not request.scope.get(_AUTHORIZED):
        signature = request.query_params.get("sig", "")
        if not protocol.signature_ok(service.secret, request.url.path, signature):
            return _json(401, {"error": "unauthorized: missing or wrong image signature"})
    image = await service.image(scene_id, performer_id)
    if image is None:
        return _json(404, {"error": "no such image"})
    return Response(image.data, media_type=image.content_type, headers={"Cache-Control": "public, max-age=3600"})


async def screenshot(request: Request) -> Response:
    return await _image(request, request.path_params["scene_id"], None)


async def performer_photo(request: Request) -> Response:
    return await _image(request, request.path_params["scene_id"], request.path_params["performer_id"])


async def gaps(request: Request) -> Response:
    service = _service(request)
    unmatched = await service.offload(service.gaps.unmatched)
    report = await service.offload(service.gaps.latest_report)
    wait = await service.offload(service.seconds_to_next_comparison)
    return _json(
        200,
        {
            "unmatched": {"count": len(unmatched), "items": unmatched},
            "report": report,
            "running": service.comparing,
            "schedule": service.settings.provider_gap_schedule,
            "next_run_in_seconds": None if wait is None else round(wait, 1),
        },
    )


async def run_gaps(request: Request) -> Response:
    report = await _service(request).run_comparison("manual")
    return _json(200, report)


async def _not_found(request: Request, exc: Exception) -> Response:
    return _json(404, {"error": "not found"})


async def _not_allowed(request: Request, exc: Exception) -> Response:
    return _json(405, {"error": "method not allowed"})


def _version() -> str:
    import stash2plex_core

    return str(stash2plex_core.__version__)


def _route(path: str, endpoint: Endpoint, method: str = "GET") -> Route:
    return Route(path, _answer_errors(endpoint), methods=[method])


ROUTES: Final = (
    ("/", root, "GET"),
    ("/health", health, "GET"),
    (protocol.MATCH_KEY, match, "POST"),
    (protocol.METADATA_KEY + "/{rating_key}", metadata, "GET"),
    (protocol.METADATA_KEY + "/{rating_key}/images", metadata_images, "GET"),
    (protocol.COLLECTION_KEY + "/{key}", collection, "GET"),
    ("/images/scene/{scene_id}/screenshot", screenshot, "GET"),
    ("/images/scene/{scene_id}/performer/{performer_id}", performer_photo, "GET"),
    ("/gaps", gaps, "GET"),
    ("/gaps/run", run_gaps, "POST"),
)


def provider_settings(settings: Settings) -> Settings:
    """``settings`` with Stash's own timeout no longer than the provider's upstream timeout."""
    return attrs.evolve(settings, stash_timeout=min(settings.stash_timeout, settings.provider_upstream_timeout))


def create_app(
    settings: Settings,
    *,
    app: App | None = None,
    schedule: bool = True,
    scheduler_poll: float = 60.0,
    first_comparison_delay: float = 60.0,
) -> Starlette:
    """The provider as an ASGI application.

    Checks the path rules first (each rule's samples, and a file under each library root
    round-tripped to Stash and back): a broken rule raises
    :class:`~stash2plex_core.errors.InvalidSettingsError` naming the rule and why, before
    anything listens.

    :param app: a built :class:`~stash2plex_core.app.App` to use (tests pass one with
        in-memory backends); by default one is built from ``settings`` and closed on shutdown.
    :param schedule: run the scheduled gap comparison while the app is up.
    """
    mapper = PathMapper.compile(settings.path_rules)
    paths = LibraryPaths.from_settings(settings, mapper)
    check_library_roots(settings, paths)
    owned = app is None
    built = build_app(provider_settings(settings), environ=os.environ) if app is None else app
    service = ProviderService(settings, built, paths)
    if not paths.roots:
        log.warning(
            "no library root is configured (path_rules[].library_root or provider_library_roots): "
            "files can only be matched by file name"
        )

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        import asyncio

        tasks = [asyncio.ensure_future(service.index.keep_fresh())] if service.index.enabled else []
        if schedule:
            tasks.append(
                asyncio.ensure_future(service.scheduler(poll=scheduler_poll, first_delay=first_comparison_delay))
            )
        log.info(
            "provider ready",
            extra={"identifier": service.identifier, "roots": len(paths.roots), "rules": len(mapper.rules)},
        )
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            service.close()
            if owned:
                built.close()

    application = Starlette(
        routes=[_route(path, endpoint, method) for path, endpoint, method in ROUTES],
        exception_handlers={404: _not_found, 405: _not_allowed},
        lifespan=lifespan,
    )
    application.state.service = service
    application.add_middleware(Guard, secret=service.secret)
    return application


__all__ = ["MAX_BODY", "ROUTES", "SECRET_HEADER", "SECRET_PARAM", "Guard", "create_app", "provider_settings"]
