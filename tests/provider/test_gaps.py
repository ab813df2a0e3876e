"""Gaps: unmatched files recorded at once, the two-way comparison, its schedule and endpoint."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from stash2plex_backends.memory import MemoryPlex
from stash2plex_core.clocks import SystemClock
from stash2plex_integrations.plex_provider.gaps import GAPS_NAMESPACE
from stash2plex_integrations.plex_provider.gaps import REPORT_KEY
from stash2plex_integrations.plex_provider.gaps import REPORT_NAMESPACE
from stash2plex_integrations.plex_provider.gaps import SEEN_NAMESPACE
from stash2plex_integrations.plex_provider.gaps import GapBook
from stash2plex_integrations.plex_provider.gaps import gap_key
from stash2plex_integrations.plex_provider.gaps import next_run
from tests.provider.conftest import PLEX_ROOT
from tests.provider.conftest import Provider


def test_an_unmatched_file_is_recorded_at_once(provider: Provider) -> None:
    assert provider.match(filename="New Studio/new scene.mp4", title="new scene")["Metadata"] == []
    # Written before the answer went out: the StateStore already holds it.
    document = provider.app.state.get(GAPS_NAMESPACE, gap_key("New Studio/new scene.mp4"))
    assert document is not None
    assert document["filename"] == "New Studio/new scene.mp4"
    assert document["reason"] == "no-scene"
    assert document["plex_paths"] == [f"{PLEX_ROOT}/New Studio/new scene.mp4"]
    assert document["stash_paths"] == ["/stash/media/New Studio/new scene.mp4"]
    assert document["title"] == "new scene"
    assert document["count"] == 1
    provider.match(filename="New Studio/new scene.mp4")
    assert provider.app.state.get(GAPS_NAMESPACE, gap_key("New Studio/new scene.mp4"))["count"] == 2


@pytest.mark.parametrize(
    ("hints", "reason"),
    [
        ({"title": "Only A Title"}, "no-filename"),
        ({"title": "Only A Title", "year": 2020, "manual": 1}, "no-filename"),
        ({"guid": "tv.plex.agents.custom.stash2plex://movie/scene-999"}, "no-filename"),
        ({"type": 2, "title": "A Show"}, "unsupported-type"),
        ({"type": 4, "filename": "Shows/s01e01.mp4"}, "unsupported-type"),
    ],
)
def test_every_request_that_finds_nothing_is_logged_and_recorded(
    provider: Provider, hints: dict, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="stash2plex.provider"):
        assert provider.match(**hints)["Metadata"] == []
    (gap,) = provider.client.get("/gaps").json()["unmatched"]["items"]
    assert gap["reason"] == reason
    assert gap["filename"] == hints.get("filename")
    assert gap["title"] == hints.get("title")
    assert gap["hints"]["type"] == hints.get("type", 1)
    assert gap["count"] == 1
    assert [r for r in caplog.records if r.getMessage() == "no Stash scene for a file Plex asked about"]
    provider.match(**hints)  # the same request again updates the same record
    (again,) = provider.client.get("/gaps").json()["unmatched"]["items"]
    assert again["count"] == 2
    assert provider.service.counters["unmatched"] == 2


def test_a_title_only_gap_is_cleared_when_the_same_request_matches(provider: Provider) -> None:
    provider.match(title="Plain", manual=1)  # the file name index finds scene 2 by its title
    assert provider.client.get("/gaps").json()["unmatched"]["count"] == 0
    provider.match(guid="tv.plex.agents.custom.stash2plex://movie/scene-77")
    assert provider.client.get("/gaps").json()["unmatched"]["count"] == 1
    from stash2plex_core.models.stash import StashScene

    provider.stash.put_scene(StashScene(id="77", title="Late"))
    provider.service._scenes.clear()
    found = provider.match(guid="tv.plex.agents.custom.stash2plex://movie/scene-77")["Metadata"]
    assert [m["ratingKey"] for m in found] == ["scene-77"]
    assert provider.client.get("/gaps").json()["unmatched"]["count"] == 0


def test_gap_reasons(provider: Provider) -> None:
    provider.match(filename="z/twin.mp4")  # two scenes share the name
    with_rule_but_unknown = "Studio A/missing.mp4"
    provider.match(filename=with_rule_but_unknown)
    gaps = {g["filename"]: g for g in provider.client.get("/gaps").json()["unmatched"]["items"]}
    assert gaps["z/twin.mp4"]["reason"] == "ambiguous"
    assert gaps["z/twin.mp4"]["candidates"] == ["6", "9"]
    assert gaps[with_rule_but_unknown]["reason"] == "no-scene"


def test_no_rule_reason(make_provider) -> None:
    provider = make_provider(path_rules=(), provider_library_roots=())
    provider.match(filename="somewhere/else.mp4")
    (gap,) = provider.client.get("/gaps").json()["unmatched"]["items"]
    assert gap["reason"] == "no-rule"
    assert gap["stash_paths"] == []


def test_a_gap_is_cleared_when_the_file_matches_later(provider: Provider) -> None:
    from stash2plex_core.models.stash import StashScene

    provider.match(filename="Later/arrives.mp4")
    assert provider.client.get("/gaps").json()["unmatched"]["count"] == 1
    # Stash scans the file; the next match (after the short cache) finds it.
    provider.stash.put_scene(StashScene(id="50", title="Arrived", files=("/stash/media/Later/arrives.mp4",)))
    provider.client.app.state.service._paths.clear()
    assert provider.match(filename="Later/arrives.mp4")["Metadata"][0]["ratingKey"] == "scene-50"
    assert provider.client.get("/gaps").json()["unmatched"]["count"] == 0
    assert provider.app.state.get(GAPS_NAMESPACE, gap_key("Later/arrives.mp4")) is None


def test_gap_report_endpoint_and_manual_run(provider: Provider) -> None:
    before = provider.client.get("/gaps").json()
    assert before["report"] is None
    assert before["schedule"] == "none"
    assert before["next_run_in_seconds"] is None
    provider.match(filename="Studio A/scene 1.mp4")  # scene 1 is requested by Plex
    provider.match(filename="Nowhere/lost.mp4")
    response = provider.client.post("/gaps/run")
    assert response.status_code == 200
    report = response.json()
    assert report["trigger"] == "manual"
    assert report["plex_without_stash"]["count"] == 1
    assert report["plex_without_stash"]["items"][0]["filename"] == "Nowhere/lost.mp4"
    # Scenes under the library root that Plex never asked about: 2, 3 and 4 (5, 6, 9 lie elsewhere).
    assert report["stash_not_requested"]["count"] == 3
    assert sorted(i["scene_id"] for i in report["stash_not_requested"]["items"]) == ["2", "3", "4"]
    assert report["stash_not_requested"]["items"][0]["plex_path"].startswith(PLEX_ROOT + "/")
    assert report["reconciliation"] == {"skipped": "plex_url is not set: only the provider's own comparison ran"}
    assert report["stash_scenes"] == 7
    after = provider.client.get("/gaps").json()
    assert after["report"] == report
    assert after["unmatched"]["count"] == 1
    assert provider.app.state.get(REPORT_NAMESPACE, REPORT_KEY) == report
    # Matched scenes are remembered across restarts.
    assert "1" in provider.app.state.keys(SEEN_NAMESPACE)


def test_the_comparison_includes_a_dry_run_reconciliation_when_plex_is_configured(make_provider) -> None:
    provider = make_provider(plex_url="http://plex.invalid:32400")
    plex: MemoryPlex = provider.app.plex  # type: ignore[assignment]
    plex.add_item([f"{PLEX_ROOT}/Studio A/scene 1.mp4"])
    plex.add_item([f"{PLEX_ROOT}/Only In Plex/orphan.mp4"])
    report = provider.client.post("/gaps/run").json()
    reconciliation = report["reconciliation"]
    assert reconciliation["dry_run"] is True
    assert reconciliation["counts"]["orphan_in_plex"] == 1
    assert reconciliation["counts"]["missing_in_plex"] == 3  # scenes 2, 3 and 4
    assert reconciliation["enqueued"] == 0
    assert provider.app.queue.counts().pending == 0  # a comparison repairs nothing


def test_the_comparison_leaves_the_users_reconciliation_alone(make_provider) -> None:
    """Its dry run neither replaces the last real report nor claims the reconciliation schedule."""
    from stash2plex_core.services.reconcile import NAMESPACE
    from stash2plex_core.services.reconcile import Reconciler
    from stash2plex_core.services.reconcile import last_report
    from stash2plex_core.services.reconcile import report_to_json

    provider = make_provider(plex_url="http://plex.invalid:32400", reconcile_schedule="daily")
    plex: MemoryPlex = provider.app.plex  # type: ignore[assignment]
    plex.add_item([f"{PLEX_ROOT}/Studio A/scene 1.mp4"])
    reconciler = Reconciler.from_app(provider.app)
    real = reconciler.run("incremental")  # the user's own (on-demand) pass
    control = reconciler.control()
    plex.add_item([f"{PLEX_ROOT}/Only In Plex/orphan.mp4"])

    report = provider.client.post("/gaps/run").json()

    assert report["reconciliation"]["counts"]["orphan_in_plex"] == 1
    assert last_report(provider.app.state) == real  # what `stash2plex reconcile --last` shows
    dry = last_report(provider.app.state, dry_run=True)
    assert dry is not None
    assert report_to_json(dry) == report["reconciliation"]  # kept under its own key
    assert reconciler.control() == control  # schedule, watermark and lock untouched
    assert provider.app.state.get(NAMESPACE, "dry_control")["lock"] is None  # type: ignore[index]


def test_concurrent_manual_runs_share_one_comparison(provider: Provider) -> None:
    service = provider.client.app.state.service
    portal = provider.client.portal  # the app's event loop

    async def twice():
        return await asyncio.gather(service.run_comparison("manual"), service.run_comparison("manual"))

    first, second = portal.call(twice)
    assert first is second  # one comparison, one report object, handed to both callers
    assert provider.stash.calls["iter_scenes"] <= 2  # start-up index + one comparison
    third = portal.call(service.run_comparison, "manual")
    assert third is not first  # once it finished, the next run is a new comparison


def test_the_schedule_runs_comparisons(make_provider) -> None:
    provider = make_provider(provider_gap_schedule="60")
    service = provider.client.app.state.service
    portal = provider.client.portal

    async def run_scheduler():
        task = asyncio.ensure_future(service.scheduler(poll=0.01, first_delay=0.0))
        for _ in range(500):
            await asyncio.sleep(0.01)
            if service.gaps.latest_report() is not None:
                break
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    portal.call(run_scheduler)
    report = provider.client.get("/gaps").json()["report"]
    assert report is not None
    assert report["trigger"] == "schedule"
    wait = provider.client.get("/gaps").json()["next_run_in_seconds"]
    assert 0 < wait <= 60


def test_next_run() -> None:
    import datetime as dt

    now = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
    up = now - dt.timedelta(seconds=30)
    assert next_run(None, None, now, up, first_delay=60) is None
    assert next_run(None, 3600, now, up, first_delay=60) == 30
    assert next_run("2026-03-01T11:30:00Z", 3600, now, up, first_delay=60) == 1800
    assert next_run("2026-03-01T10:00:00Z", 3600, now, up, first_delay=60) == 0
    assert next_run("garbage", 3600, now, up, first_delay=0) == 0


def test_gap_book_survives_a_restart(provider: Provider) -> None:
    provider.match(filename="Gone/missing.mp4")
    provider.match(filename="Studio A/scene 1.mp4")
    provider.client.app.state.service.gaps.flush_seen()
    again = GapBook(provider.app.state, SystemClock())
    assert again.unmatched_count == 1
    assert again.seen_ids() == {"1"}
    assert again.clear("Gone/missing.mp4") is True
    assert again.clear("Gone/missing.mp4") is False


@pytest.mark.parametrize("schedule", ["none", "hourly", "daily", "weekly", "120"])
def test_schedule_values(make_provider, schedule: str) -> None:
    provider = make_provider(provider_gap_schedule=schedule)
    assert provider.client.get("/gaps").json()["schedule"] == schedule
