"""Random 5xx and 429s with Retry-After from the simulated PMS: everything still arrives."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pytest

from stash2plex_backends.simulators import Fault
from stash2plex_core.models.health import BreakerStatus
from stash2plex_core.services.outages import OutageLog
from tests.integration._world import simulated


SCENES = 80
RETRY_AFTER = 1


def test_random_5xx_and_429_everything_completes_nothing_permanent(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with simulated(tmp_path, SCENES) as sims:
        owners = sims.owners()
        faults = sims.plex_sim.faults
        faults.reseed(11)
        throttle = faults.add(
            Fault(
                path=r"^/library/metadata/\d+(,\d+)*$",  # single and batched detail reads
                method="GET",
                status=429,
                headers={"Retry-After": str(RETRY_AFTER)},
                probability=0.08,
            )
        )
        errors = faults.add(Fault(path=r"^/library/", status=503, probability=0.3))
        sims.enqueue()
        worker = sims.worker()
        with caplog.at_level(logging.INFO, logger="stash2plex.worker"):
            report = worker.drain()

        assert errors.fired >= 30
        assert throttle.fired >= 2
        assert report.reason == "empty"
        assert "dead_lettered" not in report.outcomes
        assert sims.app.queue.dead_letters() == []
        assert sims.app.queue.counts().pending == 0
        assert sims.out_of_step(owners) == {}
        # Nothing classified permanent, and random errors never tripped the breaker.
        totals = worker.stats.totals()
        assert set(totals.errors) <= {"BackendUnavailableError", "TransientError"}, totals.errors
        assert totals.errors.get("BackendUnavailableError", 0) > 0
        assert totals.dead_lettered == 0
        assert OutageLog(sims.app.state).history() == ()
        assert worker.breaker.status is BreakerStatus.CLOSED
        # A 429 is retried no earlier than its Retry-After. Compare each retry time the
        # worker recorded with the moment the simulator sent a 429 (not with when the log
        # record was written, which under load can come long after the decision). Sorted,
        # the k-th retry time must be at least Retry-After past the k-th 429: if any retry
        # were scheduled too early, fewer than k 429s would precede it. Some 429s may not
        # produce a logged retry (a batched read that is retried whole), hence <=.
        throttled = sorted(
            dt.datetime.fromisoformat(r.retry_at).timestamp()  # type: ignore[attr-defined]
            for r in caplog.records
            if getattr(r, "event", None) == "job_retry" and "HTTP 429" in r.getMessage()
        )
        assert throttled
        answered = sorted(throttle.fired_at)
        assert len(throttled) <= len(answered)
        for k, retry_at in enumerate(throttled):
            assert retry_at >= answered[k] + RETRY_AFTER - 0.001, (k, retry_at - answered[k])
