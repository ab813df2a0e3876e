"""Reconciliation through the real plexapi and stashapi gateways against both simulators.

Stash keeps its files under ``/data/library`` and Plex under ``/media/library`` (one path
rule), both seeded from the same generated library, so the join goes through path mapping,
unicode names, two-version scenes and stacked two-part films.
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs
import pytest

from stash2plex_backends.memory import MemoryQueue
from stash2plex_backends.memory import MemoryStateStore
from stash2plex_backends.plex import PlexApiGateway
from stash2plex_backends.simulators.plex import PlexSimulator
from stash2plex_backends.simulators.stash import StashSimulator
from stash2plex_backends.stash import StashApiGateway
from stash2plex_core.clocks import SystemClock
from stash2plex_core.services.mapping import desired_state
from stash2plex_core.services.reconcile import GAP_KINDS
from stash2plex_core.services.reconcile import Reconciler
from stash2plex_core.services.reconcile import ReconcileReport
from stash2plex_core.services.reconcile import drift_fields
from stash2plex_core.services.reconcile import report_to_json
from stash2plex_core.settings import Secret
from stash2plex_core.settings import Settings
from tests.reconcile._worker import drain
from tests.reconcile._world import RULE


SCENES = 40
SEED = 11
KEY = "reconcile-stash-key"
TOKEN = "reconcile-plex-token"


@attrs.define
class Sims:
    stash_sim: StashSimulator
    plex_sim: PlexSimulator
    settings: Settings
    stash: StashApiGateway
    plex: PlexApiGateway
    state: MemoryStateStore
    queue: MemoryQueue
    clock: SystemClock

    def reconciler(self) -> Reconciler:
        return Reconciler(
            settings=self.settings,
            plex=self.plex,
            stash=self.stash,
            state=self.state,
            queue=self.queue,
            clock=self.clock,
        )

    def drain(self) -> int:
        return drain(
            settings=self.settings,
            stash=self.stash,
            plex=self.plex,
            state=self.state,
            queue=self.queue,
            clock=self.clock,
            max_idle=5.0,
        )

    def secondary_parts(self) -> set[str]:
        """Scenes holding the second part of a stacked film (their item speaks for part 1)."""
        return {
            s.id
            for s in self.stash_sim.library.scenes
            if s.stack_key is not None and s.files[0].path.endswith(" - part2.mp4")
        }


@pytest.fixture
def sims() -> Iterator[Sims]:
    clock = SystemClock()
    with (
        StashSimulator(SCENES, SEED, "/data/library", api_key=KEY) as stash_sim,
        PlexSimulator(SCENES, SEED, library_root="/media/library", token=TOKEN) as plex_sim,
    ):
        settings = Settings(
            plex_url=plex_sim.url,
            plex_token=Secret(TOKEN),
            stash_url=stash_sim.url,
            stash_api_key=Secret(KEY),
            path_rules=(RULE,),
            # a file Plex has not scanned yet is retried within a second, not a minute
            not_in_plex_retry_seconds=1.0,
            not_in_plex_retry_max_seconds=1.0,
        )
        stash = StashApiGateway.from_settings(settings)
        plex = PlexApiGateway.from_settings(settings, clock=clock)
        try:
            yield Sims(stash_sim, plex_sim, settings, stash, plex, MemoryStateStore(clock), MemoryQueue(clock), clock)
        finally:
            stash.close()
            plex.close()


def counts(report: ReconcileReport) -> dict[str, int]:
    return {kind: report.counts[kind] for kind in GAP_KINDS if report.counts[kind]}


def test_a_fresh_library_drifts_everywhere_and_one_repair_pass_settles_it(sims: Sims) -> None:
    first = sims.reconciler().run("full")
    owners = SCENES - len(sims.secondary_parts())
    assert counts(first) == {"drift": owners}
    assert first.empty_metadata == owners
    assert first.stacked_parts == len(sims.secondary_parts()) > 0
    assert first.enqueued == owners

    assert sims.drain() == owners
    second = sims.reconciler().run("full")
    assert counts(second) == {}, second.summary_lines()
    assert second.unchanged == owners
    assert second.calls.plex_detail_calls == 0


def test_seeded_divergence_of_every_kind_is_found_once_and_repaired(sims: Sims) -> None:
    sims.reconciler().run("full")
    sims.drain()
    stash_sim, plex_sim = sims.stash_sim, sims.plex_sim
    secondary = sims.secondary_parts()
    scenes = {str(s.id): s for s in stash_sim.scenes}

    # drift: a tag renamed in Stash; no scene's updated_at moves
    tag_id = max(
        (t for s in scenes.values() for t in s.tag_ids),
        key=lambda t: sum(t in s.tag_ids for sid, s in scenes.items() if sid not in secondary),
    )
    renamed = {sid for sid, s in scenes.items() if tag_id in s.tag_ids and sid not in secondary}
    stash_sim.rename_tag(tag_id, "Umbenannt \u2013 Ñew")
    # stale + drift: a performer removed from a scene
    loser = next(sid for sid, s in scenes.items() if s.performer_ids and sid not in secondary | renamed)
    stash_sim.update_scene(loser, performer_ids=scenes[loser].performer_ids[1:])
    # drift: a user edits a title in Plex
    edited = next(sid for sid in scenes if sid not in secondary | renamed | {loser})
    edited_key = sims.state.get("sync", edited)["rating_key"]  # type: ignore[index]
    plex_sim.edit_item(int(edited_key), fields={"title": "Edited in Plex"})
    # drift with empty metadata: Plex dropped an item and rescanned its files under a new key
    rescanned = next(sid for sid in scenes if sid not in secondary | renamed | {loser, edited})
    old_key = int(sims.state.get("sync", rescanned)["rating_key"])  # type: ignore[index]
    files = plex_sim.item(old_key).media
    plex_sim.remove_item(old_key)
    plex_sim.add_item([list(parts) for parts in files])
    # missing: a new file only Stash has (unicode), which Plex will find when asked to scan
    new = stash_sim.add_scene("/data/library/Ünïcode Studio/Nouveau fïlm \u2013 東京.mp4", title="Nouveau")
    plex_sim.stage_file("/media/library/Ünïcode Studio/Nouveau fïlm \u2013 東京.mp4")
    # orphan: a file only Plex has
    plex_sim.add_item("/media/library/Nowhere/only in plex.mp4", title="only in plex")
    # low confidence: a file name two other Plex items hold
    plex_sim.add_item("/media/library/A/clip_1.mp4")
    plex_sim.add_item("/media/library/B/clip_1.mp4")
    ambiguous = stash_sim.add_scene("/data/library/C/clip_1.mp4", title="Clip")

    sims.plex_sim.requests.clear()
    sims.stash_sim.requests.clear()
    report = sims.reconciler().run("full")

    drifted = renamed | {loser, edited, rescanned}
    assert counts(report) == {
        "missing_in_plex": 1,
        "orphan_in_plex": 1,
        "drift": len(drifted),
        "stale": 1,
        "low_confidence": 1,
    }, report.summary_lines()
    assert report.empty_metadata == 1
    assert report.examples_of("stale")[0].scene_id == loser
    assert report.examples_of("missing_in_plex")[0].scene_id == str(new.id)
    assert report.examples_of("missing_in_plex")[0].path == "/media/library/Ünïcode Studio/Nouveau fïlm \u2013 東京.mp4"
    assert report.examples_of("orphan_in_plex")[0].path == "/media/library/Nowhere/only in plex.mp4"
    assert report.examples_of("low_confidence")[0].scene_id == str(ambiguous.id)
    assert report.drift_fields["genre"] >= len(renamed)
    assert {job.scene_id for job in sims.queue.pending(1000)} == drifted | {str(new.id)}

    # Requests: one paged listing per side plus one detail batch per 100 candidates.
    assert stash_sim.requests.count("POST", "/graphql") == 1
    listing = plex_sim.requests.count("GET", r"^/library/sections/\d+/all$")
    details = plex_sim.requests.count("GET", r"^/library/metadata/[\d,]+$")
    assert listing == 1
    assert details == 1
    assert report.calls.plex_detail_calls == 1
    assert (report.calls.stash_listings, report.calls.plex_section_reads, report.calls.plex_listings) == (1, 1, 1)

    # The worker repairs; Plex shows the desired state; a second run finds nothing to sync.
    sims.drain()
    for sid in drifted | {str(new.id)}:
        scene = sims.stash.get_scene(sid)
        assert scene is not None
        key = sims.state.get("sync", sid)["rating_key"]  # type: ignore[index]
        assert drift_fields(desired_state(scene, sims.settings), sims.plex.get_item(key), sims.settings) == ()
    again = sims.reconciler().run("full")
    assert counts(again) == {"orphan_in_plex": 1, "low_confidence": 1}, again.summary_lines()
    assert again.enqueued == 0


def test_incremental_pass_through_the_real_gateways(sims: Sims) -> None:
    reconciler = sims.reconciler()
    reconciler.run("full")
    sims.drain()
    reconciler.run("full")
    changed = sims.stash_sim.scenes[3]
    sims.stash_sim.update_scene(changed.id, title="Retitled")
    sims.plex_sim.add_item("/media/library/Nowhere/orphan.mp4")
    report = reconciler.run("incremental")
    assert report.scope == "incremental"
    assert report.since is not None
    assert counts(report) == {"drift": 1, "stale": 1}
    assert report.scenes_checked < SCENES
    assert report.watermark == sims.stash_sim.scene(changed.id).updated_at


def test_the_report_counts_gateway_calls_not_pages_it_cannot_see(sims: Sims) -> None:
    """Small pages: many HTTP requests, and the report names exactly the calls it made."""
    stash = StashApiGateway(sims.stash_sim.url, api_key=KEY, page_size=7)
    plex = PlexApiGateway(sims.plex_sim.url, TOKEN, clock=sims.clock, page_size=10)
    try:
        reconciler = Reconciler(
            settings=attrs.evolve(sims.settings, reconcile_batch_size=16),
            plex=plex,
            stash=stash,
            state=sims.state,
            queue=sims.queue,
            clock=sims.clock,
        )
        sims.stash_sim.requests.clear()
        sims.plex_sim.requests.clear()
        report = reconciler.run("full", dry_run=True)
    finally:
        stash.close()
        plex.close()
    calls = report.calls
    candidates = report.plex_items_checked - report.counts["orphan_in_plex"]
    assert calls.plex_details == SCENES - len(sims.secondary_parts()) == candidates
    assert (calls.stash_listings, calls.plex_section_reads, calls.plex_listings) == (1, 1, 1)
    assert calls.plex_detail_calls == -(-calls.plex_details // 16)
    # What those calls cost in HTTP: pages of 7 and 10, and batches of at most 16 items.
    assert sims.stash_sim.requests.count("POST", "/graphql") >= -(-SCENES // 7) > calls.stash
    assert sims.plex_sim.requests.count("GET", r"^/library/sections/\d+/all$") >= -(-calls.plex_items // 10) > 1
    assert sims.plex_sim.requests.count("GET", r"^/library/metadata/[\d,]+$") == calls.plex_detail_calls
    assert report_to_json(report)["calls"]["plex"] == calls.plex == 2 + calls.plex_detail_calls
