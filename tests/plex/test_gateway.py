"""The plexapi gateway against the simulated PMS: request budgets and the behaviours behind them.

Every test drives the real plexapi over HTTP; counts come from the simulator's request log.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest
import requests

from stash2plex_backends.memory import MemoryStateStore
from stash2plex_backends.plex import PlexApiGateway
from stash2plex_backends.simulators.plex import PlexSimulator
from stash2plex_core.clocks import ManualClock
from stash2plex_core.errors import ConfigurationError
from stash2plex_core.errors import NotFoundError
from stash2plex_core.models.plex import Actor
from stash2plex_core.models.plex import ImageKind
from stash2plex_core.models.plex import ImageUpload
from stash2plex_core.models.plex import PlexEdit
from stash2plex_core.models.plex import TagEdit
from stash2plex_core.models.stash import StashPerformer
from stash2plex_core.models.stash import StashScene
from stash2plex_core.models.stash import StashStudio
from stash2plex_core.models.stash import StashTag
from stash2plex_core.services.mapping import desired_state
from stash2plex_core.services.planning import plan
from stash2plex_core.services.plexindex import PlexPathIndex
from stash2plex_core.settings import Secret
from stash2plex_core.settings import Settings
from tests.plex.world import ROOT
from tests.plex.world import TOKEN
from tests.plex.world import gateway_for


PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cf00000301010018dd8db00000000049454e44ae426082"
)
DETAIL = r"^/library/metadata/\d+(,\d+)*$"
LISTING = r"^/library/sections/\d+/all$"


def _warm(gateway: PlexApiGateway, sim: PlexSimulator) -> None:
    """Connect and read the sections once (a per-process cost), then forget those requests."""
    gateway.sections()
    sim.requests.clear()


def _change() -> PlexEdit:
    return PlexEdit(
        fields={"title": "From Stash", "summary": "Details", "studio": "Studio"},
        tags={
            "genre": TagEdit(values=("A", "B")),
            "actor": TagEdit(values=("Jane",), photos={"Jane": "http://stash.local/performer/1/image"}),
        },
        locks={"title": True, "genre": True},
    )


# -- building and registering --------------------------------------------------------------------


def test_from_settings_does_not_connect(sim: PlexSimulator, clock: ManualClock) -> None:
    settings = Settings(plex_url=sim.url, plex_token=Secret(TOKEN), plex_connect_timeout=1.5, plex_read_timeout=4.0)
    gateway = PlexApiGateway.from_settings(settings, clock=clock)
    assert len(sim.requests) == 0
    assert TOKEN not in repr(gateway)
    assert gateway.ping().name == "stash2plex-sim"
    gateway.close()


def test_registered_as_the_recommended_plex_backend(registry) -> None:
    assert "plexapi" in registry.ids("plex")
    assert PlexApiGateway.priority == 10
    assert PlexApiGateway.viable()


def test_importing_the_backend_does_not_import_plexapi_or_requests() -> None:
    code = (
        "import sys, stash2plex_backends.plex, stash2plex_backends.plex.plugin\n"
        "print(sorted(m for m in ('plexapi', 'requests', 'tenacity') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_missing_url_is_a_configuration_error_on_first_use(clock: ManualClock) -> None:
    gateway = PlexApiGateway(None, None, clock=clock)
    with pytest.raises(ConfigurationError, match="plex_url"):
        gateway.ping()


def test_requests_carry_a_stable_client_identity(sim: PlexSimulator, clock: ManualClock) -> None:
    first, second = gateway_for(sim, clock), gateway_for(sim, clock)
    first.ping()
    second.ping()
    identifiers = {r.headers["X-Plex-Client-Identifier"] for r in sim.requests.all()}
    assert len(identifiers) == 1
    assert identifiers.pop().startswith("stash2plex-")
    assert {r.headers["X-Plex-Product"] for r in sim.requests.all()} == {"stash2plex"}
    assert all(r.headers["X-Plex-Token"] == TOKEN for r in sim.requests.all())
    assert all("X-Plex-Token" not in r.query for r in sim.requests.all())


def test_ping_uses_identity_and_connects_once(sim: PlexSimulator, gateway: PlexApiGateway) -> None:
    info = gateway.ping()
    gateway.ping()
    assert info.machine_identifier == sim.state.machine_identifier
    assert sim.requests.count("GET", r"^/$") == 1
    assert sim.requests.count("GET", r"^/identity$") == 2


def test_sections_filtered_by_settings(sim: PlexSimulator, clock: ManualClock) -> None:
    other = sim.add_section("Other", ["/data/other"])
    assert {s.key for s in gateway_for(sim, clock).sections()} == {str(sim.section_id), str(other)}
    assert [s.title for s in gateway_for(sim, clock, sections=("Other",)).sections()] == ["Other"]
    assert [s.key for s in gateway_for(sim, clock, sections=(str(sim.section_id),)).sections()] == ["1"]
    with pytest.raises(ConfigurationError, match=r"'Nope'.*'Stash' \(1\)"):
        gateway_for(sim, clock, sections=("Nope",)).sections()


# -- request budgets -----------------------------------------------------------------------------


def test_resolve_then_apply_costs_one_listing_one_detail_and_one_put(
    sim: PlexSimulator, gateway: PlexApiGateway
) -> None:
    path = f"{ROOT}/Studio/scene.mp4"
    for i in range(30):  # neighbours the loose file= filter also returns
        sim.add_item(f"{ROOT}/Studio/neighbour {i:02d}.mp4")
    key = str(sim.add_item(path))
    _warm(gateway, sim)
    (ref,) = gateway.resolve_path(path)
    current = gateway.get_item(ref.rating_key)
    assert current.images == {}
    gateway.apply(key, _change())
    assert sim.requests.count("GET", LISTING) == 1
    assert sim.requests.count("GET", DETAIL) == 1
    assert sim.requests.count("PUT") == 1
    assert sim.requests.count("POST") == 0
    assert len(sim.requests) == 3
    put = next(r for r in sim.requests.all() if r.method == "PUT")
    assert put.path == f"/library/sections/{sim.section_id}/all"
    assert put.query["id"] == [key]
    snapshot = sim.item(int(key))
    assert snapshot.title == "From Stash"
    assert snapshot.tags["genre"] == ("A", "B")
    assert snapshot.actor_thumbs == {"Jane": "http://stash.local/performer/1/image"}
    assert {"title", "genre"} <= snapshot.locks


def test_apply_with_a_new_poster_adds_exactly_one_upload(sim: PlexSimulator, gateway: PlexApiGateway) -> None:
    key = str(sim.add_item(f"{ROOT}/poster.mp4"))
    _warm(gateway, sim)
    gateway.get_item(key)
    sha1 = hashlib.sha1(PNG).hexdigest()
    gateway.apply(key, PlexEdit(fields={"title": "T"}, images=(ImageUpload(ImageKind.POSTER, PNG, sha1),)))
    assert [r.method for r in sim.requests.all()] == ["GET", "PUT", "POST"]
    post = sim.requests.all()[-1]
    assert (post.path, post.body) == (f"/library/metadata/{key}/posters", PNG)
    assert sim.item(int(key)).poster_sha1 == sha1


def test_index_hit_then_apply_costs_one_detail_and_one_put(sim: PlexSimulator, gateway: PlexApiGateway) -> None:
    paths = [f"{ROOT}/idx/{i}.mp4" for i in range(20)]
    keys = [str(sim.add_item(p)) for p in paths]
    index = PlexPathIndex(gateway, MemoryStateStore(ManualClock()), ManualClock())
    index.rebuild()
    sim.requests.clear()
    (ref,) = index.resolve(paths[7])
    assert ref.rating_key == keys[7]
    gateway.get_item(ref.rating_key)
    gateway.apply(ref.rating_key, _change())
    assert [(r.method, r.path) for r in sim.requests.all()] == [
        ("GET", f"/library/metadata/{keys[7]}"),
        ("PUT", f"/library/sections/{sim.section_id}/all"),
    ]


def _scene(path: str, **changes: object) -> StashScene:
    values: dict[str, object] = {
        "id": "7",
        "title": "Été à Paris",
        "details": "Line one\nLine two",
        "date": "2021-03-04",
        "rating100": 80,
        "studio": StashStudio("1", "Café Noir"),
        "performers": (StashPerformer("1", "Zoë", "http://stash.local/performer/1/image"), StashPerformer("2", "Bo")),
        "tags": (StashTag("1", "Outdoor"), StashTag("2", "Drama, mit Komma")),
        "files": (path,),
        "screenshot_url": "http://stash.local/scene/7/screenshot",
    }
    values.update(changes)
    return StashScene(**values)  # type: ignore[arg-type]


def test_an_unchanged_item_costs_no_put_and_no_upload(sim: PlexSimulator, gateway: PlexApiGateway) -> None:
    """The real planner, fed what the gateway reads back, plans nothing: no PUT, no POST."""
    path = f"{ROOT}/same.mp4"
    key = str(sim.add_item(path, tags={"genre": ["Stale"]}))
    settings = Settings()
    desired = desired_state(_scene(path), settings)
    first = plan(desired, gateway.get_item(key), settings, poster=PNG)
    assert first.needs_put  # real work first, so the second plan is a real check
    assert first.images
    gateway.apply(key, first)
    sim.requests.clear()
    again = plan(desired, gateway.get_item(key), settings, poster=PNG)
    gateway.apply(key, again)
    assert sim.requests.count("PUT") == 0
    assert sim.requests.count("POST") == 0
    assert [(r.method, r.path) for r in sim.requests.all()] == [("GET", f"/library/metadata/{key}")]
    # Another process knows nothing of our upload: one list read to learn the hash, still no writes.
    other = gateway_for(sim, ManualClock())
    sim.requests.clear()
    other.apply(key, plan(desired, other.get_item(key), settings, poster=PNG))
    assert sim.requests.count("PUT") == 0
    assert sim.requests.count("POST") == 0
    assert sim.requests.count("GET", rf"^/library/metadata/{key}/posters$") == 1
    other.close()


@pytest.mark.parametrize("tag_mode", ["append", "replace"])
def test_planned_tag_edits_converge_whichever_way_plex_applies_them(
    sim: PlexSimulator, gateway: PlexApiGateway, tag_mode: str
) -> None:
    """Why there is no tag-mode setting: the full list plus explicit removals is right for both."""
    sim.tag_mode = tag_mode  # type: ignore[assignment]
    path = f"{ROOT}/tags.mp4"
    key = str(sim.add_item(path, tags={"genre": ["Old", "Outdoor"], "actor": ["Gone", "Bo"]}))
    settings = Settings()
    desired = desired_state(_scene(path), settings)
    gateway.apply(key, plan(desired, gateway.get_item(key), settings))
    item = sim.item(int(key))
    assert set(item.tags["genre"]) == {"Outdoor", "Drama, mit Komma"}
    assert set(item.tags["actor"]) == {"Zoë", "Bo"}
    assert plan(desired, gateway.get_item(key), settings).empty


def test_a_batched_read_costs_one_request_per_batch_however_many_posters_are_locked(
    sim: PlexSimulator, clock: ManualClock
) -> None:
    """Reconciliation's detail read: no per-item ``/posters`` GET, even in a fresh process."""
    keys = [str(sim.add_item(f"{ROOT}/locked/{i:03d}.mp4")) for i in range(150)]
    uploader = gateway_for(sim, clock)
    sha1 = hashlib.sha1(PNG).hexdigest()
    for key in keys:
        uploader.apply(key, PlexEdit(images=(ImageUpload(ImageKind.POSTER, PNG, sha1),)))
    uploader.close()
    assert all("thumb" in sim.item(int(k)).locks for k in keys)
    fresh = gateway_for(sim, clock)
    _warm(fresh, sim)
    items = fresh.get_items(keys)
    assert len(sim.requests) == 2  # 150 ids: batches of 100 and 50, nothing else
    assert sim.requests.count("GET", DETAIL) == 2
    assert [i.rating_key for i in items] == keys
    assert all(ImageKind.POSTER in i.images for i in items)  # a poster is shown: no poster drift
    assert {i.images[ImageKind.POSTER].sha1 for i in items} == {""}  # hash not read
    # The item an upload is decided for is hashed on demand: one list read, once.
    hashed = fresh.with_image_hashes(items[0])
    assert hashed.images[ImageKind.POSTER].sha1 == sha1
    assert fresh.with_image_hashes(hashed) is hashed
    assert sim.requests.count("GET", r"^/library/metadata/\d+/posters$") == 1
    fresh.close()


