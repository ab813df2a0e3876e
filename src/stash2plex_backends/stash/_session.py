"""Our ``StashInterface``: stashapi's client with the things it lacks, set up before it connects.

stashapi's constructor talks to the server at once (version, API key, a full schema
introspection) through a ``requests`` session it creates itself, with no timeout. To
configure that session *before* those calls, we slot a small class between
``StashInterface`` and its base ``GQLWrapper``: ``GQLWrapper.__init__`` makes the session,
and our ``__init__`` then mounts an adapter with default timeouts and a response hook,
before ``StashInterface.__init__`` continues. The endpoint is ours too (so a Stash behind a
reverse proxy at ``https://host/stash`` works; stashapi builds ``scheme://host:port/graphql``).

The session does not re-read the environment on every request: with ``trust_env`` on,
``requests`` scans ``os.environ`` for proxy settings twice per request (about half a
millisecond, a quarter of the worker's CPU per synced scene). The adapter resolves the
environment's proxies (``no_proxy`` included) once per origin and its CA bundle
(``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``) once, which is what ``trust_env`` would apply.

stashapi and requests are imported here only, and only when a gateway first connects.
"""

from __future__ import annotations

import functools
import logging
import os
import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING
from typing import Any


if TYPE_CHECKING:
    import requests
    from requests import PreparedRequest
    from requests import Response
    from requests.adapters import HTTPAdapter


ResponseHook = Callable[..., None]


class StashapiLog:
    """The ``Logger`` stashapi is given: every message goes to our logger at DEBUG, scrubbed.

    Passing one keeps ``stashapi.log`` unimported: that module renames level 50 (CRITICAL)
    to "PROGRESS" for the whole process and writes Stash's ``\\x01`` protocol to stderr.
    stashapi's error lines need no higher level: each failure reaches the caller as a core
    error with the same details.
    """

    def __init__(self, logger: logging.Logger, scrub: Callable[[str], str]) -> None:
        self._logger = logger
        self._scrub = scrub

    def _emit(self, kind: str, message: object) -> None:
        if self._logger.isEnabledFor(logging.DEBUG):
            self._logger.debug("stashapi %s: %s", kind, self._scrub(str(message)))

    def debug(self, message: object) -> None:
        self._emit("debug", message)

    def info(self, message: object) -> None:
        self._emit("info", message)

    def warning(self, message: object) -> None:
        self._emit("warning", message)

    def error(self, message: object) -> None:
        self._emit("error", message)

    # stashapi's own logger has these two; nothing we call uses them, but keep the shape.
    trace = debug
    progress = debug


@functools.cache
def _adapter_class() -> Callable[[float], HTTPAdapter]:
    from requests.adapters import HTTPAdapter
    from requests.utils import get_environ_proxies

    class TimeoutAdapter(HTTPAdapter):
        """A default ``timeout`` for every request, and the environment's proxies and CA bundle."""

        def __init__(self, timeout: float) -> None:
            self.default_timeout = timeout
            self.ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            self._proxies: dict[tuple[str, str], dict[str, str]] = {}
            super().__init__()

        def environ_proxies(self, url: str) -> dict[str, str]:
            parts = urllib.parse.urlsplit(url)
            origin = (parts.scheme, parts.netloc)
            found = self._proxies.get(origin)
            if found is None:
                found = self._proxies[origin] = dict(get_environ_proxies(url))
            return found

        def send(  # noqa: PLR0917 - requests' own signature
            self,
            request: PreparedRequest,
            stream: bool = False,
            timeout: float | tuple[float | None, float | None] | None = None,
            verify: bool | str = True,
            cert: str | tuple[str, str] | None = None,
            proxies: dict[str, str] | None = None,
        ) -> Response:
            return super().send(
                request,
                stream=stream,
                timeout=self.default_timeout if timeout is None else timeout,
                verify=self.ca_bundle if verify is True and self.ca_bundle else verify,
                cert=cert,
                proxies={**self.environ_proxies(request.url or ""), **(proxies or {})},
            )

    return TimeoutAdapter


def configure_session(session: requests.Session, *, timeout: float, hook: ResponseHook | None) -> None:
    """Default timeouts on every request, and our response hook (status and GraphQL errors).

    ``trust_env`` goes off: the adapter applies the environment's proxies and CA bundle.
    """
    session.trust_env = False
    adapter = _adapter_class()(timeout)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    if hook is not None:
        session.hooks["response"].append(hook)


@functools.cache
def interface_class() -> type[Any]:
    """``StashInterface`` with our session set-up and endpoint (built on first use)."""
    from stashapi.classes import GQLWrapper
    from stashapi.stashapp import StashInterface

    class _SessionSetup(GQLWrapper):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self._s2p_configure(self.s)

    class Stash2PlexInterface(StashInterface, _SessionSetup):  # type: ignore[misc]
        """stashapi's client, created with a configured session and a fixed endpoint."""

        def __init__(
            self,
            conn: dict[str, Any],
            *,
            endpoint: str,
            configure: Callable[[requests.Session], None],
            verify_tls: bool,
            force_api_key: bool,
        ) -> None:
            self._s2p_endpoint = endpoint
            self._s2p_configure = configure
            # Next in the MRO is StashInterface, whose super().__init__() reaches _SessionSetup.
            StashInterface.__init__(self, conn, verify_ssl=verify_tls, force_api_key=force_api_key)

        @property
        def url(self) -> str:
            return self._s2p_endpoint

        @url.setter
        def url(self, _value: str) -> None:
            """stashapi assigns ``scheme://host:port/graphql``; we keep our own endpoint."""

        def __repr__(self) -> str:
            return f"<Stash2PlexInterface {self._s2p_endpoint}>"

    return Stash2PlexInterface


__all__ = ["StashapiLog", "configure_session", "interface_class"]
