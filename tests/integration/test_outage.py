"""A real Plex outage in the middle of a drain: the simulated PMS stops listening.

The breaker must see the refusals through the real gateway (which raises its own errors
``from None``), open, probe, close, and every job must complete.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path

import pytest

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


def test_plex_outage_mid_drain_every_job_completes_after_recovery(tmp_path: Path) -> None:
    with simulated(tmp_path, SCENES) as sims:
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
        opened = threading.Event()

        def recover() -> None:
            deadline = time.monotonic() + 20
            while worker.breaker.status is not BreakerStatus.OPEN and time.monotonic() < deadline:
                time.sleep(0.02)
            opened.set()
            time.sleep(0.8)  # a few failed probes while Plex is still gone
            marks["accepted"] = dt.datetime.now(dt.UTC)
            sims.plex_sim.accept()

        marks["refused"] = dt.datetime.now(dt.UTC)
        sims.plex_sim.refuse()
        thread = threading.Thread(target=recover, daemon=True)
        thread.start()
        report = worker.drain()
        thread.join(30)

        assert opened.is_set()
        assert "accepted" in marks
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
        assert marks["accepted"] <= outage.ended_at <= marks["accepted"] + dt.timedelta(seconds=5)
        # Every job not finished before Plex went away was held up by the outage.
        assert outage.jobs_affected == len(remaining)
        totals = worker.stats.totals()
        assert totals.dead_lettered == 0
        assert totals.waited >= 1
        assert totals.errors.get("BackendUnavailableError", 0) >= 1
