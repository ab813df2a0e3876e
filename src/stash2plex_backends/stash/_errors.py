"""Turning what stashapi and requests report into core errors.

stashapi reports failures in three shapes, none of them typed:

* it **raises a bare** ``Exception("<status> <reason> query failed. <version>")`` when the
  HTTP status is not 200, when ``data`` is null (unparseable JSON included), or when a
  message says "database is locked";
* it **logs and returns partial data** (``None`` where a field failed) when a GraphQL error
  comes with non-null ``data``: no exception at all;
* ``requests`` exceptions (refused, reset, timeouts) pass through unchanged.

So every call records the HTTP status, ``Retry-After`` and the GraphQL ``errors`` of its
response (:class:`CallRecord`, filled by a response hook on our session), and the
functions here decide the core error class from that record, never from a log line.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Iterable
from collections.abc import Sequence
from typing import Any
from typing import Final

import attrs

from stash2plex_core.errors import AuthenticationError
from stash2plex_core.errors import BackendUnavailableError
from stash2plex_core.errors import ConfigurationError
from stash2plex_core.errors import NotFoundError
from stash2plex_core.errors import PermanentError
from stash2plex_core.errors import Stash2PlexError
from stash2plex_core.errors import TransientError


#: GraphQL error codes meaning our document or variables are wrong for this server (an old
#: Stash without a field we select, say): retrying the same request cannot help.
PERMANENT_CODES: Final = frozenset(
    {"GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED", "BAD_USER_INPUT", "PERSISTED_QUERY_NOT_SUPPORTED"}
)
_STASHAPI_FAILURE = re.compile(r"^(?P<status>\d{3})\s+(?P<reason>.*?)\s*query failed", re.DOTALL)
_MAX_DETAIL = 300


@attrs.frozen
class GraphQLErrorInfo:
    """One entry of a response's ``errors`` list."""

    message: str
    code: str | None = None
    path: tuple[str | int, ...] = ()

    @classmethod
    def from_json(cls, raw: Any) -> GraphQLErrorInfo:
        if not isinstance(raw, dict):
            return cls(message=str(raw))
        extensions = raw.get("extensions")
        code = extensions.get("code") if isinstance(extensions, dict) else None
        path = raw.get("path")
        return cls(
            message=str(raw.get("message", "")),
            code=code if isinstance(code, str) else None,
            path=tuple(path) if isinstance(path, list) else (),
        )

    @property
    def locked(self) -> bool:
        return "database is locked" in self.message

    def __str__(self) -> str:
        where = ".".join(str(p) for p in self.path)
        prefix = f"{self.code or 'GRAPHQL_ERROR'}" + (f" at {where}" if where else "")
        return f"{prefix}: {self.message}"


@attrs.define
class CallRecord:
    """What the response(s) of one gateway call looked like (filled by the session hook)."""

    status: int | None = None
    reason: str = ""
    retry_after: float | None = None
    errors: list[GraphQLErrorInfo] = attrs.Factory(list)


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date; ``None`` when absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


