"""The HTTP side of the simulated Stash: authentication, ``/graphql`` and image routes.

Authentication follows Stash's middleware: a wrong ``ApiKey`` header (or ``?apikey=``) is
401 everywhere; a request without valid credentials, when credentials are configured, is
401 for ``/graphql`` and for paths with a file extension, and a 302 to ``/login`` for other
paths (so an unauthenticated image download that follows redirects ends on an HTML page
with status 200, a trap worth testing). ``/graphql`` speaks gqlgen's HTTP conventions: 400
for an undecodable body, 422 for parse, validation and variable errors, 200 otherwise.
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.parse
from collections.abc import Mapping
from typing import Any
from typing import Literal

import attrs
from graphql import DocumentNode
from graphql import ExecutionResult
from graphql import FieldNode
from graphql import GraphQLError
from graphql import GraphQLSchema
from graphql import GraphQLSyntaxError
from graphql import OperationType
from graphql import execute_sync
from graphql import get_operation_ast
from graphql import parse
from graphql import validate

from stash2plex_backends.simulators.seedlib import image_bytes
from stash2plex_backends.simulators.server import Request
from stash2plex_backends.simulators.server import Response
from stash2plex_backends.simulators.stash._faults import GraphQLFaultInjector
from stash2plex_backends.simulators.stash._faults import fault_middleware
from stash2plex_backends.simulators.stash._resolvers import RequestContext
from stash2plex_backends.simulators.stash._resolvers import ServerInfo
from stash2plex_backends.simulators.stash._resolvers import TaskHandler
from stash2plex_backends.simulators.stash._state import StashState


def _none_match(header: str | None, etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag`` (weak comparison, as Go's ``checkIfNoneMatch``)."""
    if not header:
        return False
    tags = [tag.strip() for tag in header.split(",")]
    return "*" in tags or etag in (tag.removeprefix("W/") for tag in tags)


_IMAGE_ROUTE = re.compile(r"^/(scene|performer|studio|tag|group)/(\d+)/(screenshot|image|frontimage)$")
_LOGIN_PAGE = (
    b"<!doctype html><html><head><title>Login</title></head><body><form method=post>"
    b"<input name=username><input name=password type=password></form></body></html>"
)
_DOCUMENT_CACHE = 256

AuthResult = Literal["ok", "invalid", "anonymous"]


@attrs.define
class Auth:
    """Credentials the simulated server accepts.

    ``required`` is Stash's "credentials configured": without it every request is allowed
    (a wrong API key is still rejected, as Stash compares any key it is given).
    """

    api_key: str | None = None
    sessions: set[str] = attrs.Factory(set)
    required: bool = False

    def check(self, request: Request) -> AuthResult:
        key = request.header("ApiKey") or request.arg("apikey")
        if key:
            return "ok" if key == self.api_key else "invalid"
        cookie = _cookie(request.header("Cookie") or "", "session")
        if cookie is not None and cookie in self.sessions:
            return "ok"
        return "anonymous"


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return value.strip('"')
    return None


def _json(status: int, payload: Any) -> Response:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(status, body, content_type="application/json")


def _request_error(status: int, message: str, code: str | None = None) -> Response:
    error: dict[str, Any] = {"message": message}
    if code:
        error["extensions"] = {"code": code}
    return _json(status, {"errors": [error], "data": None})


