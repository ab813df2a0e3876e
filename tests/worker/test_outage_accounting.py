"""Jobs affected by an outage are counted even in the moment between a breaker's change of
state and the worker thread that caused it recording that change (other threads go on)."""

from __future__ import annotations

from stash2plex_core.errors import BackendUnavailableError
from stash2plex_core.models.health import BreakerStatus
from stash2plex_core.services.breaker import Transition
from stash2plex_core.services.outages import OutageLog
from tests.worker.conftest import World


def test_a_job_claimed_while_the_closing_is_being_recorded_is_counted(world: World) -> None:
    world.scenes(3)
    worker = world.worker()
    breaker = worker.breaker
    for _ in range(world.settings.breaker_consecutive_failures):
        transition = breaker.record_failure(BackendUnavailableError("Plex answered 503"))
    assert transition is Transition.OPENED
    worker._on_transition(Transition.OPENED)
    world.clock.advance(60)
    for _ in range(world.settings.breaker_close_after_probes):
        transition = breaker.probe_succeeded()
    assert transition is Transition.CLOSED
    assert breaker.status is BreakerStatus.CLOSED

    # Another thread claims a job before the probing thread runs _on_transition(CLOSED).
    job = world.queue.claim("another-thread", 60)
    assert job is not None
    worker._note_affected(job)
    worker._on_transition(Transition.CLOSED)
    for _ in range(2):
        later = world.queue.claim("another-thread", 60)
        assert later is not None
        worker._note_affected(later)
    worker.flush()

    history = OutageLog(world.state).history()
    assert len(history) == 1
    assert history[0].ended_at is not None
    assert history[0].jobs_affected == 3


def test_a_job_claimed_while_the_opening_is_being_recorded_is_counted(world: World) -> None:
    world.scenes(2)
    worker = world.worker()
    breaker = worker.breaker
    for _ in range(world.settings.breaker_consecutive_failures):
        transition = breaker.record_failure(BackendUnavailableError("Plex answered 503"))
    assert transition is Transition.OPENED

    # Another thread claims a job before the failing thread runs _on_transition(OPENED).
    job = world.queue.claim("another-thread", 60)
    assert job is not None
    worker._note_affected(job)
    worker._on_transition(Transition.OPENED)

    assert OutageLog(world.state).history()[0].jobs_affected == 1
