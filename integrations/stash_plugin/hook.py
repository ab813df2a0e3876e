"""The hook path: queue one scene event and return inside the user's save.

Only the standard library and SQLite load here (a meta-test checks that plexapi, stashapi,
requests, urllib3, tenacity, asyncio, attrs and the core stay out of ``sys.modules``).
If no worker holds the drain lease, the hook reserves it atomically and asks Stash to run
the plugin's *Process queue* task, so a burst of saves starts exactly one drain.
"""

from __future__ import annotations

import json
import os
import sys

from stash2plex_backends.sqlite import hookpath


TYPE_CHECKING = False  # typing costs the hook ~4 ms to import; annotations only need it for mypy
if TYPE_CHECKING:
    from typing import Any


PLUGIN_ID = "stash2plex"
DRAIN_TASK = "Process queue"
DB_NAME = "stash2plex.db"
#: How long a hook's reservation of the drain lease waits for the task to take over.
RESERVATION_SECONDS = 120.0
DESTROY = "Scene.Destroy.Post"
HANDLED = ("Scene.Create.Post", "Scene.Update.Post", DESTROY)


class HookError(ValueError):
    """The hook context is not what Stash sends; the message says what is missing."""


def data_dir(server_connection: dict[str, Any]) -> str:
    """Where the state database lives inside Stash: ``$STASH2PLEX_DATA_DIR`` or the plugin folder."""
    explicit = os.environ.get("STASH2PLEX_DATA_DIR")
    if explicit:
        return explicit
    plugin_dir = server_connection.get("PluginDir")
    if plugin_dir:
        return str(plugin_dir)
    return os.path.dirname(os.path.abspath(sys.argv[0] or "."))


def database_path(server_connection: dict[str, Any]) -> str:
    return os.path.join(data_dir(server_connection), DB_NAME)


def parse_context(args: dict[str, Any]) -> tuple[str, str]:
    """``(event type, scene id)`` from ``args.hookContext``; ids arrive as ints."""
    context = args.get("hookContext")
    if not isinstance(context, dict):
        raise HookError("hook called without hookContext")
    kind = context.get("type")
    scene = context.get("id")
    if not isinstance(kind, str) or kind not in HANDLED:
        raise HookError(f"unexpected hook type {kind!r}")
    if isinstance(scene, bool) or not isinstance(scene, int | str) or not str(scene).strip():
        raise HookError(f"hookContext.id must be a scene id, got {scene!r}")
    return kind, str(scene).strip()


def run_hook(data: dict[str, Any], log: Any) -> str:
    """Queue (or, for a destroy, drop) the scene's work; start a drain if none runs."""
    connection = data.get("server_connection") or {}
    kind, scene_id = parse_context(data.get("args") or {})
    db = database_path(connection)
    if kind == DESTROY:
        removed = hookpath.remove_pending(db, scene_id)
        return f"scene {scene_id} destroyed; dropped {removed} pending job(s)"
    owner = f"{hookpath.RESERVATION_PREFIX}{os.getpid()}"
    if hookpath.enqueue_and_reserve(db, scene_id, kind, owner, RESERVATION_SECONDS):
        try:
            start_drain_task(connection)
        except Exception as exc:  # noqa: BLE001 - never fail the user's save over this
            hookpath.release_lease(db, owner)
            log(f"queued scene {scene_id}, but could not start the Process queue task: {exc}", level="w")
            return f"queued scene {scene_id} (drain not started: {exc})"
        return f"queued scene {scene_id}; started a drain"
    return f"queued scene {scene_id}"


def endpoint(connection: dict[str, Any]) -> tuple[str, str, int]:
    """``(scheme, host, port)`` to reach Stash from ``server_connection``."""
    scheme = str(connection.get("Scheme") or "http")
    host = str(connection.get("Host") or "127.0.0.1")
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - Stash reports its bind address; connect locally
        host = "127.0.0.1"
    port = int(connection.get("Port") or (443 if scheme == "https" else 9999))
    return scheme, host, port