def test_an_upload_planned_from_a_batched_read_is_not_sent_twice(sim: PlexSimulator, clock: ManualClock) -> None:
    key = str(sim.add_item(f"{ROOT}/twice.mp4"))
    sha1 = hashlib.sha1(PNG).hexdigest()
    gateway_for(sim, clock).apply(key, PlexEdit(images=(ImageUpload(ImageKind.POSTER, PNG, sha1),)))
    fresh = gateway_for(sim, clock)
    (item,) = fresh.get_items([key, "999999"])
    settings = Settings()
    desired = desired_state(_scene(f"{ROOT}/twice.mp4"), settings)
    unhashed = plan(desired, item, settings, poster=PNG)
    assert unhashed.images  # the planner cannot tell from an unhashed fingerprint
    sim.requests.clear()
    fresh.apply(key, unhashed)
    assert sim.requests.count("POST") == 0  # the gateway read the list and saw the same image
    assert sim.requests.count("GET", rf"^/library/metadata/{key}/posters$") == 1
    other = PNG + b"\0"
    fresh.apply(key, PlexEdit(images=(ImageUpload(ImageKind.POSTER, other, hashlib.sha1(other).hexdigest()),)))
    assert sim.requests.count("POST") == 1
    assert sim.item(int(key)).poster_sha1 == hashlib.sha1(other).hexdigest()
    fresh.close()


