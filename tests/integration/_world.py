"""Both simulators, the real plexapi and stashapi gateways, and the SQLite queue and state.

Stash keeps its files under ``/data/library`` and Plex sees them under ``/media/library``
(one path rule), both seeded from the same generated library, so every sync goes through
path mapping, unicode names, two-version scenes and stacked two-part films. Nothing here
mocks plexapi, stashapi or requests: every call crosses HTTP on the loopback interface.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs

from stash2plex_backends.simulators.plex import ItemSnapshot
from stash2plex_backends.simulators.plex import PlexSimulator
from stash2plex_backends.simulators.stash import StashSimulator
from stash2plex_core import build_app
from stash2plex_core.app import App
from stash2plex_core.clocks import ManualClock
from stash2plex_core.models.matching import PathRule
from stash2plex_core.models.plex import SCALAR_ATTRS
from stash2plex_core.models.plex import TAG_ATTRS
from stash2plex_core.models.plex import DesiredPlexState
from stash2plex_core.models.plex import scalar_from_plex
from stash2plex_core.models.plex import scalar_to_plex
from stash2plex_core.plugin import build_registry
from stash2plex_core.services.mapping import desired_state
from stash2plex_core.services.worker import SyncWorker
from stash2plex_core.settings import Secret
from stash2plex_core.settings import Settings
from tests.conftest import BACKEND_PLUGINS


STASH_ROOT = "/data/library"
PLEX_ROOT = "/media/library"
SEED = 23
TOKEN = "integration-plex-token-9d2f"
KEY = "integration-stash-key-41ac"
RULE = PathRule(
    name="library",
    stash_pattern=r"/data/library/(?P<rest>.+)",
    plex_template="/media/library/{rest}",
    plex_pattern=r"/media/library/(?P<rest>.+)",
    stash_template="/data/library/{rest}",
    samples=("/data/library/Studio/file.mp4",),
)
#: Network timeouts for every test (the HTTP traffic is real, on the loopback interface).
TIMEOUTS: dict[str, Any] = {
    "plex_connect_timeout": 1.0,
    "plex_read_timeout": 5.0,
    "stash_timeout": 5.0,
    "plex_concurrency": 4,
}
#: Only for tests on the system clock: short retries, probes and ramp so they finish
#: quickly. A test that passes a ManualClock keeps the real schedules (5 s -> 60 s probes,
#: a 60 s ramp), since its waits take no time.
FAST_SCHEDULE: dict[str, Any] = {
    "retry_base_seconds": 0.05,
    "retry_max_seconds": 0.5,
    "not_in_plex_retry_seconds": 1.0,
    "not_in_plex_retry_max_seconds": 1.0,
    "breaker_probe_base_seconds": 0.2,
    "breaker_probe_max_seconds": 0.5,
    "breaker_half_open_probe_seconds": 0.1,
    "ramp_window_seconds": 1.0,
    "ramp_full_rate": 500.0,
}
FAST: dict[str, Any] = {**TIMEOUTS, **FAST_SCHEDULE}


def plex_path(stash_path: str) -> str:
    return PLEX_ROOT + stash_path[len(STASH_ROOT) :]


@attrs.define
class Sims:
    """One seeded library served by both simulators, and an app wired to them."""

    stash_sim: StashSimulator
    plex_sim: PlexSimulator
    settings: Settings
    app: App

    def worker(self, seed: int = 0, **kwargs: Any) -> SyncWorker:
        return SyncWorker.from_app(self.app, rng=random.Random(seed), **kwargs)

    def scene_ids(self) -> list[str]:
        return [str(s.id) for s in self.stash_sim.scenes]

    def enqueue(self, ids: Iterable[str] | None = None) -> list[str]:
        chosen = list(self.scene_ids() if ids is None else ids)
        self.app.queue.enqueue_many(chosen)
        return chosen

    def secondary_parts(self) -> set[str]:
        """Scenes of the second part of a stacked film (the first part's scene speaks for the item)."""
        return {
            str(s.id)
            for s in self.stash_sim.library.scenes
            if s.stack_key is not None and s.files[0].path.endswith(" - part2.mp4")
        }

    def owners(self) -> list[str]:
        secondary = self.secondary_parts()
        return [sid for sid in self.scene_ids() if sid not in secondary]

    def desired(self, scene_id: str) -> DesiredPlexState:
        scene = self.app.stash.get_scene(scene_id)
        assert scene is not None, scene_id
        return desired_state(scene, self.settings)

    def snapshot(self, scene_id: str) -> ItemSnapshot:
        files = [f.path for f in self.stash_sim.scene(scene_id).files]
        snapshot = self.plex_sim.item_by_path(plex_path(files[0]))
        assert snapshot is not None, f"scene {scene_id}: Plex has no item for {files[0]}"
        return snapshot

    def differences(self, scene_id: str) -> list[str]:
        """How Plex's item differs from the scene's desired state (``[]`` when in step)."""
        return differences(self.desired(scene_id), self.snapshot(scene_id), self.poster_sha1(scene_id))

    def poster_sha1(self, scene_id: str) -> str:
        return hashlib.sha1(self.stash_sim.screenshot_bytes(scene_id), usedforsecurity=False).hexdigest()

    def out_of_step(self, ids: Iterable[str]) -> dict[str, list[str]]:
        found = {sid: self.differences(sid) for sid in ids}
        return {sid: diff for sid, diff in found.items() if diff}

    def plex_puts(self) -> int:
        return self.plex_sim.requests.count("PUT", r"^/library/sections/\d+/all$")

    def plex_detail_gets(self) -> int:
        """Per-item detail reads (single ratingKey), as opposed to batched confirmations."""
        return self.plex_sim.requests.count("GET", r"^/library/metadata/\d+$")


def _plex_scalar(snapshot: ItemSnapshot, field: str) -> object:
    raw = snapshot.title if field == "title" else snapshot.values.get(field)
    return scalar_from_plex(field, raw)


def differences(desired: DesiredPlexState, snapshot: ItemSnapshot, poster_sha1: str | None) -> list[str]:
    """Managed fields whose value in Plex is not the desired one, missing locks, a wrong poster."""
    meta = desired.metadata
    out: list[str] = []
    for field, attr in SCALAR_ATTRS.items():
        if field not in desired.managed_fields:
            continue
        want = scalar_from_plex(field, scalar_to_plex(field, getattr(meta, attr)))
        have = _plex_scalar(snapshot, field)
        if want != have:
            out.append(f"{field}: want {want!r}, Plex has {have!r}")
    for field, attr in TAG_ATTRS.items():
        if field not in desired.managed_fields:
            continue
        want_tags = sorted(getattr(v, "name", v) for v in getattr(meta, attr))
        have_tags = sorted(snapshot.tags.get(field, ()))
        if [t.casefold() for t in want_tags] != [t.casefold() for t in have_tags]:
            out.append(f"{field}: want {want_tags}, Plex has {have_tags}")
    if desired.lock_fields:
        unlocked = sorted(f for f in desired.managed_fields if f not in snapshot.locks and f != "year")
        if unlocked:
            out.append(f"unlocked: {unlocked}")
    if desired.poster_url is not None and snapshot.poster_sha1 != poster_sha1:
        out.append(f"poster: want {poster_sha1}, Plex has {snapshot.poster_sha1}")
    return out


@contextmanager
def simulated(
    tmp_path: Path, scenes: int, seed: int = SEED, *, clock: ManualClock | None = None, **settings: Any
) -> Iterator[Sims]:
    """Both simulators seeded alike, and an app over them with the SQLite queue and state.

    :param clock: run the app on this clock (every wait then goes through it, while the
        HTTP traffic stays real); the default schedules apply instead of :data:`FAST_SCHEDULE`.
    """
    with (
        StashSimulator(scenes, seed, STASH_ROOT, api_key=KEY) as stash_sim,
        PlexSimulator(scenes, seed, library_root=PLEX_ROOT, token=TOKEN) as plex_sim,
    ):
        chosen = Settings(
            plex_url=plex_sim.url,
            plex_token=Secret(TOKEN),
            stash_url=stash_sim.url,
            stash_api_key=Secret(KEY),
            path_rules=(RULE,),
            data_dir=str(tmp_path),
            queue_backend="sqlite",
            state_backend="sqlite",
            plex_backend="plexapi",
            stash_backend="stashapi",
            **{**(TIMEOUTS if clock is not None else FAST), **settings},
        )
        registry = build_registry(autoload=False, plugins=BACKEND_PLUGINS)
        overrides = {"clock": clock} if clock is not None else None
        with build_app(chosen, registry=registry, overrides=overrides) as app:
            yield Sims(stash_sim, plex_sim, chosen, app)


__all__ = [
    "FAST",
    "FAST_SCHEDULE",
    "KEY",
    "PLEX_ROOT",
    "RULE",
    "SEED",
    "STASH_ROOT",
    "TIMEOUTS",
    "TOKEN",
    "Sims",
    "differences",
    "simulated",
]
