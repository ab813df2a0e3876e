"""Sync statistics: what the worker did, aggregated across runs.

Counts accumulate in memory and are merged into the persisted totals (namespace
``"stats"``, key ``"totals"``) with one atomic update every ``flush_every`` jobs and when
a drain ends. Only the *delta* since the last flush is ever added, so totals cannot
compound the way the predecessor's did (to ~10³²).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Mapping

import attrs

from stash2plex_core.models._convert import to_mapping
from stash2plex_core.ports.clock import Clock
from stash2plex_core.ports.state import Document
from stash2plex_core.ports.state import StateStore
from stash2plex_core.serde import from_document
from stash2plex_core.serde import to_document


NAMESPACE = "stats"
KEY = "totals"
#: The counters, in report order.
COUNTERS: tuple[str, ...] = (
    "processed",
    "succeeded",
    "applied",
    "skipped_unchanged",
    "failed",
    "dead_lettered",
    "dropped",
    "held_for_review",
    "waited",
    "scans_requested",
    "posters_not_modified",
)


@attrs.frozen
class Timing:
    """Durations of one stage: how many, their sum and the longest, in seconds."""

    count: int = 0
    total_seconds: float = 0.0
    max_seconds: float = 0.0

    @property
    def mean_seconds(self) -> float:
        return self.total_seconds / self.count if self.count else 0.0

    def add(self, seconds: float) -> Timing:
        return Timing(self.count + 1, self.total_seconds + seconds, max(self.max_seconds, seconds))

    def merge(self, other: Timing) -> Timing:
        return Timing(
            self.count + other.count,
            self.total_seconds + other.total_seconds,
            max(self.max_seconds, other.max_seconds),
        )


def _merge_counts(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, int]:
    merged = dict(a)
    for key, value in b.items():
        merged[key] = merged.get(key, 0) + value
    return merged


@attrs.frozen
class SyncStats:
    """Counters of the worker's work.

    * ``processed`` — job attempts that reached an outcome (not those handed back while
      the breaker was open, counted as ``waited``);
    * ``succeeded`` — jobs completed with Plex in the desired state, of which ``applied``
      sent an edit and ``skipped_unchanged`` needed none;
    * ``failed`` — attempts rescheduled for a retry; ``dead_lettered``; ``dropped`` — the
      scene no longer exists in Stash; ``held_for_review`` — low-confidence matches;
    * ``posters_not_modified`` — posters Stash answered ``304 Not Modified`` for (a new
      screenshot URL, the same cover: nothing downloaded);
    * ``confidence`` — matches by confidence; ``errors`` — failures by error class;
    * ``timings`` — seconds per stage (``job``, ``stash``, ``match``, ``plex_read``,
      ``poster``, ``plex_write``).
    """

    processed: int = 0
    succeeded: int = 0
    applied: int = 0
    skipped_unchanged: int = 0
    failed: int = 0
    dead_lettered: int = 0
    dropped: int = 0
    held_for_review: int = 0
    waited: int = 0
    scans_requested: int = 0
    posters_not_modified: int = 0
    confidence: Mapping[str, int] = attrs.field(factory=dict, converter=to_mapping, hash=False)
    errors: Mapping[str, int] = attrs.field(factory=dict, converter=to_mapping, hash=False)
    timings: Mapping[str, Timing] = attrs.field(factory=dict, converter=to_mapping, hash=False)
    since: dt.datetime | None = None
    updated_at: dt.datetime | None = None

    def merge(self, other: SyncStats) -> SyncStats:
        """These counts plus ``other``'s."""
        timings = dict(self.timings)
        for stage, timing in other.timings.items():
            timings[stage] = timings.get(stage, Timing()).merge(timing)
        firsts = [t for t in (self.since, other.since) if t is not None]
        lasts = [t for t in (self.updated_at, other.updated_at) if t is not None]
        return SyncStats(
            **{name: getattr(self, name) + getattr(other, name) for name in COUNTERS},
            confidence=_merge_counts(self.confidence, other.confidence),
            errors=_merge_counts(self.errors, other.errors),
            timings=timings,
            since=min(firsts) if firsts else None,
            updated_at=max(lasts) if lasts else None,
        )


