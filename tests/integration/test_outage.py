"""A real Plex outage in the middle of a drain: the simulated PMS stops listening.

The breaker must see the refusals through the real gateway (which raises its own errors
``from None``), open, probe, close, and every job must complete.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from stash2plex_core.clocks import ManualClock
from stash2plex_core.errors import BackendUnavailableError
from stash2plex_core.models.health import BreakerStatus
from stash2plex_core.services.breaker import is_refusal
from stash2plex_core.services.outages import OutageLog
from tests.integration._world import TOKEN
from tests.integration._world import simulated


SCENES = 100
BEFORE = 20


def test_the_real_gateway_reports_refused_connections_as_refusals(tmp_path: Path) -> None:
    with simulated(tmp_path, 5) as sims:
        plex = sims.app.plex
        assert plex.sections()  # connected, with a kept-alive connection in the pool
        sims.plex_sim.refuse()
        with pytest.raises(BackendUnavailableError) as caught:
            plex.get_item("1001")
        error = caught.value
        assert is_refusal(error)
        assert TOKEN not in str(error)
        # Raised ``from None``: no cause, and the transport error it replaced stays out of
        # tracebacks; the breaker still finds the ConnectionRefusedError in its context.
        assert error.__cause__ is None
        assert error.__suppress_context__
        sims.plex_sim.accept()
        assert plex.get_item("1001").rating_key == "1001"


class CueClock(ManualClock):
    """A manual clock that runs an action at the first wait once a condition holds.

    The action runs in the thread that waits (the drain's), so it happens at a known point
    of the drain, however threads are scheduled.
    """

    def __init__(self, start: dt.datetime) -> None:
        super().__init__(start)
        self._cues: list[tuple[Callable[[], bool], Callable[[], None]]] = []

    def when(self, condition: Callable[[], bool], action: Callable[[], None]) -> None:
        self._cues.append((condition, action))

    def advance(self, seconds: float) -> None:
        super().advance(seconds)
        for cue in [cue for cue in self._cues if cue[0]()]:
            self._cues.remove(cue)
            cue[1]()


def test_plex_outage_mid_drain_every_job_completes_after_recovery(tmp_path: Path) -> None:
    """On a manual clock with the real schedules (probes 5 s -> 60 s), over real HTTP.

    One drain thread: Plex goes away before the drain and comes back, from inside the
    drain's own waits, once two probes (5 s and 15 s after the breaker opened) failed, so
    the next probe of the schedule is 20 s away.
    """
    clock = CueClock(dt.datetime.now(dt.UTC))
    with simulated(tmp_path, SCENES, clock=clock, plex_concurrency=1) as sims:
        settings = sims.settings
        owners = sims.owners()
        # Synced before the outage: some scenes, and the later parts of stacked films (which
        # complete without asking Plex, so they could finish during the outage unaffected).
        before = sorted(sims.secondary_parts()) + owners[:BEFORE]
        remaining = owners[BEFORE:]
        sims.enqueue(before)
        worker = sims.worker()
        first = worker.drain()
        assert dict(first.outcomes) == {"synced": BEFORE, "dropped": len(before) - BEFORE}
        sims.enqueue(remaining)

        marks: dict[str, dt.datetime] = {}
        seen: dict[str, object] = {}

        def come_back() -> None:
            snapshot = worker.breaker.snapshot()
            seen.update(status=snapshot.status, probe_failures=snapshot.probe_failures)
            marks["accepted"] = clock.now()
            sims.plex_sim.accept()

        marks["refused"] = clock.now()
        sims.plex_sim.refuse()
        clock.when(lambda: worker.breaker.snapshot().probe_failures >= 2, come_back)
        report = worker.drain()

        assert seen == {"status": BreakerStatus.OPEN, "probe_failures": 2}
        assert report.reason == "empty"
        assert sims.app.queue.counts().pending == 0
        assert sims.app.queue.dead_letters() == []
        assert "dead_lettered" not in report.outcomes
        assert sims.out_of_step(owners) == {}
        assert worker.breaker.status is BreakerStatus.CLOSED

        history = OutageLog(sims.app.state).history()
        assert len(history) == 1
        outage = history[0]
        assert "connection refused" in (outage.cause or "")  # tripped by refusals, not by the count
        assert marks["refused"] <= outage.started_at <= marks["accepted"]
        assert outage.ended_at is not None
        # Seen back at the first listen check after Plex accepted connections again (one
        # probe, no backoff step): not at the next probe of the schedule, 20 s later.
        listen = dt.timedelta(seconds=settings.breaker_listen_seconds)
        assert marks["accepted"] <= outage.ended_at <= marks["accepted"] + listen
        # Every job not finished before Plex went away was held up by the outage.
        assert outage.jobs_affected == len(remaining)
        totals = worker.stats.totals()
        assert totals.dead_lettered == 0
        assert totals.waited >= 1
        assert totals.errors.get("BackendUnavailableError", 0) >= 1
        # Draining resumed at the ramp's pace from the moment the probe saw Plex back.
        assert worker.ramp.full_rate() >= settings.ramp_full_rate
