"""The retry policy: what happens to a job whose attempt failed.

One rule per core error class (DESIGN section 7):

* :class:`~stash2plex_core.errors.ConfigurationError` (a 401 included) stops the worker:
  every job would fail the same way, so none is burned while the user fixes it.
* :class:`~stash2plex_core.errors.PermanentError` goes to the dead letters at once.
* :class:`~stash2plex_core.errors.NotInPlexYetError` retries on a long schedule (Plex
  scans take minutes) for at least ``not_in_plex_horizon_seconds`` (24 h).
* Everything else is transient: full-jitter exponential backoff, never earlier than the
  server's ``Retry-After``, for at least ``retry_horizon_seconds`` (6 h) — longer than the
  outages users actually ride out, unlike the predecessor's five tries in 80 s.

A ``Retry-After`` is honoured in full, however long: the job waits for it even past its
horizon (the horizon only decides what happens when an attempt *fails*, and the attempt
after the wait is still made). Clamping it would retry before the server allowed, and
dead-lettering at once would give up on a job before its horizon. A wait longer than
``retry_after_max_seconds`` is reported (:attr:`Retry.long_pushback`) so the worker can
log it: a bogus header then parks a job visibly, not silently.

A job is dead-lettered only when it has failed for the whole horizon *and* been tried
``max_attempts`` times, so neither a laptop waking after hours nor a burst of fast
failures kills good work; ``attempt_ceiling`` is the backstop for a job that crashes its
worker on every claim. Durable retries live in the queue's due time, never in a sleep.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import math
import random
from typing import TypeAlias

import attrs

from stash2plex_core.errors import ConfigurationError
from stash2plex_core.errors import NotInPlexYetError
from stash2plex_core.errors import PermanentError
from stash2plex_core.errors import TransientError
from stash2plex_core.settings import Settings


@attrs.frozen
class Backoff:
    """Exponential backoff with AWS "full jitter": retry *n* waits ``uniform(0, min(cap, base·2ⁿ))``.

    Full jitter makes the fewest calls of the jitter schemes (reliability reference 7.1):
    clients that failed together do not retry together.
    """

    base: float
    cap: float

    def window(self, retry: int) -> float:
        """Upper bound of the wait before retry number ``retry`` (0 for the first retry)."""
        if retry < 0:
            raise ValueError(f"retry must be >= 0, got {retry}")
        if self.base <= 0:
            return 0.0
        if retry >= 64 or self.base * 2.0**retry >= self.cap:
            return self.cap
        return self.base * 2.0**retry

    def delay(self, retry: int, rng: random.Random) -> float:
        """A jittered wait in ``[0, window(retry)]``."""
        return rng.uniform(0.0, self.window(retry))


def parse_retry_after(value: str | float | None, now: dt.datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delay-seconds or an HTTP-date (RFC 9110 10.2.3).

    Returns ``None`` when the value is absent or unreadable (the caller then uses its own
    backoff) and ``0.0`` for a date in the past or a negative number.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return max(0.0, float(value)) if math.isfinite(value) else None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" in an HTTP-date means UTC
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - now).total_seconds())


@attrs.frozen
class Retry:
    """Run the job again at ``when``; ``delay`` is ``when - now`` in seconds."""

    when: dt.datetime
    delay: float
    reason: str
    #: The server's ``Retry-After`` in seconds, when it set the delay.
    retry_after: float | None = None
    #: Whether that ``Retry-After`` is longer than ``retry_after_max_seconds`` (honoured anyway).
    long_pushback: bool = False


@attrs.frozen
class DeadLetterNow:
    """Retrying cannot help, or the retry budget is spent: move the job to the dead letters."""

    reason: str


@attrs.frozen
class Stop:
    """The user must fix something (a rejected token, a bad setting): stop the worker, keep the job."""

    reason: str


Decision: TypeAlias = Retry | DeadLetterNow | Stop


@attrs.frozen
class RetrySchedule:
    """One error class's schedule: its backoff and how long it is retried before dead-lettering."""

    backoff: Backoff
    horizon_seconds: float


class RetryPolicy:
    """Decides, from the error and the job's history, whether and when a job runs again.

    :param rng: source of jitter; inject a seeded :class:`random.Random` for repeatable tests.
    """

    def __init__(self, settings: Settings, rng: random.Random | None = None) -> None:
        self.settings = settings
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self.transient = RetrySchedule(
            Backoff(settings.retry_base_seconds, settings.retry_max_seconds), settings.retry_horizon_seconds
        )
        self.not_in_plex = RetrySchedule(
            Backoff(settings.not_in_plex_retry_seconds, settings.not_in_plex_retry_max_seconds),
            settings.not_in_plex_horizon_seconds,
        )

    def schedule_for(self, error: BaseException) -> RetrySchedule:
        return self.not_in_plex if isinstance(error, NotInPlexYetError) else self.transient

    def retry_after(self, error: BaseException, now: dt.datetime) -> float | None:
        """The server's ``Retry-After`` carried by ``error`` in seconds (``>= 0``, never clamped)."""
        raw = getattr(error, "retry_after", None) if isinstance(error, TransientError) else None
        return parse_retry_after(raw, now) if isinstance(raw, str | int | float) else None

    def decide(
        self, error: BaseException, attempts: int, first_failed_at: dt.datetime | None, now: dt.datetime
    ) -> Decision:
        """What to do after attempt number ``attempts`` failed with ``error``.

        :param first_failed_at: when the job first failed (``None`` if this is its first failure).
        """
        if isinstance(error, ConfigurationError):
            return Stop(f"{type(error).__name__}: {error}")
        if isinstance(error, PermanentError):
            return DeadLetterNow(f"permanent error {type(error).__name__}: {error}")
        if attempts >= self.settings.attempt_ceiling:
            return DeadLetterNow(f"gave up after {attempts} attempts (attempt_ceiling)")
        schedule = self.schedule_for(error)
        failing_for = (now - (first_failed_at or now)).total_seconds()
        if attempts >= self.settings.max_attempts and failing_for >= schedule.horizon_seconds:
            return DeadLetterNow(
                f"still failing after {attempts} attempts over {failing_for / 3600:.1f} h: {type(error).__name__}"
            )
        delay = schedule.backoff.delay(max(0, attempts - 1), self.rng)
        pushback = self.retry_after(error, now)
        reason = "not in Plex yet" if schedule is self.not_in_plex else "transient"
        if pushback is None or pushback <= delay:
            return Retry(when=now + dt.timedelta(seconds=delay), delay=delay, reason=reason)
        try:
            when = now + dt.timedelta(seconds=pushback)
        except OverflowError:  # a date beyond 9999: wait as long as a datetime can
            when = dt.datetime.max.replace(tzinfo=now.tzinfo)
        return Retry(
            when=when,
            delay=pushback,
            reason=f"{reason}, Retry-After",
            retry_after=pushback,
            long_pushback=pushback > self.settings.retry_after_max_seconds,
        )


__all__ = [
    "Backoff",
    "DeadLetterNow",
    "Decision",
    "Retry",
    "RetryPolicy",
    "RetrySchedule",
    "Stop",
    "parse_retry_after",
]
