"""The provider's logic, free of HTTP: match, metadata, images, gaps and health.

Stash gateways are synchronous, so every Stash call runs on a dedicated thread pool of
``provider_stash_concurrency`` workers (calls beyond that wait their turn) and is given up
after ``provider_upstream_timeout`` seconds, well inside Plex's request timeout. Answers
are cached for ``provider_cache_seconds`` and concurrent identical calls share one request,
so a scan costs Stash about one request per file: the match reads the scene, and the
metadata and image calls that follow are served from what it read.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from typing import TypeVar

import attrs

from stash2plex_core.app import App
from stash2plex_core.errors import NotFoundError
from stash2plex_core.errors import TransientError
from stash2plex_core.models.plex import DesiredPlexState
from stash2plex_core.models.stash import StashScene
from stash2plex_core.services.mapping import desired_state
from stash2plex_core.settings import Settings
from stash2plex_core.settings import schedule_seconds
from stash2plex_integrations.plex_provider import protocol
from stash2plex_integrations.plex_provider.cache import TTLCache
from stash2plex_integrations.plex_provider.gaps import GapBook
from stash2plex_integrations.plex_provider.gaps import compare
from stash2plex_integrations.plex_provider.gaps import next_run
from stash2plex_integrations.plex_provider.index import SceneIndex
from stash2plex_integrations.plex_provider.index import basename
from stash2plex_integrations.plex_provider.paths import BadFilenameError
from stash2plex_integrations.plex_provider.paths import LibraryPaths


T = TypeVar("T")
log = logging.getLogger("stash2plex.provider")

#: Candidates re-read from Stash for one fallback or title match.
MAX_CANDIDATES = 10
#: Field-map results remembered (by scene id).
DESIRED_CACHE = 4096
#: Largest image the provider passes on (Plex refuses posters over ~10 MB anyway).
MAX_IMAGE_BYTES = 20 * 1024 * 1024


class UpstreamTimeoutError(TransientError):
    """Stash did not answer within ``provider_upstream_timeout``."""


class BadRequestError(ValueError):
    """The request is malformed (HTTP 400); the message says how."""


@attrs.frozen
class MatchHints:
    """The parts of Plex's match request the provider uses."""

    type: int = protocol.MOVIE
    filename: str | None = None
    title: str | None = None
    year: int | None = None
    guid: str | None = None
    manual: bool = False

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> MatchHints:
        """Validate Plex's hints (JSON body and query parameters merged); :class:`BadRequestError`."""

        def integer(name: str, default: int | None) -> int | None:
            raw = data.get(name)
            if raw is None or raw == "":
                return default
            if isinstance(raw, bool):
                return int(raw)
            try:
                return int(str(raw).strip())
            except ValueError:
                raise BadRequestError(f"{name} must be an integer, got {raw!r}") from None

        def text(name: str) -> str | None:
            raw = data.get(name)
            if raw is None:
                return None
            if not isinstance(raw, str):
                raise BadRequestError(f"{name} must be a string, got {type(raw).__name__}")
            return raw

        kind = integer("type", protocol.MOVIE)
        assert kind is not None
        filename = text("filename")
        if filename is not None:
            try:
                LibraryPaths.clean_filename(filename)
            except BadFilenameError as exc:
                raise BadRequestError(str(exc)) from None
        return cls(
            type=kind,
            filename=filename,
            title=text("title"),
            year=integer("year", None),
            guid=text("guid"),
            manual=bool(integer("manual", 0)),
        )

    def recorded(self) -> dict[str, Any]:
        """The hints a gap without a usable ``filename`` is described by."""
        return {"type": self.type, "title": self.title, "year": self.year, "guid": self.guid}


def gap_subject(hints: MatchHints) -> str:
    """What a gap is recorded under: the ``filename``, else the other hints, so a repeat
    of the same request updates one record and a later success clears it."""
    if hints.filename is not None:
        return hints.filename
    return "hints:" + json.dumps(hints.recorded(), ensure_ascii=False, sort_keys=True)


