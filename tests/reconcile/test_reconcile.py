"""Reconciliation against the in-memory fakes: every gap kind, repairs, scopes, schedule, locking."""

from __future__ import annotations

import datetime as dt
import threading
import unicodedata

import attrs
import pytest

from stash2plex_core.models.plex import PlexEdit
from stash2plex_core.serde import from_document
from stash2plex_core.serde import to_document
from stash2plex_core.services.reconcile import CONTROL_KEY
from stash2plex_core.services.reconcile import DRY_CONTROL_KEY
from stash2plex_core.services.reconcile import GAP_KINDS
from stash2plex_core.services.reconcile import NAMESPACE
from stash2plex_core.services.reconcile import ReconcileBusyError
from stash2plex_core.services.reconcile import ReconcileControl
from stash2plex_core.services.reconcile import ReconcileLock
from stash2plex_core.services.reconcile import ReconcileReport
from stash2plex_core.services.reconcile import last_report
from stash2plex_core.services.reconcile import report_to_json
from tests.reconcile._world import PERFORMERS
from tests.reconcile._world import PLEX_ROOT
from tests.reconcile._world import TAGS
from tests.reconcile._world import World
from tests.reconcile._world import make_world


def nothing(report: ReconcileReport, **expected: int) -> None:
    """Assert the counts are exactly ``expected`` (all other kinds zero)."""
    assert dict(report.counts) == {kind: expected.get(kind, 0) for kind in GAP_KINDS}, report.summary_lines()


@pytest.fixture
def world() -> World:
    """A synced library: every scene is in Plex with the desired state and a sync record."""
    w = make_world()
    w.scene("Café Noir/Étude (2024).mp4", title="Étude", tags=("Outdoor", "Comédie"))
    w.scene("Café Noir/Night.mp4", title="Night", tags=("Night_Shoot",), performers=("Zoë Ødegaard", "Иван Smith"))
    w.scene("東京 Works/夏 [Remastered].mp4", title="夏", tags=("Drama",))
    w.scene("Studio_Underscore/50% off.mp4", "Studio_Underscore/50% off - 1080p.mkv", title="Two versions")
    w.scene("Plain/plain.mp4", title="Plain", tags=())
    w.sync_everything()
    w.plex.calls.clear()
    w.stash.calls.clear()
    return w


def test_a_synced_library_has_no_gaps_and_needs_no_detail_reads(world: World) -> None:
    report = world.reconciler().run("full")
    nothing(report)
    assert report.unchanged == 5
    assert world.plex.calls.get("get_items", 0) == 0
    assert world.queued() == set()


def test_every_gap_kind_is_found_exactly_once(world: World) -> None:
    # drift: a tag renamed in Stash (the scene's updated_at does not move)
    world.update("1", touch=False, tags=(attrs.evolve(TAGS["Comédie"], name="Comedy"), TAGS["Outdoor"]))
    # stale + drift: a performer removed from a scene (updated_at moves)
    world.update("2", performers=(PERFORMERS["Zoë Ødegaard"],))
    # missing: a file only Stash has (unicode path)
    world.scene("Ünïcode Studio/Lumière \u2013 Übergang.mp4", title="Lumière", in_plex=False)
    # orphan: a file only Plex has
    world.plex.add_item([f"{PLEX_ROOT}/Nowhere/only in plex.mp4"])
    # drift with empty metadata: Plex lost the item and rescanned the file under a new key
    old = world.record("3")
    assert old is not None
    world.plex.remove_item(old.rating_key)
    world.plex.add_item([f"{PLEX_ROOT}/東京 Works/夏 [Remastered].mp4"])
    # low confidence: the file name is held by two Plex items in other folders
    world.plex.add_item([f"{PLEX_ROOT}/A/clip.mp4"])
    world.plex.add_item([f"{PLEX_ROOT}/B/clip.mp4"])
    world.scene("C/clip.mp4", title="Clip", in_plex=False)

    report = world.reconciler().run("full")

    nothing(report, missing_in_plex=1, orphan_in_plex=1, drift=3, stale=1, low_confidence=1)
    drift = {e.scene_id: e for e in report.examples_of("drift")}
    assert drift["1"].fields == ("genre",)
    assert drift["2"].fields == ("actor",)
    assert drift["3"].detail == "empty metadata"
    assert {"title", "summary", "studio", "genre", "actor", "locks"} <= set(drift["3"].fields)
    assert report.empty_metadata == 1
    assert report.drift_fields["genre"] == 2
    assert [e.scene_id for e in report.examples_of("stale")] == ["2"]
    assert report.examples_of("missing_in_plex")[0].path == f"{PLEX_ROOT}/Ünïcode Studio/Lumière \u2013 Übergang.mp4"
    assert report.examples_of("orphan_in_plex")[0].path == f"{PLEX_ROOT}/Nowhere/only in plex.mp4"
    assert "2 candidate items" in (report.examples_of("low_confidence")[0].detail or "")