def test_poster_fingerprint_costs_one_list_read_per_foreign_image_url(
    sim: PlexSimulator, gateway: PlexApiGateway
) -> None:
    key = str(sim.add_item(f"{ROOT}/fp.mp4"))
    posters = rf"^/library/metadata/{key}/posters$"
    assert gateway.get_item(key).images == {}  # thumb not locked: nothing of ours to look for
    assert sim.requests.count("GET", posters) == 0
    sha1 = hashlib.sha1(PNG).hexdigest()
    gateway.apply(key, PlexEdit(images=(ImageUpload(ImageKind.POSTER, PNG, sha1),)))
    assert gateway.get_item(key).images[ImageKind.POSTER].sha1 == sha1
    assert sim.requests.count("GET", posters) == 0  # the first URL after our own upload is our image
    assert gateway.get_item(key).images[ImageKind.POSTER].sha1 == sha1
    assert sim.requests.count("GET", posters) == 0  # same thumb URL, same image
    # Someone picks another poster in Plex Web: the URL moves and the fingerprint follows.
    frame = f"media://sim/{key}/thumb.jpg"
    chosen = requests.put(
        f"{sim.url}/library/metadata/{key}/poster", params={"url": frame}, headers={"X-Plex-Token": TOKEN}, timeout=5
    )
    assert chosen.status_code == 200
    assert ImageKind.POSTER not in gateway.get_item(key).images
    assert sim.requests.count("GET", posters) == 1
    # Another process (no memory of our upload) reads the list once to learn the hash.
    other = gateway_for(sim, ManualClock())
    gateway.apply(key, PlexEdit(images=(ImageUpload(ImageKind.POSTER, PNG, sha1),)))
    assert other.get_item(key).images[ImageKind.POSTER].sha1 == sha1
    assert sim.requests.count("GET", posters) == 2


