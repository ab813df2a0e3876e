"""One error hierarchy, shaped by what the caller should *do*.

Adapters translate every foreign exception (plexapi, requests, stashapi, sqlite3) into
one of these, so the worker, the retry policy and the circuit breaker only ever reason
about core types:

* :class:`TransientError` — try again later (honour ``retry_after`` when set);
  :class:`BackendUnavailableError` is the transient kind that means the server itself is
  unreachable and feeds the circuit breaker.
* :class:`NotInPlexYetError` — the file exists in Stash but Plex has not scanned it:
  ask for a scan and retry on a longer schedule.
* :class:`PermanentError` — retrying cannot help; the job goes to the dead letters.
* :class:`ConfigurationError` — the user must fix something (a bad token, a bad setting,
  an unknown backend); jobs are not burned while it lasts.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Sequence

import attrs


class Stash2PlexError(Exception):
    """Base class of every error stash2plex raises on purpose."""


class TransientError(Stash2PlexError):
    """A failure that may succeed if retried later.

    :param retry_after: seconds the server asked us to wait (``Retry-After``), if any.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BackendUnavailableError(TransientError):
    """The server could not be reached or answered 5xx: counts toward the circuit breaker."""


class NotInPlexYetError(Stash2PlexError):
    """Plex has no item for the scene's file yet; a scan will usually reveal it."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class PermanentError(Stash2PlexError):
    """Retrying cannot help (invalid data, a 4xx other than 401/408/429)."""


class NotFoundError(PermanentError, LookupError):
    """The thing asked for does not exist (a Plex ratingKey, a Stash scene id, a dead letter)."""


class LeaseLostError(Stash2PlexError):
    """A job's lease expired and another worker took it; the holder must drop its result."""


class StateError(Stash2PlexError):
    """Persisted state is unreadable (corrupt file, unknown schema); the message names the file."""


class StateLockTimeoutError(TransientError):
    """Another process held the state lock longer than the configured timeout."""


class ConfigurationError(Stash2PlexError):
    """The user must change something before this can work."""


class AuthenticationError(ConfigurationError):
    """A server rejected our credentials (HTTP 401): stop and tell the user."""


class BackendNotFoundError(ConfigurationError, LookupError):
    """No backend with the requested id is registered for a port."""

    def __init__(self, port: str, requested: str | None, available: Iterable[str], hint: str | None = None) -> None:
        self.port = port
        self.requested = requested
        self.available = tuple(sorted(available))
        shown = ", ".join(self.available) or "none"
        if requested is None:
            message = f"no recommended {port} backend is available (registered: {shown})"
        else:
            message = f"unknown {port} backend {requested!r}; registered {port} backends: {shown}"
        if hint:
            message += f". {hint}"
        super().__init__(message)


@attrs.frozen
class SettingProblem:
    """One bad setting: which key, what is wrong and what form is expected."""

    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


class InvalidSettingsError(ConfigurationError, ValueError):
    """Every problem found in a set of settings, reported at once."""

    def __init__(self, problems: Sequence[SettingProblem]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} invalid setting(s):\n{lines}")


__all__ = [
    "AuthenticationError",
    "BackendNotFoundError",
    "BackendUnavailableError",
    "ConfigurationError",
    "InvalidSettingsError",
    "LeaseLostError",
    "NotFoundError",
    "NotInPlexYetError",
    "PermanentError",
    "SettingProblem",
    "Stash2PlexError",
    "StateError",
    "StateLockTimeoutError",
    "TransientError",
]
