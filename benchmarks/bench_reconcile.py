"""Full reconciliation of a 50,000-scene library through the real plexapi and stashapi gateways.

Prints one JSON document:

* ``library``: Stash scenes and Plex items (the Plex simulator stacks two-part films into
  one item, so it holds fewer), and the seeded divergence by gap kind;
* ``reconcile``: one full pass with repairs queued: elapsed time, requests to each side
  (from the simulators' request logs, by endpoint, poster lists included), the report's
  gateway calls and counts, and whether every seeded gap was found exactly once;
* ``baseline``: the same two listings alone (``iter_scenes`` + ``iter_items``), so the
  reconciliation's own overhead is visible whatever the machine;
* ``memory``: the client process's peak Python memory during a second (dry) pass
  (tracemalloc) and its peak RSS growth during the first;
* ``target``: every request either side saw (listings, detail batches, ``/posters`` lists
  and the rest) at most stash pages + Plex pages + divergent ÷ batch size + 10, and peak
  memory under 300 MB.

Both simulators run in a child process (like real servers), seeded with the same seed and
library root; the child also puts the library in its "synced" state (the desired metadata
applied to every Plex item in-process, our poster uploaded and locked, a sync record per
scene) before the divergence is seeded, so only the divergence needs work. Posters are on,
as by default, so a detail read of an item showing our poster costs what it costs in real
life; performer photos are off (they add no request to a reconciliation).

Usage: ``python benchmarks/bench_reconcile.py [--scenes N] [--divergence 0.02] [--seed N]``;
``--quick`` is a 2,000-scene smoke run.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import platform
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from typing import Any


KEY = "bench-stash-key"
TOKEN = "bench-plex-token"
ROOT = "/data/library"
LISTING = r"^/library/sections/\d+/all$"
DETAIL = r"^/library/metadata/[\d,]+$"
POSTERS = r"^/library/metadata/\d+/posters$"


def _settings(stash_url: str, plex_url: str) -> Any:
    from stash2plex_core.settings import Secret
    from stash2plex_core.settings import Settings

    return Settings(
        plex_url=plex_url,
        plex_token=Secret(TOKEN),
        plex_read_timeout=300.0,
        stash_url=stash_url,
        stash_api_key=Secret(KEY),
        stash_timeout=300.0,
        sync_poster=True,
        sync_performer_photos=False,
        reconcile_schedule="none",
    )


def _current(item: Any) -> Any:
    """The simulator item as the gateway would read it (a :class:`PlexItemState`)."""
    from stash2plex_backends.simulators.plex import ItemSnapshot
    from stash2plex_core.models.plex import SCALAR_ATTRS
    from stash2plex_core.models.plex import TAG_ATTRS
    from stash2plex_core.models.plex import Actor
    from stash2plex_core.models.plex import PlexItemState
    from stash2plex_core.models.plex import PlexMetadata
    from stash2plex_core.models.plex import scalar_from_plex

    snap = ItemSnapshot.of(item)
    values = {attr: scalar_from_plex(field, snap.values.get(field)) for field, attr in SCALAR_ATTRS.items()}
    tags: dict[str, Any] = {attr: tuple(snap.tags.get(field, ())) for field, attr in TAG_ATTRS.items()}
    tags["actors"] = tuple(Actor(name=n, photo_url=snap.actor_thumbs.get(n)) for n in snap.tags.get("actor", ()))
    return PlexItemState(
        rating_key=str(snap.rating_key),
        section_key=str(snap.section_id),
        metadata=PlexMetadata(**values, **tags),
        locked_fields=snap.locks,
        part_paths=snap.files,
        updated_at=snap.updated_at,
    )


def _upload_poster(state: Any, item: Any, data: bytes) -> None:
    """What ``POST /library/metadata/{rk}/posters`` does to the simulator, in-process.

    The bytes themselves are not kept (only their SHA-1, which ``/posters`` lists), so a
    50,000-item library stays small.
    """
    import hashlib

    from stash2plex_backends.simulators.plex._state import ImageEntry
    from stash2plex_backends.simulators.plex._state import now as sim_now

    sha1 = hashlib.sha1(data).hexdigest()  # Plex names uploads by SHA-1
    key = f"upload://posters/{sha1}"
    images = item.poster_set()
    images.entries.append(ImageEntry(key, sha1))
    images.selected = key
    images.stamp = max(sim_now(), images.stamp + 1)
    item.locks = (item.locks or set()) | {"thumb"}
    state.touch(item, {"thumb"})


def _sync_in_process(stash_sim: Any, plex_sim: Any, settings: Any, db_path: str) -> dict[str, Any]:
    """Give every Plex item its desired state and poster and every scene a sync record, without HTTP to Plex."""
    import datetime as dt

    from stash2plex_backends.plex._edit import edit_args
    from stash2plex_backends.simulators.plex._edits import apply_edit
    from stash2plex_backends.simulators.plex._edits import parse_edit
    from stash2plex_backends.sqlite.state import SQLiteStateStore
    from stash2plex_backends.stash import StashApiGateway
    from stash2plex_core.models.health import SyncRecord
    from stash2plex_core.serde import to_document
    from stash2plex_core.services.mapping import desired_state
    from stash2plex_core.services.mapping import digest
    from stash2plex_core.services.planning import plan

    state = plex_sim.state
    with state.lock:
        by_path = {part.file: item for item in state.items.values() for media in item.media for part in media.parts}
    stash = StashApiGateway.from_settings(settings)
    records: dict[str, dict[str, Any]] = {}
    owners: dict[str, int] = {}
    now = dt.datetime.now(dt.UTC)
    for scene in stash.iter_scenes():
        item = by_path[scene.files[0]]
        if item.media[0].parts[0].file not in scene.files:
            continue  # a later part of a stacked film: the first part's scene speaks for the item
        desired = desired_state(scene, settings)
        edit = plan(desired, _current(item), settings)
        request = parse_edit({k: [v] for k, v in edit_args(str(item.rating_key), edit).items()})
        poster = stash_sim.screenshot_bytes(scene.id) if desired.poster_url else None
        with state.lock:
            apply_edit(state, item, request, plex_sim.tag_mode)
            if poster:
                _upload_poster(state, item, poster)
        owners[scene.id] = item.rating_key
        records[scene.id] = to_document(
            SyncRecord(
                scene_id=scene.id,
                rating_key=str(item.rating_key),
                digest=digest(desired),
                stash_updated_at=scene.updated_at,
                plex_updated_at=item.updated_at,
                synced_at=now,
            )
        )
    stash.close()
    store = SQLiteStateStore(db_path)
    store.put_many("sync", records)
    store.close()
    return owners


def _diverge(stash_sim: Any, plex_sim: Any, owners: dict[str, int], share: float, seed: int) -> dict[str, int]:
    """Seed ``share`` of the library as gaps of every kind reconciliation can repair or report."""
    rng = random.Random(seed)
    total = round(len(stash_sim.library.scenes) * share)
    # Items of exactly one file, so each seeded gap concerns exactly one scene.
    single = sorted(
        (sid for sid, key in owners.items() if len(plex_sim.item(key).files) == 1),
        key=int,
    )
    chosen = rng.sample(single, total)
    plan = {
        "stash_edit": round(total * 0.3),
        "plex_edit": round(total * 0.3),
        "removed": round(total * 0.15),
        "reset": round(total * 0.1),
    }
    plan["orphan"] = total - sum(plan.values())
    cursor = 0

    def take(n: int) -> list[str]:
        nonlocal cursor
        picked = chosen[cursor : cursor + n]
        cursor += n
        return picked

    for sid in take(plan["stash_edit"]):
        scene = stash_sim.scene(sid)
        stash_sim.update_scene(sid, title=f"{scene.title} (edited)")
    for sid in take(plan["plex_edit"]):
        plex_sim.edit_item(owners[sid], fields={"summary": "Edited in Plex"})
    for sid in take(plan["removed"]):
        plex_sim.remove_item(owners[sid])
    for sid in take(plan["reset"]):
        media = plex_sim.item(owners[sid]).media
        plex_sim.remove_item(owners[sid])
        plex_sim.add_item([list(parts) for parts in media])
    for i in range(plan["orphan"]):
        plex_sim.add_item(f"{ROOT}/Orphans/only in plex {i}.mp4")
    return {
        "missing_in_plex": plan["removed"],
        "orphan_in_plex": plan["orphan"],
        "drift": plan["stash_edit"] + plan["plex_edit"] + plan["reset"],
        "stale": plan["stash_edit"],
        "low_confidence": 0,
        "divergent_items": total,
    }


def _servers(conn: Any, scenes: int, seed: int, share: float, db_path: str) -> None:
    """Child process: both simulators, synced then diverged, answering control commands."""
    from stash2plex_backends.simulators.plex import PlexSimulator
    from stash2plex_backends.simulators.stash import StashSimulator

    started = time.perf_counter()
    stash_sim = StashSimulator(scenes, seed, ROOT, api_key=KEY).start()
    plex_sim = PlexSimulator(scenes, seed, library_root=ROOT, token=TOKEN).start()
    settings = _settings(stash_sim.url, plex_sim.url)
    owners = _sync_in_process(stash_sim, plex_sim, settings, db_path)
    expected = _diverge(stash_sim, plex_sim, owners, share, seed)
    conn.send(
        {
            "stash_url": stash_sim.url,
            "plex_url": plex_sim.url,
            "stash_scenes": len(stash_sim.scenes),
            "plex_items": len(plex_sim),
            "expected": expected,
            "setup_seconds": round(time.perf_counter() - started, 1),
        }
    )
    while True:
        command = conn.recv()
        if command == "requests":
            conn.send(
                {
                    "stash": {
                        "total": len(stash_sim.requests),
                        "graphql": stash_sim.requests.count("POST", r"^/graphql$"),
                    },
                    "plex": {
                        "total": len(plex_sim.requests),
                        "listing_pages": plex_sim.requests.count("GET", LISTING),
                        "detail_batches": plex_sim.requests.count("GET", DETAIL),
                        "poster_lists": plex_sim.requests.count("GET", POSTERS),
                    },
                }
            )
        elif command == "clear":
            stash_sim.requests.clear()
            plex_sim.requests.clear()
            conn.send(None)
        elif command == "stop":
            stash_sim.stop()
            plex_sim.stop()
            conn.send(None)
            return


class Remote:
    def __init__(self, scenes: int, seed: int, share: float, db_path: str) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_servers, args=(child, scenes, seed, share, db_path), daemon=True)
        self.process.start()
        self.info: dict[str, Any] = self.conn.recv()

    def call(self, command: str) -> Any:
        self.conn.send(command)
        return self.conn.recv()

    def stop(self) -> None:
        self.call("stop")
        self.process.join(30)


def _reconciler(settings: Any, db_path: str) -> Any:
    from stash2plex_backends.plex import PlexApiGateway
    from stash2plex_backends.sqlite.queue import SQLiteQueue
    from stash2plex_backends.sqlite.state import SQLiteStateStore
    from stash2plex_backends.stash import StashApiGateway
    from stash2plex_core.clocks import SystemClock
    from stash2plex_core.services.reconcile import Reconciler

    clock = SystemClock()
    return Reconciler(
        settings=settings,
        plex=PlexApiGateway.from_settings(settings, clock=clock),
        stash=StashApiGateway.from_settings(settings),
        state=SQLiteStateStore(db_path, clock),
        queue=SQLiteQueue(db_path, clock),
        clock=clock,
    )


def _close(reconciler: Any) -> None:
    for adapter in (reconciler.plex, reconciler.stash, reconciler.state, reconciler.queue):
        adapter.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=50_000)
    parser.add_argument("--divergence", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="a 2,000-scene smoke run")
    args = parser.parse_args()
    if args.quick:
        args.scenes = 2_000

    from stash2plex_backends.plex import PlexApiGateway
    from stash2plex_backends.stash import StashApiGateway
    from stash2plex_core.services.reconcile import report_to_json

    with tempfile.TemporaryDirectory() as tmp:
        db_path = os.path.join(tmp, "stash2plex.db")
        remote = Remote(args.scenes, args.seed, args.divergence, db_path)
        try:
            info = remote.info
            settings = _settings(info["stash_url"], info["plex_url"])

            # 1. The real thing: a full pass that queues its repairs.
            reconciler = _reconciler(settings, db_path)
            remote.call("clear")
            rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            started = time.perf_counter()
            report = reconciler.run("full")
            elapsed = time.perf_counter() - started
            rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            requests = remote.call("requests")
            queued = reconciler.queue.counts().ready
            _close(reconciler)

            # 2. Baseline: the two listings alone, through fresh gateways.
            stash = StashApiGateway.from_settings(settings)
            plex = PlexApiGateway.from_settings(settings, clock=reconciler.clock)
            remote.call("clear")
            started = time.perf_counter()
            listed_scenes = sum(1 for _ in stash.iter_scenes())
            listed_items = sum(1 for _ in plex.iter_items())
            baseline_seconds = time.perf_counter() - started
            baseline_requests = remote.call("requests")
            stash.close()
            plex.close()

            # 3. Peak Python memory of a (dry) pass under tracemalloc.
            reconciler = _reconciler(settings, db_path)
            tracemalloc.start()
            dry = reconciler.run("full", dry_run=True)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            _close(reconciler)
        finally:
            remote.stop()

    expected = dict(info["expected"])
    divergent = expected.pop("divergent_items")
    batch = settings.reconcile_batch_size
    target_requests = (
        math.ceil(info["stash_scenes"] / StashApiGateway.default_page_size)
        + math.ceil(info["plex_items"] / PlexApiGateway.PAGE_SIZE)
        + math.ceil(divergent / batch)
        + 10
    )
    # Everything either side saw, poster lists included (a detail read of an item that shows
    # our poster must not cost one more request per item).
    made = requests["stash"]["total"] + requests["plex"]["total"]
    plex_parts = {k: v for k, v in requests["plex"].items() if k != "total"}
    plex_other = requests["plex"]["total"] - sum(plex_parts.values())
    peak_mb = peak / 2**20
    rss_mb = (rss_after - rss_before) / 1024 if sys.platform != "darwin" else (rss_after - rss_before) / 2**20
    found = {kind: report.counts[kind] for kind in expected}
    print(
        json.dumps(
            {
                "benchmark": "reconcile",
                "python": platform.python_version(),
                "library": {
                    "stash_scenes": info["stash_scenes"],
                    "plex_items": info["plex_items"],
                    "divergence": args.divergence,
                    "divergent_items": divergent,
                    "seeded_gaps": expected,
                    "setup_seconds": info["setup_seconds"],
                },
                "reconcile": {
                    "seconds": round(elapsed, 2),
                    "requests": requests,
                    "requests_total": made,
                    "plex_other_requests": plex_other,
                    "report_gateway_calls": report_to_json(report)["calls"],
                    "counts": found,
                    "drift_fields": dict(report.drift_fields),
                    "found_exactly_as_seeded": found == expected,
                    "unchanged_without_detail_read": report.unchanged,
                    "stacked_parts": report.stacked_parts,
                    "repairs_queued": queued,
                    "dry_run_counts_equal": dict(dry.counts) == dict(report.counts),
                },
                "baseline": {
                    "listings_seconds": round(baseline_seconds, 2),
                    "scenes": listed_scenes,
                    "items": listed_items,
                    "requests": baseline_requests,
                    "reconcile_over_listings": round(elapsed / baseline_seconds, 2) if baseline_seconds else None,
                },
                "memory": {
                    "tracemalloc_peak_mb": round(peak_mb, 1),
                    "rss_growth_mb": round(rss_mb, 1),
                },
                "target": {
                    "requests_max": target_requests,
                    "requests_counted": made,
                    "poster_requests_counted": requests["plex"]["poster_lists"],
                    "requests_ok": made <= target_requests,
                    "peak_mb_max": 300,
                    "memory_ok": max(peak_mb, rss_mb) < 300,
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