def test_get_items_batches_details_by_one_hundred(sim: PlexSimulator, gateway: PlexApiGateway) -> None:
    keys = [str(sim.add_item(f"{ROOT}/batch/{i:03d}.mp4")) for i in range(250)]
    _warm(gateway, sim)
    items = gateway.get_items([*keys, "424242", "not-a-key"])
    assert [i.rating_key for i in items] == keys
    assert sim.requests.count("GET", DETAIL) == 3


def test_index_build_of_ten_thousand_items_costs_at_most_eleven_listings(clock: ManualClock) -> None:
    with PlexSimulator(items=10_000, seed=3, library_root=ROOT, token=TOKEN) as big:
        gateway = gateway_for(big, clock)
        index = PlexPathIndex(gateway, MemoryStateStore(clock), clock)
        update = index.rebuild()
        assert update.listed == len(big)
        assert big.requests.count("GET", LISTING) <= 11
        some = big.items()[1234]
        assert [r.rating_key for r in index.lookup(some.files[-1])] == [str(some.rating_key)]
        # An incremental refresh after a few edits is one listing request.
        big.requests.clear()
        for rk in big.rating_keys()[:3]:
            big.edit_item(rk, fields={"summary": "changed"})
        refresh = index.refresh()
        assert (refresh.full, refresh.changed) == (False, 3)
        assert big.requests.count("GET", LISTING) == 1
        gateway.close()


