"""The sync worker: claim → hydrate → resolve → plan → apply → record → complete (DESIGN sections 4 and 7).

One attempt of one job, in order:

1. **claim** a ready job — unless the circuit breaker is open (jobs then wait in the queue
   untouched; no attempt is spent) or the recovery ramp asks for a pause;
2. **hydrate** the scene fresh from Stash, so the newest metadata wins whatever happened
   while the job waited; a scene that no longer exists completes the job;
3. **resolve** the Plex item with the matcher (its recorded ratingKey first). No item: ask
   Plex to scan the folder and retry on the not-in-Plex schedule. A low-confidence match is
   recorded for review and not applied unless ``allow_low_confidence``;
4. **skip** when the desired state's digest equals the recorded one, Plex's ``updatedAt``
   (from the path index, no request) equals the recorded one and the poster's source is
   unchanged: nothing is sent, so an unchanged re-drain costs no PUT and no detail GET;
5. otherwise **read** the item (one GET, which also reads back the ``updatedAt`` of a few
   earlier edits), fetch the poster from Stash only when its content may differ, **plan**
   the smallest edit and **apply** it (at most one PUT plus an upload), **record** the sync
   and **complete** the job.

Failures go through :class:`~stash2plex_core.services.retry.RetryPolicy`; a 401 (any
:class:`~stash2plex_core.errors.ConfigurationError`) stops the worker with a clear message
and hands the job back without spending an attempt. Every log record carries
``correlation_id`` (one per job attempt), ``scene_id``, ``job_id``, ``attempt``,
``job_enqueued_at`` and ``job_events`` as ``extra`` fields, so a scene's journey can be
followed from the hook's queue row to Plex.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import posixpath
import random
import threading
import uuid
from collections import Counter
from collections import deque
from collections.abc import Iterator
from collections.abc import Mapping
from contextlib import contextmanager
from contextlib import suppress
from enum import StrEnum
from typing import TYPE_CHECKING
from typing import Any
from typing import Final

import attrs

from stash2plex_core.errors import ConfigurationError
from stash2plex_core.errors import LeaseLostError
from stash2plex_core.errors import NotFoundError
from stash2plex_core.errors import NotInPlexYetError
from stash2plex_core.errors import PermanentError
from stash2plex_core.errors import StateError
from stash2plex_core.errors import TransientError
from stash2plex_core.models._convert import to_mapping
from stash2plex_core.models.health import BreakerStatus
from stash2plex_core.models.health import SyncRecord
from stash2plex_core.models.jobs import SyncJob
from stash2plex_core.models.matching import Confidence
from stash2plex_core.models.matching import MatchResult
from stash2plex_core.models.plex import ImageKind
from stash2plex_core.models.plex import PlexItemRef
from stash2plex_core.models.plex import PlexItemState
from stash2plex_core.models.stash import StashScene
from stash2plex_core.ports.clock import Clock
from stash2plex_core.ports.plex import PlexGateway
from stash2plex_core.ports.queue import Queue
from stash2plex_core.ports.queue import job_error
from stash2plex_core.ports.stash import StashGateway
from stash2plex_core.ports.state import StateStore
from stash2plex_core.serde import from_document
from stash2plex_core.serde import to_document
from stash2plex_core.services.breaker import CircuitBreaker
from stash2plex_core.services.breaker import Transition
from stash2plex_core.services.breaker import counts_as_failure
from stash2plex_core.services.guarded import CircuitOpenError
from stash2plex_core.services.guarded import GuardedPlex
from stash2plex_core.services.guarded import IndexedPlex
from stash2plex_core.services.mapping import desired_state
from stash2plex_core.services.mapping import digest
from stash2plex_core.services.matching import Matcher
from stash2plex_core.services.matching import normalise_path
from stash2plex_core.services.matching import should_apply
from stash2plex_core.services.outages import OutageLog
from stash2plex_core.services.pathrules import PathMapper
from stash2plex_core.services.planning import plan
from stash2plex_core.services.plexindex import PlexPathIndex
from stash2plex_core.services.ramp import RecoveryRamp
from stash2plex_core.services.retry import DeadLetterNow
from stash2plex_core.services.retry import Retry
from stash2plex_core.services.retry import RetryPolicy
from stash2plex_core.services.stats import StatsRecorder
from stash2plex_core.settings import Settings


if TYPE_CHECKING:
    from stash2plex_core.app import App

log = logging.getLogger("stash2plex.worker")

SYNC_NAMESPACE = "sync"
REVIEW_NAMESPACE = "review"
POSTER_NAMESPACE = "posters"
#: Recently edited items whose new ``updatedAt`` rides along in the next job's detail
#: read (``/library/metadata/<this>,<edited>,...``: the same one request), so learning it
#: costs no request of its own; what is left at the end is read back in one batch. One
#: keeps pace with one edit per job; more only make each read heavier to parse inside its
#: Plex slot (the 10,000-scene drain benchmark measured no difference between 1 and 4).
PIGGYBACK_CONFIRMS = 1
#: Edited items awaiting that read-back that force a batched one (the Plex gateway reads
#: 100 ratingKeys per request); only reached when jobs edit faster than reads carry them.
CONFIRM_BATCH = 100
#: Read-backs that rode along are stored this many at a time (one read and one write of the
#: state store instead of two per job). Losing them in a crash costs the next drain one
#: detail read each, nothing else; :meth:`SyncWorker.flush` stores what is left.
CONFIRM_STORE_BATCH = 32
#: Pauses before the immediate retries of a write Plex answered with a 5xx (see
#: :meth:`GuardedPlex._write <stash2plex_core.services.guarded.GuardedPlex._write>`).
WRITE_RETRY_WAITS = (0.05, 0.2)
#: How often a long-running drain refreshes the Plex path index.
INDEX_REFRESH_SECONDS = 300.0
#: Recovery affected-job counts are written to the outage history in batches of this size.
AFFECTED_FLUSH = 50


class OutcomeKind(StrEnum):
    """What one attempt of one job came to."""

    SYNCED = "synced"  #: an edit was sent to Plex
    UNCHANGED = "unchanged"  #: Plex was read and already matched
    SKIPPED = "skipped"  #: digest and Plex ``updatedAt`` proved nothing changed; Plex not asked
    DROPPED = "dropped"  #: the scene is gone, has no file, or lies outside Plex's libraries
    REVIEW = "review"  #: low-confidence match recorded for review, not applied
    RETRY = "retry"  #: failed; scheduled again
    WAITING = "waiting"  #: handed back while the breaker is open; no attempt spent
    DEAD_LETTERED = "dead_lettered"  #: failed for good
    STOPPED = "stopped"  #: a configuration/authentication error stopped the worker
    LEASE_LOST = "lease_lost"  #: another worker took the job over; our result was dropped


SUCCESS_KINDS = frozenset({OutcomeKind.SYNCED, OutcomeKind.UNCHANGED, OutcomeKind.SKIPPED})


@attrs.frozen
class JobOutcome:
    """The result of :meth:`SyncWorker.run_once` for one claimed job."""

    kind: OutcomeKind
    scene_id: str
    job_id: str
    correlation_id: str
    attempt: int
    rating_key: str | None = None
    confidence: Confidence | None = None
    error_class: str | None = None
    message: str | None = None
    retry_at: dt.datetime | None = None
    #: Plex fields the edit changed (scalar and tag names, ``locks``, ``poster``).
    changed: tuple[str, ...] = ()


@attrs.frozen
class DrainReport:
    """What :meth:`SyncWorker.drain` did and why it returned."""

    outcomes: Mapping[str, int] = attrs.field(factory=dict, converter=to_mapping, hash=False)
    #: ``"empty"``, ``"max_jobs"``, ``"idle"``, ``"stop_requested"`` or ``"stopped"``.
    reason: str = "empty"
    #: Why the worker stopped itself (a rejected token...), ``None`` otherwise.
    stop_reason: str | None = None
    elapsed_seconds: float = 0.0

    @property
    def jobs(self) -> int:
        return sum(self.outcomes.values())


@attrs.frozen
class ReviewEntry:
    """A low-confidence match awaiting the user's decision (StateStore namespace ``"review"``)."""

    scene_id: str
    scene_title: str | None
    plex_path: str | None
    confidence: Confidence
    method: str
    candidates: tuple[PlexItemRef, ...]
    recorded_at: dt.datetime


