"""Persisted health and bookkeeping: breaker state, outages, per-scene sync records."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

import attrs


class BreakerStatus(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@attrs.frozen
class BreakerState:
    """The circuit breaker in front of Plex, persisted so every process sees it.

    ``window`` holds the outcomes of the most recent calls (``True`` = failure), oldest
    first; ``next_probe_at`` is when an open breaker next probes Plex's ``/identity``;
    ``refused`` says the failure that opened it, or its last failed probe, was a refused
    connection (Plex's process is gone, so its return can be watched for cheaply).
    """

    status: BreakerStatus = BreakerStatus.CLOSED
    window: tuple[bool, ...] = ()
    consecutive_refusals: int = 0
    opened_at: dt.datetime | None = None
    next_probe_at: dt.datetime | None = None
    probe_failures: int = 0
    probe_successes: int = 0
    last_error: str | None = None
    refused: bool = False


@attrs.frozen
class OutageRecord:
    """One period during which Plex was unreachable."""

    started_at: dt.datetime
    ended_at: dt.datetime | None = None
    jobs_affected: int = 0
    cause: str | None = None

    @property
    def duration(self) -> dt.timedelta | None:
        return None if self.ended_at is None else self.ended_at - self.started_at


@attrs.frozen
class SyncRecord:
    """What was last applied for a scene, so the next sync can skip lookups and no-ops."""

    scene_id: str
    rating_key: str
    #: Digest of the desired Plex state that was applied.
    digest: str
    #: Stash's ``updated_at`` string of the scene version that was applied.
    stash_updated_at: str | None
    #: Plex's ``updatedAt`` right after our edit.
    plex_updated_at: int | None
    synced_at: dt.datetime
    match_method: str | None = None


__all__ = ["BreakerState", "BreakerStatus", "OutageRecord", "SyncRecord"]
