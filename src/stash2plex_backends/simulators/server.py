"""A threaded loopback HTTP server that records requests and applies faults.

Each simulator supplies one function, ``app(request) -> Response``; this module does the
socket work: binding to 127.0.0.1 on any free port, ``TCP_NODELAY`` (``http.server``
otherwise stalls 40 ms per response on Linux through Nagle plus delayed ACK), keep-alive,
request logging and fault injection, running in a background thread or in the foreground
until interrupted.
"""

from __future__ import annotations

import contextlib
import http.server
import socket
import socketserver
import threading
import time
import urllib.parse
from collections.abc import Callable
from collections.abc import Iterator
from typing import Self

import attrs

from stash2plex_backends.simulators.faults import FaultInjector
from stash2plex_backends.simulators.faults import RecordedRequest
from stash2plex_backends.simulators.faults import RequestLog


@attrs.frozen
class Request:
    """A parsed request handed to a simulator's app."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def arg(self, name: str, default: str | None = None) -> str | None:
        """First value of query parameter ``name`` (or ``default``)."""
        values = self.query.get(name)
        return values[0] if values else default

    def header(self, name: str, default: str | None = None) -> str | None:
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return default


@attrs.frozen
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = attrs.field(factory=dict)


App = Callable[[Request], Response]


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ThreadingServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.owner._track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._untrack(self.connection)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Silence the default stderr access log; the request log records everything."""

    def _handle(self) -> None:
        split = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            method=self.command,
            path=urllib.parse.unquote(split.path),
            query=urllib.parse.parse_qs(split.query, keep_blank_values=True),
            headers=dict(self.headers.items()),
            body=body,
        )
        owner = self.server.owner
        with owner.counting():
            self._answer(owner, request, body)

    def _answer(self, owner: LoopbackServer, request: Request, body: bytes) -> None:
        owner.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=request.query,
                headers=request.headers,
                body=body,
                at=time.time(),
            )
        )
        fault = owner.faults.pick(request.method, request.path)
        if fault is not None:
            if fault.action == "reset":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault.action == "hang":
                owner.stopping.wait(fault.delay or 30.0)
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault.action == "delay":
                owner.stopping.wait(fault.delay)
            elif fault.action == "status":
                self._send(Response(fault.status, fault.body, headers=dict(fault.headers)))
                return
        try:
            response = owner.app(request)
        except Exception as exc:  # noqa: BLE001 - a simulator bug must answer, not hang
            response = Response(500, f"simulator error: {exc!r}".encode())
        if fault is not None and fault.action == "malformed":
            response = attrs.evolve(response, status=200, body=response.body[: len(response.body) // 2] + b"<<<")
        self._send(response)

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        bodiless = response.status in (204, 304)  # no body, so no Content-* (RFC 9110 15.4.5)
        if not bodiless:
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
        for key, value in response.headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD" and not bodiless:
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = _handle


class _ThreadingServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: LoopbackServer


class LoopbackServer:
    """Serve ``app`` on ``host:port`` (port 0 picks a free one).

    Use as a context manager (background thread) or call :meth:`serve_forever`.
    ``refuse()`` closes the listening socket so connections are refused until
    ``accept()`` rebinds the same port: a real "Plex is down".
    """

    def __init__(self, app: App, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.requests = RequestLog()
        self.faults = FaultInjector()
        self.stopping = threading.Event()
        self._server = self._bind(port)
        self.port: int = self._server.server_address[1]
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._in_flight = 0
        #: Most requests ever being answered at once (since :meth:`reset_peak`).
        self.peak_in_flight = 0

    @contextlib.contextmanager
    def counting(self) -> Iterator[None]:
        """Count a request as in flight while it is answered (for concurrency limits)."""
        with self._connections_lock:
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
        try:
            yield
        finally:
            with self._connections_lock:
                self._in_flight -= 1

    def reset_peak(self) -> None:
        with self._connections_lock:
            self.peak_in_flight = self._in_flight

    def _track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)
        if self.stopping.is_set():  # accepted just before stop(): drop it as well
            self._drop_connections()

    def _untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def _drop_connections(self) -> None:
        """Close kept-alive client connections too: a stopped server must not answer on them."""
        with self._connections_lock:
            connections = list(self._connections)
            self._connections.clear()
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)

    def _bind(self, port: int) -> _ThreadingServer:
        server = _ThreadingServer((self.host, port), _Handler)
        server.owner = self
        return server

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        self.stopping.clear()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the foreground until interrupted (Ctrl-C)."""
        try:
            self._server.serve_forever(poll_interval=0.2)
        except KeyboardInterrupt:
            pass
        finally:
            self.stopping.set()
            self._server.server_close()
            self._drop_connections()

    def stop(self) -> None:
        self.stopping.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()
        self._drop_connections()

    def refuse(self) -> None:
        """Stop listening: new connections are refused until :meth:`accept`."""
        self.stop()

    def accept(self) -> None:
        """Listen again on the same port after :meth:`refuse`."""
        self._server = self._bind(self.port)
        self.start()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["App", "LoopbackServer", "Request", "Response"]