class Scrubber:
    """Removes secrets from text before it reaches a message or a log."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return text


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"


def _detail(errors: Sequence[GraphQLErrorInfo]) -> str:
    text = "; ".join(str(e) for e in errors[:3]) + (f" (+{len(errors) - 3} more)" if len(errors) > 3 else "")
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"


def from_status(
    status: int,
    reason: str,
    *,
    context: str,
    retry_after: float | None = None,
    errors: Sequence[GraphQLErrorInfo] = (),
) -> Stash2PlexError:
    """The core error for an HTTP status other than 200 (or a 200 we could not use)."""
    detail = f": {_detail(errors)}" if errors else ""
    text = f"{context}: HTTP {status} {reason}".rstrip() + detail
    if status in (401, 407):
        return AuthenticationError(
            f"{text}. Stash rejected our credentials: check the API key (Settings → Security in Stash), "
            "or, inside the plugin, the session may have expired"
        )
    if status == 403:
        return AuthenticationError(f"{text}. Stash refused access (its security tripwire or a proxy)")
    if status in (408, 425, 429):
        return TransientError(text, retry_after=retry_after)
    if status >= 500:
        return BackendUnavailableError(text, retry_after=retry_after)
    if status == 404:
        return ConfigurationError(f"{text}. No Stash GraphQL endpoint here: check the Stash URL")
    if status == 200:
        # 200 but unusable: GraphQL errors with null data, or a body that is not JSON.
        return (
            from_graphql_errors(errors, context=context)
            if errors
            else TransientError(f"{context}: Stash sent an unreadable answer (not GraphQL JSON, or no data)")
        )
    return PermanentError(text)


def from_graphql_errors(errors: Sequence[GraphQLErrorInfo], *, context: str) -> Stash2PlexError:
    """GraphQL errors inside a 200 answer (with null or partial data).

    "database is locked" (SQLite busy) is transient; parse and validation failures mean the
    request itself is wrong for this server and are permanent; any other resolver error is a
    failure inside Stash, treated as transient so the job layer retries it with backoff.
    """
    text = f"{context}: Stash answered with GraphQL errors: {_detail(errors)}"
    if any(e.locked for e in errors):
        return TransientError(text)
    if errors and all(e.code in PERMANENT_CODES for e in errors):
        return PermanentError(text)
    return TransientError(text)


def from_stashapi(exc: Exception, record: CallRecord, *, context: str) -> Stash2PlexError:
    """A bare ``Exception`` stashapi raised (or anything unexpected while it handled a call)."""
    match = _STASHAPI_FAILURE.match(str(exc))
    status = record.status
    reason = record.reason
    if match is not None and status is None:
        status, reason = int(match.group("status")), match.group("reason")
    if match is not None and status is not None:
        return from_status(status, reason, context=context, retry_after=record.retry_after, errors=record.errors)
    if record.errors:
        # stashapi indexed into a null result (e.g. ``result["findScenes"]`` after an error).
        return from_graphql_errors(record.errors, context=context)
    return PermanentError(f"{context}: unexpected answer from Stash ({type(exc).__name__}: {_short(exc)})")


def from_requests(exc: Exception, *, context: str) -> Stash2PlexError:
    """A ``requests`` exception: network trouble, timeouts, bad URLs, TLS."""
    import requests

    name = f"{type(exc).__name__}: {_short(exc)}"
    if isinstance(exc, requests.exceptions.SSLError):
        if "CERTIFICATE_VERIFY_FAILED" in str(exc) or "certificate verify failed" in str(exc):
            return ConfigurationError(
                f"{context}: Stash's TLS certificate could not be verified ({name}); install its CA "
                "or set stash_verify_tls = false"
            )
        return BackendUnavailableError(f"{context}: TLS failure ({name})")
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return BackendUnavailableError(f"{context}: could not connect to Stash in time ({name})")
    if isinstance(exc, requests.exceptions.Timeout):
        return TransientError(f"{context}: Stash did not answer in time ({name})")
    if isinstance(exc, requests.exceptions.ConnectionError):
        return BackendUnavailableError(f"{context}: Stash is unreachable ({name})")
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
        return ConfigurationError(f"{context}: invalid Stash URL ({name})")
    if isinstance(exc, requests.exceptions.TooManyRedirects):
        return PermanentError(f"{context}: too many redirects ({name})")
    return TransientError(f"{context}: request failed ({name})")


def is_connection_blip(exc: Exception) -> bool:
    """A refused or reset connection (worth an immediate retry); timeouts are not blips."""
    import requests

    return isinstance(exc, requests.exceptions.ConnectionError) and not isinstance(
        exc, requests.exceptions.Timeout | requests.exceptions.SSLError
    )


def for_image(status: int, reason: str, *, context: str, retry_after: float | None) -> Stash2PlexError:
    """An image download that did not answer 200."""
    if status == 404:
        return NotFoundError(f"{context}: HTTP 404 {reason}".rstrip())
    return from_status(status, reason, context=context, retry_after=retry_after)


__all__ = [
    "PERMANENT_CODES",
    "CallRecord",
    "GraphQLErrorInfo",
    "Scrubber",
    "for_image",
    "from_graphql_errors",
    "from_requests",
    "from_stashapi",
    "from_status",
    "is_connection_blip",
    "retry_after_seconds",
]
