"""Every persisted model round-trips through the one converter."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from stash2plex_core import models as m
from stash2plex_core.errors import StateError
from stash2plex_core.serde import SCHEMA_VERSION
from stash2plex_core.serde import from_document
from stash2plex_core.serde import to_document


NOW = dt.datetime(2026, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(hours=1)

SAMPLES: list[object] = [
    m.StashScene(
        id="1",
        title="Été",
        date="2021-03-04",
        rating100=80,
        studio=m.StashStudio("2", "Café", parent=m.StashStudio("1", "Net")),
        performers=(m.StashPerformer("3", "Zoë", "http://x/p.png"), m.StashPerformer("4", "Björn")),
        tags=(m.StashTag("5", "Drama"),),
        groups=(m.StashGroup("6", "Saga"),),
        files=("/a/b.mp4", "/a/b.mkv"),
        screenshot_url="http://x/s.png",
        updated_at="2026-01-01T00:00:00+01:00",
    ),
    m.DesiredPlexState(
        metadata=m.PlexMetadata(
            title="T",
            originally_available_at=dt.date(2021, 3, 4),
            year=2021,
            user_rating=8.0,
            genres=("a",),
            actors=(m.Actor("Zoë", photo_url="http://x"),),
        ),
        managed_fields=frozenset({"title", "genre"}),
        poster_url="http://x/s.png",
    ),
    m.PlexItemState(
        rating_key="9",
        section_key="1",
        metadata=m.PlexMetadata(title="T"),
        locked_fields=frozenset({"title"}),
        images={m.ImageKind.POSTER: m.ImageFingerprint("abc")},
        part_paths=("/m/a.mp4",),
        updated_at=1700000000,
    ),
    m.SyncJob(
        id="1",
        scene_id="2",
        reason="update",
        enqueued_at=NOW,
        next_attempt_at=LATER,
        attempts=2,
        events=3,
        lease=m.Lease("w", "tok", LATER),
        last_error=m.JobError("TransientError", "503", NOW),
        first_failed_at=NOW,
    ),
    m.DeadLetter(
        id="1",
        scene_id="2",
        reason="update",
        error_class="ValueError",
        message="bad",
        attempts=3,
        enqueued_at=NOW,
        first_failed_at=NOW,
        last_failed_at=LATER,
    ),
    m.MatchResult(
        scene_id="1",
        rating_key="9",
        confidence=m.Confidence.LOW,
        method=m.MatchMethod.FILENAME,
        candidates=(m.PlexItemRef("9", "1", "T", ("/m/a.mp4",), 5),),
        plex_path="/m/a.mp4",
    ),
    m.PathRule(
        "nas", "^/data/(?P<r>.*)$", "/media/{r}", "^/media/(?P<r>.*)$", "/data/{r}", "/media", False, ("/data/x",)
    ),
    m.BreakerState(
        status=m.BreakerStatus.OPEN,
        window=(True, False),
        consecutive_refusals=3,
        opened_at=NOW,
        next_probe_at=LATER,
        probe_failures=1,
        last_error="refused",
    ),
    m.OutageRecord(started_at=NOW, ended_at=LATER, jobs_affected=4, cause="refused"),
    m.SyncRecord(scene_id="1", rating_key="9", digest="d", stash_updated_at="x", plex_updated_at=5, synced_at=NOW),
]


@pytest.mark.parametrize("obj", SAMPLES, ids=lambda o: type(o).__name__)
def test_round_trip_through_json(obj: object) -> None:
    document = json.loads(json.dumps(to_document(obj)))
    assert document["schema_version"] == SCHEMA_VERSION
    assert from_document(type(obj), document) == obj


def test_newer_schema_is_refused_with_the_source_named() -> None:
    doc = to_document(SAMPLES[-1]) | {"schema_version": SCHEMA_VERSION + 1}
    with pytest.raises(StateError, match=r"state\.db:sync/1: written by a newer stash2plex"):
        from_document(m.SyncRecord, doc, source="state.db:sync/1")


def test_extra_keys_are_rejected() -> None:
    doc = to_document(SAMPLES[-1]) | {"surprise": 1}
    with pytest.raises(StateError, match="not a valid SyncRecord"):
        from_document(m.SyncRecord, doc)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        to_document(m.OutageRecord(started_at=dt.datetime(2026, 1, 1)))
