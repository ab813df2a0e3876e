"""Plex gateways the worker layers over the real one: a breaker guard and the path index.

* :class:`GuardedPlex` records every request's outcome with the circuit breaker and
  refuses to call Plex at all while the breaker is open (:class:`CircuitOpenError`), so
  in-flight work stops hitting a server that is down. An edit is sent as one guarded call
  per request (the PUT, then each upload), each retried at once a couple of times on a 5xx.
* :class:`IndexedPlex` answers path look-ups from the persisted
  :class:`~stash2plex_core.services.plexindex.PlexPathIndex`, so matching an
  already-indexed file costs no request (an unchanged re-drain makes none per scene).

Both are :class:`PlexGateway` subclasses, so the matcher and planner use them unchanged.
They are not backends: they wrap one and never close it (the application owns it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from typing import ClassVar
from typing import Self
from typing import TypeVar

import attrs

from stash2plex_core.errors import AuthenticationError
from stash2plex_core.errors import BackendUnavailableError
from stash2plex_core.models.health import BreakerStatus
from stash2plex_core.models.plex import ImageKind
from stash2plex_core.models.plex import LibrarySection
from stash2plex_core.models.plex import PlexEdit
from stash2plex_core.models.plex import PlexItemRef
from stash2plex_core.models.plex import PlexItemState
from stash2plex_core.models.plex import ServerInfo
from stash2plex_core.ports.clock import Clock
from stash2plex_core.ports.plex import PlexGateway
from stash2plex_core.services.breaker import CircuitBreaker
from stash2plex_core.services.breaker import Transition
from stash2plex_core.services.breaker import counts_as_failure
from stash2plex_core.services.breaker import is_refusal
from stash2plex_core.services.plexindex import PlexPathIndex
from stash2plex_core.settings import Settings


T = TypeVar("T")


class CircuitOpenError(BackendUnavailableError):
    """Plex was not called because the circuit breaker is open; the job should wait, not fail."""


class _Wrapper(PlexGateway):
    id: ClassVar[str] = "wrapper"
    priority: ClassVar[int] = 0

    @classmethod
    def viable(cls) -> bool:
        return False

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock) -> Self:
        raise TypeError(f"{cls.__name__} wraps a gateway; it is not a backend")


class GuardedPlex(_Wrapper):
    """Every request through the circuit breaker.

    :param on_failure: called with each counted failure *before* the breaker records it
        (the worker notes which job the outage affected).
    :param on_transition: called with each state change a request caused.
    :param write_retry_waits: pauses before the immediate retries of a write Plex answered
        with a 5xx (none by default); ``sleep`` waits them out (the worker's clock).
    """

    def __init__(
        self,
        inner: PlexGateway,
        breaker: CircuitBreaker,
        *,
        on_failure: Callable[[BaseException], None] | None = None,
        on_transition: Callable[[Transition], None] | None = None,
        write_retry_waits: Sequence[float] = (),
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        self.inner = inner
        self.breaker = breaker
        self.on_failure = on_failure
        self.on_transition = on_transition
        self.write_retry_waits = tuple(write_retry_waits)
        self.sleep = sleep
        self._local = threading.local()
        self._slots: threading.BoundedSemaphore | None = None

    def limit(self, requests: int | None) -> None:
        """Let at most ``requests`` requests reach Plex at once (``None``: no limit).

        The wrapped gateway enforces it around each HTTP exchange if it can
        (:meth:`PlexGateway.limit_requests`); otherwise whole calls are limited here.
        """
        requests = None if requests is None else max(1, requests)
        at_the_wire = self.inner.limit_requests(requests)
        self._slots = None if requests is None or at_the_wire else threading.BoundedSemaphore(requests)

    def limit_requests(self, requests: int | None) -> bool:
        self.limit(requests)
        return True

    def listening(self) -> bool | None:
        return self.inner.listening()

    def calls_made(self) -> int:
        """Requests this thread sent to Plex so far (for "did this job touch Plex?")."""
        return int(getattr(self._local, "calls", 0))

    def _call(self, fn: Callable[[], T]) -> T:
        slots = self._slots
        if slots is not None:
            slots.acquire()
        try:
            if self.breaker.status is BreakerStatus.OPEN:
                raise CircuitOpenError("circuit breaker open: Plex was not called")
            self._local.calls = self.calls_made() + 1
            try:
                result = fn()
            except AuthenticationError:
                raise
            except Exception as exc:
                if counts_as_failure(exc) and self.on_failure is not None:
                    self.on_failure(exc)
                self._transition(self.breaker.record(exc))
                raise
            self._transition(self.breaker.record(None))
            return result
        finally:
            if slots is not None:
                slots.release()

    def _transition(self, transition: Transition | None) -> None:
        if transition is not None and self.on_transition is not None:
            self.on_transition(transition)

    def ping(self) -> ServerInfo:
        """Probes bypass the guard: they are how an open breaker finds Plex again."""
        return self.inner.ping()

    def sections(self) -> list[LibrarySection]:
        return self._call(self.inner.sections)

    def _resolve_path(self, path: str) -> list[PlexItemRef]:
        return self._call(lambda: self.inner.resolve_path(path))

    def _find_by_filename(self, filename: str) -> list[PlexItemRef]:
        return self._call(lambda: self.inner.find_by_filename(filename))

    def iter_items(self, section_key: str | None = None, *, updated_since: int | None = None) -> Iterator[PlexItemRef]:
        return iter(self._call(lambda: list(self.inner.iter_items(section_key, updated_since=updated_since))))

    def _get_items(self, rating_keys: list[str]) -> list[PlexItemState]:
        return self._call(lambda: self.inner.get_items(rating_keys))

    def _image_hash(self, rating_key: str, kind: ImageKind) -> str | None:
        return self._call(lambda: self.inner._image_hash(rating_key, kind))

    def _apply(self, rating_key: str, edit: PlexEdit) -> None:
        """One guarded call per request: the PUT, then each upload.

        The breaker then counts requests, not edits: sent as one call, a first sync's PUT
        plus poster upload would fail half the time under 30 % random 5xx and push the
        window towards a spurious trip. A failed request is retried without the others.
        """
        parts = [attrs.evolve(edit, images=())] if edit.needs_put else []
        parts += [PlexEdit(images=(image,)) for image in edit.images]
        for part in parts:
            self._write(lambda part=part: self.inner.apply(rating_key, part))  # type: ignore[misc]

    def _write(self, fn: Callable[[], None]) -> None:
        """A write, retried at once on a 5xx (:attr:`write_retry_waits`).

        The item was just read for this edit: leaving the retry to the queue would throw
        that read away and redo the whole job (about 1.7x the requests of a clean run under
        30 % random 5xx instead of about 1.45x). Writes are idempotent (values, indexed
        tags, removals by name, uploads keyed by SHA-1) and every try is recorded by the
        breaker. Not retried: once the breaker is not closed, a refused connection (the
        gateway already retried the connection) or an answer naming a ``Retry-After``
        (the queue honours it).
        """
        for wait in (*self.write_retry_waits, None):
            try:
                self._call(fn)
            except BackendUnavailableError as exc:
                if (
                    wait is None
                    or self.sleep is None
                    or isinstance(exc, CircuitOpenError)
                    or exc.retry_after is not None
                    or is_refusal(exc)
                    or self.breaker.status is not BreakerStatus.CLOSED
                ):
                    raise
                self.sleep(wait)
            else:
                return

    def _scan(self, path: str) -> None:
        self._call(lambda: self.inner.scan(path))


class IndexedPlex(_Wrapper):
    """Path and file-name look-ups from the index first, Plex only on a miss.

    :param on_miss: called on a miss before Plex is asked; returns whether it refreshed
        the index (the worker's lazy refresh), and then the index is asked again.
    """

    def __init__(self, inner: PlexGateway, index: PlexPathIndex, *, on_miss: Callable[[], bool] | None = None) -> None:
        self.inner = inner
        self.index = index
        self.on_miss = on_miss

    def _refreshed(self) -> bool:
        return self.on_miss is not None and self.on_miss()

    def ping(self) -> ServerInfo:
        return self.inner.ping()

    def sections(self) -> list[LibrarySection]:
        return self.inner.sections()

    def _resolve_path(self, path: str) -> list[PlexItemRef]:
        found = self.index.lookup(path)
        if not found and self._refreshed():
            found = self.index.lookup(path)
        return found or self.index.resolve(path)

    def _find_by_filename(self, filename: str) -> list[PlexItemRef]:
        found = self.index.find_by_filename(filename)
        if not found and self._refreshed():
            found = self.index.find_by_filename(filename)
        return found or self.inner.find_by_filename(filename)

    def iter_items(self, section_key: str | None = None, *, updated_since: int | None = None) -> Iterator[PlexItemRef]:
        return self.inner.iter_items(section_key, updated_since=updated_since)

    def _get_items(self, rating_keys: list[str]) -> list[PlexItemState]:
        return self.inner.get_items(rating_keys)

    def _image_hash(self, rating_key: str, kind: ImageKind) -> str | None:
        return self.inner._image_hash(rating_key, kind)

    def _apply(self, rating_key: str, edit: PlexEdit) -> None:
        self.inner.apply(rating_key, edit)

    def limit_requests(self, requests: int | None) -> bool:
        return self.inner.limit_requests(requests)

    def listening(self) -> bool | None:
        return self.inner.listening()

    def _scan(self, path: str) -> None:
        self.inner.scan(path)


__all__ = ["CircuitOpenError", "GuardedPlex", "IndexedPlex"]