class StashApp:
    """``app(request) -> Response`` for :class:`~stash2plex_backends.simulators.server.LoopbackServer`."""

    def __init__(
        self,
        *,
        state: StashState,
        schema: GraphQLSchema,
        info: ServerInfo,
        auth: Auth,
        graphql_faults: GraphQLFaultInjector,
        default_base_url: str,
    ) -> None:
        self.state = state
        self.schema = schema
        self.info = info
        self.auth = auth
        self.graphql_faults = graphql_faults
        self.default_base_url = default_base_url
        self.task_handler: TaskHandler | None = None
        self._documents: dict[str, DocumentNode | list[GraphQLError]] = {}

    def __call__(self, request: Request) -> Response:
        path = request.path
        if path.startswith("/login"):
            return Response(200, _LOGIN_PAGE, content_type="text/html; charset=utf-8")
        verdict = self.auth.check(request)
        if verdict == "invalid":
            return Response(401, b"", headers={"WWW-Authenticate": "FormBased"})
        if verdict == "anonymous" and self.auth.required:
            return self._unauthenticated(request)
        if path == "/graphql":
            return self._graphql(request)
        match = _IMAGE_ROUTE.match(path)
        if match and request.method in {"GET", "HEAD"}:
            return self._image(match.group(1), int(match.group(2)), match.group(3), request)
        return Response(404, b"404 page not found\n")

    def _unauthenticated(self, request: Request) -> Response:
        path = request.path
        extension = path.rpartition("/")[2].rpartition(".")[2] if "." in path.rpartition("/")[2] else ""
        if path == "/graphql" or extension not in {"", "html"}:
            return Response(401, b"", headers={"WWW-Authenticate": "FormBased"})
        query = urllib.parse.urlencode(request.query, doseq=True)
        return_url = path + (f"?{query}" if query else "")
        location = "/login?" + urllib.parse.urlencode({"returnURL": return_url})
        body = f'<a href="{location}">Found</a>.\n\n'.encode()
        return Response(302, body, content_type="text/html; charset=utf-8", headers={"Location": location})

    # -- images ---------------------------------------------------------------------------

    def _image(self, kind: str, item_id: int, name: str, request: Request) -> Response:
        """As Stash's ``utils.ServeStaticContent``: a content ETag, and ``304`` when it matches.

        The tag is the quoted MD5 of the bytes; Go's ``http.ServeContent`` compares it with
        ``If-None-Match`` (a list of tags, weak or strong, or ``*``) and answers a match with
        ``304 Not Modified``, the tag and no body. A URL with ``?t=`` may be cached for ever.
        """
        with self.state.lock:
            data = self._image_bytes(kind, item_id, name, request.arg("default") == "true")
        if data is None:
            return Response(404, b"404 page not found\n")
        etag = '"' + hashlib.md5(data).hexdigest() + '"'  # noqa: S324 - Stash's own ETag
        cache = "private, max-age=31536000, immutable" if request.arg("t") is not None else "no-cache"
        headers = {"Cache-Control": cache, "ETag": etag}
        if _none_match(request.header("If-None-Match"), etag):
            return Response(304, b"", headers=headers)
        return Response(200, data, content_type="image/png", headers=headers)

    def _image_bytes(self, kind: str, item_id: int, name: str, default: bool) -> bytes | None:
        state = self.state
        if kind == "scene":
            scene = state.scenes.get(item_id)
            if scene is None or name != "screenshot":
                return None
            return scene.cover if scene.cover is not None else image_bytes(f"stash-scene-{item_id}")
        tables: Mapping[str, Mapping[int, Any]] = {
            "performer": state.performers,
            "studio": state.studios,
            "tag": state.tags,
            "group": state.groups,
        }
        record = tables[kind].get(item_id)
        expected = "frontimage" if kind == "group" else "image"
        if record is None or name != expected:
            return None
        has_image = record.has_front_image if kind == "group" else record.has_image
        custom = record.front_image if kind == "group" else record.image
        if default or not has_image:
            return image_bytes(f"stash-default-{kind}")
        return custom if custom is not None else image_bytes(f"stash-{kind}-{item_id}")

    # -- graphql --------------------------------------------------------------------------

    def _payload(self, request: Request) -> dict[str, Any] | Response:
        if request.method == "GET":
            variables = request.arg("variables")
            try:
                parsed = json.loads(variables) if variables else None
            except ValueError as exc:
                return _request_error(400, f"variables could not be decoded: {exc}")
            return {
                "query": request.arg("query"),
                "variables": parsed,
                "operationName": request.arg("operationName"),
            }
        content_type = (request.header("Content-Type") or "").partition(";")[0].strip().lower()
        if request.method != "POST" or content_type != "application/json":
            return _request_error(400, "transport not supported")
        try:
            payload = json.loads(request.body)
        except ValueError as exc:
            return _request_error(400, f"json body could not be decoded: {exc}")
        if not isinstance(payload, dict):
            return _request_error(400, "json body could not be decoded: not an object")
        return payload

    def _document(self, query: str) -> DocumentNode | list[GraphQLError]:
        cached = self._documents.get(query)
        if cached is not None:
            return cached
        try:
            document = parse(query)
        except GraphQLError as exc:
            return [exc]
        errors = validate(self.schema, document)
        result: DocumentNode | list[GraphQLError] = list(errors) if errors else document
        if len(self._documents) >= _DOCUMENT_CACHE:
            self._documents.clear()
        self._documents[query] = result
        return result

    def _graphql(self, request: Request) -> Response:
        payload = self._payload(request)
        if isinstance(payload, Response):
            return payload
        query = payload.get("query")
        variables = payload.get("variables") or {}
        operation_name = payload.get("operationName") or None
        if not isinstance(query, str) or not query.strip():
            return _request_error(422, "no operation provided", "GRAPHQL_VALIDATION_FAILED")
        if not isinstance(variables, dict):
            return _request_error(400, "variables must be an object")
        document = self._document(query)
        if isinstance(document, list):
            parse_failed = isinstance(document[0], GraphQLSyntaxError)
            code = "GRAPHQL_PARSE_FAILED" if parse_failed else "GRAPHQL_VALIDATION_FAILED"
            return _json(422, {"errors": [_with_code(e.formatted, code) for e in document], "data": None})
        operation = get_operation_ast(document, operation_name)
        if operation is None:
            return _request_error(422, "operation not found", "GRAPHQL_VALIDATION_FAILED")
        if request.method == "GET" and operation.operation != OperationType.QUERY:
            return _request_error(406, "GET requests only allow query operations")
        name = operation.name.value if operation.name else ""
        root_fields = [s.name.value for s in operation.selection_set.selections if isinstance(s, FieldNode)]
        faults = self.graphql_faults.pick(name, root_fields)
        whole = next((f for f in faults if f.field is None), None)
        if whole is not None:
            error = whole.error(root_fields[:1] or None)
            return _json(200, {"errors": [error.formatted], "data": None})
        field_faults = [f for f in faults if f.field is not None]
        host = request.header("Host")
        context = RequestContext(
            state=self.state,
            base_url=f"http://{host}" if host else self.default_base_url,
            info=self.info,
            task_handler=self.task_handler,
        )
        with self.state.lock:
            result: ExecutionResult = execute_sync(
                self.schema,
                document,
                context_value=context,
                variable_values=variables,
                operation_name=operation_name,
                middleware=[fault_middleware(field_faults)] if field_faults else None,
            )
        status = 200
        if result.data is None and result.errors and all(e.path is None for e in result.errors):
            status = 422
        return _json(status, result.formatted)


def _with_code(error: Mapping[str, Any], code: str) -> dict[str, Any]:
    return {**error, "extensions": {**(error.get("extensions") or {}), "code": code}}


__all__ = ["Auth", "StashApp"]
