"""Outage history: when Plex was down, for how long, how many jobs it held up — and MTTR, MTBF, availability.

The last 30 outages are kept in the StateStore (namespace ``"health"``, key
``"outages"``) and every change is one atomic read-modify-write, so the predecessor's
orphan "ONGOING" records (two writers each opening or closing an outage) cannot happen:
starting while one is open continues it, and only an open outage can be ended.
"""

from __future__ import annotations

import datetime as dt
import itertools
import statistics
from collections.abc import Callable

import attrs

from stash2plex_core.models.health import OutageRecord
from stash2plex_core.ports.state import Document
from stash2plex_core.ports.state import StateStore
from stash2plex_core.serde import from_document
from stash2plex_core.serde import to_document


NAMESPACE = "health"
KEY = "outages"
LIMIT = 30


@attrs.frozen
class OutageHistory:
    """The persisted ring of outages, oldest first."""

    records: tuple[OutageRecord, ...] = ()


@attrs.frozen
class OutageSummary:
    """Figures over the recorded outages.

    * ``mttr`` — mean time to recovery: mean duration of the completed outages;
    * ``mtbf`` — mean time between failures: mean gap from one outage's end to the next
      one's start (needs two completed outages);
    * ``availability`` — ``mtbf / (mtbf + mttr)``, a fraction in ``[0, 1]``.
    """

    count: int
    completed: int
    ongoing: OutageRecord | None
    total_downtime: dt.timedelta
    jobs_affected: int
    mttr: dt.timedelta | None
    mtbf: dt.timedelta | None
    availability: float | None


def mttr(records: tuple[OutageRecord, ...] | list[OutageRecord]) -> dt.timedelta | None:
    durations = [r.duration.total_seconds() for r in records if r.duration is not None]
    return dt.timedelta(seconds=statistics.fmean(durations)) if durations else None


def mtbf(records: tuple[OutageRecord, ...] | list[OutageRecord]) -> dt.timedelta | None:
    done = sorted((r for r in records if r.ended_at is not None), key=lambda r: r.started_at)
    gaps = [
        max(0.0, (later.started_at - earlier.ended_at).total_seconds())
        for earlier, later in itertools.pairwise(done)
        if earlier.ended_at is not None
    ]
    return dt.timedelta(seconds=statistics.fmean(gaps)) if gaps else None


def availability(records: tuple[OutageRecord, ...] | list[OutageRecord]) -> float | None:
    up, down = mtbf(records), mttr(records)
    if up is None or down is None:
        return None
    total = up + down
    return 1.0 if total.total_seconds() <= 0 else up / total


def summarize(records: tuple[OutageRecord, ...] | list[OutageRecord]) -> OutageSummary:
    ongoing = next((r for r in reversed(records) if r.ended_at is None), None)
    completed = [r for r in records if r.duration is not None]
    return OutageSummary(
        count=len(records),
        completed=len(completed),
        ongoing=ongoing,
        total_downtime=sum((r.duration for r in completed if r.duration is not None), dt.timedelta()),
        jobs_affected=sum(r.jobs_affected for r in records),
        mttr=mttr(records),
        mtbf=mtbf(records),
        availability=availability(records),
    )


class OutageLog:
    """Reads and changes the persisted outage history."""

    def __init__(self, state: StateStore, *, limit: int = LIMIT, namespace: str = NAMESPACE, key: str = KEY) -> None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        self.store = state
        self.limit = limit
        self.namespace = namespace
        self.key = key

    def _decode(self, document: Document | None) -> OutageHistory:
        if document is None:
            return OutageHistory()
        return from_document(OutageHistory, document, source=f"state {self.namespace}/{self.key}")

    def _change(self, fn: Callable[[OutageHistory], OutageHistory]) -> OutageHistory:
        result: list[OutageHistory] = []

        def update(document: Document | None) -> Document:
            history = self._decode(document)
            changed = fn(history)
            result.append(changed)
            return to_document(changed)

        self.store.update(self.namespace, self.key, update)
        return result[-1]

    def history(self) -> tuple[OutageRecord, ...]:
        """Every kept outage, oldest first."""
        return self._decode(self.store.get(self.namespace, self.key)).records

    def current(self) -> OutageRecord | None:
        """The ongoing outage, if any."""
        records = self.history()
        return records[-1] if records and records[-1].ended_at is None else None

    def start(self, started_at: dt.datetime, *, cause: str | None = None, jobs_affected: int = 0) -> OutageRecord:
        """Record that an outage began (or continue the open one: there is never more than one)."""

        def fn(history: OutageHistory) -> OutageHistory:
            if history.records and history.records[-1].ended_at is None:
                return history
            record = OutageRecord(started_at=started_at, jobs_affected=jobs_affected, cause=cause)
            return OutageHistory(records=(*history.records, record)[-self.limit :])

        return self._change(fn).records[-1]

    def end(self, ended_at: dt.datetime) -> OutageRecord | None:
        """Close the open outage; returns it, or ``None`` if none was open."""
        closed: list[OutageRecord] = []

        def fn(history: OutageHistory) -> OutageHistory:
            if not history.records or history.records[-1].ended_at is not None:
                return history
            last = history.records[-1]
            done = attrs.evolve(last, ended_at=max(ended_at, last.started_at))
            closed.append(done)
            return OutageHistory(records=(*history.records[:-1], done))

        self._change(fn)
        return closed[-1] if closed else None

    def add_affected(self, started_at: dt.datetime, count: int) -> None:
        """Add ``count`` jobs to the outage that began at ``started_at`` (if still kept)."""
        if count <= 0:
            return

        def fn(history: OutageHistory) -> OutageHistory:
            records = tuple(
                attrs.evolve(r, jobs_affected=r.jobs_affected + count) if r.started_at == started_at else r
                for r in history.records
            )
            return OutageHistory(records=records)

        self._change(fn)

    def summary(self) -> OutageSummary:
        return summarize(self.history())

    def clear(self) -> None:
        self.store.delete(self.namespace, self.key)


__all__ = [
    "KEY",
    "LIMIT",
    "NAMESPACE",
    "OutageHistory",
    "OutageLog",
    "OutageSummary",
    "availability",
    "mtbf",
    "mttr",
    "summarize",
]
