"""The planner: smallest edits, clearing, removal, locks, preserve mode, posters.

Round trips go through the in-memory Plex (a real adapter that passes the PlexGateway
contract), so "apply the plan, read back, plan again" checks convergence for real.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import attrs
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from stash2plex_backends.memory.plex import MemoryPlex
from stash2plex_core.models.plex import SCALAR_FIELDS
from stash2plex_core.models.plex import TAG_ATTRS
from stash2plex_core.models.plex import TAG_FIELDS
from stash2plex_core.models.plex import Actor
from stash2plex_core.models.plex import DesiredPlexState
from stash2plex_core.models.plex import ImageFingerprint
from stash2plex_core.models.plex import ImageKind
from stash2plex_core.models.plex import PlexEdit
from stash2plex_core.models.plex import PlexItemState
from stash2plex_core.models.plex import PlexMetadata
from stash2plex_core.models.plex import TagEdit
from stash2plex_core.models.stash import StashPerformer
from stash2plex_core.models.stash import StashScene
from stash2plex_core.models.stash import StashStudio
from stash2plex_core.models.stash import StashTag
from stash2plex_core.services.mapping import desired_state
from stash2plex_core.services.planning import MAX_IMAGE_BYTES
from stash2plex_core.services.planning import plan
from stash2plex_core.services.sanitize import sanitize_name
from stash2plex_core.settings import Settings


DEFAULT = Settings()
PRESERVE = Settings(preserve_plex_edits=True)
ALL_MANAGED = frozenset(SCALAR_FIELDS) | frozenset(TAG_FIELDS)
POSTER = b"\x89PNG poster bytes"
SHA = hashlib.sha1(POSTER).hexdigest()

SCENE = StashScene(
    id="1",
    title="Title",
    details="Summary",
    date="2024-05-06",
    rating100=80,
    studio=StashStudio("1", "Studio"),
    performers=(StashPerformer("1", "Zoë", "http://p/1"), StashPerformer("2", "Adam")),
    tags=(StashTag("1", "Drama"), StashTag("2", "Action")),
    files=("/m/a.mp4",),
    screenshot_url="http://s/1",
)
DESIRED = desired_state(SCENE, DEFAULT)


def item(metadata: PlexMetadata | None = None, **kwargs: object) -> PlexItemState:
    return PlexItemState(rating_key="1", section_key="1", metadata=metadata or PlexMetadata(), **kwargs)  # type: ignore[arg-type]


def synced(desired: DesiredPlexState = DESIRED) -> PlexItemState:
    """An item that already has everything ``desired`` wants, locked, with our poster."""
    return item(
        desired.metadata, locked_fields=desired.managed_fields, images={ImageKind.POSTER: ImageFingerprint(SHA)}
    )


def apply_and_read(plex: MemoryPlex, key: str, edit: PlexEdit) -> PlexItemState:
    plex.apply(key, edit)
    return plex.get_item(key)


# --- the basics


def test_unchanged_item_yields_an_empty_plan() -> None:
    edit = plan(DESIRED, synced(), DEFAULT, poster=POSTER)
    assert edit == PlexEdit()
    assert edit.empty


def test_first_sync_sets_every_managed_field_locks_it_and_uploads() -> None:
    edit = plan(DESIRED, item(PlexMetadata(title="a")), DEFAULT, poster=POSTER)
    assert edit.fields == {
        "title": "Title",
        "summary": "Summary",
        "originallyAvailableAt": "2024-05-06",
        "year": "2024",
        "studio": "Studio",
        "userRating": "8",
    }
    assert edit.tags["genre"] == TagEdit(values=("Action", "Drama"))
    assert edit.tags["actor"] == TagEdit(values=("Adam", "Zoë"), photos={"Zoë": "http://p/1"})
    assert edit.tags["collection"] == TagEdit(values=("Studio",))
    assert "director" not in edit.tags  # empty on both sides
    assert edit.locks == dict.fromkeys(DESIRED.managed_fields, True)
    assert [(i.kind, i.sha1) for i in edit.images] == [(ImageKind.POSTER, SHA)]


def test_apply_then_plan_again_is_empty() -> None:
    plex = MemoryPlex()
    key = plex.add_item(["/m/a.mp4"], PlexMetadata(title="a", genres=("Old",), writers=("Kept",))).rating_key
    after = apply_and_read(plex, key, plan(DESIRED, plex.get_item(key), DEFAULT, poster=POSTER))
    assert plan(DESIRED, after, DEFAULT, poster=POSTER).empty
    assert after.metadata.genres == ("Action", "Drama")
    assert after.metadata.writers == ("Kept",)  # not managed: untouched


def test_only_changed_fields_are_sent() -> None:
    current = synced()
    current = attrs.evolve(current, metadata=attrs.evolve(current.metadata, title="Old", summary="Old"))
    edit = plan(DESIRED, current, DEFAULT)
    assert edit.fields == {"title": "Title", "summary": "Summary"}
    assert not edit.tags
    assert not edit.locks


def test_a_field_empty_in_stash_is_cleared() -> None:
    desired = desired_state(attrs.evolve(SCENE, details=None, studio=None, date="2024", rating100=None), DEFAULT)
    edit = plan(desired, synced(DESIRED), DEFAULT)
    assert edit.fields == {"summary": "", "studio": "", "originallyAvailableAt": "", "userRating": ""}
    assert edit.tags["collection"] == TagEdit(values=(), removed=("Studio",))


def test_removed_tags_and_performers_are_removed_explicitly() -> None:
    desired = desired_state(attrs.evolve(SCENE, tags=SCENE.tags[:1], performers=()), DEFAULT)
    edit = plan(desired, synced(), DEFAULT)
    assert edit.tags["genre"] == TagEdit(values=("Drama",), removed=("Action",))
    assert edit.tags["actor"] == TagEdit(values=(), removed=("Adam", "Zoë"))
    plex = MemoryPlex()
    key = plex.add_item(["/m/a.mp4"], DESIRED.metadata).rating_key
    after = apply_and_read(plex, key, edit)
    assert after.metadata.genres == ("Drama",)
    assert after.metadata.actors == ()


def test_tag_order_is_ignored_but_case_and_spacing_are_not() -> None:
    current = synced()
    reordered = attrs.evolve(current, metadata=attrs.evolve(current.metadata, genres=("Drama", "Action")))
    assert plan(DESIRED, reordered, DEFAULT).empty
    recased = attrs.evolve(current, metadata=attrs.evolve(current.metadata, genres=("drama", "Action")))
    assert plan(DESIRED, recased, DEFAULT).tags["genre"] == TagEdit(values=("Action", "Drama"), removed=("drama",))
    spaced = attrs.evolve(current, metadata=attrs.evolve(current.metadata, title="Title "))
    assert plan(DESIRED, spaced, DEFAULT).fields == {"title": "Title"}


def test_actors_compare_by_name_and_wanted_photo() -> None:
    current = synced()
    meta = current.metadata
    other_photo = attrs.evolve(
        current, metadata=attrs.evolve(meta, actors=(Actor("Adam"), Actor("Zoë", photo_url="http://old")))
    )
    assert plan(DESIRED, other_photo, DEFAULT).tags["actor"] == TagEdit(
        values=("Adam", "Zoë"), photos={"Zoë": "http://p/1"}
    )
    # Adam has no image in Stash: whatever Plex shows for him is left alone.
    agent_photo = attrs.evolve(
        current, metadata=attrs.evolve(meta, actors=(Actor("Adam", photo_url="http://agent"), meta.actors[1]))
    )
    assert plan(DESIRED, agent_photo, DEFAULT).empty


def test_unmanaged_fields_are_never_touched() -> None:
    desired = desired_state(SCENE, Settings(sync_summary=False, sync_tags=False))
    current = attrs.evolve(synced(desired), metadata=attrs.evolve(desired.metadata, summary="Mine", genres=("Mine",)))
    assert plan(desired, current, DEFAULT).empty


# --- locks


def test_only_missing_locks_are_sent() -> None:
    current = attrs.evolve(synced(), locked_fields=DESIRED.managed_fields - {"title", "genre"} | {"writer"})
    assert plan(DESIRED, current, DEFAULT).locks == {"title": True, "genre": True}


def test_no_locks_when_locking_is_off_and_nothing_is_unlocked() -> None:
    current = attrs.evolve(synced(), locked_fields={"writer"})
    assert plan(DESIRED, current, Settings(lock_fields=False)).empty


# --- preserve mode


def test_preserve_mode_only_fills_empty_fields_and_touches_no_locks() -> None:
    current = item(
        PlexMetadata(title="Plex title", summary=None, genres=(), actors=(Actor("Plex actor"),), studio="Mine")
    )
    edit = plan(DESIRED, current, PRESERVE, poster=POSTER)
    assert edit.fields == {
        "summary": "Summary",
        "originallyAvailableAt": "2024-05-06",
        "year": "2024",
        "userRating": "8",
    }
    assert set(edit.tags) == {"genre", "collection"}
    assert edit.tags["genre"] == TagEdit(values=("Action", "Drama"))
    assert not edit.locks
    assert len(edit.images) == 1


def test_preserve_mode_never_clears_or_removes() -> None:
    desired = desired_state(StashScene(id="1", title="t"), PRESERVE)
    current = item(PlexMetadata(title="Plex", summary="S", genres=("G",), actors=(Actor("A"),)))
    assert plan(desired, current, PRESERVE).empty


def test_preserve_mode_keeps_a_poster_someone_chose() -> None:
    chosen = item(PlexMetadata(title="Title"), locked_fields={"thumb"})
    ours = item(PlexMetadata(title="Title"), images={ImageKind.POSTER: ImageFingerprint("old")})
    assert not plan(DESIRED, chosen, PRESERVE, poster=POSTER).images
    assert not plan(DESIRED, ours, PRESERVE, poster=POSTER).images


# --- posters


def test_poster_uploaded_only_when_its_hash_changes() -> None:
    assert not plan(DESIRED, synced(), DEFAULT, poster=POSTER).images
    stale = attrs.evolve(synced(), images={ImageKind.POSTER: ImageFingerprint("0" * 40)})
    assert [i.data for i in plan(DESIRED, stale, DEFAULT, poster=POSTER).images] == [POSTER]
    none_yet = attrs.evolve(synced(), images={ImageKind.ART: ImageFingerprint(SHA)})
    assert plan(DESIRED, none_yet, DEFAULT, poster=POSTER).images[0].sha1 == SHA


def test_no_upload_without_bytes_url_switch_or_when_too_big() -> None:
    fresh = item(DESIRED.metadata, locked_fields=DESIRED.managed_fields)
    assert not plan(DESIRED, fresh, DEFAULT).images
    assert not plan(DESIRED, fresh, DEFAULT, poster=b"").images
    assert not plan(attrs.evolve(DESIRED, poster_url=None), fresh, DEFAULT, poster=POSTER).images
    assert not plan(DESIRED, fresh, Settings(sync_poster=False), poster=POSTER).images
    assert not plan(DESIRED, fresh, DEFAULT, poster=b"x" * (MAX_IMAGE_BYTES + 1)).images


def test_uploaded_poster_is_recognised_next_time() -> None:
    plex = MemoryPlex()
    key = plex.add_item(["/m/a.mp4"]).rating_key
    after = apply_and_read(plex, key, plan(DESIRED, plex.get_item(key), DEFAULT, poster=POSTER))
    assert after.images[ImageKind.POSTER].sha1 == SHA
    assert plan(DESIRED, after, DEFAULT, poster=POSTER).empty


# --- convergence, for any current and desired state


def _name(text: str) -> str:
    return sanitize_name(text) or "x"


NAMES = st.text(st.characters(codec="utf-8", exclude_categories=["C"]), min_size=1, max_size=12).map(_name)
NAME_LISTS = st.lists(NAMES, max_size=4, unique_by=lambda n: n.casefold()).map(tuple)
OPTIONAL = st.none() | NAMES
METADATA = st.builds(
    PlexMetadata,
    title=OPTIONAL,
    summary=OPTIONAL,
    tagline=OPTIONAL,
    studio=OPTIONAL,
    originally_available_at=st.none() | st.dates(dt.date(1900, 1, 1), dt.date(2100, 1, 1)),
    year=st.none() | st.integers(1900, 2100),
    content_rating=OPTIONAL,
    user_rating=st.none() | st.integers(0, 100).map(lambda r: r / 10),
    genres=NAME_LISTS,
    collections=NAME_LISTS,
    directors=NAME_LISTS,
    actors=NAME_LISTS.map(
        lambda names: tuple(Actor(n, photo_url=f"http://p/{i}" if i % 2 else None) for i, n in enumerate(names))
    ),
)


@hsettings(max_examples=300, deadline=None)
@given(
    want=METADATA,
    have=METADATA,
    managed=st.frozensets(st.sampled_from(sorted(ALL_MANAGED - {"sortTitle", "originalTitle", "writer", "label"}))),
    preserve=st.booleans(),
    locked=st.frozensets(st.sampled_from(sorted(ALL_MANAGED))),
)
def test_applying_the_plan_converges(
    want: PlexMetadata, have: PlexMetadata, managed: frozenset[str], preserve: bool, locked: frozenset[str]
) -> None:
    settings = Settings(preserve_plex_edits=preserve)
    desired = DesiredPlexState(want, managed_fields=managed, poster_url="http://s")
    plex = MemoryPlex()
    key = plex.add_item(["/m/a.mp4"], have).rating_key
    plex.apply(key, PlexEdit(locks=dict.fromkeys(locked, True)))
    before = plex.get_item(key)
    edit = plan(desired, before, settings, poster=POSTER)
    if edit.tags:
        assert all(set(t.removed).isdisjoint(t.values) for t in edit.tags.values())
    after = apply_and_read(plex, key, edit)
    assert plan(desired, after, settings, poster=POSTER).empty
    if not preserve:
        assert after.locked_fields >= managed
        for field in managed & set(TAG_FIELDS):
            wanted = {a.name if isinstance(a, Actor) else a for a in getattr(want, TAG_ATTRS[field])}
            got = {a.name if isinstance(a, Actor) else a for a in getattr(after.metadata, TAG_ATTRS[field])}
            assert got == wanted
    else:
        assert not edit.locks
        assert after.locked_fields - {"thumb"} == before.locked_fields - {"thumb"}
