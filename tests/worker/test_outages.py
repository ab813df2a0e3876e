"""Outage history and its figures."""

from __future__ import annotations

import datetime as dt

import pytest

from stash2plex_backends.memory import MemoryStateStore
from stash2plex_core.models.health import OutageRecord
from stash2plex_core.services.outages import OutageLog
from stash2plex_core.services.outages import availability
from stash2plex_core.services.outages import mtbf
from stash2plex_core.services.outages import mttr
from stash2plex_core.services.outages import summarize


T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def test_figures_over_completed_outages() -> None:
    records = [
        OutageRecord(at(0), at(10), jobs_affected=3),  # 10 min down
        OutageRecord(at(100), at(130), jobs_affected=5),  # 30 min down, 90 min after the first
        OutageRecord(at(240), at(260)),  # 20 min down, 110 min after the second
    ]
    assert mttr(records) == dt.timedelta(minutes=20)
    assert mtbf(records) == dt.timedelta(minutes=100)
    assert availability(records) == pytest.approx(100 / 120)
    summary = summarize(records)
    assert (summary.count, summary.completed, summary.ongoing) == (3, 3, None)
    assert summary.total_downtime == dt.timedelta(minutes=60)
    assert summary.jobs_affected == 8


def test_figures_need_enough_history() -> None:
    assert mttr([]) is None
    one = [OutageRecord(at(0), at(5))]
    assert mttr(one) == dt.timedelta(minutes=5)
    assert mtbf(one) is None
    assert availability(one) is None
    ongoing = [OutageRecord(at(0), at(5)), OutageRecord(at(50))]
    assert summarize(ongoing).ongoing == OutageRecord(at(50))
    assert mtbf(ongoing) is None


def test_log_keeps_one_open_outage_and_closes_it() -> None:
    log = OutageLog(MemoryStateStore())
    first = log.start(at(0), cause="503s", jobs_affected=2)
    again = log.start(at(1), cause="other")
    assert again == first  # no orphan second record
    assert log.current() == first
    log.add_affected(first.started_at, 3)
    closed = log.end(at(7))
    assert closed == OutageRecord(at(0), at(7), jobs_affected=5, cause="503s")
    assert closed is not None
    assert closed.duration == dt.timedelta(minutes=7)
    assert log.current() is None
    assert log.end(at(8)) is None  # nothing open: nothing to end
    assert log.history() == (closed,)


def test_log_keeps_the_last_thirty_and_persists() -> None:
    store = MemoryStateStore()
    log = OutageLog(store)
    for n in range(35):
        log.start(at(n * 10))
        log.end(at(n * 10 + 1))
    history = OutageLog(store).history()
    assert len(history) == 30
    assert history[0].started_at == at(50)
    assert OutageLog(store).summary().mttr == dt.timedelta(minutes=1)
    assert OutageLog(store).summary().availability == pytest.approx(9 / 10)


def test_an_end_before_the_start_is_clamped() -> None:
    log = OutageLog(MemoryStateStore())
    log.start(at(10))
    closed = log.end(at(5))
    assert closed is not None
    assert closed.duration == dt.timedelta(0)
