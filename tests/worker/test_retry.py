"""The retry policy: full-jitter backoff, Retry-After, error classes and budgets."""

from __future__ import annotations

import datetime as dt
import random
import statistics

import pytest

from stash2plex_core.errors import AuthenticationError
from stash2plex_core.errors import BackendUnavailableError
from stash2plex_core.errors import ConfigurationError
from stash2plex_core.errors import NotFoundError
from stash2plex_core.errors import NotInPlexYetError
from stash2plex_core.errors import PermanentError
from stash2plex_core.errors import TransientError
from stash2plex_core.services.retry import Backoff
from stash2plex_core.services.retry import DeadLetterNow
from stash2plex_core.services.retry import Retry
from stash2plex_core.services.retry import RetryPolicy
from stash2plex_core.services.retry import Stop
from stash2plex_core.services.retry import parse_retry_after
from stash2plex_core.settings import Settings


NOW = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def test_window_doubles_from_base_and_is_capped() -> None:
    b = Backoff(5.0, 600.0)
    assert [b.window(n) for n in range(9)] == [5, 10, 20, 40, 80, 160, 320, 600, 600]
    assert b.window(10_000) == 600.0
    with pytest.raises(ValueError):
        b.window(-1)


def test_full_jitter_stays_within_zero_and_the_window_and_spreads() -> None:
    b = Backoff(5.0, 600.0)
    rng = random.Random(1)
    for retry in range(12):
        samples = [b.delay(retry, rng) for _ in range(2000)]
        assert min(samples) >= 0.0
        assert max(samples) <= b.window(retry)
        # uniform over [0, w]: mean w/2, and both halves are used
        assert statistics.fmean(samples) == pytest.approx(b.window(retry) / 2, rel=0.06)
        assert min(samples) < b.window(retry) * 0.05 < b.window(retry) * 0.95 < max(samples)