@attrs.frozen
class PosterMemo:
    """The poster source last synced for a scene, its SHA-1 and Stash's ETag for it.

    The same source is not fetched again; a new one (every edit changes the screenshot URL)
    is asked for with the ETag, and Stash answers ``304`` without the bytes if the cover
    itself did not change.
    """

    source: str
    sha1: str | None
    etag: str | None = None


class _Unfetched:
    """An intake entry whose scene must still be read from Stash on its own."""


UNFETCHED: Final = _Unfetched()


@attrs.frozen
class _Known:
    """A claimed scene's sync record and poster memo, read with its batch's (two reads a batch).

    Only the job that holds the scene's lease writes them (the queue leases one job per
    scene), so they stay current until it runs; a read-back stored meanwhile only adds
    Plex's ``updatedAt``, and missing it costs one detail read, never a wrong edit.
    """

    record: SyncRecord | None
    memo: PosterMemo | None


#: A claimed job, its scene when the batch read found it, and its state when read with it.
_Intake = tuple[SyncJob, StashScene | _Unfetched, _Known | None]


class _Unmatchable(Exception):
    """The scene cannot have a Plex item (no file, unmapped, outside every library)."""


@attrs.define
class _Recovery:
    """Counting the jobs an outage held up, after it ended."""

    started_at: dt.datetime
    ended_at: dt.datetime
    unflushed: int = 0