def test_repairs_enqueue_exactly_the_gapped_scenes_and_a_second_run_finds_nothing(world: World) -> None:
    world.update("1", touch=False, tags=(attrs.evolve(TAGS["Comédie"], name="Comedy"),))
    world.update("2", performers=())
    missing = world.scene("Neu/neu.mp4", title="Neu", in_plex=False)
    world.plex.add_item([f"{PLEX_ROOT}/Nowhere/orphan.mp4"])

    report = world.reconciler().run("full")
    assert report.enqueued == report.repairs == 3
    assert world.queued() == {"1", "2", missing.id}
    assert world.queue.pending(10)[0].reason == "reconcile"

    # The worker repairs what it can; Plex has now scanned the new file too.
    world.plex.add_item([f"{PLEX_ROOT}/Neu/neu.mp4"])
    assert world.drain() == 3
    again = world.reconciler().run("full")
    nothing(again, orphan_in_plex=1)  # an orphan is for the user to look at: nothing to sync
    assert world.queued() == set()


def test_dry_run_reports_but_enqueues_nothing_and_keeps_the_schedule(world: World) -> None:
    reconciler = world.reconciler()
    reconciler.run("full")
    before = reconciler.control()
    world.update("2", performers=())
    world.clock.advance(60)

    real = last_report(world.state)
    assert real is not None

    report = reconciler.run("full", dry_run=True)

    nothing(report, drift=1, stale=1)
    assert report.dry_run
    assert report.enqueued == 0
    assert report.repairs == 1
    assert world.queued() == set()
    # Kept apart: the user's last real report is still the one shown.
    assert last_report(world.state) == real
    assert reconciler.last_report() == real
    assert last_report(world.state, dry_run=True) == report
    assert reconciler.control() == before  # not even the lock was touched
    assert world.state.get(NAMESPACE, DRY_CONTROL_KEY)["lock"] is None  # type: ignore[index]


def test_a_scheduled_dry_run_reports_the_due_pass_without_claiming_it(world: World) -> None:
    reconciler = world.reconciler(reconcile_schedule="hourly")
    dry = reconciler.run_if_due(dry_run=True)
    assert dry is not None
    assert (dry.scope, dry.trigger, dry.dry_run) == ("full", "schedule", True)
    assert reconciler.due() == "full"  # still due: the dry run only read the schedule
    real = reconciler.run_if_due()
    assert real is not None
    assert not real.dry_run
    assert reconciler.due() is None
    assert last_report(world.state) == real
    assert last_report(world.state, dry_run=True) == dry


def test_a_dry_run_in_progress_holds_up_no_real_run(world: World) -> None:
    """A comparison (the provider's dry run) must not make ``--if-due`` say nothing is due."""
    slow = SlowStash(world.stash)
    dry_reports: list[ReconcileReport] = []

    def compare() -> None:
        reconciler = world.reconciler()
        reconciler.stash = slow  # type: ignore[assignment]
        dry_reports.append(reconciler.run("full", dry_run=True))

    thread = threading.Thread(target=compare)
    thread.start()
    try:
        assert slow.entered.wait(10)
        scheduled = world.reconciler(reconcile_schedule="daily").run_if_due()
        assert scheduled is not None
        assert scheduled.trigger == "schedule"
        assert not scheduled.dry_run
        assert world.reconciler().run("full").scope == "full"  # on demand too
        with pytest.raises(ReconcileBusyError, match="another dry run"):
            world.reconciler().run("full", dry_run=True)  # dry runs still exclude each other
    finally:
        slow.release.set()
        thread.join(10)
    assert len(dry_reports) == 1
    assert last_report(world.state, dry_run=True) == dry_reports[0]
    real = last_report(world.state)
    assert real is not None
    assert (real.dry_run, real.trigger) == (False, "manual")
    assert world.reconciler().control().lock is None