def _post_plain(host: str, port: int, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int, bytes]:
    """One HTTP/1.1 POST to ``/graphql`` over a plain socket.

    ``http.client`` costs about 80 ms to import (it loads the ``email`` package), which a
    hook would pay inside the user's save; this request needs none of it.
    """
    import socket

    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = (
        f"POST /graphql HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: {len(body)}\r\n"
        f"Connection: close\r\n{head}\r\n"
    ).encode("latin-1") + body
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    raw = b"".join(chunks)
    header, _, payload = raw.partition(b"\r\n\r\n")
    status_line = header.split(b"\r\n", 1)[0].split()
    if len(status_line) < 2 or not status_line[1].isdigit():
        raise ConnectionError("Stash sent no HTTP status line")
    if b"transfer-encoding: chunked" in header.lower():
        payload = _unchunk(payload)
    return int(status_line[1]), payload


def _unchunk(data: bytes) -> bytes:
    out = []
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out.append(rest[:size])
        data = rest[size + 2 :]
    return b"".join(out)


def _post_tls(host: str, port: int, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int, bytes]:
    import http.client
    import ssl

    context = ssl.create_default_context()
    if host == "127.0.0.1":  # Stash's certificate names its public host, not loopback
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    try:
        conn.request("POST", "/graphql", body, headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


class StashCallError(ConnectionError):
    """Stash answered a plugin's GraphQL request with an HTTP error or GraphQL errors."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def stash_graphql(
    connection: dict[str, Any], query: str, variables: dict[str, Any], timeout: float = 5.0
) -> dict[str, Any]:
    """POST one GraphQL request to Stash with the plugin's session cookie; return ``data``.

    Standard library only, so the hook can use it, and a task can read its settings
    without building a second stashapi client (its constructor costs three requests).

    :raises StashCallError: an HTTP error status or GraphQL errors (``status`` says which).
    :raises OSError: Stash could not be reached.
    """
    scheme, host, port = endpoint(connection)
    cookie = connection.get("SessionCookie") or {}
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if isinstance(cookie, dict) and cookie.get("Value"):
        headers["Cookie"] = f"{cookie.get('Name') or 'session'}={cookie['Value']}"
    api_key = os.environ.get("STASH2PLEX_STASH_API_KEY")
    if api_key:
        headers["ApiKey"] = api_key
    body = json.dumps({"query": query, "variables": variables}).encode()
    post = _post_tls if scheme == "https" else _post_plain
    status, payload = post(host, port, body, headers, timeout)
    if status != 200:
        raise StashCallError(f"Stash answered HTTP {status}", status)
    try:
        answer = json.loads(payload or b"{}")
    except ValueError:
        raise StashCallError("Stash's answer is not JSON", status) from None
    if not isinstance(answer, dict):
        raise StashCallError("Stash's answer is not a JSON object", status)
    errors = answer.get("errors")
    if errors:
        first = errors[0]
        raise StashCallError(str(first.get("message", first) if isinstance(first, dict) else first), status)
    data = answer.get("data")
    return data if isinstance(data, dict) else {}


def start_drain_task(connection: dict[str, Any], timeout: float = 5.0) -> None:
    """Ask Stash to run our *Process queue* task (``runPluginTask``) with the plugin's cookie."""
    try:
        stash_graphql(
            connection,
            "mutation($id: ID!, $task: String, $args: Map) "
            "{ runPluginTask(plugin_id: $id, task_name: $task, args_map: $args) }",
            {"id": PLUGIN_ID, "task": DRAIN_TASK, "args": {"task": "process"}},
            timeout,
        )
    except StashCallError as exc:
        if exc.status == 200:
            raise StashCallError(f"Stash refused runPluginTask: {exc}", exc.status) from None
        raise StashCallError(f"{exc} to runPluginTask", exc.status) from None


__all__ = [
    "HookError",
    "StashCallError",
    "data_dir",
    "database_path",
    "endpoint",
    "parse_context",
    "run_hook",
    "start_drain_task",
    "stash_graphql",
]
