"""The PlexGateway contract."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from stash2plex_core.errors import NotFoundError
from stash2plex_core.models.plex import Actor
from stash2plex_core.models.plex import ImageKind
from stash2plex_core.models.plex import ImageUpload
from stash2plex_core.models.plex import PlexEdit
from stash2plex_core.models.plex import PlexMetadata
from stash2plex_core.models.plex import TagEdit
from stash2plex_core.testing.contracts._capabilities import Capabilities
from stash2plex_core.testing.worlds import PlexWorld


PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cf00000301010018dd8db00000000049454e44ae426082"
)


class PlexGatewayContract:
    """Subclass, and provide a ``plex_world`` fixture (see :class:`PlexWorld`)."""

    @pytest.fixture
    def plex_world(self) -> PlexWorld:
        raise NotImplementedError("provide a `plex_world` fixture")

    @pytest.fixture
    def capabilities(self) -> Capabilities:
        return Capabilities()

    def path(self, world: PlexWorld, *parts: str) -> str:
        return "/".join([world.root.rstrip("/"), *parts])

    def test_ping_identifies_the_server(self, plex_world: PlexWorld) -> None:
        info = plex_world.gateway.ping()
        assert info.name
        assert info.version

    def test_a_server_that_answers_is_never_reported_as_not_listening(self, plex_world: PlexWorld) -> None:
        plex_world.gateway.ping()
        # ``None`` (cannot tell) is allowed; ``False`` would hide Plex's return from the worker.
        assert plex_world.gateway.listening() in (True, None)

    def test_sections_list_movie_sections(self, plex_world: PlexWorld) -> None:
        sections = plex_world.gateway.sections()
        assert sections
        assert all(s.key and s.type == "movie" for s in sections)

    def test_resolve_path_is_exact(self, plex_world: PlexWorld) -> None:
        target = self.path(plex_world, "Studio_A", "50% Off [1] é.mp4")
        decoy = self.path(plex_world, "StudioXA", "50X Off [1] é.mp4")
        key = plex_world.add_item([target])
        plex_world.add_item([decoy])
        plex_world.add_item([self.path(plex_world, "studio_a", "50% off [1] é.mp4")])
        found = plex_world.gateway.resolve_path(target)
        assert [r.rating_key for r in found] == [key]
        assert found[0].part_paths == (target,)
        assert plex_world.gateway.resolve_path(self.path(plex_world, "Studio_A", "missing.mp4")) == []

    def test_resolve_path_finds_any_version_or_part(self, plex_world: PlexWorld) -> None:
        paths = [self.path(plex_world, "Film", "film - part1.mp4"), self.path(plex_world, "Film", "film - part2.mp4")]
        key = plex_world.add_item(paths)
        assert [r.rating_key for r in plex_world.gateway.resolve_path(paths[1])] == [key]

    def test_find_by_filename_ignores_case_and_folder(self, plex_world: PlexWorld) -> None:
        a = plex_world.add_item([self.path(plex_world, "one", "Clip Ünï.mp4")])
        b = plex_world.add_item([self.path(plex_world, "two", "clip ünï.MP4")])
        plex_world.add_item([self.path(plex_world, "two", "other.mp4")])
        found = {r.rating_key for r in plex_world.gateway.find_by_filename("CLIP ÜNÏ.mp4")}
        assert found == {a, b}

    def test_iter_items_yields_every_item_once(self, plex_world: PlexWorld) -> None:
        keys = {plex_world.add_item([self.path(plex_world, "many", f"item {i}.mp4")]) for i in range(23)}
        seen = [r.rating_key for r in plex_world.gateway.iter_items()]
        assert len(seen) == len(set(seen))
        assert keys <= set(seen)

    def test_iter_items_updated_since_yields_exactly_the_recent_items(self, plex_world: PlexWorld) -> None:
        keys = [plex_world.add_item([self.path(plex_world, "recent", f"r{i}.mp4")]) for i in range(5)]
        plex_world.gateway.apply(keys[2], PlexEdit(fields={"title": "edited"}))
        since = plex_world.gateway.get_item(keys[2]).updated_at
        assert since is not None
        everything = {r.rating_key: r.updated_at for r in plex_world.gateway.iter_items()}
        recent = [r.rating_key for r in plex_world.gateway.iter_items(updated_since=since)]
        assert len(recent) == len(set(recent))
        assert set(recent) == {k for k, at in everything.items() if at is not None and at >= since}
        assert keys[2] in recent
        assert list(plex_world.gateway.iter_items(updated_since=since + 10**9)) == []

    def test_iter_items_unknown_section_is_not_found(self, plex_world: PlexWorld) -> None:
        with pytest.raises(NotFoundError):
            list(plex_world.gateway.iter_items("987654"))

    def test_get_items_in_order_omitting_unknown(self, plex_world: PlexWorld) -> None:
        a = plex_world.add_item([self.path(plex_world, "a.mp4")], PlexMetadata(title="A"))
        b = plex_world.add_item([self.path(plex_world, "b.mp4")], PlexMetadata(title="B"))
        items = plex_world.gateway.get_items([b, "999999", a, b])
        assert [(i.rating_key, i.metadata.title) for i in items] == [(b, "B"), (a, "A")]
        assert items[1].part_paths == (self.path(plex_world, "a.mp4"),)

    def test_get_item_unknown_is_not_found(self, plex_world: PlexWorld) -> None:
        with pytest.raises(NotFoundError):
            plex_world.gateway.get_item("999999")

    def test_apply_scalar_fields_and_clears(self, plex_world: PlexWorld) -> None:
        key = plex_world.add_item([self.path(plex_world, "s.mp4")], PlexMetadata(title="old", tagline="remove me"))
        edit = PlexEdit(
            fields={
                "title": "Nouveau — titre",
                "summary": "Line one\nLine two",
                "studio": "Studio_Ü",
                "originallyAvailableAt": "2021-03-04",
                "year": "2021",
                "userRating": "8",
                "tagline": "",
            }
        )
        plex_world.gateway.apply(key, edit)
        meta = plex_world.gateway.get_item(key).metadata
        assert meta.title == "Nouveau — titre"
        assert meta.summary == "Line one\nLine two"
        assert meta.studio == "Studio_Ü"
        assert meta.originally_available_at == dt.date(2021, 3, 4)
        assert meta.year == 2021
        assert meta.user_rating == 8.0
        assert meta.tagline is None

    def test_apply_tags_adds_and_removes(self, plex_world: PlexWorld) -> None:
        key = plex_world.add_item(
            [self.path(plex_world, "t.mp4")],
            PlexMetadata(genres=("Old", "Keep"), actors=(Actor("Gone"), Actor("Stays"))),
        )
        edit = PlexEdit(
            tags={
                "genre": TagEdit(values=("Keep", "Neu, mit Komma", '50% "quoted"'), removed=("Old",)),
                "actor": TagEdit(
                    values=("Stays", "Zoë"), removed=("Gone",), photos={"Zoë": "http://127.0.0.1:1/p.png"}
                ),
                "collection": TagEdit(values=("Studio Ü",)),
            }
        )
        plex_world.gateway.apply(key, edit)
        meta = plex_world.gateway.get_item(key).metadata
        assert set(meta.genres) == {"Keep", "Neu, mit Komma", '50% "quoted"'}
        assert {a.name for a in meta.actors} == {"Stays", "Zoë"}
        assert set(meta.collections) == {"Studio Ü"}
        plex_world.gateway.apply(key, PlexEdit(tags={"genre": TagEdit(values=(), removed=meta.genres)}))
        assert plex_world.gateway.get_item(key).metadata.genres == ()

    def test_apply_locks_and_unlocks(self, plex_world: PlexWorld) -> None:
        key = plex_world.add_item([self.path(plex_world, "l.mp4")])
        plex_world.gateway.apply(key, PlexEdit(fields={"title": "T"}, locks={"title": True, "genre": True}))
        assert {"title", "genre"} <= plex_world.gateway.get_item(key).locked_fields
        plex_world.gateway.apply(key, PlexEdit(locks={"genre": False}))
        locked = plex_world.gateway.get_item(key).locked_fields
        assert "title" in locked
        assert "genre" not in locked

    def test_upload_poster_records_its_fingerprint(self, plex_world: PlexWorld) -> None:
        key = plex_world.add_item([self.path(plex_world, "p.mp4")])
        sha1 = hashlib.sha1(PNG).hexdigest()  # noqa: S324 - Plex keys uploads by SHA-1
        plex_world.gateway.apply(key, PlexEdit(images=(ImageUpload(ImageKind.POSTER, PNG, sha1),)))
        assert plex_world.gateway.get_item(key).images[ImageKind.POSTER].sha1 == sha1

    def test_batched_reads_show_an_uploaded_poster_and_hash_it_on_demand(self, plex_world: PlexWorld) -> None:
        key = plex_world.add_item([self.path(plex_world, "hp.mp4")])
        plain = plex_world.add_item([self.path(plex_world, "hq.mp4")])
        sha1 = hashlib.sha1(PNG).hexdigest()  # noqa: S324 - Plex keys uploads by SHA-1
        plex_world.gateway.apply(key, PlexEdit(images=(ImageUpload(ImageKind.POSTER, PNG, sha1),)))
        with_poster, without = plex_world.gateway.get_items([key, plain])
        assert with_poster.images[ImageKind.POSTER].sha1 in ("", sha1)  # "" = seen, hash not read
        assert plex_world.gateway.with_image_hashes(with_poster).images[ImageKind.POSTER].sha1 == sha1
        assert ImageKind.POSTER not in without.images
        assert plex_world.gateway.with_image_hashes(without) == without

    def test_edits_move_updated_at_and_empty_edits_change_nothing(self, plex_world: PlexWorld) -> None:
        key = plex_world.add_item([self.path(plex_world, "u.mp4")], PlexMetadata(title="same"))
        before = plex_world.gateway.get_item(key)
        plex_world.gateway.apply(key, PlexEdit())
        assert plex_world.gateway.get_item(key) == before
        plex_world.gateway.apply(key, PlexEdit(fields={"title": "changed"}))
        after = plex_world.gateway.get_item(key)
        assert after.updated_at is not None
        assert before.updated_at is not None
        assert after.updated_at > before.updated_at

    def test_apply_to_unknown_item_is_not_found(self, plex_world: PlexWorld) -> None:
        with pytest.raises(NotFoundError):
            plex_world.gateway.apply("999999", PlexEdit(fields={"title": "x"}))

    def test_scan_reveals_a_staged_file(self, plex_world: PlexWorld, capabilities: Capabilities) -> None:
        if not capabilities.scan_reveals_staged:
            pytest.skip("backend cannot stage files (capabilities.scan_reveals_staged is False)")
        path = self.path(plex_world, "new folder", "fresh é.mp4")
        plex_world.stage(path)
        assert plex_world.gateway.resolve_path(path) == []
        plex_world.gateway.scan(path)
        assert len(plex_world.gateway.resolve_path(path)) == 1


__all__ = ["PlexGatewayContract"]