def test_plex_side_edits_are_drift(world: World) -> None:
    record = world.record("5")
    assert record is not None
    world.plex.apply(record.rating_key, PlexEdit(fields={"title": "Renamed in Plex"}))
    report = world.reconciler().run("full")
    nothing(report, drift=1)
    assert report.examples_of("drift")[0].fields == ("title",)
    assert world.plex.calls["get_items"] == 1  # only the moved item is read


def test_detail_reads_are_batched_per_page_of_candidates() -> None:
    world = make_world(reconcile_batch_size=10)
    for i in range(25):
        world.scene(f"Bulk/{i:03d}.mp4", title=f"Bulk {i}")
    report = world.reconciler().run("full")
    nothing(report, drift=25)
    assert world.plex.calls["get_items"] == 3
    assert report.calls.plex_detail_calls == 3
    assert report.calls.plex_details == 25
    # Every gateway call is counted where it is made, never estimated from page sizes.
    assert report.calls.stash_listings == world.stash.calls["iter_scenes"] == 1
    assert report.calls.plex_listings == world.plex.calls["iter_items"] == 1
    assert report.calls.plex_section_reads == world.plex.calls["sections"] == 1
    assert (report.calls.stash, report.calls.plex) == (1, 5)
    assert "gateway calls stash=1 plex=5" in report.summary_lines()[0]
    assert world.plex.calls["iter_items"] == 1
    assert world.stash.calls["iter_scenes"] == 1
    assert "get_scene" not in world.stash.calls
    assert "resolve_path" not in world.plex.calls


def test_files_outside_the_plex_library_are_out_of_scope_not_missing(world: World) -> None:
    world.stash.put_scene(
        attrs.evolve(world.stash.get_scene("5"), id="99", files=("/data/library/../elsewhere.mp4",))  # type: ignore[arg-type]
    )
    world.stash.put_scene(attrs.evolve(world.stash.get_scene("5"), id="98", files=("/home/user/clip.mp4",)))  # type: ignore[arg-type]
    report = world.reconciler().run("full")
    nothing(report)
    assert report.out_of_scope == 2


def test_identity_mapping_and_items_outside_mapped_roots() -> None:
    world = make_world()
    world.settings = attrs.evolve(world.settings, path_rules=())
    world.plex.add_item(["/somewhere/else.mp4"])  # no rule needed: identity maps everything
    report = world.reconciler().run("full")
    nothing(report, orphan_in_plex=1)

    mapped = make_world()
    mapped.plex.add_item(["/other/root/film.mp4"])  # no rule maps it back to Stash
    nothing(mapped.reconciler().run("full"))


def test_loose_paths_match_like_the_worker(world: World) -> None:
    scene = world.scene("Loose/Crème.mp4", title="Crème", in_plex=False)
    decomposed = f"{PLEX_ROOT}/loose/Cre\u0300me.MP4"  # NFD, other case: only a loose match finds it
    assert unicodedata.normalize("NFC", decomposed) != decomposed
    assert "Crème" in scene.files[0]  # Stash holds the composed form
    world.plex.add_item([decomposed])
    alone = world.reconciler().run("full")
    nothing(alone, drift=1)  # one loose match: matched (and synced), not missing
    assert alone.examples_of("drift")[0].path == f"{PLEX_ROOT}/Loose/Crème.mp4"

    world.plex.add_item([f"{PLEX_ROOT}/LOOSE/CRÈME.mp4"])
    report = world.reconciler().run("full")
    # two items match loosely: the worker would call that low confidence too
    nothing(report, low_confidence=1)
    assert report.examples_of("low_confidence")[0].scene_id == scene.id
    assert "2 candidate items" in (report.examples_of("low_confidence")[0].detail or "")