@attrs.frozen
class Match:
    scene: StashScene
    score: int
    #: ``guid``, ``path``, ``filename``, ``ambiguous`` or ``title``.
    method: str
    plex_path: str | None = None


@attrs.frozen
class Image:
    data: bytes
    content_type: str


def sniff(data: bytes) -> str:
    """The image type from its first bytes (Stash serves JPEG, PNG, WebP, GIF and AVIF)."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[4:12] in (b"ftypavif", b"ftypavis"):
        return "image/avif"
    return "application/octet-stream"


def _scene_order(scene_id: str) -> tuple[int, str]:
    return (int(scene_id), scene_id) if scene_id.isdigit() else (1 << 62, scene_id)


class ProviderService:
    """Everything the HTTP layer asks; one per provider process.

    :param app: the built application; the provider uses its Stash gateway, StateStore and
        clock (and Plex gateway and queue for the reconciliation part of a comparison).
    :param paths: library roots and path mapper, already checked at start-up.
    """

    def __init__(self, settings: Settings, app: App, paths: LibraryPaths) -> None:
        self.settings = settings
        self.app = app
        self.stash = app.stash
        self.paths = paths
        self.identifier = settings.provider_identifier
        self.timeout = settings.provider_upstream_timeout
        self.secret = settings.provider_secret.reveal() if settings.provider_secret else None
        self._executor = ThreadPoolExecutor(
            max_workers=settings.provider_stash_concurrency, thread_name_prefix="s2p-stash"
        )
        ttl = settings.provider_cache_seconds
        self._scenes: TTLCache[StashScene | None] = TTLCache(ttl)
        self._paths: TTLCache[tuple[StashScene, ...]] = TTLCache(ttl)
        self._images: TTLCache[bytes] = TTLCache(ttl, max_entries=64)
        self._desired: OrderedDict[str, tuple[StashScene, DesiredPlexState]] = OrderedDict()
        self.index = SceneIndex(self.stash, settings.provider_index_seconds, settings.provider_cache_seconds)
        self.gaps = GapBook(app.state, app.clock)
        self.up_since = app.clock.now()
        self._started = time.monotonic()
        self._comparison: asyncio.Future[dict[str, Any]] | None = None
        self._health: tuple[float, dict[str, Any]] | None = None
        self.counters: dict[str, int] = {
            "matches": 0,
            "matched": 0,
            "unmatched": 0,
            "metadata": 0,
            "images": 0,
            "stash_calls": 0,
            "stash_timeouts": 0,
        }

    # -- Stash, off the event loop

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the Stash pool, or :class:`UpstreamTimeoutError` after the timeout."""
        self.counters["stash_calls"] += 1
        future = asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(fn, *args))
        try:
            return await asyncio.wait_for(future, self.timeout)
        except TimeoutError:
            self.counters["stash_timeouts"] += 1
            raise UpstreamTimeoutError(f"Stash did not answer within {self.timeout:g} s") from None

    async def offload(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on a worker thread (StateStore writes), without the Stash limit."""
        return await asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, *args))

    async def scene(self, scene_id: str) -> StashScene | None:
        """The scene with ``scene_id``: from the fresh snapshot, the cache, or Stash; else ``None``."""
        if self.index.fresh:
            known = self.index.scene(scene_id)
            if known is not None:
                return known
        return await self._scenes.get_or_load(scene_id, lambda: self.call(self.stash.get_scene, scene_id))

    async def scenes_at(self, stash_path: str) -> list[StashScene]:
        """Scenes one of whose files is exactly ``stash_path``.

        From the fresh snapshot when it knows the path; otherwise Stash is asked (the file may
        be newer than the last refresh), through the cache, which the answer also primes.
        """
        if self.index.fresh:
            known = self.index.at_path(stash_path)
            if known:
                return known

        async def load() -> tuple[StashScene, ...]:
            found = await self.call(self.stash.find_by_path, stash_path)
            for scene in found:
                self._scenes.put(scene.id, scene)
            return tuple(found)

        return list(await self._paths.get_or_load(stash_path, load))

    def desired(self, scene: StashScene) -> DesiredPlexState:
        """The field map's result for ``scene``, remembered while the scene is unchanged.

        A scan asks twice per file (match, then metadata), and sanitising a scene's text is
        the costliest step of an answer.
        """
        known = self._desired.get(scene.id)
        if known is not None and (known[0] is scene or known[0] == scene):
            self._desired.move_to_end(scene.id)
            return known[1]
        desired = desired_state(scene, self.settings)
        self._desired[scene.id] = (scene, desired)
        if len(self._desired) > DESIRED_CACHE:
            self._desired.popitem(last=False)
        return desired

    # -- match

    async def match(self, hints: MatchHints) -> list[Match]:
        """The best match (or, with ``manual``, a ranked list); records a gap when none is found.

        Every request that finds no scene is logged and recorded before the answer goes
        out: by its ``filename``, or, without one, by its other hints (see :func:`gap_subject`).
        """
        self.counters["matches"] += 1
        if hints.type != protocol.MOVIE:
            await self._record_gap(hints, "unsupported-type", [], [])
            self.counters["unmatched"] += 1
            return []
        found: dict[str, Match] = {}

        def keep(match: Match) -> None:
            current = found.get(match.scene.id)
            if current is None or match.score > current.score:
                found[match.scene.id] = match

        own = protocol.scene_id_from_guid(self.identifier, hints.guid)
        if own is not None:
            scene = await self.scene(own)
            if scene is not None:
                keep(Match(scene, protocol.SCORE_EXACT, "guid"))
        if hints.filename is not None and (not found or hints.manual):
            for match in await self._by_filename(hints):
                keep(match)
        if hints.manual and hints.title:
            for match in await self._by_title(hints.title):
                keep(match)
        ranked = sorted(found.values(), key=lambda m: (-m.score, _scene_order(m.scene.id)))
        if not hints.manual:
            ranked = ranked[:1]
            if ranked and ranked[0].method == "ambiguous" and not self.settings.allow_low_confidence:
                ranked = []
        for match in ranked:
            self.gaps.seen(match.scene.id, match.plex_path)
        if hints.filename is None:
            await self._settle_without_filename(hints, found=bool(ranked))
        self.counters["matched" if ranked else "unmatched"] += 1
        return ranked

    async def _settle_without_filename(self, hints: MatchHints, *, found: bool) -> None:
        """Record or clear the gap of a request without a ``filename`` (``_by_filename``
        does it for the others)."""
        if found:
            await self._cleared(gap_subject(hints))
        else:
            await self._record_gap(hints, "no-filename", [], [])

    async def _by_filename(self, hints: MatchHints) -> list[Match]:
        assert hints.filename is not None
        filename = hints.filename
        candidates = self.paths.candidates(filename)
        for candidate in candidates:
            scenes = await self.scenes_at(candidate.stash_path)
            if scenes:
                await self._cleared(filename)
                return [Match(s, protocol.SCORE_EXACT, "path", candidate.plex_path) for s in scenes]
        fallback = await self._fallback(filename)
        plex_path = candidates[0].plex_path if candidates else None
        if len(fallback) == 1:
            await self._cleared(filename)
            return [Match(fallback[0], protocol.SCORE_FILENAME, "filename", plex_path)]
        if fallback and self.settings.allow_low_confidence and not hints.manual:
            await self._cleared(filename)  # the best of them is applied
        elif not (fallback and hints.manual):
            reason = "ambiguous" if fallback else ("no-scene" if candidates else "no-rule")
            await self._record_gap(hints, reason, candidates, [s.id for s in fallback])
        return [Match(s, protocol.SCORE_AMBIGUOUS, "ambiguous", plex_path) for s in fallback]

    async def _fallback(self, filename: str) -> list[StashScene]:
        """Scenes with a file of the same name (any folder), re-read from Stash."""
        if not self.index.enabled:
            return []
        if not await self.index.ready(self.timeout):
            log.warning("the file name index is not ready: no fallback match", extra={"plex_filename": filename})
            return []
        name = basename(filename).casefold()
        scenes: list[StashScene] = []
        for scene_id in sorted(self.index.by_filename(filename), key=_scene_order)[:MAX_CANDIDATES]:
            scene = await self.scene(scene_id)
            if scene is not None and any(basename(f).casefold() == name for f in scene.files):
                scenes.append(scene)
        return scenes

    async def _by_title(self, title: str) -> list[Match]:
        if not self.index.enabled or not await self.index.ready(self.timeout):
            return []
        out: list[Match] = []
        for scene_id, exact in self.index.by_title(title, MAX_CANDIDATES):
            scene = await self.scene(scene_id)
            if scene is not None:
                out.append(Match(scene, protocol.SCORE_TITLE if exact else protocol.SCORE_TITLE - 10, "title"))
        return out

    async def _cleared(self, subject: str) -> None:
        if self.gaps.has(subject):
            await self.offload(self.gaps.clear, subject)

    async def _record_gap(self, hints: MatchHints, reason: str, candidates: list[Any], ids: list[str]) -> None:
        filename = hints.filename
        plex_paths = [c.plex_path for c in candidates]
        if not plex_paths and filename is not None:
            plex_paths = self.paths.plex_paths(filename)
        document = await self.offload(
            functools.partial(
                self.gaps.record,
                gap_subject(hints),
                filename=filename,
                reason=reason,
                plex_paths=plex_paths,
                stash_paths=[c.stash_path for c in candidates],
                candidates=ids,
                title=hints.title,
                hints=None if filename is not None and hints.type == protocol.MOVIE else hints.recorded(),
            )
        )
        log.warning(
            "no Stash scene for a file Plex asked about",
            extra={
                "plex_filename": filename,
                "plex_title": hints.title,
                "reason": reason,
                "times": document.get("count"),
            },
        )

    # -- metadata and images

    async def metadata(self, rating_key: str) -> StashScene | None:
        self.counters["metadata"] += 1
        scene_id = protocol.scene_id_from_key(rating_key)
        return None if scene_id is None else await self.scene(scene_id)

    async def image(self, scene_id: str, performer_id: str | None = None) -> Image | None:
        """The screenshot (or one performer's photo) the scene's metadata advertises, else ``None``."""
        self.counters["images"] += 1
        if not protocol.KEY_CHARS.match(scene_id) or (performer_id and not protocol.KEY_CHARS.match(performer_id)):
            return None
        scene = await self.scene(scene_id)
        if scene is None:
            return None
        desired = self.desired(scene)
        url: str | None
        if performer_id is None:
            url = desired.poster_url
        else:
            performer = next((p for p in scene.performers if p.id == performer_id), None)
            url = performer.image_url.strip() if performer is not None and performer.image_url else None
            if url is not None and url not in {a.photo_url for a in desired.metadata.actors}:
                url = None  # a placeholder, or photos switched off: nothing to serve
        if url is None:
            return None
        target = url
        try:
            data = await self._images.get_or_load(target, lambda: self.call(self.stash.fetch_image, target))
        except NotFoundError:
            return None
        if len(data) > MAX_IMAGE_BYTES:
            log.warning("image too large to pass on", extra={"scene_id": scene_id, "bytes": len(data)})
            return None
        return Image(data, sniff(data))

    # -- gaps

    async def run_comparison(self, trigger: str) -> dict[str, Any]:
        """Run the two-way comparison now, or join the one already running."""
        if self._comparison is None:
            loop = asyncio.get_running_loop()
            self._comparison = loop.run_in_executor(
                None, functools.partial(compare, self.app, self.gaps, self.paths, trigger=trigger)
            )
            self._comparison.add_done_callback(self._compared)
        return await asyncio.shield(self._comparison)

    def _compared(self, future: asyncio.Future[dict[str, Any]]) -> None:
        self._comparison = None
        if not future.cancelled() and future.exception() is not None:
            log.error("gap comparison failed: %s", future.exception())

    @property
    def comparing(self) -> bool:
        return self._comparison is not None

    def seconds_to_next_comparison(self) -> float | None:
        report = self.gaps.latest_report()
        started = report.get("started_at") if report else None
        return next_run(
            started if isinstance(started, str) else None,
            schedule_seconds(self.settings.provider_gap_schedule),
            self.app.clock.now(),
            self.up_since,
            first_delay=60.0,
        )

    async def scheduler(self, *, poll: float = 60.0, first_delay: float = 60.0) -> None:
        """Run comparisons on ``provider_gap_schedule`` until cancelled; flush matched scenes meanwhile."""
        interval = schedule_seconds(self.settings.provider_gap_schedule)
        while True:
            report = await self.offload(self.gaps.latest_report)
            started = report.get("started_at") if report else None
            wait = next_run(
                started if isinstance(started, str) else None,
                interval,
                self.app.clock.now(),
                self.up_since,
                first_delay=first_delay,
            )
            if wait is not None and wait <= 0:
                try:
                    await self.run_comparison("schedule")
                except Exception:  # noqa: BLE001 - logged by _compared; the schedule goes on
                    await asyncio.sleep(min(poll, 900.0))
                continue
            await asyncio.sleep(poll if wait is None else min(poll, wait))
            try:
                await self.offload(self.gaps.flush_seen)
            except Exception as exc:  # noqa: BLE001 - retried on the next tick
                log.warning("could not save matched scenes: %s", exc)

    # -- health

    async def health(self) -> dict[str, Any]:
        """Liveness plus whether Stash answers (probed at most every 10 s)."""
        now = time.monotonic()
        if self._health is None or now - self._health[0] > 10.0:
            began = time.monotonic()
            stash: dict[str, Any]
            try:
                info = await self.call(self.stash.ping)
                stash = {
                    "reachable": True,
                    "version": info.version,
                    "latency_ms": round((time.monotonic() - began) * 1000, 1),
                }
            except Exception as exc:  # noqa: BLE001 - health reports, never raises
                stash = {"reachable": False, "error": type(exc).__name__}
            self._health = (now, stash)
        stash = self._health[1]
        report = self.gaps.latest_report()
        return {
            "status": "ok" if stash.get("reachable") else "degraded",
            "identifier": self.identifier,
            "uptime_seconds": round(now - self._started, 1),
            "stash": stash,
            "path_rules": len(self.paths.mapper.rules),
            "library_roots": len(self.paths.roots),
            "unmatched_files": self.gaps.unmatched_count,
            "index": {
                "scenes": self.index.size,
                "fresh": self.index.fresh,
                "builds": self.index.builds,
                "refreshes": self.index.refreshes,
                "error": self.index.last_error,
            },
            "last_comparison": report.get("finished_at") if report else None,
            "counters": dict(self.counters),
        }

    # -- lifetime

    def close(self) -> None:
        try:
            self.gaps.flush_seen()
        except Exception as exc:  # noqa: BLE001 - closing must finish
            log.warning("could not save matched scenes: %s", exc)
        self.index.close()
        self._executor.shutdown(wait=False, cancel_futures=True)


__all__ = [
    "BadRequestError",
    "Image",
    "Match",
    "MatchHints",
    "ProviderService",
    "UpstreamTimeoutError",
    "gap_subject",
    "sniff",
]