# -- listings and lookups ------------------------------------------------------------------------


def test_resolve_pages_through_a_big_folder_from_the_loose_file_filter(sim: PlexSimulator, clock: ManualClock) -> None:
    gateway = gateway_for(sim, clock, page_size=5)
    for i in range(12):
        sim.add_item(f"{ROOT}/crowd/a{i:02d}.mp4")
    target = f"{ROOT}/crowd/zzz last by title.mp4"
    key = str(sim.add_item(target))
    assert [r.rating_key for r in gateway.resolve_path(target)] == [key]
    assert sim.requests.count("GET", LISTING) == 3


@pytest.mark.parametrize("mode", ["error", "ignore", "exact"])
def test_resolve_without_a_useful_file_filter_still_finds_the_exact_path(
    sim: PlexSimulator, gateway: PlexApiGateway, mode: str
) -> None:
    sim.options.file_filter = mode  # type: ignore[assignment]
    target = f"{ROOT}/f/target.mp4"
    key = str(sim.add_item(target))
    sim.add_item(f"{ROOT}/f/other.mp4")
    sim.add_item(f"{ROOT}/g/target.mp4")
    assert [r.rating_key for r in gateway.resolve_path(target)] == [key]
    assert [r.rating_key for r in gateway.resolve_path(target)] == [key]


def test_iter_items_without_total_size_reads_every_page(sim: PlexSimulator, clock: ManualClock) -> None:
    sim.options.emit_total_size = False
    keys = {str(sim.add_item(f"{ROOT}/p/{i}.mp4")) for i in range(11)}
    gateway = gateway_for(sim, clock, page_size=5)
    assert {r.rating_key for r in gateway.iter_items()} == keys
    assert sim.requests.count("GET", LISTING) == 3


def test_iter_items_updated_since_stops_at_the_first_older_item(sim: PlexSimulator, clock: ManualClock) -> None:
    old = [str(sim.add_item(f"{ROOT}/o/{i}.mp4", added_at=1_600_000_000 + i)) for i in range(30)]
    gateway = gateway_for(sim, clock, page_size=5)
    sim.edit_item(int(old[4]), fields={"summary": "new"})
    since = sim.item(int(old[4])).updated_at
    sim.requests.clear()
    assert [r.rating_key for r in gateway.iter_items(updated_since=since)] == [old[4]]
    listing = [r for r in sim.requests.all() if r.path.endswith("/all")]
    assert len(listing) == 1
    assert listing[0].query["sort"] == ["updatedAt:desc"]