def test_review_entries_count_as_low_confidence_until_the_scene_matches(world: World) -> None:
    world.state.put("review", "5", {"scene_id": "5", "candidates": [{"rating_key": "1"}, {"rating_key": "2"}]})
    world.state.put("review", "42", {"scene_id": "42", "candidates": ["7", "8"]})
    report = world.reconciler().run("full")
    # scene 5 matches exactly now, so its old review entry no longer counts
    nothing(report, low_confidence=1)
    assert report.examples_of("low_confidence")[0].scene_id == "42"
    assert world.queued() == set()


def test_allow_low_confidence_queues_ambiguous_matches_then_trusts_the_record() -> None:
    world = make_world(allow_low_confidence=True)
    world.plex.add_item([f"{PLEX_ROOT}/A/clip.mp4"])
    world.plex.add_item([f"{PLEX_ROOT}/B/clip.mp4"])
    scene = world.scene("C/clip.mp4", title="Clip", in_plex=False)
    report = world.reconciler().run("full")
    nothing(report, low_confidence=1)  # the candidates are not orphans
    assert world.queued() == {scene.id}
    world.drain()
    nothing(world.reconciler().run("full"), orphan_in_plex=1)  # the candidate it did not pick


def test_two_files_of_one_scene_and_shared_items_are_not_orphans(world: World) -> None:
    report = world.reconciler().run("full")
    assert report.plex_items_checked == 5
    nothing(report)


# --- scopes and the watermark ---------------------------------------------------------------


def test_full_run_stores_the_largest_updated_at_string_as_watermark(world: World) -> None:
    report = world.reconciler().run("full")
    newest = max(s.updated_at for s in world.stash.iter_scenes())  # type: ignore[type-var]
    assert report.watermark == newest
    assert world.reconciler().control().watermark == newest


def test_incremental_runs_from_the_watermark_with_an_overlap(world: World) -> None:
    reconciler = world.reconciler(reconcile_overlap_seconds=120)
    reconciler.run("full")
    watermark = reconciler.control().watermark
    assert watermark == "2026-01-01T00:05:00+01:00"

    world.update("1", touch=False, title="Changed quietly")  # no updated_at bump: invisible here
    world.update("2", performers=())  # bumped: 00:06
    world.plex.add_item([f"{PLEX_ROOT}/orphan.mp4"])
    report = reconciler.run("incremental")

    assert report.scope == "incremental"
    assert report.since == "2026-01-01T00:03:00+01:00"  # watermark - 120 s, in Stash's own offset
    assert report.scenes_checked == 4  # scenes 3, 4 and 5 (at or after the bound) and 2
    nothing(report, drift=1, stale=1)  # no orphans in a partial pass, no silent rename
    assert report.watermark == "2026-01-01T00:06:00+01:00"
    assert reconciler.control().watermark == "2026-01-01T00:06:00+01:00"

    full = reconciler.run("full")
    nothing(full, drift=2, stale=1, orphan_in_plex=1)  # the periodic full pass catches the rest


def test_incremental_without_changes_lists_nothing_in_plex(world: World) -> None:
    reconciler = world.reconciler(reconcile_overlap_seconds=0)
    reconciler.run("full")
    world.plex.calls.clear()
    world.stash.put_scene(attrs.evolve(world.stash.get_scene("5"), updated_at="2025-12-31T00:00:00+01:00"))  # type: ignore[arg-type]
    report = reconciler.run("incremental")
    assert report.scenes_checked == 0
    assert "iter_items" not in world.plex.calls
    assert report.calls.plex == 0
    assert report.watermark == "2026-01-01T00:05:00+01:00"
    nothing(report)


def test_incremental_without_a_watermark_is_a_full_pass(world: World) -> None:
    report = world.reconciler().run("incremental")
    assert report.scope == "full"
    assert report.watermark is not None


