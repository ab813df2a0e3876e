"""Statistics: counted in memory, merged into persisted totals by delta."""

from __future__ import annotations

import pytest

from stash2plex_backends.memory import MemoryStateStore
from stash2plex_core.clocks import ManualClock
from stash2plex_core.services.stats import StatsRecorder
from stash2plex_core.services.stats import SyncStats
from stash2plex_core.services.stats import Timing


def test_counts_flush_as_deltas_and_never_compound() -> None:
    clock = ManualClock()
    store = MemoryStateStore(clock)
    rec = StatsRecorder(store, clock, flush_every=1000)
    rec.count("processed", 3)
    rec.count("succeeded", 2)
    rec.confidence("high")
    rec.error("BackendUnavailableError")
    rec.timing("job", 0.5)
    rec.timing("job", 1.5)
    rec.flush()
    rec.flush()  # nothing new: nothing added
    rec.count("processed")
    rec.flush()
    totals = StatsRecorder(store, clock).totals()
    assert (totals.processed, totals.succeeded) == (4, 2)
    assert dict(totals.confidence) == {"high": 1}
    assert dict(totals.errors) == {"BackendUnavailableError": 1}
    assert totals.timings["job"] == Timing(2, 2.0, 1.5)
    assert totals.timings["job"].mean_seconds == 1.0
    assert rec.session().processed == 4


def test_totals_include_unflushed_counts_and_flush_every() -> None:
    clock = ManualClock()
    store = MemoryStateStore(clock)
    rec = StatsRecorder(store, clock, flush_every=3)
    rec.count("applied")
    rec.count("applied")
    assert store.get("stats", "totals") is None
    assert rec.totals().applied == 2
    rec.count("applied")
    assert store.get("stats", "totals") is not None  # flushed on the third event


def test_unknown_counter_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown counter"):
        StatsRecorder(None, ManualClock()).count("bogus")


def test_reset_and_merge() -> None:
    clock = ManualClock()
    store = MemoryStateStore(clock)
    rec = StatsRecorder(store, clock)
    rec.count("failed")
    rec.flush()
    rec.reset()
    assert rec.totals() == SyncStats()
    merged = SyncStats(failed=1, errors={"A": 1}).merge(SyncStats(failed=2, errors={"A": 1, "B": 1}))
    assert (merged.failed, dict(merged.errors)) == (3, {"A": 2, "B": 1})