def test_iter_items_lists_every_part_path_of_every_version(sim: PlexSimulator, gateway: PlexApiGateway) -> None:
    versions = [[f"{ROOT}/m/film - part1.mkv", f"{ROOT}/m/film - part2.mkv"], f"{ROOT}/m/film 4k.mkv"]
    key = str(sim.add_item(versions))
    (ref,) = [r for r in gateway.iter_items() if r.rating_key == key]
    assert ref.part_paths == (versions[0][0], versions[0][1], versions[1])
    assert ref.section_key == str(sim.section_id)
    assert ref.updated_at == sim.item(int(key)).updated_at


def test_get_item_reads_every_field_tag_lock_and_actor_photo(sim: PlexSimulator, gateway: PlexApiGateway) -> None:
    key = str(
        sim.add_item(
            f"{ROOT}/full.mp4",
            title="Full",
            fields={
                "titleSort": "Full, The",
                "year": "2020",
                "originallyAvailableAt": "2020-02-03",
                "userRating": "7.5",
            },
            tags={"genre": [f"g{i}" for i in range(6)], "label": ["l"], "director": ["d"], "writer": ["w"]},
            locks=["title", "genre"],
        )
    )
    gateway.apply(key, PlexEdit(tags={"actor": TagEdit(values=("Ann", "Bo"), photos={"Ann": "http://x/ann.jpg"})}))
    state = gateway.get_item(key)
    meta = state.metadata
    assert (meta.title, meta.sort_title, meta.year, meta.user_rating) == ("Full", "Full, The", 2020, 7.5)
    assert str(meta.originally_available_at) == "2020-02-03"
    assert meta.genres == tuple(f"g{i}" for i in range(6))  # complete, unlike listings
    assert (meta.labels, meta.directors, meta.writers) == (("l",), ("d",), ("w",))
    assert meta.actors == (Actor("Ann", photo_url="http://x/ann.jpg"), Actor("Bo"))
    assert state.locked_fields == {"title", "genre"}
    assert state.part_paths == (f"{ROOT}/full.mp4",)


def test_find_by_filename_walks_the_listing(sim: PlexSimulator, gateway: PlexApiGateway) -> None:
    a = str(sim.add_item(f"{ROOT}/x/Clip.MP4"))
    b = str(sim.add_item(f"{ROOT}/y/clip.mp4"))
    sim.add_item(f"{ROOT}/y/myclip.mp4")
    assert {r.rating_key for r in gateway.find_by_filename("CLIP.mp4")} == {a, b}


def test_scan_asks_for_the_folder_in_its_section(sim: PlexSimulator, gateway: PlexApiGateway) -> None:
    gateway.scan(f"{ROOT}/new/file.mp4")
    (scan,) = sim.scans
    assert (scan.section_id, scan.path) == (sim.section_id, f"{ROOT}/new")
    with pytest.raises(NotFoundError, match="no Plex library"):
        gateway.scan("/elsewhere/file.mp4")


def test_apply_to_an_item_never_read_finds_its_section_first(sim: PlexSimulator, clock: ManualClock) -> None:
    other = sim.add_section("Other", ["/data/other"])
    key = str(sim.add_item("/data/other/x.mp4", section_id=other))
    gateway = gateway_for(sim, clock)
    _warm(gateway, sim)
    gateway.apply(key, PlexEdit(fields={"title": "moved"}))
    assert [(r.method, r.path) for r in sim.requests.all()] == [
        ("GET", f"/library/metadata/{key}"),
        ("PUT", f"/library/sections/{other}/all"),
    ]
    assert sim.item(int(key)).title == "moved"
    assert not sim.violations