def test_days_scope_sends_a_bound_in_stash_offset_and_keeps_the_watermark(world: World) -> None:
    reconciler = world.reconciler()
    reconciler.run("full")
    world.clock.advance(3 * 86400)
    report = reconciler.run("days", days=2)
    assert report.scope == "days"
    assert report.days == 2
    # now is 2026-01-04T00:00Z; two days back, in Stash's +01:00
    assert report.since == "2026-01-02T01:00:00+01:00"
    assert report.scenes_checked == 0
    assert reconciler.control().watermark == "2026-01-01T00:05:00+01:00"


def test_days_scope_before_the_offset_is_known_looks_back_further() -> None:
    world = make_world()
    world.clock.advance(86400)
    report = world.reconciler().run("days", days=1)
    assert report.since == "2025-12-31T10:00:00Z"


@pytest.mark.parametrize(
    ("scope", "days"), [("weekly", None), ("days", None), ("days", 0), ("full", 3), ("incremental", 1)]
)
def test_bad_scopes_are_refused(world: World, scope: str, days: int | None) -> None:
    with pytest.raises(ValueError, match=r"scope|days"):
        world.reconciler().run(scope, days=days)


# --- schedule and locking --------------------------------------------------------------------


def test_schedule_none_never_runs_but_on_demand_works(world: World) -> None:
    reconciler = world.reconciler(reconcile_schedule="none")
    assert reconciler.due() is None
    assert reconciler.run_if_due() is None
    assert reconciler.run("full").scope == "full"
    world.clock.advance(30 * 86400)
    assert reconciler.run_if_due() is None


def test_schedule_first_full_then_incremental_then_periodic_full(world: World) -> None:
    reconciler = world.reconciler(reconcile_schedule="daily", reconcile_full_interval_hours=72)
    assert reconciler.due() == "full"
    first = reconciler.run_if_due()
    assert first is not None
    assert first.scope == "full"
    assert first.trigger == "schedule"
    assert reconciler.run_if_due() is None  # not due again yet

    world.clock.advance(86400 - 1)
    assert reconciler.due() is None
    world.clock.advance(1)
    assert reconciler.due() == "incremental"
    second = reconciler.run_if_due()
    assert second is not None
    assert second.scope == "incremental"

    world.clock.advance(86400)
    assert reconciler.run_if_due().scope == "incremental"  # type: ignore[union-attr]
    world.clock.advance(86400)
    assert reconciler.due() == "full"  # 72 h since the last full pass
    assert reconciler.run_if_due().scope == "full"  # type: ignore[union-attr]


def test_an_on_demand_full_run_resets_the_schedule(world: World) -> None:
    reconciler = world.reconciler(reconcile_schedule="hourly")
    reconciler.run("full")
    assert reconciler.due() is None
    world.clock.advance(3600)
    assert reconciler.due() == "incremental"


def test_full_interval_zero_only_schedules_incremental_passes(world: World) -> None:
    reconciler = world.reconciler(reconcile_schedule="hourly", reconcile_full_interval_hours=0)
    assert reconciler.run_if_due().scope == "full"  # type: ignore[union-attr]  # the very first one
    for _ in range(3):
        world.clock.advance(3600)
        assert reconciler.run_if_due().scope == "incremental"  # type: ignore[union-attr]


class BrokenStash:
    def __init__(self, inner: object) -> None:
        self.inner = inner

    def iter_scenes(self, **kwargs: object) -> object:
        from stash2plex_core.errors import BackendUnavailableError

        raise BackendUnavailableError("Stash is down")

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def test_a_failed_scheduled_run_releases_the_lock_and_retries_later(world: World) -> None:
    from stash2plex_core.errors import BackendUnavailableError

    reconciler = world.reconciler(reconcile_schedule="daily")
    reconciler.stash = BrokenStash(world.stash)  # type: ignore[assignment]
    with pytest.raises(BackendUnavailableError):
        reconciler.run_if_due()
    control = reconciler.control()
    assert control.lock is None
    assert control.last_error == "BackendUnavailableError: Stash is down"
    assert reconciler.due() is None
    world.clock.advance(900)
    assert reconciler.due() == "full"
    assert last_report(world.state) is None


