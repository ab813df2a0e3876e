"""A stateful simulated Plex Media Server that the unmodified ``plexapi`` client can drive.

It follows ``reference/plex-protocol.md`` section 4: root, identity, library sections with
locations, paged listings with ``totalSize`` and truncated tags, ``type``/``title``/``file``/
``sort`` filters, complete item details with ``Field`` locks, the edit PUT (values, locks,
indexed tag additions, double-quoted removals, clears; "append" or "replace" tag semantics),
poster/art uploads keyed by SHA-1 with the 10 MB limit, refreshes, and partial scans that
reveal staged files. Every request is recorded and faults can be injected by path pattern.

Seeded with ``items``/``seed``/``library_root`` it describes the same files as
``generate_library`` (and so as the simulated Stash started with the same arguments), with
only what a scan without a useful agent gives, so a sync has real work to do::

    with PlexSimulator(items=50, seed=7, token="t") as plex:
        server = plexapi.server.PlexServer(plex.url, plex.token)
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from types import MappingProxyType
from typing import Self

import attrs

from stash2plex_backends.simulators.faults import FaultInjector
from stash2plex_backends.simulators.faults import RequestLog
from stash2plex_backends.simulators.plex._app import PlexApp
from stash2plex_backends.simulators.plex._edits import EditRequest
from stash2plex_backends.simulators.plex._edits import TagOps
from stash2plex_backends.simulators.plex._edits import apply_edit
from stash2plex_backends.simulators.plex._state import DEFAULT_LISTING_TAG_LIMITS
from stash2plex_backends.simulators.plex._state import MAX_UPLOAD_BYTES
from stash2plex_backends.simulators.plex._state import SCALAR_FIELDS
from stash2plex_backends.simulators.plex._state import TAG_FIELDS
from stash2plex_backends.simulators.plex._state import FileFilterMode
from stash2plex_backends.simulators.plex._state import ImageEntry
from stash2plex_backends.simulators.plex._state import ImageSet
from stash2plex_backends.simulators.plex._state import Item
from stash2plex_backends.simulators.plex._state import Options
from stash2plex_backends.simulators.plex._state import PlexState
from stash2plex_backends.simulators.plex._state import ScanRecord
from stash2plex_backends.simulators.plex._state import StagedFile
from stash2plex_backends.simulators.plex._state import TagMode
from stash2plex_backends.simulators.plex._state import sha1_hex
from stash2plex_backends.simulators.server import LoopbackServer


DEFAULT_TOKEN = "stash2plex-sim-token"  # noqa: S105 - a published test token, not a secret


def _sha1_of(images: ImageSet | None) -> str | None:
    if images is None or images.selected is None:
        return None
    return next((e.sha1 for e in images.entries if e.rating_key == images.selected), None)


@attrs.frozen
class ItemSnapshot:
    """A copy of one item's state, safe to keep while the server goes on changing."""

    rating_key: int
    section_id: int
    title: str
    #: Scalar fields that are set, as PMS renders them (``year`` is ``"2023"``).
    values: Mapping[str, str]
    #: Tag names per edit field (``genre``, ``actor``, …), in association order.
    tags: Mapping[str, tuple[str, ...]]
    #: Photo URL per actor name, for actors that have one.
    actor_thumbs: Mapping[str, str]
    locks: frozenset[str]
    #: Each version's part paths (a stacked version has several).
    media: tuple[tuple[str, ...], ...]
    added_at: int
    updated_at: int
    #: ``ratingKey`` of the selected poster (``upload://posters/<sha1>`` after an upload).
    poster: str | None
    poster_sha1: str | None
    art: str | None
    art_sha1: str | None
    guids: tuple[str, ...]

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(path for parts in self.media for path in parts)

    @classmethod
    def of(cls, item: Item) -> ItemSnapshot:
        posters = item.posters or ImageSet([ImageEntry(item.default_poster, None)], item.default_poster)
        return cls(
            rating_key=item.rating_key,
            section_id=item.section_id,
            title=item.title,
            values=MappingProxyType(dict(item.values)),
            tags=MappingProxyType({f: tuple(t.name for t in tags) for f, tags in (item.tags or {}).items()}),
            actor_thumbs=MappingProxyType({t.name: t.thumb for t in item.tag_list("actor") if t.thumb}),
            locks=frozenset(item.locks or ()),
            media=tuple(tuple(p.file for p in m.parts) for m in item.media),
            added_at=item.added_at,
            updated_at=item.updated_at,
            poster=posters.selected,
            poster_sha1=_sha1_of(posters),
            art=item.arts.selected if item.arts else None,
            art_sha1=_sha1_of(item.arts),
            guids=item.guids,
        )


