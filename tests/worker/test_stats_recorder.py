"""The recorder's mutable tallies: concurrent counting, and counts kept across a failed flush."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from stash2plex_backends.memory import MemoryStateStore
from stash2plex_core.clocks import ManualClock
from stash2plex_core.errors import StateError
from stash2plex_core.services.stats import StatsRecorder
from stash2plex_core.services.stats import Timing


def test_counts_from_many_threads_all_arrive() -> None:
    clock = ManualClock()
    store = MemoryStateStore(clock)
    rec = StatsRecorder(store, clock, flush_every=37)

    def work() -> None:
        for _ in range(500):
            rec.count("processed")
            rec.timing("job", 0.01)
            rec.error("BackendUnavailableError")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rec.flush()
    totals = StatsRecorder(store, clock).totals()
    assert totals.processed == 2000
    assert totals.errors == {"BackendUnavailableError": 2000}
    assert totals.timings["job"].count == 2000
    assert rec.session().processed == 2000


def test_a_failed_flush_keeps_its_counts_for_the_next(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = ManualClock()
    store = MemoryStateStore(clock)
    rec = StatsRecorder(store, clock, flush_every=1000)
    rec.count("applied", 2)
    rec.timing("plex_write", 0.5)
    update = store.update

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise StateError("disk full")

    monkeypatch.setattr(store, "update", broken)
    with pytest.raises(StateError):
        rec.flush()
    assert rec.totals().applied == 2  # still counted, not yet persisted
    monkeypatch.setattr(store, "update", update)
    rec.count("applied")
    rec.flush()
    totals = StatsRecorder(store, clock).totals()
    assert totals.applied == 3
    assert totals.timings["plex_write"] == Timing(1, 0.5, 0.5)
    assert totals.since is not None
    assert totals.updated_at is not None
