"""``iter_scenes(updated_since=...)``: Stash's own strings, an overlap, instants compared on our side."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest

from stash2plex_backends.simulators.stash import StashSimulator
from stash2plex_backends.stash import WATERMARK_OVERLAP
from stash2plex_backends.stash import StashApiGateway
from stash2plex_backends.stash._timestamps import format_go_rfc3339
from stash2plex_backends.stash._timestamps import watermark_floor
from tests.stash.conftest import KEY


def _at(sim: StashSimulator, moment: datetime, name: str) -> str:
    sim.freeze_time(moment)
    return str(sim.add_scene(f"/data/library/{name}.mp4", title=name).id)


def test_daylight_saving_end_on_a_berlin_server() -> None:
    """At 01:00 UTC on 2025-10-26 Berlin's clock goes from 03:00+02:00 back to 02:00+01:00.

    A scene changed after the switch carries *smaller text* than the watermark although it
    is later: only an overlap of at least an hour keeps it.
    """
    with StashSimulator(api_key=KEY, utc_offset="Europe/Berlin") as sim:
        before = _at(sim, datetime(2025, 10, 26, 0, 30, tzinfo=UTC), "before")
        mark = _at(sim, datetime(2025, 10, 26, 0, 59, 59, tzinfo=UTC), "mark")
        after_switch = _at(sim, datetime(2025, 10, 26, 1, 10, tzinfo=UTC), "after-switch")
        later = _at(sim, datetime(2025, 10, 26, 2, 30, tzinfo=UTC), "later")
        watermark = sim.scene(mark).updated_at
        assert watermark == "2025-10-26T02:59:59+02:00"
        assert sim.scene(after_switch).updated_at == "2025-10-26T02:10:00+01:00"
        assert sim.scene(after_switch).updated_at < watermark  # the text trap

        gateway = StashApiGateway(sim.url, api_key=KEY, timeout=5)
        assert {s.id for s in gateway.iter_scenes(updated_since=watermark)} == {mark, after_switch, later}
        assert before not in {s.id for s in gateway.iter_scenes(updated_since=watermark)}

        naive = StashApiGateway(sim.url, api_key=KEY, timeout=5, watermark_overlap=timedelta(seconds=1))
        assert {s.id for s in naive.iter_scenes(updated_since=watermark)} == {mark, later}


def test_spring_forward_and_incremental_runs() -> None:
    with StashSimulator(api_key=KEY, utc_offset="Europe/Berlin") as sim:
        first = _at(sim, datetime(2025, 3, 30, 0, 30, tzinfo=UTC), "winter")  # 01:30+01:00
        second = _at(sim, datetime(2025, 3, 30, 1, 30, tzinfo=UTC), "summer")  # 03:30+02:00
        gateway = StashApiGateway(sim.url, api_key=KEY, timeout=5)
        scenes = list(gateway.iter_scenes())
        watermark = max(scenes, key=lambda s: datetime.fromisoformat(s.updated_at or "")).updated_at
        assert watermark == "2025-03-30T03:30:00+02:00"
        assert [s.id for s in gateway.iter_scenes(updated_since=watermark)] == [second]
        sim.freeze_time(datetime(2025, 3, 30, 1, 30, 1, tzinfo=UTC))
        sim.update_scene(first, title="edited")
        assert [s.id for s in gateway.iter_scenes(updated_since=watermark)] == [first, second]


def test_server_query_uses_the_watermarks_own_offset_and_shape() -> None:
    assert watermark_floor("2026-01-05T10:00:00+01:00") == (
        "2026-01-05T08:00:00+01:00",
        datetime(2026, 1, 5, 9, 0, tzinfo=UTC),
    )
    assert watermark_floor("2026-01-05T10:00:00Z", timedelta(minutes=5))[0] == "2026-01-05T09:55:00Z"
    assert watermark_floor("2026-01-05T10:00:00.750-05:30", timedelta(seconds=1))[0] == "2026-01-05T09:59:59-05:30"
    assert format_go_rfc3339(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01T00:00:00Z"
    assert timedelta(hours=1) <= WATERMARK_OVERLAP


def test_bad_watermarks_are_rejected_before_any_request(stash_sim: StashSimulator, gateway: StashApiGateway) -> None:
    with pytest.raises(ValueError, match="RFC 3339"):
        gateway.iter_scenes(updated_since="yesterday")
    with pytest.raises(ValueError, match="offset"):
        gateway.iter_scenes(updated_since="2026-01-05 10:00:00")
    with pytest.raises(ValueError, match="overlap"):
        StashApiGateway(stash_sim.url, watermark_overlap=timedelta(0))
    assert len(stash_sim.requests) == 0


def test_utc_server_equal_timestamp_is_included() -> None:
    with StashSimulator(api_key=KEY) as sim:
        at = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
        a = _at(sim, at, "a")
        b = _at(sim, at, "b")
        _at(sim, at - timedelta(seconds=1), "older")
        gateway = StashApiGateway(sim.url, api_key=KEY, timeout=5)
        assert {s.id for s in gateway.iter_scenes(updated_since="2026-01-05T09:00:00Z")} == {a, b}