class PlexSimulator:
    """A simulated PMS on a loopback port, running in a background thread while started.

    ``items``/``seed``/``library_root`` seed one movie section (``section_title``) whose
    location is ``library_root``. ``tag_mode`` picks what indexed tag edits mean
    ("append": union, as PMS does; "replace": the list becomes the set). The other keyword
    arguments are fidelity knobs (see :class:`Options`), also changeable later through
    :attr:`options`. An empty ``token`` accepts every request.
    """

    def __init__(
        self,
        items: int = 0,
        seed: int = 0,
        *,
        library_root: str = "/data/library",
        token: str = DEFAULT_TOKEN,
        tag_mode: TagMode = "append",
        host: str = "127.0.0.1",
        port: int = 0,
        section_title: str = "Stash",
        strict: bool = True,
        listing_tag_limits: Mapping[str, int] | None = None,
        file_filter: FileFilterMode = "loose",
        emit_total_size: bool = True,
        max_upload_bytes: int = MAX_UPLOAD_BYTES,
        refresh_resets_unlocked: bool = False,
        friendly_name: str = "stash2plex-sim",
        machine_identifier: str | None = None,
    ) -> None:
        if tag_mode not in ("append", "replace"):
            raise ValueError(f"tag_mode must be 'append' or 'replace', got {tag_mode!r}")
        self.options = Options(
            tag_mode=tag_mode,
            strict=strict,
            listing_tag_limits=dict(DEFAULT_LISTING_TAG_LIMITS if listing_tag_limits is None else listing_tag_limits),
            file_filter=file_filter,
            emit_total_size=emit_total_size,
            max_upload_bytes=max_upload_bytes,
            refresh_resets_unlocked=refresh_resets_unlocked,
        )
        identifier = machine_identifier or sha1_hex(f"stash2plex-sim:{seed}".encode())
        self.state = PlexState(self.options, identifier)
        self.token = token
        self.library_root = library_root.rstrip("/") or "/"
        self.section_id = self.state.add_section(section_title, [self.library_root]).key
        if items:
            self.state.seed(items, seed, self.library_root, self.section_id)
        self.app = PlexApp(self.state, token, friendly_name)
        self.server = LoopbackServer(self.app, host, port)

    # -- server ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def requests(self) -> RequestLog:
        return self.server.requests

    @property
    def faults(self) -> FaultInjector:
        return self.server.faults

    @property
    def tag_mode(self) -> TagMode:
        return self.options.tag_mode

    @tag_mode.setter
    def tag_mode(self, mode: TagMode) -> None:
        if mode not in ("append", "replace"):
            raise ValueError(f"tag_mode must be 'append' or 'replace', got {mode!r}")
        self.options.tag_mode = mode

    @property
    def violations(self) -> list[str]:
        """Protocol violations seen (e.g. an edit PUT without ``id``)."""
        with self.state.lock:
            return list(self.state.violations)

    @property
    def scans(self) -> list[ScanRecord]:
        with self.state.lock:
            return list(self.state.scans)

    @property
    def refreshes(self) -> list[int]:
        """ratingKeys of agent refreshes (``PUT /library/metadata/{rk}/refresh``), in order."""
        with self.state.lock:
            return list(self.state.refreshes)

    def start(self) -> Self:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def serve_forever(self) -> None:
        """Serve in the foreground until interrupted."""
        self.server.serve_forever()

    def refuse(self) -> None:
        """Plex goes down: connections are refused until :meth:`accept`."""
        self.server.refuse()

    def accept(self) -> None:
        self.server.accept()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- inspecting state ------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.state.items)

    def item(self, rating_key: int) -> ItemSnapshot:
        """Snapshot of one item (``KeyError`` if there is none)."""
        with self.state.lock:
            self.state.promote()
            return ItemSnapshot.of(self.state.items[int(rating_key)])

    def item_by_path(self, path: str) -> ItemSnapshot | None:
        """Snapshot of the item one of whose parts is exactly ``path``."""
        with self.state.lock:
            self.state.promote()
            item = self.state.item_by_path(path)
            return ItemSnapshot.of(item) if item is not None else None

    def rating_keys(self) -> list[int]:
        with self.state.lock:
            self.state.promote()
            return list(self.state.items)

    def items(self) -> list[ItemSnapshot]:
        """Snapshots of every item (costly for huge libraries; prefer :meth:`item`)."""
        with self.state.lock:
            self.state.promote()
            return [ItemSnapshot.of(item) for item in self.state.items.values()]

    def image(self, sha1: str) -> bytes | None:
        """Bytes of an uploaded image by SHA-1."""
        with self.state.lock:
            return self.state.blobs.get(sha1)

    # -- changing state --------------------------------------------------------------------

    def add_section(self, title: str, locations: Sequence[str]) -> int:
        return self.state.add_section(title, locations).key

    def add_item(
        self,
        files: str | Sequence[str | Sequence[str]],
        *,
        title: str | None = None,
        section_id: int | None = None,
        added_at: int | None = None,
        fields: Mapping[str, str] | None = None,
        tags: Mapping[str, Sequence[str]] | None = None,
        locks: Iterable[str] = (),
        guids: Sequence[str] = (),
        size: int = 100_000_000,
        duration: float = 600.0,
    ) -> int:
        """Add an already-scanned item and return its ratingKey.

        ``files`` is one path, or one entry per version where a version given as a list of
        paths is stacked (one ``Media`` with several ``Part``).
        """
        versions = [files] if isinstance(files, str) else list(files)
        with self.state.lock:
            media = [
                self.state.new_media(
                    [(path, size, duration, 1920, 1080) for path in ([v] if isinstance(v, str) else v)]
                )
                for v in versions
            ]
            section = section_id if section_id is not None else self._section_for(media[0].parts[0].file)
            item = self.state.add_item(section, media, title=title, added_at=added_at, guids=guids)
            if fields or tags or locks:
                self._edit(item, fields or {}, tags or {}, locks)
                item.updated_at = item.added_at
            return item.rating_key

    def edit_item(
        self,
        rating_key: int,
        *,
        fields: Mapping[str, str] | None = None,
        tags: Mapping[str, Sequence[str]] | None = None,
        locks: Iterable[str] = (),
    ) -> None:
        """Change an item as a user editing in Plex Web would (``tags`` replace whole fields)."""
        with self.state.lock:
            self._edit(self.state.items[int(rating_key)], fields or {}, tags or {}, locks)

    def _edit(
        self, item: Item, fields: Mapping[str, str], tags: Mapping[str, Sequence[str]], locks: Iterable[str]
    ) -> None:
        unknown = [f for f in fields if f not in SCALAR_FIELDS] + [t for t in tags if t not in TAG_FIELDS]
        if unknown:
            raise ValueError(f"unknown fields {unknown}")
        request = EditRequest(
            values=dict(fields),
            locks=dict.fromkeys(locks, True),
            tags={f: TagOps(clear=True, adds=dict(enumerate(names))) for f, names in tags.items()},
        )
        apply_edit(self.state, item, request, "replace")

    def remove_item(self, rating_key: int) -> None:
        """Remove an item (its files are gone from Plex until staged and scanned again)."""
        self.state.remove_item(int(rating_key))

    def stage_file(
        self,
        path: str,
        *,
        title: str | None = None,
        size: int = 100_000_000,
        duration: float = 600.0,
        width: int = 1920,
        height: int = 1080,
        scans: int = 1,
        delay: float = 0.0,
    ) -> None:
        """Put a file "on disk" that Plex has not scanned yet.

        It becomes a new item ``delay`` seconds after the ``scans``-th scan covering its
        folder (``GET /library/sections/{id}/refresh[?path=folder]``); until then lookups
        do not find it. Files outside every section location never appear.
        """
        self.state.stage(StagedFile(path, size, duration, width, height, title, max(scans, 1), delay))

    def _section_for(self, path: str) -> int:
        section = self.state.section_for(path)
        return section.key if section is not None else self.section_id


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 32400,
    token: str = DEFAULT_TOKEN,
    items: int = 0,
    seed: int = 0,
    library_root: str = "/data/library",
    tag_mode: TagMode = "append",
    ready: threading.Event | Callable[[PlexSimulator], object] | None = None,
) -> None:
    """Run a simulated PMS in the foreground until interrupted (``stash2plex simulate plex``).

    Prints one line with the URL once it accepts connections, then sets or calls ``ready``.
    """
    simulator = PlexSimulator(
        items=items,
        seed=seed,
        library_root=library_root,
        token=token,
        tag_mode=tag_mode,
        host=host,
        port=port,
    )
    print(
        f"Simulated Plex Media Server listening on {simulator.url} "
        f"({len(simulator)} items in section {simulator.section_id}, library root {simulator.library_root})",
        flush=True,
    )
    if isinstance(ready, threading.Event):
        ready.set()
    elif ready is not None:
        ready(simulator)
    simulator.serve_forever()


__all__ = [
    "DEFAULT_TOKEN",
    "ItemSnapshot",
    "Options",
    "PlexSimulator",
    "ScanRecord",
    "serve",
]