class SlowStash:
    """Stash whose listing waits until released, so runs overlap for sure."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.entered = threading.Event()
        self.release = threading.Event()

    def iter_scenes(self, **kwargs: object) -> object:
        self.entered.set()
        assert self.release.wait(10)
        return self.inner.iter_scenes(**kwargs)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def test_concurrent_scheduled_invocations_run_one_reconciliation(world: World) -> None:
    slow = SlowStash(world.stash)
    results: list[object] = []
    errors: list[BaseException] = []

    def invoke() -> None:
        reconciler = world.reconciler(reconcile_schedule="hourly")
        reconciler.stash = slow  # type: ignore[assignment]
        try:
            results.append(reconciler.run_if_due())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=invoke) for _ in range(8)]
    for thread in threads:
        thread.start()
    assert slow.entered.wait(10)
    busy = world.reconciler()
    with pytest.raises(ReconcileBusyError, match="holds the lock"):
        busy.run("full")  # on demand never runs next to another reconciliation either
    slow.release.set()
    for thread in threads:
        thread.join(10)
    assert not errors
    reports = [r for r in results if r is not None]
    assert len(results) == 8
    assert len(reports) == 1
    assert world.stash.calls["iter_scenes"] == 1
    assert world.reconciler().control().lock is None


def test_an_expired_lock_is_taken_over(world: World) -> None:
    now = world.clock.now()
    stale_lock = ReconcileLock(
        token="dead", owner="crashed", scope="full", acquired_at=now, expires_at=now + dt.timedelta(seconds=60)
    )
    world.state.put(NAMESPACE, CONTROL_KEY, to_document(ReconcileControl(lock=stale_lock)))
    reconciler = world.reconciler()
    with pytest.raises(ReconcileBusyError, match="crashed"):
        reconciler.run("full")
    world.clock.advance(61)
    assert reconciler.run("full").scope == "full"
    assert reconciler.control().lock is None


def test_a_long_run_keeps_its_claim_alive(world: World) -> None:
    """The lock's expiry moves on while the run works, so no second run can start."""
    reconciler = world.reconciler(reconcile_lock_seconds=30, reconcile_batch_size=1)
    seen: list[dt.datetime] = []
    inner = world.plex.get_items

    def slow_get_items(keys: list[str]) -> list[object]:
        world.clock.advance(20)
        control = reconciler.control()
        assert control.lock is not None
        seen.append(control.lock.expires_at)
        assert control.lock.expires_at > world.clock.now()
        return inner(keys)  # type: ignore[return-value]

    world.plex.get_items = slow_get_items  # type: ignore[method-assign]
    world.scene("x/one.mp4")
    world.scene("x/two.mp4")
    report = reconciler.run("full")
    assert report.counts["drift"] == 2
    assert seen[-1] > seen[0]


# --- the report ------------------------------------------------------------------------------


def test_last_report_round_trips_and_is_plain_json(world: World) -> None:
    assert last_report(world.state) is None
    world.update("1", tags=())
    world.clock.advance(5)
    report = world.reconciler().run("full")
    stored = last_report(world.state)
    assert stored == report
    assert from_document(ReconcileReport, to_document(report)) == report
    data = report_to_json(report)
    assert data["counts"] == {kind: report.counts[kind] for kind in GAP_KINDS}
    assert data["calls"]["plex"] == report.calls.plex
    assert data["total_gaps"] == 2
    assert data["examples"][0]["kind"] == "drift"
    text = "\n".join(report.summary_lines())
    assert "stale" in text
    assert "queued for repair: 1 scenes" in text


def test_examples_are_capped_per_kind() -> None:
    world = make_world(reconcile_examples=2)
    for i in range(6):
        world.scene(f"Bulk/{i}.mp4", in_plex=False)
    report = world.reconciler().run("full")
    assert report.counts["missing_in_plex"] == 6
    assert len(report.examples_of("missing_in_plex")) == 2


def test_items_with_empty_metadata_are_drift_even_without_a_record() -> None:
    world = make_world()
    scene = world.scene("Fresh/new.mp4", title="New")
    report = world.reconciler().run("full")
    nothing(report, drift=1)
    assert report.examples_of("drift")[0].scene_id == scene.id
    assert report.empty_metadata == 1


