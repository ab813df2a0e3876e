"""The persisted circuit breaker: window, refusals, probes, half-open and persistence."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from stash2plex_backends.memory import MemoryStateStore
from stash2plex_core.clocks import ManualClock
from stash2plex_core.errors import AuthenticationError
from stash2plex_core.errors import BackendUnavailableError
from stash2plex_core.errors import NotFoundError
from stash2plex_core.errors import PermanentError
from stash2plex_core.errors import TransientError
from stash2plex_core.models.health import BreakerStatus
from stash2plex_core.services.breaker import CircuitBreaker
from stash2plex_core.services.breaker import Transition
from stash2plex_core.services.breaker import is_refusal
from stash2plex_core.settings import Settings


def make(settings: Settings | None = None) -> tuple[CircuitBreaker, ManualClock, MemoryStateStore]:
    clock = ManualClock()
    store = MemoryStateStore(clock)
    return CircuitBreaker(store, clock, settings or Settings()), clock, store


def fail() -> BackendUnavailableError:
    return BackendUnavailableError("Plex answered 503")


def refused() -> BackendUnavailableError:
    """What an adapter raises when the port is closed: the OS error chained as the cause."""
    error = BackendUnavailableError("cannot reach Plex")
    error.__cause__ = ConnectionRefusedError(111, "Connection refused")
    return error


def ok() -> None:
    return None


@pytest.mark.parametrize("seed", range(20))
def test_thirty_percent_random_5xx_over_1000_calls_never_trips(seed: int) -> None:
    breaker, _, _ = make()
    rng = random.Random(seed)
    for _ in range(1000):
        assert breaker.record(fail() if rng.random() < 0.3 else None) is None
    assert breaker.status is BreakerStatus.CLOSED


@pytest.mark.parametrize("history", [0, 10, 50, 500])
def test_total_outage_trips_within_20_calls_whatever_came_before(history: int) -> None:
    breaker, _, _ = make()
    for _ in range(history):
        breaker.record(None)
    transitions = [breaker.record(fail()) for _ in range(20)]
    assert transitions == [None] * 19 + [Transition.OPENED]
    assert breaker.status is BreakerStatus.OPEN


def test_mostly_failing_server_trips_on_the_rate_window() -> None:
    breaker, _, _ = make()
    for _ in range(50):
        breaker.record(None)
    tripped_at = None
    for call in range(1, 200):  # 3 failures in 4 calls: 75 %, never 20 in a row
        if breaker.record(None if call % 4 == 0 else fail()) is Transition.OPENED:
            tripped_at = call
            break
    assert tripped_at is not None
    assert "of the last" in (breaker.snapshot().last_error or "")


def test_consecutive_refusals_trip_fast() -> None:
    breaker, _, _ = make()
    for _ in range(30):
        breaker.record(None)
    transitions = [breaker.record(refused()) for _ in range(5)]
    assert transitions == [None, None, None, None, Transition.OPENED]
    assert "refused" in (breaker.snapshot().last_error or "")


def test_refusal_detection() -> None:
    assert is_refusal(refused())
    assert not is_refusal(fail())
    assert is_refusal(BackendUnavailableError("[Errno 111] Connection refused"))


@pytest.mark.parametrize(
    "error",
    [PermanentError("400"), NotFoundError("404"), TransientError("429", retry_after=5), AuthenticationError("401")],
)
def test_ignored_errors_never_trip_or_count(error: Exception) -> None:
    breaker, _, _ = make()
    for _ in range(100):
        assert breaker.record(error) is None
    assert breaker.status is BreakerStatus.CLOSED
    assert breaker.snapshot().window == ()


def trip(breaker: CircuitBreaker) -> None:
    for _ in range(20):
        breaker.record(fail())
    assert breaker.status is BreakerStatus.OPEN


def test_open_breaker_refuses_permits() -> None:
    breaker, _, _ = make()
    trip(breaker)
    assert not breaker.ready()
    assert not breaker.try_acquire()


def test_probe_schedule_backs_off_from_5_to_60_seconds() -> None:
    breaker, clock, _ = make()
    trip(breaker)
    pings: list[float] = []

    def down() -> None:
        pings.append(clock.monotonic())
        raise BackendUnavailableError("still down")

    waits = []
    for _ in range(8):
        wait = breaker.seconds_until_probe()
        assert wait is not None
        waits.append(wait)
        assert breaker.probe(down) is None  # not due yet: nothing happens
        clock.advance(wait)
        assert breaker.probe(down) is None
    assert waits == [5, 10, 20, 40, 60, 60, 60, 60]
    assert len(pings) == 8
    assert breaker.status is BreakerStatus.OPEN


def refusing() -> None:
    raise refused()


def failing() -> None:
    raise fail()


def trip_on_refusals(breaker: CircuitBreaker) -> None:
    for _ in range(Settings().breaker_refusals):
        breaker.record(refused())
    assert breaker.status is BreakerStatus.OPEN


def test_an_outage_of_refused_connections_is_watched_for_plex_listening_again() -> None:
    breaker, clock, store = make()
    trip(breaker)  # 503s: Plex's port is open all along, nothing to watch
    assert not breaker.awaiting_listener()
    breaker.reset()
    trip_on_refusals(breaker)
    assert breaker.awaiting_listener()
    assert CircuitBreaker(store, clock, Settings()).awaiting_listener()  # persisted


def test_probe_now_makes_the_probe_due_and_restarts_its_backoff() -> None:
    breaker, clock, _ = make()
    trip_on_refusals(breaker)
    for _ in range(3):  # probes at 5, 10 and 20 s find the port still closed
        clock.advance(breaker.seconds_until_probe() or 0)
        breaker.probe(refusing)
    assert breaker.seconds_until_probe() == 40
    assert breaker.awaiting_listener()  # a refused probe keeps the watch on

    assert breaker.probe_now() is True  # the port accepts connections again
    assert breaker.seconds_until_probe() == 0
    assert not breaker.awaiting_listener()  # one wake-up per return, not one per check
    # Plex is still starting (503): the probe fails, and the backoff starts over.
    assert breaker.probe(failing) is None
    assert breaker.seconds_until_probe() == 10
    assert not breaker.awaiting_listener()
    clock.advance(10)
    assert breaker.probe(ok) is Transition.HALF_OPENED


def test_probe_now_changes_nothing_unless_open() -> None:
    breaker, _, _ = make()
    assert breaker.probe_now() is False
    assert breaker.seconds_until_probe() is None
    trip_on_refusals(breaker)
    breaker.probe_now()
    breaker.probe(ok)
    assert breaker.status is BreakerStatus.HALF_OPEN
    assert breaker.probe_now() is False
    assert breaker.seconds_until_probe() == Settings().breaker_half_open_probe_seconds


def test_half_open_lets_one_trial_at_a_time_and_closes_after_three_probes() -> None:
    breaker, clock, _ = make()
    trip(breaker)
    clock.advance(5)
    assert breaker.probe(ok) is Transition.HALF_OPENED
    assert breaker.status is BreakerStatus.HALF_OPEN
    assert breaker.try_acquire()  # the one trial
    assert not breaker.try_acquire()  # never two at once
    breaker.record(PermanentError("400"))  # Plex answered, but the trial proves nothing
    assert breaker.release(used=True, ok=False) is None
    assert breaker.snapshot().probe_successes == 1
    assert breaker.seconds_until_probe() == 1.0
    clock.advance(1)
    assert breaker.probe(ok) is None
    assert breaker.status is BreakerStatus.HALF_OPEN
    clock.advance(1)
    assert breaker.probe(ok) is Transition.CLOSED
    assert breaker.status is BreakerStatus.CLOSED
    assert breaker.try_acquire()
    assert breaker.snapshot().window == ()


def test_successful_trial_jobs_count_and_close_it_without_waiting_for_probes() -> None:
    """A probe and two trial jobs Plex answered: closed at once, not two probes (2 s) later."""
    breaker, clock, _ = make()
    trip(breaker)
    clock.advance(5)
    assert breaker.probe(ok) is Transition.HALF_OPENED
    assert breaker.try_acquire()
    breaker.record(None)
    assert breaker.release(used=True, ok=True) is None
    assert breaker.snapshot().probe_successes == 2
    assert breaker.seconds_until_probe() == 1.0  # the probe schedule is not pushed back
    assert breaker.try_acquire()  # the next trial may go at once
    assert not breaker.try_acquire()
    clock.advance(0.05)
    assert breaker.release(used=True, ok=True) is Transition.CLOSED
    assert breaker.status is BreakerStatus.CLOSED
    assert breaker.recovered_at == ManualClock.EPOCH + dt.timedelta(seconds=5)


def test_a_trial_from_before_a_reopen_does_not_count() -> None:
    breaker, clock, _ = make()
    trip(breaker)
    clock.advance(5)
    breaker.probe(ok)
    assert breaker.try_acquire()
    clock.advance(1)

    def down() -> None:
        raise BackendUnavailableError("flapping")

    assert breaker.probe(down) is Transition.REOPENED
    assert breaker.release(used=True, ok=True) is None
    assert breaker.status is BreakerStatus.OPEN
    assert breaker.snapshot().probe_successes == 0


def test_trial_that_says_nothing_about_health_can_be_retried() -> None:
    breaker, clock, _ = make()
    trip(breaker)
    clock.advance(5)
    breaker.probe(ok)
    assert breaker.try_acquire()
    breaker.record(PermanentError("400"))
    breaker.release(used=False)
    assert breaker.try_acquire()


def test_failed_trial_reopens() -> None:
    breaker, clock, _ = make()
    trip(breaker)
    opened_at = breaker.snapshot().opened_at
    clock.advance(5)
    breaker.probe(ok)
    assert breaker.try_acquire()
    assert breaker.record(fail()) is Transition.REOPENED
    breaker.release()
    assert breaker.status is BreakerStatus.OPEN
    assert breaker.snapshot().opened_at == opened_at  # the same outage goes on
    assert breaker.seconds_until_probe() == 5


def test_failed_probe_while_half_open_reopens() -> None:
    breaker, clock, _ = make()
    trip(breaker)
    clock.advance(5)
    breaker.probe(ok)
    clock.advance(1)

    def down() -> None:
        raise BackendUnavailableError("flapping")

    assert breaker.probe(down) is Transition.REOPENED
    assert breaker.status is BreakerStatus.OPEN


def test_probe_with_rejected_token_raises() -> None:
    breaker, clock, _ = make()
    trip(breaker)
    clock.advance(5)

    def unauthorised() -> None:
        raise AuthenticationError("401")

    with pytest.raises(AuthenticationError):
        breaker.probe(unauthorised)


def test_state_survives_a_restart() -> None:
    breaker, clock, store = make()
    trip(breaker)
    again = CircuitBreaker(store, clock, Settings())
    assert again.status is BreakerStatus.OPEN
    assert again.seconds_until_probe() == 5
    assert not again.try_acquire()
    clock.advance(5)
    again.probe(ok)
    third = CircuitBreaker(store, clock, Settings())
    assert third.status is BreakerStatus.HALF_OPEN
    assert third.snapshot().probe_successes == 1


def test_window_is_saved_periodically_and_on_demand() -> None:
    breaker, clock, store = make()
    for _ in range(7):
        breaker.record(fail())
        breaker.record(None)
    breaker.save()
    again = CircuitBreaker(store, clock, Settings())
    assert again.snapshot().window == breaker.snapshot().window
    assert again.failure_rate() == pytest.approx(0.5)


def test_custom_thresholds() -> None:
    breaker, _, _ = make(Settings(breaker_consecutive_failures=3, breaker_min_failures=50))
    assert [breaker.record(fail()) for _ in range(3)] == [None, None, Transition.OPENED]


def test_reset_forces_closed() -> None:
    breaker, _, store = make()
    trip(breaker)
    breaker.reset()
    assert breaker.status is BreakerStatus.CLOSED
    assert CircuitBreaker(store, ManualClock(), Settings()).status is BreakerStatus.CLOSED
