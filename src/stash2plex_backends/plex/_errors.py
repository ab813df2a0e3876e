"""Translate what plexapi, requests and the XML parser raise into core errors.

plexapi maps only 401 (``Unauthorized``) and 404 (``NotFound``) to their own classes;
every other non-2xx status, 429 and 5xx included, arrives as ``BadRequest`` whose message
starts with ``(<status>)``. Transport errors and XML parse errors escape unwrapped, and a
status code ``requests`` does not know (520, ...) surfaces as a ``TypeError`` inside
``PlexServer.query``. See ``reference/plex-protocol.md`` sections 1.5 and 8.

No message we build ever contains the token: every text taken from a foreign exception
goes through :func:`scrub` first, and the original exception is not chained (its text,
with the request URL, would otherwise print in tracebacks).
"""

from __future__ import annotations

import datetime as dt
import math
import re
import urllib.parse
from collections.abc import Iterable

from stash2plex_core.errors import AuthenticationError
from stash2plex_core.errors import BackendUnavailableError
from stash2plex_core.errors import ConfigurationError
from stash2plex_core.errors import NotFoundError
from stash2plex_core.errors import PermanentError
from stash2plex_core.errors import Stash2PlexError
from stash2plex_core.errors import TransientError


_STATUS = re.compile(r"^\((\d{3})\)")
_TOKEN_ARG = re.compile(r"(X-Plex-Token=)[^&\s\"'<>]+", re.IGNORECASE)
#: Longest part of a foreign message we repeat (PMS error pages can be long).
_MAX_DETAIL = 300


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every secret (raw and URL-encoded) and any ``X-Plex-Token=`` value masked."""
    for secret in secrets:
        if not secret:
            continue
        for form in {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)}:
            text = text.replace(form, "***")
    return _TOKEN_ARG.sub(r"\1***", text)


def parse_retry_after(value: str | None, now: dt.datetime) -> float | None:
    """Seconds from a ``Retry-After`` header: delay-seconds or an HTTP-date (RFC 9110 10.2.3)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        import email.utils  # only for the rare HTTP-date form; it costs 5 ms to import

        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        return max(0.0, (when - now).total_seconds())
    return max(0.0, seconds) if math.isfinite(seconds) else None


def status_of(message: str) -> int | None:
    """The HTTP status plexapi put at the start of its message, if any."""
    found = _STATUS.match(message)
    return int(found.group(1)) if found else None


def for_status(status: int, detail: str, retry_after: float | None = None) -> Stash2PlexError:
    """The core error for an HTTP error status (also used for codes plexapi cannot name)."""
    if status == 401:
        return AuthenticationError(f"Plex rejected the token (HTTP 401); check plex_token. {detail}".rstrip())
    if status == 404:
        return NotFoundError(f"Plex answered 404 Not Found: {detail}")
    if status == 429:
        return TransientError(f"Plex is rate limiting (HTTP 429): {detail}", retry_after=retry_after)
    if status >= 500:
        return BackendUnavailableError(f"Plex answered HTTP {status}: {detail}", retry_after=retry_after)
    if status == 408:
        return TransientError(f"Plex timed out the request (HTTP 408): {detail}", retry_after=retry_after)
    return PermanentError(f"Plex refused the request (HTTP {status}): {detail}")


def _detail(exc: BaseException, secrets: Iterable[str | None]) -> str:
    text = scrub(str(exc), secrets).strip()
    if len(text) > _MAX_DETAIL:
        text = text[:_MAX_DETAIL] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def translate(  # noqa: PLR0912 - one flat table of cases reads better than nested helpers
    exc: BaseException,
    *,
    secrets: Iterable[str | None],
    retry_after: str | None = None,
    last_status: int | None = None,
    now: dt.datetime,
) -> Stash2PlexError | None:
    """The core error for ``exc``, or ``None`` when ``exc`` is not a Plex/transport failure.

    ``retry_after`` is the raw header of the response that failed (captured by a session
    hook, since plexapi's exceptions do not carry headers); ``last_status`` is that
    response's status, used to classify the ``TypeError`` of unnamed status codes.
    """
    from xml.etree.ElementTree import ParseError

    import requests
    from plexapi import exceptions as plex
    from urllib3.exceptions import ReadTimeoutError

    secrets = list(secrets)
    detail = _detail(exc, secrets)
    wait = parse_retry_after(retry_after, now)
    if isinstance(exc, Stash2PlexError):
        return exc
    if isinstance(exc, plex.Unauthorized):
        return for_status(401, detail)
    if isinstance(exc, plex.NotFound):
        return NotFoundError(f"Plex has no such item or endpoint: {detail}")
    if isinstance(exc, plex.BadRequest):
        status = status_of(str(exc))
        if status is None:  # raised by plexapi itself before sending anything
            return PermanentError(f"plexapi refused the request: {detail}")
        return for_status(status, detail, wait)
    if isinstance(exc, plex.PlexApiException):  # UnknownType, Unsupported
        return PermanentError(f"plexapi cannot handle Plex's answer: {detail}")
    if isinstance(exc, requests.exceptions.SSLError):
        return ConfigurationError(f"TLS to Plex failed ({detail}); fix the certificate or set plex_verify_tls = false")
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return BackendUnavailableError(f"Plex did not accept a connection in time: {detail}")
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return TransientError(f"Plex did not answer in time: {detail}")
    if isinstance(exc, requests.exceptions.ConnectionError):
        if any(isinstance(arg, ReadTimeoutError) for arg in exc.args):
            # requests reports a read timeout while the body streams as a ConnectionError.
            return TransientError(f"Plex did not answer in time: {detail}")
        return BackendUnavailableError(f"Plex is unreachable: {detail}")
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
        return ConfigurationError(f"plex_url is not a usable URL: {detail}")
    if isinstance(exc, requests.exceptions.RequestException):
        return TransientError(f"HTTP request to Plex failed: {detail}")
    if isinstance(exc, ParseError):
        return TransientError(f"Plex sent malformed XML: {detail}")
    if isinstance(exc, TypeError) and last_status is not None and last_status not in (200, 201, 204):
        # plexapi cannot name the code (``codes.get(status)[0]`` on None): a proxy's 520 and kin.
        return for_status(last_status, f"HTTP {last_status} (a status code plexapi does not know)", wait)
    return None


__all__ = ["for_status", "parse_retry_after", "scrub", "status_of", "translate"]
