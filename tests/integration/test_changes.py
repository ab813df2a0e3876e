"""Changes in Stash reach Plex: edits made while a job waits, removed tags, new files."""

from __future__ import annotations

from pathlib import Path

from stash2plex_backends.simulators import Fault
from stash2plex_backends.simulators.seedlib import image_bytes
from stash2plex_core.services.worker import OutcomeKind
from tests.integration._world import PLEX_ROOT
from tests.integration._world import STASH_ROOT
from tests.integration._world import Sims
from tests.integration._world import simulated


SCENES = 30


def synced(sims: Sims) -> None:
    sims.enqueue()
    report = sims.worker().drain()
    assert set(report.outcomes) <= {"synced", "dropped"}


def scene_with(sims: Sims, *, tags: int = 0, performers: int = 0) -> str:
    owners = set(sims.owners())
    return next(
        str(s.id)
        for s in sims.stash_sim.scenes
        if str(s.id) in owners and len(s.tag_ids) >= tags and len(s.performer_ids) >= performers
    )


def test_a_scene_edited_while_its_job_waits_gets_the_newest_metadata(tmp_path: Path) -> None:
    with simulated(tmp_path, SCENES) as sims:
        synced(sims)
        sid = scene_with(sims)
        key = sims.snapshot(sid).rating_key
        sims.stash_sim.update_scene(sid, title="First edit", details="Written first.")
        sims.app.queue.enqueue(sid)  # what the Stash hook does on an update
        # Plex fails the item's read once: the job goes back to wait, holding nothing.
        sims.plex_sim.faults.add(Fault(path=rf"^/library/metadata/{key}$", method="GET", status=503, times=1))
        worker = sims.worker()
        first = worker.run_once()
        assert first is not None
        assert first.kind is OutcomeKind.RETRY
        # Meanwhile the scene changes again in Stash (and the hook enqueues it again).
        sims.stash_sim.update_scene(sid, title="Second edit", details="Written while the job waited.")
        sims.app.queue.enqueue(sid)
        report = worker.drain()

        assert dict(report.outcomes) == {"synced": 1}
        snapshot = sims.snapshot(sid)
        assert snapshot.title == "Second edit"
        assert snapshot.values["summary"] == "Written while the job waited."
        assert sims.differences(sid) == []
        assert sims.app.queue.counts().pending == 0


def test_tags_and_performers_removed_in_stash_disappear_from_plex(tmp_path: Path) -> None:
    with simulated(tmp_path, SCENES) as sims:
        assert sims.plex_sim.tag_mode == "append"  # like PMS: an indexed tag edit only adds
        synced(sims)
        sid = scene_with(sims, tags=3, performers=2)
        scene = sims.stash_sim.scene(sid)
        kept_tag, *dropped_tags = scene.tag_ids
        kept_performer, *dropped_performers = scene.performer_ids
        before = sims.snapshot(sid)
        assert len(before.tags["genre"]) == len(scene.tag_ids)
        assert len(before.tags["actor"]) == len(scene.performer_ids)

        sims.stash_sim.update_scene(sid, tag_ids=[kept_tag], performer_ids=[kept_performer])
        sims.app.queue.enqueue(sid)
        sims.worker().drain()

        after = sims.snapshot(sid)
        assert after.tags["genre"] == (sims.stash_sim.tag(kept_tag).name,)
        assert after.tags["actor"] == (sims.stash_sim.performer(kept_performer).name,)
        for gone in dropped_tags:
            assert sims.stash_sim.tag(gone).name not in after.tags["genre"]
        for gone in dropped_performers:
            assert sims.stash_sim.performer(gone).name not in after.tags.get("actor", ())
        assert sims.differences(sid) == []