def test_jitter_is_deterministic_with_a_seeded_rng() -> None:
    a = RetryPolicy(Settings(), random.Random(7))
    b = RetryPolicy(Settings(), random.Random(7))
    err = BackendUnavailableError("503")
    assert [a.decide(err, n, NOW, NOW) for n in range(1, 6)] == [b.decide(err, n, NOW, NOW) for n in range(1, 6)]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        (30, 30.0),
        (2.5, 2.5),
        ("-5", 0.0),
        ("Thu, 01 Jan 2026 12:01:30 GMT", 90.0),
        ("Thursday, 01-Jan-26 12:00:10 GMT", 10.0),  # RFC 850, obsolete but allowed
        ("Thu Jan  1 12:00:20 2026", 20.0),  # asctime
        ("Wed, 31 Dec 2025 12:00:00 GMT", 0.0),  # in the past
        ("soon", None),
        ("", None),
        (None, None),
        (float("nan"), None),
    ],
)
def test_retry_after_both_forms(value: str | float | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_retry_is_never_before_retry_after() -> None:
    policy = RetryPolicy(Settings(), random.Random(3))
    for attempts in range(1, 30):
        decision = policy.decide(TransientError("429", retry_after=120.0), attempts, NOW, NOW)
        assert isinstance(decision, Retry)
        assert decision.when >= NOW + dt.timedelta(seconds=120)


def test_retry_after_as_http_date_string_is_honoured() -> None:
    policy = RetryPolicy(Settings(), random.Random(3))
    err = TransientError("503")
    err.retry_after = "Thu, 01 Jan 2026 12:05:00 GMT"  # type: ignore[assignment]
    decision = policy.decide(err, 1, None, NOW)
    assert isinstance(decision, Retry)
    assert decision.when == NOW + dt.timedelta(minutes=5)


@pytest.mark.parametrize("seconds", [7200, 3 * 86400, 10**9])
def test_a_long_retry_after_is_honoured_in_full_and_flagged(seconds: int) -> None:
    """Never before Retry-After, even past the 1 h warning threshold or the 6 h horizon."""
    policy = RetryPolicy(Settings(retry_after_max_seconds=3600), random.Random(3))
    decision = policy.decide(TransientError("429", retry_after=seconds), 1, None, NOW)
    assert isinstance(decision, Retry)
    assert decision.delay == seconds
    assert decision.when == NOW + dt.timedelta(seconds=seconds)
    assert decision.retry_after == seconds
    assert decision.long_pushback


def test_a_retry_after_past_the_horizon_still_gets_its_attempt() -> None:
    """Failing for 5 h with a 2 h Retry-After: it waits (no dead letter), the next failure decides."""
    policy = RetryPolicy(Settings(), random.Random(3))
    first = NOW - dt.timedelta(hours=5)
    decision = policy.decide(TransientError("503", retry_after=7200), 10, first, NOW)
    assert isinstance(decision, Retry)
    assert decision.when == NOW + dt.timedelta(hours=2)
    later = decision.when
    assert isinstance(policy.decide(TransientError("503"), 11, first, later), DeadLetterNow)


def test_a_short_retry_after_is_not_flagged() -> None:
    policy = RetryPolicy(Settings(retry_base_seconds=0), random.Random(3))
    decision = policy.decide(TransientError("429", retry_after=30), 1, None, NOW)
    assert isinstance(decision, Retry)
    assert (decision.delay, decision.long_pushback) == (30, False)


def test_shorter_retry_after_than_backoff_keeps_backoff() -> None:
    policy = RetryPolicy(Settings(retry_base_seconds=100, retry_max_seconds=100), random.Random(0))
    delays = [policy.decide(TransientError("x", retry_after=0.0), 5, NOW, NOW) for _ in range(50)]
    assert all(isinstance(d, Retry) and 0 <= d.delay <= 100 for d in delays)


@pytest.mark.parametrize("error", [AuthenticationError("401"), ConfigurationError("bad url")])
def test_configuration_errors_stop_the_worker(error: Exception) -> None:
    decision = RetryPolicy(Settings()).decide(error, 1, None, NOW)
    assert isinstance(decision, Stop)
    assert type(error).__name__ in decision.reason


@pytest.mark.parametrize("error", [PermanentError("400"), NotFoundError("gone")])
def test_permanent_errors_are_dead_lettered_at_once(error: Exception) -> None:
    assert isinstance(RetryPolicy(Settings()).decide(error, 1, None, NOW), DeadLetterNow)


def _simulate(policy: RetryPolicy, error: Exception) -> tuple[int, float]:
    """Fail every attempt; return the attempts made and the hours spent before dead-lettering."""
    now, first, attempts = NOW, None, 0
    while True:
        attempts += 1
        decision = policy.decide(error, attempts, first, now)
        if isinstance(decision, DeadLetterNow):
            return attempts, (now - (first or now)).total_seconds() / 3600
        assert isinstance(decision, Retry)
        first = first or now
        now = decision.when


@pytest.mark.parametrize("seed", range(5))
def test_default_transient_schedule_retries_at_least_six_hours(seed: int) -> None:
    attempts, hours = _simulate(RetryPolicy(Settings(), random.Random(seed)), BackendUnavailableError("503"))
    assert 6.0 <= hours < 6.5
    assert attempts < Settings().attempt_ceiling


@pytest.mark.parametrize("seed", range(5))
def test_default_not_in_plex_schedule_retries_at_least_a_day(seed: int) -> None:
    attempts, hours = _simulate(RetryPolicy(Settings(), random.Random(seed)), NotInPlexYetError("scan pending"))
    assert 24.0 <= hours < 26.0
    assert attempts < Settings().attempt_ceiling


def test_not_in_plex_uses_its_own_longer_schedule() -> None:
    policy = RetryPolicy(Settings(), random.Random(0))
    assert policy.schedule_for(NotInPlexYetError("x")).backoff == Backoff(60.0, 3600.0)
    assert policy.schedule_for(BackendUnavailableError("x")).backoff == Backoff(5.0, 600.0)


def test_both_time_and_attempts_must_be_spent() -> None:
    policy = RetryPolicy(Settings(max_attempts=8, retry_horizon_seconds=3600), random.Random(0))
    late = NOW + dt.timedelta(hours=2)
    # past the horizon but only 2 attempts: a laptop that slept does not lose the job
    assert isinstance(policy.decide(TransientError("x"), 2, NOW, late), Retry)
    # many attempts but within the horizon
    assert isinstance(policy.decide(TransientError("x"), 50, NOW, NOW + dt.timedelta(minutes=30)), Retry)
    assert isinstance(policy.decide(TransientError("x"), 8, NOW, late), DeadLetterNow)


def test_attempt_ceiling_is_a_backstop() -> None:
    policy = RetryPolicy(Settings(attempt_ceiling=40), random.Random(0))
    assert isinstance(policy.decide(TransientError("x"), 40, NOW, NOW), DeadLetterNow)


def test_unknown_exceptions_are_retried_like_transient_ones() -> None:
    assert isinstance(RetryPolicy(Settings()).decide(KeyError("bug"), 1, None, NOW), Retry)


def test_reliability_settings_are_cross_checked() -> None:
    from stash2plex_core.errors import InvalidSettingsError
    from stash2plex_core.settings import parse_settings

    with pytest.raises(InvalidSettingsError) as info:
        parse_settings(
            {
                "not_in_plex_retry_seconds": 600,
                "not_in_plex_retry_max_seconds": 60,
                "breaker_probe_base_seconds": 90,
                "breaker_failure_rate": 1.5,
                "ramp_start_fraction": 0,
            }
        )
    assert {p.key for p in info.value.problems} == {
        "not_in_plex_retry_max_seconds",
        "breaker_probe_max_seconds",
        "breaker_failure_rate",
        "ramp_start_fraction",
    }


def test_defaults_meet_the_issue() -> None:
    s = Settings()
    assert (s.retry_base_seconds, s.retry_horizon_seconds, s.not_in_plex_horizon_seconds) == (5.0, 21600.0, 86400.0)
    assert (s.breaker_window, s.breaker_min_failures, s.breaker_failure_rate) == (50, 20, 0.6)
    assert (s.breaker_probe_base_seconds, s.breaker_probe_max_seconds, s.breaker_close_after_probes) == (5.0, 60.0, 3)
    assert (s.ramp_window_seconds, s.ramp_start_fraction, s.ramp_error_rate) == (60.0, 0.15, 0.3)
    assert s.ramp_start_fraction >= 0.1  # the issue's floor, with a margin for measuring the rate