class SyncWorker:
    """Drains the queue into Plex. Thread-safe: :meth:`drain` runs several loops, ``plex_concurrency`` at Plex.

    :param rng: jitter source for retries; inject a seeded one for repeatable tests.
    :param owner: the lease owner name (default: a unique one per worker).
    :param use_index: resolve paths from the persisted Plex path index (no request per
        scene); off, every resolution asks Plex.
    """

    def __init__(
        self,
        *,
        queue: Queue,
        state: StateStore,
        plex: PlexGateway,
        stash: StashGateway,
        clock: Clock,
        settings: Settings,
        rng: random.Random | None = None,
        owner: str | None = None,
        use_index: bool = True,
    ) -> None:
        self.queue = queue
        self.state = state
        self.stash = stash
        self.clock = clock
        self.settings = settings
        self.owner = owner or f"worker-{uuid.uuid4().hex[:8]}"
        self.policy = RetryPolicy(settings, rng)
        self.breaker = CircuitBreaker(state, clock, settings)
        self.ramp = RecoveryRamp(settings, clock, state)
        self.outages = OutageLog(state)
        self.stats = StatsRecorder(state, clock)
        self.raw_plex = plex
        self.plex = GuardedPlex(
            plex,
            self.breaker,
            on_failure=self._on_plex_failure,
            on_transition=self._on_transition,
            write_retry_waits=WRITE_RETRY_WAITS,
            sleep=clock.sleep,
        )
        self.index = PlexPathIndex(self.plex, state, clock) if use_index else None
        lookups: PlexGateway = (
            IndexedPlex(self.plex, self.index, on_miss=self._refresh_if_due) if self.index is not None else self.plex
        )
        self.matcher = Matcher(lookups, PathMapper.compile(settings.path_rules), settings)
        self._lock = threading.RLock()
        self._probe_lock = threading.Lock()
        #: Monotonic time of the next "does Plex listen again?" check (:meth:`_watch_for_plex`).
        self._next_listen_check = 0.0
        self._local = threading.local()
        self._stop_reason: str | None = None
        self._streak: set[str] = set()
        self._affected: set[str] = set()
        self._affected_flushed = 0
        self._outage_started: dt.datetime | None = None
        self._recovery: _Recovery | None = None
        self._unconfirmed: dict[str, SyncRecord] = {}
        #: Read back but not stored yet: ratingKey -> (the record, Plex's ``updatedAt``).
        self._confirmed: dict[str, tuple[SyncRecord, int]] = {}
        self._scanned: dict[str, float] = {}
        self._reviews: set[str] | None = None
        self._locations: tuple[str, ...] | None = None
        self._index_refreshed: float | None = None
        self._index_lock = threading.RLock()
        #: Drains started by this worker, and the one the index was last refreshed in.
        self._drains = 0
        self._index_drain = -1
        #: Jobs claimed together and already hydrated, waiting for a thread (:meth:`_next_job`).
        self._intake: deque[_Intake] = deque()
        self._intake_size = 1

    @classmethod
    def from_app(cls, app: App, **kwargs: Any) -> SyncWorker:
        """A worker over the composition root's adapters."""
        return cls(
            queue=app.queue,
            state=app.state,
            plex=app.plex,
            stash=app.stash,
            clock=app.clock,
            settings=app.settings,
            **kwargs,
        )

    # -- state -------------------------------------------------------------------------------

    @property
    def stop_reason(self) -> str | None:
        """Why the worker stopped itself (e.g. Plex rejected the token), or ``None``."""
        return self._stop_reason

    def stopped(self) -> bool:
        """Whether the worker stopped itself; it then claims nothing until :meth:`resume`."""
        return self._stop_reason is not None

    def resume(self) -> None:
        """Clear a stop (after the user fixed the configuration)."""
        self._stop_reason = None

    # -- logging -----------------------------------------------------------------------------

    def _log(
        self, level: int, message: str, *args: object, event: str, exc_info: bool = False, **fields: object
    ) -> None:
        """Log with the job's context and ``event`` as ``extra`` fields (stdlib ``logging``)."""
        if not log.isEnabledFor(level):
            return
        context: dict[str, object] = dict(getattr(self._local, "context", {}))
        context.update(fields)
        context["event"] = event
        log.log(level, message, *args, extra=context, exc_info=exc_info, stacklevel=2)

    @contextmanager
    def _context(self, job: SyncJob, correlation_id: str) -> Iterator[None]:
        self._local.context = {
            "correlation_id": correlation_id,
            "scene_id": job.scene_id,
            "job_id": job.id,
            "attempt": job.attempts,
            # The queue row's enqueue time (what the hook wrote): with scene_id it names one
            # queued change across all its attempts, from the hook's INSERT to Plex.
            "job_enqueued_at": job.enqueued_at.isoformat(),
            "job_events": job.events,
        }
        self._local.scene_id = job.scene_id
        try:
            yield
        finally:
            self._local.context = {}
            self._local.scene_id = None

    @contextmanager
    def _timed(self, stage: str) -> Iterator[None]:
        started = self.clock.monotonic()
        try:
            yield
        finally:
            self.stats.timing(stage, self.clock.monotonic() - started)

    # -- breaker, outages and ramp -------------------------------------------------------------

    def _on_plex_failure(self, error: BaseException) -> None:
        scene_id = getattr(self._local, "scene_id", None)
        if scene_id is not None:
            with self._lock:
                self._streak.add(scene_id)

    def _on_transition(self, transition: Transition) -> None:
        now = self.clock.now()
        if transition is Transition.OPENED:
            self._flush_affected()
            with self._lock:
                self._affected = set(self._streak)
                self._recovery = None
                started = self.breaker.failing_since or now
                self._outage_started = self.outages.start(
                    started, cause=self.breaker.snapshot().last_error, jobs_affected=len(self._affected)
                ).started_at
                self._affected_flushed = len(self._affected)
            self.ramp.capture()
            self.ramp.stop()
            self._release_intake(until_probe=True)
            self._log(logging.WARNING, "Plex outage: circuit breaker opened; jobs wait", event="outage_started")
        elif transition is Transition.HALF_OPENED:
            # Plex answered a probe: the ramp starts now, with trial jobs one at a time
            # until the breaker closes (a probe and two trials: a few hundred milliseconds).
            self.ramp.start(at=self.breaker.recovered_at or now)
            self._log(
                logging.INFO,
                "Plex answered a probe; trial jobs, then a graduated drain from %.1f jobs/s",
                self.ramp.rate() or 0.0,
                event="recovery_started",
                full_rate=round(self.ramp.full_rate(), 2),
            )
        elif transition is Transition.REOPENED:
            self.ramp.stop()
            self._release_intake(until_probe=True)
        elif transition is Transition.CLOSED:
            ended = self.breaker.recovered_at or now
            record = self.outages.end(ended)
            with self._lock:
                if record is not None:
                    self.outages.add_affected(record.started_at, len(self._affected) - self._affected_flushed)
                    self._affected_flushed = len(self._affected)
                    self._recovery = _Recovery(started_at=record.started_at, ended_at=ended)
                self._outage_started = None
                self._streak.clear()
            if not self.ramp.active:  # closed without a half-open seen by this worker
                self.ramp.start(at=self.breaker.recovered_at or now)
            self._log(
                logging.INFO,
                "Plex is back after %s; draining at a graduated rate",
                record.duration if record is not None else "an outage",
                event="outage_ended",
            )

    def _note_affected(self, job: SyncJob) -> None:
        """Count a job the current or last outage held up."""
        with self._lock:
            if self.breaker.status is not BreakerStatus.CLOSED or self._outage_started is not None:
                # During the outage, and in the moment between the breaker changing state and
                # the thread that changed it running :meth:`_on_transition`: the streak is what
                # an opening outage starts from, ``_affected`` what a closing one counts.
                self._affected.add(job.scene_id)
                self._streak.add(job.scene_id)
                return
            recovery = self._recovery
            if recovery is None or job.next_attempt_at >= recovery.ended_at or job.scene_id in self._affected:
                return
            self._affected.add(job.scene_id)
            recovery.unflushed += 1
            flush = recovery.unflushed >= AFFECTED_FLUSH
        if flush:
            self._flush_affected()

    def _flush_affected(self) -> None:
        with self._lock:
            recovery = self._recovery
            if recovery is None or recovery.unflushed == 0:
                return
            count, recovery.unflushed = recovery.unflushed, 0
            self._affected_flushed += count
        self.outages.add_affected(recovery.started_at, count)

    def _watch_for_plex(self) -> None:
        """While the breaker is open on refused connections, probe as soon as Plex listens again.

        Checks every ``breaker_listen_seconds`` with a TCP connect (no request reaches Plex),
        so a restarted Plex is probed within that time instead of at the next backoff step.
        """
        interval = self.settings.breaker_listen_seconds
        if interval <= 0 or not self.breaker.awaiting_listener():
            return
        now = self.clock.monotonic()
        with self._lock:
            if now < self._next_listen_check:
                return
            self._next_listen_check = now + interval
        if self.raw_plex.listening() is True and self.breaker.probe_now():
            self._log(logging.INFO, "Plex accepts connections again; probing it now", event="plex_listening")

    def _housekeeping(self) -> None:
        """Probe Plex when the open breaker asks for it (one thread at a time)."""
        self._watch_for_plex()
        if not self.breaker.probe_due() or not self._probe_lock.acquire(blocking=False):
            return
        try:
            transition = self.breaker.probe(self.raw_plex.ping)
        except ConfigurationError as exc:
            self._stop(exc)
            return
        finally:
            self._probe_lock.release()
        if transition is not None:
            self._on_transition(transition)

    def _stop(self, error: BaseException) -> str:
        reason = (
            f"{type(error).__name__}: {error}. The worker stopped and no job was spent; "
            "fix the credentials or settings (e.g. plex_token / stash_api_key) and start it again."
        )
        first = self._stop_reason is None
        self._stop_reason = reason
        if first:
            self._log(logging.ERROR, "%s", reason, event="worker_stopped", error_class=type(error).__name__)
        return reason

    # -- index, sections, posters, records -------------------------------------------------------

    def refresh_index(self) -> None:
        """Bring the Plex path index up to date (one paged listing of what changed)."""
        if self.index is None or self.breaker.status is BreakerStatus.OPEN:
            return
        with self._index_lock:
            started = self.clock.monotonic()
            try:
                self._refresh_index()
            finally:
                # Marked done only now, so other threads wait for it rather than read the old
                # index; and marked even on failure, so a failed refresh is not retried per job.
                self._index_refreshed = started
                self._index_drain = self._drains

    def _refresh_index(self) -> None:
        assert self.index is not None
        try:
            update = self.index.refresh()
        except ConfigurationError as exc:
            self._stop(exc)
            return
        except (TransientError, PermanentError) as exc:
            self._log(logging.WARNING, "Plex index refresh failed: %s", exc, event="index_refresh_failed")
            return
        self._locations = None
        self._log(
            logging.DEBUG,
            "Plex index %s: %d listed, %d changed, %d items",
            "built" if update.full else "refreshed",
            update.listed,
            update.changed,
            update.size,
            event="index_refreshed",
        )

    def _index_due(self) -> bool:
        """Whether the index should be refreshed before it is trusted for ``updatedAt`` or a miss.

        Refreshes are lazy: once per drain, when a job could be skipped or a path is not
        indexed, and again every :data:`INDEX_REFRESH_SECONDS`. A drain of changed scenes
        needs neither (their digests differ; their items are indexed), so it lists nothing.
        """
        if self.index is None or self.breaker.status is BreakerStatus.OPEN:
            return False
        last = self._index_refreshed
        return (
            last is None or self._index_drain != self._drains or self.clock.monotonic() - last >= INDEX_REFRESH_SECONDS
        )

    def _refresh_if_due(self) -> bool:
        """Refresh the index if due (one thread does; the others wait and use it); whether it ran."""
        if not self._index_due():
            return False
        with self._index_lock:
            if not self._index_due():
                return False
            self.refresh_index()
            return True

    def _prepare_index(self) -> None:
        """At the start of a drain: build an empty index now; otherwise refresh it when first needed."""
        if self.index is None:
            return
        if self.index.watermark is None or self.index.built_at is None:
            self.refresh_index()

    def _library_locations(self) -> tuple[str, ...]:
        if self._locations is None:
            try:
                sections = self.plex.sections()
            except (TransientError, NotFoundError):
                return ()
            self._locations = tuple(normalise_path(loc).rstrip("/") for s in sections for loc in s.locations)
        return self._locations

    def _inside_libraries(self, plex_path: str) -> bool:
        locations = self._library_locations()
        if not locations:
            return True  # unknown: let Plex's scan decide
        path = normalise_path(plex_path)
        return any(path.startswith(loc + "/") for loc in locations)

    def _decode_record(self, scene_id: str, document: Mapping[str, Any] | None) -> SyncRecord | None:
        if document is None:
            return None
        try:
            return from_document(SyncRecord, document, source=f"state {SYNC_NAMESPACE}/{scene_id}")
        except StateError as exc:
            self._log(logging.WARNING, "ignoring unreadable sync record: %s", exc, event="bad_record")
            return None

    @staticmethod
    def _decode_memo(scene_id: str, document: Mapping[str, Any] | None) -> PosterMemo | None:
        if document is None:
            return None
        try:
            return from_document(PosterMemo, document, source=f"state {POSTER_NAMESPACE}/{scene_id}")
        except StateError:
            return None

    def _known(self, scene_ids: list[str]) -> dict[str, _Known]:
        """The sync records and poster memos of claimed jobs' scenes, in two reads."""
        records = self.state.get_many(SYNC_NAMESPACE, scene_ids)
        memos = self.state.get_many(POSTER_NAMESPACE, scene_ids) if self.settings.sync_poster else {}
        return {
            sid: _Known(self._decode_record(sid, records.get(sid)), self._decode_memo(sid, memos.get(sid)))
            for sid in scene_ids
        }

    def _fetch_poster(self, url: str, source: str, known: PosterMemo | None = None) -> tuple[bytes | None, PosterMemo]:
        """The poster's bytes (``None`` if unchanged since ``known`` or missing) and what to remember of it.

        With ``known`` (a poster Plex already shows), Stash is asked with its ETag, and a
        ``304`` keeps ``known``'s SHA-1 without downloading anything.
        """
        try:
            with self._timed("poster"):
                image = self.stash.fetch_image_if_changed(url, known.etag if known is not None else None)
        except NotFoundError as exc:
            self._log(logging.WARNING, "poster not available from Stash: %s", exc, event="poster_missing")
            return None, PosterMemo(source, None)
        if image is None:
            assert known is not None  # only a conditional request comes back unchanged
            self.stats.count("posters_not_modified")
            return None, PosterMemo(source, known.sha1, known.etag)
        sha1 = hashlib.sha1(image.data).hexdigest()  # noqa: S324 - Plex identifies uploads by SHA-1
        return image.data, PosterMemo(source, sha1, image.etag)

    def _poster(
        self, current: PlexItemState, url: str, source: str, earlier: PosterMemo | None, memo: PosterMemo | None
    ) -> tuple[bytes | None, PosterMemo | None]:
        """The poster to upload (``None``: none) and the memo to keep, given what Plex shows.

        ``earlier`` is the stored memo, ``memo`` the same when its source is still current.
        """
        have = current.images.get(ImageKind.POSTER)
        shown = have is not None and earlier is not None and earlier.sha1 is not None and have.sha1 == earlier.sha1
        if memo is None:
            # A new source: ask with the ETag if Plex still shows the poster it names.
            return self._fetch_poster(url, source, earlier if shown and earlier is not None and earlier.etag else None)
        if memo.sha1 is not None and not shown:
            return self._fetch_poster(url, source)  # changed in Plex: upload again
        return None, memo

    def _forget_scene(self, scene_id: str) -> None:
        for namespace in (SYNC_NAMESPACE, POSTER_NAMESPACE, REVIEW_NAMESPACE):
            self.state.delete(namespace, scene_id)
        with self._lock:
            if self._reviews is not None:
                self._reviews.discard(scene_id)

    def _review_keys(self) -> set[str]:
        with self._lock:
            if self._reviews is None:
                self._reviews = set(self.state.keys(REVIEW_NAMESPACE))
            return self._reviews

    def _hold_for_review(self, scene: StashScene, result: MatchResult) -> None:
        entry = ReviewEntry(
            scene_id=scene.id,
            scene_title=scene.title,
            plex_path=result.plex_path,
            confidence=result.confidence,
            method=result.method.value,
            candidates=result.candidates,
            recorded_at=self.clock.now(),
        )
        self.state.put(REVIEW_NAMESPACE, scene.id, to_document(entry))
        self._review_keys().add(scene.id)

    def _settle_review(self, scene_id: str) -> None:
        keys = self._review_keys()
        if scene_id in keys:
            self.state.delete(REVIEW_NAMESPACE, scene_id)
            keys.discard(scene_id)

    def reviews(self) -> list[ReviewEntry]:
        """Matches awaiting review, oldest first."""
        entries = [
            from_document(ReviewEntry, doc, source=f"state {REVIEW_NAMESPACE}/{key}")
            for key, doc in self.state.items(REVIEW_NAMESPACE)
        ]
        return sorted(entries, key=lambda e: e.recorded_at)

    # -- confirmations: learn Plex's updatedAt after our edits, at no extra request ----------------

    def _confirm_later(self, record: SyncRecord) -> None:
        with self._lock:
            self._unconfirmed[record.rating_key] = record
            full = len(self._unconfirmed) >= CONFIRM_BATCH
        if full:
            self.confirm_edits()

    def _read_item(self, rating_key: str) -> PlexItemState:
        """The item's detail, read together with up to :data:`PIGGYBACK_CONFIRMS` recently edited items.

        Plex answers ``/library/metadata/a,b,c`` in one request, so the edits of earlier
        jobs are confirmed by the read this job needs anyway: a changed scene costs one
        read and one edit, not one and a bit.
        """
        with self._lock:
            self._unconfirmed.pop(rating_key, None)  # this sync supersedes that edit
            self._confirmed.pop(rating_key, None)
            riders = {key: self._unconfirmed.pop(key) for key in list(self._unconfirmed)[:PIGGYBACK_CONFIRMS]}
        try:
            items = self.plex.get_items([rating_key, *riders])
        except BaseException:
            self._unconfirm(riders)
            raise
        found = {item.rating_key: item for item in items}
        self._keep_confirmations(riders, found)
        current = found.get(rating_key)
        if current is None:
            raise NotFoundError(f"Plex has no item with ratingKey {rating_key}")
        return current

    def _unconfirm(self, pending: dict[str, SyncRecord]) -> None:
        """Put records back that could not be confirmed (newer edits of the same item win)."""
        if pending:
            with self._lock:
                self._unconfirmed = {**pending, **self._unconfirmed}

    @staticmethod
    def _read_back(
        pending: Mapping[str, SyncRecord], found: Mapping[str, PlexItemState]
    ) -> dict[str, tuple[SyncRecord, int]]:
        """ratingKey -> (our record, the ``updatedAt`` Plex now shows), for the items read back."""
        return {
            key: (ours, item.updated_at)
            for key, ours in pending.items()
            if (item := found.get(key)) is not None and item.updated_at is not None
        }

    def _keep_confirmations(self, pending: Mapping[str, SyncRecord], found: Mapping[str, PlexItemState]) -> None:
        """Hold read-backs until :data:`CONFIRM_STORE_BATCH` have come, then store them together."""
        read = self._read_back(pending, found)
        with self._lock:
            self._confirmed.update(read)
            if len(self._confirmed) < CONFIRM_STORE_BATCH:
                return
            confirmed, self._confirmed = self._confirmed, {}
        self._store_confirmations(confirmed)

    def _store_confirmations(self, confirmed: Mapping[str, tuple[SyncRecord, int]]) -> int:
        """Add Plex's ``updatedAt`` to the records it was read back for: one read, one write."""
        if not confirmed:
            return 0
        stored = self.state.get_many(SYNC_NAMESPACE, [ours.scene_id for ours, _ in confirmed.values()])
        updates: dict[str, dict[str, Any]] = {}
        for ours, updated_at in confirmed.values():
            if self._decode_record(ours.scene_id, stored.get(ours.scene_id)) != ours:
                continue  # gone, or synced again meanwhile: that sync records its own
            updates[ours.scene_id] = to_document(attrs.evolve(ours, plex_updated_at=updated_at))
        if updates:
            self.state.put_many(SYNC_NAMESPACE, updates)
        return len(updates)

    def confirm_edits(self) -> int:
        """Read back the ``updatedAt`` of edited items no later read carried (batched, 100 a request).

        The next sync of an unchanged scene can then be skipped without a detail read.
        Records changed meanwhile are left alone; on failure the records simply keep no
        ``updatedAt`` and the next sync reads the item. Returns the records confirmed.
        """
        with self._lock:
            confirmed, self._confirmed = self._confirmed, {}
        kept = self._store_confirmations(confirmed)  # read back already, waiting to be stored
        with self._lock:
            pending, self._unconfirmed = self._unconfirmed, {}
        if not pending or self.breaker.status is BreakerStatus.OPEN:
            self._unconfirm(pending)
            return kept
        try:
            items = self.plex.get_items(list(pending))
        except (TransientError, NotFoundError) as exc:
            self._log(logging.DEBUG, "could not confirm edits: %s", exc, event="confirm_failed")
            return kept
        return kept + self._store_confirmations(self._read_back(pending, {item.rating_key: item for item in items}))

    def _confirm_if_quiet(self) -> None:
        """Read back what is left once nothing is in flight or ready (no later read will carry it)."""
        with self._lock:
            if not self._unconfirmed and not self._confirmed:
                return
        counts = self.queue.counts()
        if counts.leased == 0 and counts.ready == 0:
            self.confirm_edits()

    def flush(self) -> None:
        """Persist everything buffered: edit confirmations, statistics, breaker window, outage counts."""
        self._release_intake()
        self.confirm_edits()
        self._flush_affected()
        self.stats.flush()
        self.breaker.save()

    # -- intake: claiming and hydrating jobs in batches ----------------------------------------

    def _next_job(self) -> tuple[SyncJob | None, StashScene | _Unfetched, _Known | None]:
        """The next job to work, and its scene and state when a batch read fetched them.

        With several drain threads, jobs are claimed :attr:`_intake_size` at a time and
        read from Stash in one request after the claim, so an edit made later still
        leaves a pending job behind; their sync records and poster memos are read together
        too. The others wait here for the next free thread. A job whose lease has run half
        out meanwhile goes back to the queue instead.
        """
        lease = self.settings.lease_seconds
        while True:
            with self._lock:
                entry = self._intake.popleft() if self._intake else None
            if entry is None:
                break
            job = entry[0]
            if job.lease is not None and (job.lease.expires_at - self.clock.now()).total_seconds() >= lease / 2:
                return entry
            self._return_job(job)
        size = self._intake_size if self.breaker.status is BreakerStatus.CLOSED else 1
        if size <= 1:
            return self.queue.claim(self.owner, lease), UNFETCHED, None
        jobs = self.queue.claim_many(self.owner, lease, size)
        if not jobs:
            return None, UNFETCHED, None
        entries = self._hydrate(jobs)
        with self._lock:
            self._intake.extend(entries[1:])
        return entries[0]

    def _hydrate(self, jobs: list[SyncJob]) -> list[_Intake]:
        """Read the claimed jobs' scenes in one request, and their state in two reads.

        On failure, and for a scene the batch did not return, the job reads its scene (or
        its state) on its own (:meth:`_sync`): each job then meets the error itself.
        """
        found: Mapping[str, StashScene] = {}
        known: Mapping[str, _Known] = {}
        if len(jobs) > 1:
            ids = [j.scene_id for j in jobs]
            try:
                with self._timed("stash"):
                    found = self.stash.get_scenes(ids)
            except Exception as exc:  # noqa: BLE001 - every job asks again on its own and meets the error itself
                self._log(logging.DEBUG, "batch read from Stash failed: %s", exc, event="hydrate_failed")
            try:
                known = self._known(ids)
            except StateError as exc:
                self._log(logging.DEBUG, "batch read of sync records failed: %s", exc, event="hydrate_failed")
        return [(job, found.get(job.scene_id, UNFETCHED), known.get(job.scene_id)) for job in jobs]

    def _return_job(self, job: SyncJob, when: dt.datetime | None = None) -> None:
        with suppress(LeaseLostError):  # taken back by the queue already: nothing of ours to return
            self.queue.release(job, when)

    def _release_intake(self, *, until_probe: bool = False) -> int:
        """Return claimed jobs nobody started to the queue (at the end of a drain, or when Plex goes down)."""
        with self._lock:
            entries, self._intake = list(self._intake), deque()
        when = None
        if until_probe and entries:
            when = self.clock.now() + dt.timedelta(seconds=self.breaker.seconds_until_probe() or 0.0)
        for job, _scene, _known in entries:
            self._return_job(job, when)
            if until_probe:
                self._note_affected(job)
        return len(entries)

    # -- one job -------------------------------------------------------------------------------

    def run_once(self) -> JobOutcome | None:
        """Work one job, or return ``None`` when none may run now (none ready, breaker open, stopped)."""
        if self.stopped():
            return None
        self._housekeeping()
        if self.stopped() or not self.breaker.ready():
            return None
        wait = self.ramp.acquire()
        if wait > 0:
            self.clock.sleep(wait)
        # The permit before the claim: while half-open, the threads that cannot have the one
        # trial leave their jobs in the queue instead of claiming and handing them back.
        if not self.breaker.try_acquire():
            return None
        job, scene, known = self._next_job()
        if job is None:
            self.breaker.release(used=False)
            return None
        correlation_id = uuid.uuid4().hex[:16]
        outcome: JobOutcome | None = None
        with self._context(job, correlation_id):
            self._note_affected(job)
            calls_before = self.plex.calls_made()
            try:
                outcome = self._attempt(job, correlation_id, scene, known)
            finally:
                told = outcome is not None and outcome.kind not in (OutcomeKind.WAITING, OutcomeKind.STOPPED)
                transition = self.breaker.release(
                    used=told and self.plex.calls_made() > calls_before,
                    ok=outcome is not None and outcome.kind in SUCCESS_KINDS,
                )
            if transition is not None:
                self._on_transition(transition)
        return outcome

    def _outcome(self, job: SyncJob, correlation_id: str, kind: OutcomeKind, **fields: Any) -> JobOutcome:
        return JobOutcome(
            kind=kind,
            scene_id=job.scene_id,
            job_id=job.id,
            correlation_id=correlation_id,
            attempt=job.attempts,
            **fields,
        )

    def _attempt(
        self,
        job: SyncJob,
        correlation_id: str,
        scene: StashScene | _Unfetched = UNFETCHED,
        known: _Known | None = None,
    ) -> JobOutcome:
        self._log(logging.DEBUG, "job claimed (%s, %d event(s))", job.reason, job.events, event="job_claimed")
        started = self.clock.monotonic()
        try:
            outcome = self._sync(job, correlation_id, scene, known)
        except LeaseLostError as exc:
            self.stats.error("LeaseLostError")
            self._log(logging.WARNING, "lease lost, result dropped: %s", exc, event="lease_lost")
            return self._outcome(job, correlation_id, OutcomeKind.LEASE_LOST, error_class="LeaseLostError")
        except Exception as exc:  # noqa: BLE001 - every failure is classified by the retry policy
            try:
                outcome = self._failed(job, correlation_id, exc)
            except LeaseLostError as lost:
                self._log(logging.WARNING, "lease lost, result dropped: %s", lost, event="lease_lost")
                return self._outcome(job, correlation_id, OutcomeKind.LEASE_LOST, error_class="LeaseLostError")
        finally:
            self.stats.timing("job", self.clock.monotonic() - started)
        self._count(outcome)
        return outcome

    def _count(self, outcome: JobOutcome) -> None:
        kind = outcome.kind
        if kind not in (OutcomeKind.WAITING, OutcomeKind.STOPPED, OutcomeKind.LEASE_LOST):
            self.stats.count("processed")
        if kind in SUCCESS_KINDS:
            self.stats.count("succeeded")
            self.stats.count("applied" if kind is OutcomeKind.SYNCED else "skipped_unchanged")
            self.ramp.record(True)
        if kind not in (OutcomeKind.RETRY, OutcomeKind.WAITING):
            with self._lock:  # no longer failing: not part of an outage's failing streak
                self._streak.discard(outcome.scene_id)
        counter = {
            OutcomeKind.RETRY: "failed",
            OutcomeKind.DEAD_LETTERED: "dead_lettered",
            OutcomeKind.DROPPED: "dropped",
            OutcomeKind.REVIEW: "held_for_review",
            OutcomeKind.WAITING: "waited",
        }.get(kind)
        if counter is not None:
            self.stats.count(counter)

    def _sync(
        self,
        job: SyncJob,
        correlation_id: str,
        hydrated: StashScene | _Unfetched = UNFETCHED,
        known: _Known | None = None,
    ) -> JobOutcome:
        """Hydrate (unless the batch read already did) and resolve; hand a matched scene to :meth:`_write`."""
        if job.attempts > self.settings.attempt_ceiling:
            raise RuntimeError(f"job was claimed {job.attempts} times without finishing (crash loop?)")
        if isinstance(hydrated, StashScene):
            scene: StashScene | None = hydrated
        else:
            with self._timed("stash"):
                scene = self.stash.get_scene(job.scene_id)
        if scene is None:
            self.queue.complete(job)
            self._forget_scene(job.scene_id)
            self._log(logging.INFO, "scene no longer exists in Stash; job dropped", event="scene_gone")
            return self._outcome(job, correlation_id, OutcomeKind.DROPPED, message="scene no longer exists")

        if known is None:
            known = self._known([scene.id])[scene.id]
        record = known.record
        try:
            with self._timed("match"):
                result = self._resolve(scene, record)
        except _Unmatchable as why:
            self.queue.complete(job)
            self._log(logging.INFO, "not syncable: %s", why, event="unmatchable")
            return self._outcome(job, correlation_id, OutcomeKind.DROPPED, message=str(why))
        self.stats.confidence(result.confidence.value)
        if not should_apply(result, self.settings):
            self._hold_for_review(scene, result)
            self.queue.complete(job)
            self._log(
                logging.WARNING,
                "low-confidence match (%d candidates) recorded for review, not applied",
                len(result.candidates),
                event="held_for_review",
                confidence=result.confidence.value,
            )
            return self._outcome(
                job, correlation_id, OutcomeKind.REVIEW, confidence=result.confidence, message="held for review"
            )
        self._settle_review(scene.id)
        if self._later_stacked_part(scene, result):
            self.queue.complete(job)
            self._log(
                logging.DEBUG,
                "a later part of a stacked Plex item; its first part's scene describes it",
                event="stacked_part",
            )
            return self._outcome(
                job,
                correlation_id,
                OutcomeKind.DROPPED,
                rating_key=result.rating_key,
                message="later part of a stacked Plex item",
            )
        return self._write(job, correlation_id, scene, known, result)

    def _later_stacked_part(self, scene: StashScene, result: MatchResult) -> bool:
        """Whether the matched item stacks several files and its first part is none of this scene's.

        Plex shows a two-part film as one item while Stash has a scene per part; if both
        scenes wrote to it, each sync would undo the other. The scene of the first part
        speaks for the item, as reconciliation assumes too.
        """
        ref = next((c for c in result.candidates if c.rating_key == result.rating_key), None)
        if ref is None or len(ref.part_paths) < 2:
            return False
        first = normalise_path(ref.part_paths[0])
        mine = {normalise_path(p) for f in scene.files if (p := self.matcher.mapper.to_plex(f)) is not None}
        return first not in mine

    def _write(
        self,
        job: SyncJob,
        correlation_id: str,
        scene: StashScene,
        known: _Known,
        result: MatchResult,
    ) -> JobOutcome:
        """Skip, or read, plan, apply and record: the Plex side of one sync."""
        record = known.record
        desired = desired_state(scene, self.settings)
        wanted_digest = digest(desired)
        poster_source = (
            f"{desired.poster_url}|{scene.updated_at}" if self.settings.sync_poster and desired.poster_url else None
        )
        earlier = known.memo if poster_source is not None else None
        memo = earlier if earlier is not None and earlier.source == poster_source else None
        rating_key = result.rating_key
        assert rating_key is not None  # should_apply guarantees it
        ref = next((c for c in result.candidates if c.rating_key == rating_key), None)

        may_skip = (
            record is not None
            and record.rating_key == rating_key
            and record.digest == wanted_digest
            and record.plex_updated_at is not None
            and (poster_source is None or memo is not None)
        )
        if may_skip and self.index is not None and result.plex_path is not None:
            # Only a skip needs Plex's current ``updatedAt``: bring the index up to date
            # first (one listing for the whole drain), so a drain of changed scenes lists
            # nothing, and look again (another thread may have refreshed it meanwhile).
            self._refresh_if_due()
            ref = next((c for c in self.index.lookup(result.plex_path) if c.rating_key == rating_key), ref)
        if may_skip and record is not None and ref is not None and ref.updated_at == record.plex_updated_at:
            self.queue.complete(job)
            self._log(logging.DEBUG, "unchanged on both sides; Plex not asked", event="job_skipped")
            return self._outcome(
                job, correlation_id, OutcomeKind.SKIPPED, rating_key=rating_key, confidence=result.confidence
            )

        try:
            with self._timed("plex_read"):
                current = self._read_item(rating_key)
        except NotFoundError:
            raise self._vanished(scene.id, rating_key, result.plex_path) from None

        poster: bytes | None = None
        remembered = memo
        if poster_source is not None and desired.poster_url is not None:
            current = self.plex.with_image_hashes(current)  # a batched read may leave the hash unread
            poster, remembered = self._poster(current, desired.poster_url, poster_source, earlier, memo)

        edit = plan(desired, current, self.settings, poster=poster)
        if not edit.empty:
            try:
                with self._timed("plex_write"):
                    self.plex.apply(rating_key, edit)
            except NotFoundError:
                raise self._vanished(scene.id, rating_key, result.plex_path) from None

        synced = SyncRecord(
            scene_id=scene.id,
            rating_key=rating_key,
            digest=wanted_digest,
            stash_updated_at=scene.updated_at,
            plex_updated_at=current.updated_at if edit.empty else None,
            synced_at=self.clock.now(),
            match_method=result.method.value,
        )
        writes = {SYNC_NAMESPACE: {scene.id: to_document(synced)}}
        if remembered is not None and remembered != memo:  # the same memo is already stored
            writes[POSTER_NAMESPACE] = {scene.id: to_document(remembered)}
        self.state.put_all(writes)  # one commit for both
        self.queue.complete(job)
        changed = tuple(
            [*edit.fields, *edit.tags] + (["locks"] if edit.locks else []) + [image.kind.value for image in edit.images]
        )
        if edit.empty:
            self._log(logging.DEBUG, "Plex already up to date", event="job_unchanged", rating_key=rating_key)
            return self._outcome(
                job, correlation_id, OutcomeKind.UNCHANGED, rating_key=rating_key, confidence=result.confidence
            )
        self._confirm_later(synced)
        self._log(
            logging.INFO,
            "synced to Plex item %s: %s",
            rating_key,
            ", ".join(changed),
            event="job_synced",
            rating_key=rating_key,
            changed=list(changed),
        )
        return self._outcome(
            job,
            correlation_id,
            OutcomeKind.SYNCED,
            rating_key=rating_key,
            confidence=result.confidence,
            changed=changed,
        )

    def _vanished(self, scene_id: str, rating_key: str, path: str | None) -> NotInPlexYetError:
        """The matched item is gone (deleted, re-scanned under a new key): forget it and match again later."""
        if self.index is not None:
            self.index.forget(rating_key)
        self.state.delete(SYNC_NAMESPACE, scene_id)
        return NotInPlexYetError(f"Plex item {rating_key} vanished; the scene will be matched again", path=path)

    def _resolve(self, scene: StashScene, record: SyncRecord | None) -> MatchResult:
        result = self.matcher.match(scene, record)
        if result.confidence is not Confidence.NONE:
            return result
        if not scene.files:
            raise _Unmatchable("the scene has no file")
        path = result.plex_path
        if path is None:
            raise _Unmatchable("no path rule maps the scene's files into Plex")
        if not self._inside_libraries(path):
            raise _Unmatchable(f"{path} is outside every Plex library in use")
        self._request_scan(path)
        raise NotInPlexYetError(f"Plex has no item for {path} yet; asked it to scan the folder", path=path)

    def _request_scan(self, path: str) -> None:
        """Ask Plex to scan the file's folder, at most once per folder per not-in-Plex window."""
        folder = posixpath.dirname(path.replace("\\", "/"))
        now = self.clock.monotonic()
        with self._lock:
            last = self._scanned.get(folder)
            if last is not None and now - last < self.settings.not_in_plex_retry_seconds:
                return
            self._scanned[folder] = now
        self.plex.scan(path)
        self.stats.count("scans_requested")
        self._log(logging.INFO, "asked Plex to scan %s", folder, event="scan_requested")

    # -- failures ------------------------------------------------------------------------------

    def _wait(self, job: SyncJob, correlation_id: str, error: BaseException | None) -> JobOutcome:
        """Hand the job back until the breaker's next probe, without spending the attempt."""
        wait = self.breaker.seconds_until_probe() or 0.0
        when = self.clock.now() + dt.timedelta(seconds=wait)
        self.queue.release(job, when)
        self._note_affected(job)
        return self._outcome(
            job,
            correlation_id,
            OutcomeKind.WAITING,
            retry_at=when,
            error_class=type(error).__name__ if error is not None else None,
            message="waiting for Plex to come back",
        )

    def _failed(self, job: SyncJob, correlation_id: str, error: Exception) -> JobOutcome:
        error_class = type(error).__name__
        if isinstance(error, ConfigurationError):
            self.queue.release(job)
            self.stats.error(error_class)
            reason = self._stop(error)
            return self._outcome(job, correlation_id, OutcomeKind.STOPPED, error_class=error_class, message=reason)
        if isinstance(error, CircuitOpenError) or (
            counts_as_failure(error) and self.breaker.status is not BreakerStatus.CLOSED
        ):
            if not isinstance(error, CircuitOpenError):
                self.stats.error(error_class)
            self._log(logging.INFO, "Plex is down; job waits: %s", error, event="job_waiting")
            return self._wait(job, correlation_id, error)
        self.stats.error(error_class)
        if isinstance(error, TransientError):
            self.ramp.record(False)
        now = self.clock.now()
        decision = self.policy.decide(error, job.attempts, job.first_failed_at, now)
        if isinstance(decision, Retry):
            self.queue.retry_at(job, decision.when, error)
            if decision.long_pushback:
                self._log(
                    logging.WARNING,
                    "Plex asked to wait %.1f h (Retry-After) before retrying; the job waits until %s",
                    decision.delay / 3600,
                    decision.when.isoformat(),
                    event="long_retry_after",
                    retry_at=decision.when.isoformat(),
                )
            self._log(
                logging.INFO if isinstance(error, TransientError | NotInPlexYetError) else logging.WARNING,
                "attempt %d failed (%s: %s); retry in %.1f s (%s)",
                job.attempts,
                error_class,
                error,
                decision.delay,
                decision.reason,
                event="job_retry",
                error_class=error_class,
                retry_at=decision.when.isoformat(),
                exc_info=not isinstance(error, TransientError | NotInPlexYetError),
            )
            return self._outcome(
                job,
                correlation_id,
                OutcomeKind.RETRY,
                error_class=error_class,
                message=str(error),
                retry_at=decision.when,
            )
        assert isinstance(decision, DeadLetterNow)  # Stop is handled above
        self.queue.dead_letter(job, job_error(error, now))
        self._log(
            logging.ERROR,
            "dead-lettered: %s",
            decision.reason,
            event="job_dead_lettered",
            error_class=error_class,
        )
        return self._outcome(
            job, correlation_id, OutcomeKind.DEAD_LETTERED, error_class=error_class, message=decision.reason
        )

    # -- draining ------------------------------------------------------------------------------

    def _idle_wait(self, poll_seconds: float) -> float | None:
        """Seconds until something could be done, or ``None`` when the queue holds nothing at all."""
        counts = self.queue.counts()
        if counts.pending == 0 and counts.leased == 0:
            return None
        probe = self.breaker.seconds_until_probe()
        if self.breaker.status is not BreakerStatus.CLOSED and probe is not None:
            listen = self.settings.breaker_listen_seconds
            if listen > 0 and self.breaker.awaiting_listener():
                probe = min(probe, listen)
            return min(max(probe, 0.0), poll_seconds)
        if counts.ready > 0 or counts.leased > 0:
            return min(0.05, poll_seconds)
        now = self.clock.now()
        due = [j.next_attempt_at for j in self.queue.pending(limit=64) if j.lease is None or j.lease.expires_at <= now]
        if not due:
            return min(0.05, poll_seconds)
        return min(max(0.0, (min(due) - now).total_seconds()), poll_seconds)

    def _sleep(self, seconds: float, stop: threading.Event | None) -> None:
        if seconds <= 0:
            return
        if stop is None:
            self.clock.sleep(seconds)
            return
        remaining = seconds
        while remaining > 0 and not stop.is_set():
            step = min(remaining, 1.0)
            self.clock.sleep(step)
            remaining -= step

    def drain(
        self,
        max_jobs: int | None = None,
        until_empty: bool = True,
        stop: threading.Event | None = None,
        *,
        max_idle: float | None = None,
        poll_seconds: float = 1.0,
        concurrency: int | None = None,
    ) -> DrainReport:
        """Work jobs until the queue is empty (or forever with ``until_empty=False``).

        :param max_jobs: return after this many job attempts.
        :param stop: return soon after it is set (a service's SIGTERM handler sets it).
        :param max_idle: return instead of waiting longer than this for the next due job.
        :param poll_seconds: longest single wait, so newly enqueued jobs start promptly.
        :param concurrency: most requests to Plex at once (default ``settings.plex_concurrency``);
            half as many jobs again are worked on, so Plex never waits for Stash.
        """
        started = self.clock.monotonic()
        self._drains += 1
        self._prepare_index()
        run = _DrainRun(
            self, max_jobs=max_jobs, until_empty=until_empty, stop=stop, max_idle=max_idle, poll_seconds=poll_seconds
        )
        slots = max(1, concurrency if concurrency is not None else self.settings.plex_concurrency)
        # A few more jobs in flight than requests to Plex: while some talk to Stash or the
        # database, the others keep every Plex slot busy. Plex still sees at most ``slots``.
        workers = 1 if slots == 1 else slots + max(1, slots // 2)
        self.plex.limit(slots)
        self._intake_size = workers
        try:
            if workers == 1:
                run.loop()
            else:
                threads = [
                    threading.Thread(target=run.loop, name=f"{self.owner}-{n}", daemon=True) for n in range(workers)
                ]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
        finally:
            self.plex.limit(None)
            self._intake_size = 1
            self.flush()
        priority = ("stopped", "stop_requested", "max_jobs", "idle", "empty")
        reason = next((r for r in priority if r in run.reasons), "empty")
        report = DrainReport(
            outcomes=dict(run.tally),
            reason=reason,
            stop_reason=self._stop_reason,
            elapsed_seconds=self.clock.monotonic() - started,
        )
        self._log(
            logging.INFO,
            "drain finished (%s): %d job attempt(s) %s",
            reason,
            report.jobs,
            dict(run.tally),
            event="drain_finished",
        )
        return report


class _DrainRun:
    """One :meth:`SyncWorker.drain`: the loop each thread runs, and what they share."""

    def __init__(
        self,
        worker: SyncWorker,
        *,
        max_jobs: int | None,
        until_empty: bool,
        stop: threading.Event | None,
        max_idle: float | None,
        poll_seconds: float,
    ) -> None:
        self.worker = worker
        self.max_jobs = max_jobs
        self.until_empty = until_empty
        self.stop = stop
        self.max_idle = max_idle
        self.poll_seconds = poll_seconds
        self.tally: Counter[str] = Counter()
        self.reasons: list[str] = []
        self.claimed = 0
        self.lock = threading.Lock()

    def _take_slot(self) -> bool:
        with self.lock:
            if self.max_jobs is not None and self.claimed >= self.max_jobs:
                return False
            self.claimed += 1
            return True

    def _give_back(self) -> None:
        with self.lock:
            self.claimed -= 1

    def _exit(self) -> str | None:
        if self.stop is not None and self.stop.is_set():
            return "stop_requested"
        if self.worker.stopped():
            return "stopped"
        if not self._take_slot():
            return "max_jobs"
        return None

    def loop(self) -> None:
        worker = self.worker
        while (reason := self._exit()) is None:
            outcome = worker.run_once()
            if outcome is not None:
                with self.lock:
                    self.tally[outcome.kind.value] += 1
                continue
            self._give_back()
            if worker.stopped():
                continue
            worker._confirm_if_quiet()
            wait = worker._idle_wait(self.poll_seconds)
            if wait is None:
                if self.until_empty:
                    reason = "empty"
                    break
                wait = self.poll_seconds
            if self.max_idle is not None and wait > self.max_idle:
                reason = "idle"
                break
            worker._sleep(wait, self.stop)
        with self.lock:
            self.reasons.append(reason)


__all__ = [
    "POSTER_NAMESPACE",
    "REVIEW_NAMESPACE",
    "SUCCESS_KINDS",
    "SYNC_NAMESPACE",
    "DrainReport",
    "JobOutcome",
    "OutcomeKind",
    "PosterMemo",
    "ReviewEntry",
    "SyncWorker",
]