def test_a_poster_we_never_uploaded_is_drift() -> None:
    world = make_world()
    scene = world.scene("Posters/p.mp4", title="P")
    world.stash.images["memory://shot/p"] = b"png bytes"
    world.update(scene.id, touch=False, screenshot_url="memory://shot/p")
    world.sync_everything()
    nothing(world.reconciler().run("full"))
    record = world.record(scene.id)
    assert record is not None
    item = world.plex.get_item(record.rating_key)
    world.plex.remove_item(record.rating_key)
    world.plex.add_item(item.part_paths, item.metadata)  # same metadata, no poster
    world.state.delete("sync", scene.id)
    report = world.reconciler(lock_fields=False).run("full")
    nothing(report, drift=1)
    assert report.examples_of("drift")[0].fields == ("poster",)


def test_plex_metadata_already_right_without_a_record_is_not_drift() -> None:
    world = make_world()
    world.scene("Known/k.mp4", title="K")
    world.sync_everything()
    world.state.delete("sync", "1")
    report = world.reconciler().run("full")
    nothing(report)
    assert report.unchanged == 0
    assert report.calls.plex_details == 1


def test_the_same_item_for_both_parts_of_a_stacked_film_is_claimed_once() -> None:
    world = make_world()
    world.scene("Film/film - part1.mp4", title="Film (Part 1)", in_plex=False)
    world.scene("Film/film - part2.mp4", title="Film (Part 2)", in_plex=False)
    world.plex.add_item([f"{PLEX_ROOT}/Film/film - part1.mp4", f"{PLEX_ROOT}/Film/film - part2.mp4"])
    report = world.reconciler().run("full")
    nothing(report, drift=1)  # only the scene of the first part speaks for the item
    assert report.examples_of("drift")[0].scene_id == "1"
    assert report.stacked_parts == 1
    assert world.queued() == {"1"}
    world.drain()
    nothing(world.reconciler().run("full"))


def test_a_file_no_rule_maps_is_still_matched_by_its_unique_name_like_the_worker() -> None:
    world = make_world()
    world.stash.put_scene(attrs.evolve(world.scene("x/y.mp4", in_plex=False), files=("/elsewhere/unique name.mp4",)))
    world.plex.add_item([f"{PLEX_ROOT}/Somewhere/unique name.mp4"])
    report = world.reconciler().run("full")
    nothing(report, drift=1)
    assert report.examples_of("drift")[0].path == "/elsewhere/unique name.mp4"
    world.drain()
    nothing(world.reconciler().run("full"))


def test_a_poster_stash_cannot_serve_is_not_queued_again_and_again() -> None:
    world = make_world()
    scene = world.scene("Posters/none.mp4", title="No image")
    world.update(scene.id, touch=False, screenshot_url="memory://shot/missing")
    world.sync_everything()
    world.state.delete("sync", scene.id)  # force a detail read: the item shows no poster of ours
    report = world.reconciler().run("full")
    nothing(report)
    assert world.queued() == set()
    world.state.delete("posters", scene.id)  # without the worker's memo it would be poster drift
    assert world.reconciler().run("full").examples_of("drift")[0].fields == ("poster",)


def test_concurrent_invocations_over_sqlite_connections_run_one_reconciliation(world: World, tmp_path) -> None:
    """Each invocation has its own database connection, as separate processes would."""
    from stash2plex_backends.sqlite.state import SQLiteStateStore

    path = tmp_path / "state.db"
    slow = SlowStash(world.stash)
    results: list[object] = []
    stores: list[SQLiteStateStore] = []
    barrier = threading.Barrier(6)

    def invoke() -> None:
        store = SQLiteStateStore(path, world.clock)
        stores.append(store)
        reconciler = world.reconciler(reconcile_schedule="daily")
        reconciler.state = store
        reconciler.stash = slow  # type: ignore[assignment]
        barrier.wait(10)
        results.append(reconciler.run_if_due())

    threads = [threading.Thread(target=invoke) for _ in range(6)]
    for thread in threads:
        thread.start()
    assert slow.entered.wait(10)
    slow.release.set()
    for thread in threads:
        thread.join(20)
    assert len(results) == 6
    assert sum(r is not None for r in results) == 1
    assert world.stash.calls["iter_scenes"] == 1
    for store in stores:
        store.close()