def test_a_tag_renamed_in_stash_is_renamed_in_plex(tmp_path: Path) -> None:
    with simulated(tmp_path, SCENES) as sims:
        synced(sims)
        sid = scene_with(sims, tags=1)
        tag_id = sims.stash_sim.scene(sid).tag_ids[0]
        old = sims.stash_sim.tag(tag_id).name
        users = [str(s.id) for s in sims.stash_sim.scenes if tag_id in s.tag_ids and str(s.id) in set(sims.owners())]
        sims.stash_sim.rename_tag(tag_id, "Umbenannt \u2013 Ñew")  # no scene's updated_at moves
        sims.enqueue(users)
        sims.worker().drain()
        for user in users:
            genres = sims.snapshot(user).tags["genre"]
            assert "Umbenannt \u2013 Ñew" in genres
            assert old not in genres
        assert sims.out_of_step(users) == {}


def test_a_file_not_yet_in_plex_is_synced_after_the_scan_the_worker_asked_for(tmp_path: Path) -> None:
    with simulated(tmp_path, SCENES) as sims:
        synced(sims)
        relative = "Nouveau Studio/Film ünïcode \u2013 東京 (2026).mp4"
        new = sims.stash_sim.add_scene(f"{STASH_ROOT}/{relative}", title="Nouveau film", details="Just scanned.")
        sims.plex_sim.stage_file(f"{PLEX_ROOT}/{relative}")  # on disk, not yet scanned by Plex
        assert sims.plex_sim.item_by_path(f"{PLEX_ROOT}/{relative}") is None
        sims.app.queue.enqueue(str(new.id))

        worker = sims.worker()
        first = worker.run_once()
        assert first is not None
        assert first.kind is OutcomeKind.RETRY
        assert first.error_class == "NotInPlexYetError"
        assert [(s.path, s.force) for s in sims.plex_sim.scans] == [(f"{PLEX_ROOT}/Nouveau Studio", False)]

        report = worker.drain()
        assert dict(report.outcomes) == {"synced": 1}
        assert sims.differences(str(new.id)) == []
        assert sims.snapshot(str(new.id)).title == "Nouveau film"
        assert len(sims.plex_sim.scans) == 1  # asked once per folder
        assert worker.stats.totals().scans_requested == 1
        assert sims.app.queue.dead_letters() == []


def test_an_edit_that_keeps_the_cover_downloads_no_poster_and_a_new_cover_reaches_plex(tmp_path: Path) -> None:
    """Every edit changes the screenshot URL (``?t=updated_at``); only a new cover changes its bytes."""
    with simulated(tmp_path, SCENES) as sims:
        synced(sims)
        sid = scene_with(sims)
        key = sims.snapshot(sid).rating_key
        uploads = rf"^/library/metadata/{key}/posters$"
        screenshot = rf"^/scene/{sid}/screenshot$"
        posted = sims.plex_sim.requests.count("POST", uploads)

        sims.stash_sim.advance_time(2)  # a later second: Stash's ``updated_at`` has second precision
        sims.stash_sim.update_scene(sid, title="Retitled, same cover")
        sims.stash_sim.requests.clear()
        sims.app.queue.enqueue(sid)
        worker = sims.worker()
        assert dict(worker.drain().outcomes) == {"synced": 1}
        (asked,) = [r for r in sims.stash_sim.requests.all() if r.path == f"/scene/{sid}/screenshot"]
        assert asked.headers.get("If-None-Match")  # asked with the cover's ETag: 304, no bytes
        assert worker.stats.totals().posters_not_modified == 1
        assert sims.plex_sim.requests.count("POST", uploads) == posted  # nothing uploaded again
        assert sims.snapshot(sid).title == "Retitled, same cover"
        assert sims.differences(sid) == []

        sims.stash_sim.advance_time(2)
        sims.stash_sim.update_scene(sid, cover=image_bytes("a cover chosen in Stash"))
        sims.app.queue.enqueue(sid)
        worker = sims.worker()
        assert dict(worker.drain().outcomes) == {"synced": 1}
        assert worker.stats.totals().posters_not_modified == 1  # the same count: this one changed
        assert sims.stash_sim.requests.count("GET", screenshot) == 2
        assert sims.plex_sim.requests.count("POST", uploads) == posted + 1
        assert sims.differences(sid) == []  # Plex shows the new cover