class _Tally:
    """Mutable counts (a worker adds about ten per job; building a :class:`SyncStats` each
    time cost more than the rest of the bookkeeping), frozen into :class:`SyncStats` on demand."""

    __slots__ = ("confidence", "counters", "errors", "events", "since", "timings", "updated_at")

    def __init__(self) -> None:
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self.confidence: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        #: stage → [count, total seconds, longest]
        self.timings: dict[str, list[float]] = {}
        self.since: dt.datetime | None = None
        self.updated_at: dt.datetime | None = None
        self.events = 0

    def touch(self, now: dt.datetime) -> None:
        if self.since is None:
            self.since = now
        self.updated_at = now
        self.events += 1

    def timing(self, stage: str, seconds: float) -> None:
        entry = self.timings.get(stage)
        if entry is None:
            self.timings[stage] = [1, seconds, seconds]
        else:
            entry[0] += 1
            entry[1] += seconds
            entry[2] = max(entry[2], seconds)

    def freeze(self) -> SyncStats:
        return SyncStats(
            **self.counters,
            confidence=dict(self.confidence),
            errors=dict(self.errors),
            timings={stage: Timing(int(c), total, longest) for stage, (c, total, longest) in self.timings.items()},
            since=self.since,
            updated_at=self.updated_at,
        )


class StatsRecorder:
    """Thread-safe in-memory counters, flushed into the persisted totals."""

    def __init__(
        self,
        state: StateStore | None,
        clock: Clock,
        *,
        flush_every: int = 1000,
        namespace: str = NAMESPACE,
        key: str = KEY,
    ) -> None:
        self.store = state
        self.clock = clock
        self.flush_every = max(1, flush_every)
        self.namespace = namespace
        self.key = key
        self._lock = threading.Lock()
        self._session = _Tally()
        self._pending = _Tally()
        #: Counts taken out for a flush that failed, added back to the next one.
        self._unsaved = SyncStats()

    def _added(self) -> None:
        if self._pending.events >= self.flush_every:
            self.flush()

    def count(self, counter: str, n: int = 1) -> None:
        if counter not in COUNTERS:
            raise ValueError(f"unknown counter {counter!r}; known: {', '.join(COUNTERS)}")
        now = self.clock.now()
        with self._lock:
            for tally in (self._session, self._pending):
                tally.counters[counter] += n
                tally.touch(now)
        self._added()

    def _bump(self, attribute: str, key: str) -> None:
        now = self.clock.now()
        with self._lock:
            for tally in (self._session, self._pending):
                counts: dict[str, int] = getattr(tally, attribute)
                counts[key] = counts.get(key, 0) + 1
                tally.touch(now)
        self._added()

    def confidence(self, level: str) -> None:
        self._bump("confidence", level)

    def error(self, error_class: str) -> None:
        self._bump("errors", error_class)

    def timing(self, stage: str, seconds: float) -> None:
        now = self.clock.now()
        seconds = max(0.0, seconds)
        with self._lock:
            for tally in (self._session, self._pending):
                tally.timing(stage, seconds)
                tally.touch(now)
        self._added()

    def session(self) -> SyncStats:
        """What this recorder counted since it was built."""
        with self._lock:
            return self._session.freeze()

    def _take_pending(self) -> SyncStats:
        with self._lock:
            pending = self._unsaved.merge(self._pending.freeze()) if self._pending.events else self._unsaved
            self._pending, self._unsaved = _Tally(), SyncStats()
        return pending

    def flush(self) -> None:
        """Merge the counts not yet persisted into the totals."""
        if self.store is None:
            return
        pending = self._take_pending()
        if pending.updated_at is None:  # nothing counted since the last flush
            return
        source = f"state {self.namespace}/{self.key}"

        def merge(document: Document | None) -> Document:
            totals = SyncStats() if document is None else from_document(SyncStats, document, source=source)
            return to_document(totals.merge(pending))

        try:
            self.store.update(self.namespace, self.key, merge)
        except BaseException:
            with self._lock:  # keep the counts for the next flush
                self._unsaved = pending.merge(self._unsaved)
            raise

    def totals(self) -> SyncStats:
        """Persisted totals plus whatever is not flushed yet."""
        document = None if self.store is None else self.store.get(self.namespace, self.key)
        stored = (
            SyncStats()
            if document is None
            else from_document(SyncStats, document, source=f"state {self.namespace}/{self.key}")
        )
        with self._lock:
            return stored.merge(self._unsaved).merge(self._pending.freeze())

    def reset(self) -> None:
        """Forget every count, persisted ones included."""
        with self._lock:
            self._session, self._pending, self._unsaved = _Tally(), _Tally(), SyncStats()
        if self.store is not None:
            self.store.delete(self.namespace, self.key)


__all__ = ["COUNTERS", "KEY", "NAMESPACE", "StatsRecorder", "SyncStats", "Timing"]
