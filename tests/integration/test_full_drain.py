"""A full drain of a seeded library through the real plexapi and stashapi, then a redrain."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from stash2plex_core.services.outages import OutageLog
from tests.integration._world import simulated


SCENES = 120
#: A detail read of one item, or of several (``/library/metadata/12,7,9``).
METADATA = re.compile(r"/library/metadata/\d+(,\d+)*")


def test_full_drain_reaches_plex_and_a_second_drain_sends_nothing(tmp_path: Path) -> None:
    with simulated(tmp_path, SCENES) as sims:
        owners, secondary = sims.owners(), sims.secondary_parts()
        assert len(owners) + len(secondary) == SCENES
        assert secondary

        sims.enqueue()
        report = sims.worker().drain()

        assert report.reason == "empty"
        assert dict(report.outcomes) == {"synced": len(owners), "dropped": len(secondary)}
        assert sims.out_of_step(owners) == {}
        assert sims.app.queue.counts().pending == 0
        assert sims.app.queue.dead_letters() == []
        assert sims.plex_sim.violations == []
        assert OutageLog(sims.app.state).history() == ()
        # Per item: one detail GET, one PUT and one poster upload; never a per-scene lookup
        # (the path index answers them) and no poster list (our own upload is known).
        assert sims.plex_puts() == len(owners)
        assert sims.plex_sim.requests.count("POST", r"^/library/metadata/\d+/posters$") == len(owners)
        assert sims.plex_sim.requests.count("GET", r"^/library/metadata/\d+/posters$") == 0
        # One detail read per item, which also carries the read-back of earlier edits
        # (``/library/metadata/<this>,<edited>``), plus one read-back of the last few: an
        # item is read twice at most (its read and its read-back), never more.
        detail = [r.path for r in sims.plex_sim.requests.all() if r.method == "GET" and METADATA.fullmatch(r.path)]
        assert len(owners) <= len(detail) <= len(owners) + 2
        reads = Counter(key for path in detail for key in path.rsplit("/", 1)[1].split(","))
        assert len(reads) == len(owners)
        assert max(reads.values()) <= 2
        assert sims.plex_sim.requests.count("GET", r"^/library/sections/\d+/all$") == 1  # the index

        sims.plex_sim.requests.clear()
        sims.enqueue()
        again = sims.worker().drain()

        assert dict(again.outcomes) == {"skipped": len(owners), "dropped": len(secondary)}
        assert sims.plex_puts() == 0
        assert sims.plex_detail_gets() == 0
        # Only the incremental index refresh reached Plex.
        assert {(r.method, r.path) for r in sims.plex_sim.requests.all()} == {("GET", "/library/sections/1/all")}
        assert sims.out_of_step(owners) == {}

        # Every scene changed in Stash: one read and one edit each; no listing, since no
        # job could be skipped, and the read-backs ride along with the reads.
        for scene_id in owners:
            scene = sims.stash_sim.scene(scene_id)
            sims.stash_sim.update_scene(scene_id, title=f"{scene.title} (edited)")
        sims.plex_sim.requests.clear()
        sims.enqueue()
        changed = sims.worker().drain()
        assert dict(changed.outcomes) == {"synced": len(owners), "dropped": len(secondary)}
        assert sims.plex_puts() == len(owners)
        assert sims.plex_sim.requests.count() <= 2 * len(owners) + 1
        assert sims.plex_sim.requests.count("GET", r"^/library/sections/\d+/all$") == 0
        assert sims.out_of_step(owners) == {}

        sims.plex_sim.requests.clear()
        sims.enqueue()
        assert dict(sims.worker().drain().outcomes) == {"skipped": len(owners), "dropped": len(secondary)}
        assert sims.plex_puts() == 0
        assert sims.plex_detail_gets() == 0


def test_a_stacked_film_is_described_by_its_first_part(tmp_path: Path) -> None:
    with simulated(tmp_path, 40) as sims:
        sims.enqueue()
        sims.worker().drain()
        for second in sims.secondary_parts():
            snapshot = sims.snapshot(second)
            assert len(snapshot.files) == 2
            first = next(
                str(s.id)
                for s in sims.stash_sim.scenes
                if s.files[0].path.endswith(" - part1.mp4")
                and sims.snapshot(str(s.id)).rating_key == snapshot.rating_key
            )
            assert sims.differences(first) == []
            assert snapshot.title == sims.desired(first).metadata.title
