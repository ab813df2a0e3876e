"""PlexPathIndex: built from listings, persisted, refreshed incrementally; with the memory fake
and with the plexapi gateway against the simulator."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from stash2plex_backends.memory import MemoryPlex
from stash2plex_backends.memory import MemoryStateStore
from stash2plex_backends.simulators.plex import PlexSimulator
from stash2plex_core.clocks import ManualClock
from stash2plex_core.models.plex import PlexEdit
from stash2plex_core.models.plex import PlexItemRef
from stash2plex_core.models.plex import PlexMetadata
from stash2plex_core.services.plexindex import NAMESPACE
from stash2plex_core.services.plexindex import PlexPathIndex
from tests.plex.world import ROOT
from tests.plex.world import TOKEN
from tests.plex.world import SimulatorPlexWorld
from tests.plex.world import gateway_for


class _Memory:
    def __init__(self) -> None:
        self.gateway = MemoryPlex(section_root=ROOT)
        self.root = ROOT

    def add_item(self, paths: list[str], metadata: PlexMetadata | None = None) -> str:
        return self.gateway.add_item(paths, metadata).rating_key

    def stage(self, path: str) -> None:
        self.gateway.stage(path)

    def remove(self, key: str) -> None:
        self.gateway.remove_item(key)


class _Simulated(SimulatorPlexWorld):
    def remove(self, key: str) -> None:
        self.sim.remove_item(int(key))


@pytest.fixture(params=["memory", "plexapi"])
def world(request: pytest.FixtureRequest) -> Iterator[_Memory | _Simulated]:
    if request.param == "memory":
        yield _Memory()
        return
    with PlexSimulator(library_root=ROOT, token=TOKEN) as sim:
        gateway = gateway_for(sim)
        yield _Simulated(sim, gateway)
        gateway.close()


@pytest.fixture
def store(clock: ManualClock) -> MemoryStateStore:
    return MemoryStateStore(clock)


def _index(world: _Memory | _Simulated, store: MemoryStateStore, clock: ManualClock, **kwargs: object) -> PlexPathIndex:
    return PlexPathIndex(world.gateway, store, clock, **kwargs)  # type: ignore[arg-type]


def test_build_indexes_every_part_and_persists(
    world: _Memory | _Simulated, store: MemoryStateStore, clock: ManualClock
) -> None:
    a = world.add_item([f"{ROOT}/a/one.mp4", f"{ROOT}/a/one - 4k.mp4"])
    b = world.add_item([f"{ROOT}/b/Two.mp4"])
    index = _index(world, store, clock, bucket_items=1)
    update = index.rebuild()
    assert (update.full, update.listed, update.size) == (True, 2, 2)
    assert [r.rating_key for r in index.lookup(f"{ROOT}/a/one - 4k.mp4")] == [a]
    assert index.lookup(f"{ROOT}/b/two.mp4") == []  # exact, case included
    assert [r.rating_key for r in index.find_by_filename("TWO.mp4")] == [b]
    assert index.watermark is not None
    assert sorted(store.keys(NAMESPACE)) == ["bucket-0000", "bucket-0001", "meta"]
    # A new process reads the index back without asking Plex.
    again = _index(world, store, clock)
    assert [r.rating_key for r in again.lookup(f"{ROOT}/a/one.mp4")] == [a]
    assert len(again) == 2
    assert again.watermark == index.watermark


def test_resolve_falls_back_to_plex_and_remembers_hits_only(
    world: _Memory | _Simulated, store: MemoryStateStore, clock: ManualClock
) -> None:
    index = _index(world, store, clock)
    index.rebuild()
    path = f"{ROOT}/late/new.mp4"
    assert index.resolve(path) == []
    key = world.add_item([path])
    assert [r.rating_key for r in index.resolve(path)] == [key]
    assert [r.rating_key for r in _index(world, store, clock).lookup(path)] == [key]


def test_refresh_picks_up_new_and_changed_items(
    world: _Memory | _Simulated, store: MemoryStateStore, clock: ManualClock
) -> None:
    old = world.add_item([f"{ROOT}/r/old.mp4"], PlexMetadata(title="old"))
    index = _index(world, store, clock)
    index.rebuild()
    new = world.add_item([f"{ROOT}/r/new.mp4"])
    world.gateway.apply(old, PlexEdit(fields={"title": "renamed"}))
    update = index.refresh()
    assert not update.full
    assert update.changed >= 2
    assert [r.rating_key for r in index.lookup(f"{ROOT}/r/new.mp4")] == [new]
    assert [r.title for r in index.lookup(f"{ROOT}/r/old.mp4")] == ["renamed"]
    stored = _index(world, store, clock)
    assert [r.title for r in stored.lookup(f"{ROOT}/r/old.mp4")] == ["renamed"]
    assert [r.rating_key for r in stored.lookup(f"{ROOT}/r/new.mp4")] == [new]


def test_forget_and_rebuild_drop_items_plex_no_longer_has(
    world: _Memory | _Simulated, store: MemoryStateStore, clock: ManualClock
) -> None:
    gone = world.add_item([f"{ROOT}/d/gone.mp4"])
    stays = world.add_item([f"{ROOT}/d/stays.mp4"])
    index = _index(world, store, clock)
    index.rebuild()
    world.remove(gone)
    assert index.refresh().removed == 0  # an incremental walk cannot see deletions
    assert index.forget(gone)
    assert not index.forget(gone)
    assert index.lookup(f"{ROOT}/d/gone.mp4") == []
    assert _index(world, store, clock).lookup(f"{ROOT}/d/gone.mp4") == []
    index.remember([*world.gateway.resolve_path(f"{ROOT}/d/stays.mp4")])
    update = index.rebuild()
    assert (update.size, update.removed) == (1, 0)
    assert [r.rating_key for r in index.refs()] == [stays]


def test_refresh_builds_when_empty_and_when_the_build_is_old(
    world: _Memory | _Simulated, store: MemoryStateStore, clock: ManualClock
) -> None:
    world.add_item([f"{ROOT}/o/x.mp4"])
    index = _index(world, store, clock, full_every=dt.timedelta(days=1))
    assert index.refresh().full
    assert not index.refresh().full
    clock.advance(dt.timedelta(days=1).total_seconds())
    assert index.refresh().full


def test_moved_files_leave_no_stale_paths(store: MemoryStateStore, clock: ManualClock) -> None:
    plex = MemoryPlex(section_root=ROOT)
    ref = plex.add_item([f"{ROOT}/m/before.mp4"])
    index = PlexPathIndex(plex, store, clock)
    index.rebuild()
    moved = PlexItemRef(ref.rating_key, ref.section_key, ref.title, (f"{ROOT}/m/after.mp4",), 10**10)
    index.remember([moved])
    assert index.lookup(f"{ROOT}/m/before.mp4") == []
    assert index.lookup(f"{ROOT}/m/after.mp4") == [moved]
    assert index.find_by_filename("before.mp4") == []


def test_rebuild_shrinks_the_stored_buckets(store: MemoryStateStore, clock: ManualClock) -> None:
    plex = MemoryPlex(section_root=ROOT)
    refs = [plex.add_item([f"{ROOT}/s/{i}.mp4"]) for i in range(9)]
    index = PlexPathIndex(plex, store, clock, bucket_items=3)
    index.rebuild()
    assert len(store.keys(NAMESPACE)) == 4
    for ref in refs[3:]:
        plex.remove_item(ref.rating_key)
    assert index.rebuild().removed == 6
    assert sorted(store.keys(NAMESPACE)) == ["bucket-0000", "meta"]
    assert len(PlexPathIndex(plex, store, clock)) == 3
