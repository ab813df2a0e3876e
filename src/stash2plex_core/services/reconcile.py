"""Reconciliation (DESIGN §9): find and repair what events missed, in one linear pass per side.

Stash fires no hook for auto-tag, scene merges or renames of tags, performers and studios,
and hooks are lost while Plex or the worker is down, so a periodic comparison of both
libraries is what makes "eventually in Plex" true. Gap kinds (:data:`GAP_KINDS`):

* ``missing_in_plex`` — a Stash scene whose file lies under a Plex library location but
  has no Plex item;
* ``orphan_in_plex`` — a Plex item whose files map back to Stash (a mapped root) but that
  no Stash scene claims (full scope only: a partial pass cannot prove absence);
* ``drift`` — the item's current state differs from the desired one, reported per field
  (items with empty metadata included);
* ``stale`` — Stash's ``updated_at`` is newer than the one the last successful sync applied;
* ``low_confidence`` — matches awaiting the user's review.

Cost (plex-protocol §2.4, prior-art W3/W14): one paged listing per side joined in memory by
mapped path, and drift read from one batched detail call per batch of candidate items;
a pair whose recorded digest and Plex ``updatedAt`` both still hold needs no detail at all.
Only compact values are kept per scene and item, so memory is linear with a small constant.
The report counts the gateway calls as they are made (:class:`GatewayCalls`): this module
sees ports, not HTTP, so it never guesses requests from page sizes.

Runs are claimed atomically through the StateStore (one lock document with an expiry and a
heartbeat), so parallel invocations never reconcile twice. Dry runs only read, so they claim
a lock of their own (:data:`DRY_CONTROL_KEY`) and keep their report apart
(:data:`DRY_REPORT_KEY`): a comparison, such as the metadata provider's, neither hides the
user's last real report nor makes a due scheduled pass wait. The incremental watermark is the
largest ``updated_at`` *string* Stash returned, re-sent in Stash's own format minus an
overlap (stash-protocol §4.5). Repairs go through the queue, coalesced; a dry run only
reports. This module does no I/O of its own: it only talks to the ports.
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from typing import Any
from typing import Final
from typing import Literal

import attrs

from stash2plex_core.app import App
from stash2plex_core.errors import Stash2PlexError
from stash2plex_core.errors import StateError
from stash2plex_core.errors import TransientError
from stash2plex_core.models._convert import to_mapping
from stash2plex_core.models._convert import to_tuple
from stash2plex_core.models.health import SyncRecord
from stash2plex_core.models.matching import Confidence
from stash2plex_core.models.matching import MatchMethod
from stash2plex_core.models.plex import SCALAR_FIELDS
from stash2plex_core.models.plex import TAG_FIELDS
from stash2plex_core.models.plex import DesiredPlexState
from stash2plex_core.models.plex import ImageKind
from stash2plex_core.models.plex import PlexItemRef
from stash2plex_core.models.plex import PlexItemState
from stash2plex_core.models.plex import PlexMetadata
from stash2plex_core.models.stash import StashScene
from stash2plex_core.ports.clock import Clock
from stash2plex_core.ports.plex import PlexGateway
from stash2plex_core.ports.queue import Queue
from stash2plex_core.ports.stash import StashGateway
from stash2plex_core.ports.state import Document
from stash2plex_core.ports.state import StateStore
from stash2plex_core.serde import from_document
from stash2plex_core.serde import to_document
from stash2plex_core.services.mapping import desired_state
from stash2plex_core.services.mapping import digest
from stash2plex_core.services.matching import file_name
from stash2plex_core.services.matching import normalise_path
from stash2plex_core.services.pathrules import PathMapper
from stash2plex_core.services.pathrules import clean_path
from stash2plex_core.services.planning import plan
from stash2plex_core.services.worker import POSTER_NAMESPACE
from stash2plex_core.services.worker import REVIEW_NAMESPACE
from stash2plex_core.services.worker import SYNC_NAMESPACE
from stash2plex_core.settings import Settings


Scope = Literal["full", "incremental", "days"]
SCOPES: Final[tuple[str, ...]] = ("full", "incremental", "days")
GAP_KINDS: Final[tuple[str, ...]] = ("missing_in_plex", "orphan_in_plex", "drift", "stale", "low_confidence")
#: StateStore namespace of the lock/schedule/watermark document and of the last report.
NAMESPACE: Final = "reconcile"
CONTROL_KEY: Final = "control"
REPORT_KEY: Final = "last_report"
#: The lock dry runs claim (only its ``lock`` and ``last_error`` are used) and their report.
DRY_CONTROL_KEY: Final = "dry_control"
DRY_REPORT_KEY: Final = "last_dry_run"
#: Queue reason of the repairs reconciliation enqueues.
REPAIR_REASON: Final = "reconcile"
#: Seconds between scheduled incremental passes, by ``reconcile_schedule``.
SCHEDULE_SECONDS: Final[Mapping[str, float]] = {"hourly": 3600.0, "daily": 86400.0, "weekly": 604800.0}
#: A failed scheduled pass is due again after at most this long.
RETRY_AFTER_FAILURE_SECONDS: Final = 900.0
#: Widest UTC offset a server can have: "last N days" looks back this much further when it
#: cannot yet know Stash's offset, because Stash compares its timestamps as text.
_MAX_OFFSET: Final = dt.timedelta(hours=14)
#: Drift "fields" beyond Plex's own field names.
LOCKS_FIELD: Final = "locks"
POSTER_FIELD: Final = "poster"
_FIELD_ORDER: Final = {name: i for i, name in enumerate((*SCALAR_FIELDS, *TAG_FIELDS, LOCKS_FIELD, POSTER_FIELD))}
#: Queue repairs in chunks of this many scenes, so a crash mid-run keeps most of the work.
_ENQUEUE_CHUNK: Final = 1000
#: Check whether the lock needs a heartbeat after this many scenes.
_BEAT_EVERY: Final = 256


class ReconcileBusyError(TransientError):
    """Another reconciliation holds the lock; try again once it finishes (or its claim expires)."""


class ReconcileLockLostError(Stash2PlexError):
    """This run's claim expired and another run took it over; this run's result is dropped."""


# --- models ---------------------------------------------------------------------------------


@attrs.frozen
class GapExample:
    """One gap, as shown in a report: enough to find the scene or item and see what is wrong."""

    kind: str
    scene_id: str | None = None
    rating_key: str | None = None
    path: str | None = None
    #: For ``drift``: the fields that differ (Plex names, ``locks``, ``poster``).
    fields: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)
    detail: str | None = None


@attrs.frozen
class GatewayCalls:
    """The gateway (port) calls a run made, counted as they were made, plus item counts.

    This module sees ports, not HTTP, so these are calls, not requests: one listing call
    pages through its server (with the stashapi/plexapi adapters, one request per page of
    1,000 plus a last, short page per library section), a detail call may cost more than
    one request (the Plex adapter splits a batch larger than its own limit of 100), and
    retries inside an adapter are not seen here. The simulators' request logs (tests,
    ``benchmarks/bench_reconcile.py``) give the exact HTTP counts.
    """

    #: ``iter_scenes`` calls (paged listings of Stash).
    stash_listings: int = 0
    #: ``sections`` calls (the library list).
    plex_section_reads: int = 0
    #: ``iter_items`` calls (paged listings of Plex).
    plex_listings: int = 0
    #: ``get_items`` calls, one per batch of at most ``reconcile_batch_size`` items.
    plex_detail_calls: int = 0
    stash_scenes: int = 0
    plex_items: int = 0
    #: Items whose details were read (over all detail calls).
    plex_details: int = 0

    @property
    def stash(self) -> int:
        """Calls made to the Stash gateway."""
        return self.stash_listings

    @property
    def plex(self) -> int:
        """Calls made to the Plex gateway."""
        return self.plex_section_reads + self.plex_listings + self.plex_detail_calls


def _all_kinds(value: Mapping[str, int] | None) -> Mapping[str, int]:
    counts = dict.fromkeys(GAP_KINDS, 0)
    counts.update(value or {})
    return to_mapping(counts)


@attrs.frozen
class ReconcileReport:
    """The outcome of one reconciliation, kept as the last report in the StateStore."""

    scope: str
    started_at: dt.datetime
    finished_at: dt.datetime
    duration_seconds: float
    #: Gaps by kind; every kind of :data:`GAP_KINDS` is present.
    counts: Mapping[str, int] = attrs.field(factory=dict, converter=_all_kinds, hash=False)
    #: A few examples per kind.
    examples: tuple[GapExample, ...] = attrs.field(default=(), converter=to_tuple)
    #: How many drifting items differ in each field.
    drift_fields: Mapping[str, int] = attrs.field(factory=dict, converter=to_mapping, hash=False)
    #: Gateway calls to each side (not HTTP requests: see :class:`GatewayCalls`).
    calls: GatewayCalls = attrs.field(factory=GatewayCalls)
    dry_run: bool = False
    #: Distinct scenes that need a repair (queued unless this was a dry run).
    repairs: int = 0
    #: Distinct scenes queued for repair (0 in a dry run).
    enqueued: int = 0
    scenes_checked: int = 0
    plex_items_checked: int = 0
    #: Drifting items that had none of summary, studio, genres, actors or collections.
    empty_metadata: int = 0
    #: Pairs whose recorded digest and Plex ``updatedAt`` proved them current without a detail read.
    unchanged: int = 0
    #: Stash scenes whose files map to no Plex path or lie outside every Plex library location.
    out_of_scope: int = 0
    #: Scenes that are a later part of a stacked Plex item; the scene of its first part is checked.
    stacked_parts: int = 0
    #: The ``updated_at`` lower bound sent to Stash (incremental and days scopes).
    since: str | None = None
    days: int | None = None
    #: The watermark after the run.
    watermark: str | None = None
    trigger: str = "manual"

    @property
    def total_gaps(self) -> int:
        return sum(self.counts.values())

    def examples_of(self, kind: str) -> tuple[GapExample, ...]:
        return tuple(e for e in self.examples if e.kind == kind)

    def summary_lines(self) -> list[str]:
        """A short human-readable report (CLI and plugin tasks)."""
        head = (
            f"reconciliation ({self.scope}{', dry run' if self.dry_run else ''}) "
            f"{self.started_at.isoformat(timespec='seconds')}: {self.duration_seconds:.1f} s, "
            f"{self.scenes_checked} scenes, {self.plex_items_checked} Plex items, "
            f"gateway calls stash={self.calls.stash} plex={self.calls.plex}"
        )
        lines = [head]
        for kind in GAP_KINDS:
            lines.append(f"  {kind:16} {self.counts.get(kind, 0)}")
            for example in self.examples_of(kind):
                lines.append(f"    - {_describe(example)}")
        if self.drift_fields:
            shown = ", ".join(f"{k}={v}" for k, v in sorted(self.drift_fields.items(), key=lambda kv: _order(kv[0])))
            lines.append(f"  drift by field: {shown}")
        if self.dry_run:
            lines.append(f"  dry run: {self.repairs} scenes would be queued for repair")
        else:
            lines.append(f"  queued for repair: {self.enqueued} scenes")
        return lines


def _describe(example: GapExample) -> str:
    parts = []
    if example.scene_id is not None:
        parts.append(f"scene {example.scene_id}")
    if example.rating_key is not None:
        parts.append(f"item {example.rating_key}")
    if example.path is not None:
        parts.append(repr(example.path))
    if example.fields:
        parts.append("fields: " + ", ".join(example.fields))
    text = " ".join(parts)
    return f"{text} ({example.detail})" if example.detail else text


@attrs.frozen
class ReconcileLock:
    """A run's claim: only the holder of ``token`` reconciles until ``expires_at``."""

    token: str
    owner: str
    scope: str
    acquired_at: dt.datetime
    expires_at: dt.datetime


@attrs.frozen
class ReconcileControl:
    """The one document every reconciliation claims atomically: lock, schedule, watermark."""

    lock: ReconcileLock | None = None
    #: Largest ``updated_at`` string Stash returned to a full or incremental pass.
    watermark: str | None = None
    next_incremental_at: dt.datetime | None = None
    next_full_at: dt.datetime | None = None
    last_success_at: dt.datetime | None = None
    last_error: str | None = None


# --- Stash timestamps ------------------------------------------------------------------------


def parse_stash_time(text: str | None) -> dt.datetime | None:
    """A Stash ``updated_at`` string as an aware datetime (naive text is read as UTC), or ``None``."""
    if not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def format_stash_time(moment: dt.datetime, like: str | None = None) -> str:
    """``moment`` spelled the way Stash spells ``like`` (RFC 3339 in the same offset).

    Stash compares ``updated_at`` as text, so a bound must use the server's offset and
    style; ``…Z`` is used when ``like`` is UTC written with ``Z`` or unknown. Fractions
    of a second are dropped, which only widens a lower bound.
    """
    reference = parse_stash_time(like)
    zone = reference.tzinfo if reference is not None else dt.UTC
    local = moment.astimezone(zone)
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    offset = local.utcoffset() or dt.timedelta(0)
    if offset == dt.timedelta(0) and (like is None or like.strip().upper().endswith("Z")):
        return text + "Z"
    sign = "-" if offset < dt.timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{text}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def shift_stash_time(text: str, seconds: float) -> str:
    """``text`` moved by ``seconds`` (negative: earlier), keeping Stash's offset and style."""
    moment = parse_stash_time(text)
    if moment is None:
        raise ValueError(f"not a Stash timestamp: {text!r}")
    return format_stash_time(moment + dt.timedelta(seconds=seconds), like=text)


def stash_time_after(a: str | None, b: str | None) -> bool:
    """Whether timestamp ``a`` is later than ``b`` (instants when both parse, else text)."""
    if a is None:
        return False
    if b is None:
        return True
    pa, pb = parse_stash_time(a), parse_stash_time(b)
    if pa is not None and pb is not None:
        return pa > pb
    return a > b


# --- pure rules ------------------------------------------------------------------------------


def _order(field: str) -> tuple[int, str]:
    return (_FIELD_ORDER.get(field, len(_FIELD_ORDER)), field)


def drift_fields(desired: DesiredPlexState, current: PlexItemState, settings: Settings) -> tuple[str, ...]:
    """The fields in which ``current`` differs from ``desired``, in edit order; empty when none.

    Uses the planner, so drift means exactly "the worker would send something": scalar and
    tag fields by Plex name, ``locks`` when a managed field is not locked yet, and
    ``poster`` when a poster is wanted but the item shows none of ours (the bytes are not
    fetched here, so a changed screenshot is left to the digest).
    """
    edit = plan(desired, current, settings)
    found = {*edit.fields, *edit.tags}
    if edit.locks:
        found.add(LOCKS_FIELD)
    if (
        settings.sync_poster
        and desired.poster_url is not None
        and ImageKind.POSTER not in current.images
        and not (settings.preserve_plex_edits and "thumb" in current.locked_fields)
    ):
        found.add(POSTER_FIELD)
    return tuple(sorted(found, key=_order))


def has_empty_metadata(metadata: PlexMetadata) -> bool:
    """Whether Plex shows only what a scan gives: no summary, studio, genres, actors or collections.

    Title and year are ignored: Plex's scanner takes both from the file name.
    """
    return not (metadata.summary or metadata.studio or metadata.genres or metadata.actors or metadata.collections)


def due_scope(control: ReconcileControl, now: dt.datetime, settings: Settings) -> Scope | None:
    """Which scheduled pass is due at ``now``, if any (a due full pass wins over incremental).

    ``reconcile_schedule = "none"`` schedules nothing (on-demand runs still work); the first
    scheduled pass is a full one, and ``reconcile_full_interval_hours`` repeats it.
    """
    if settings.reconcile_schedule not in SCHEDULE_SECONDS:
        return None
    if control.next_full_at is None and control.next_incremental_at is None:
        return "full"  # never scheduled before
    full_every = settings.reconcile_full_interval_hours * 3600.0
    if full_every > 0 and (control.next_full_at is None or now >= control.next_full_at):
        return "full"
    if control.next_incremental_at is None or now >= control.next_incremental_at:
        return "incremental"  # (a full pass after all while there is no watermark)
    return None


def _read_control(document: Mapping[str, Any] | None) -> ReconcileControl:
    if document is None:
        return ReconcileControl()
    return from_document(ReconcileControl, document, source=f"state {NAMESPACE}/{CONTROL_KEY}")


# --- the in-memory join ---------------------------------------------------------------------


def _normalise(path: str) -> str:
    """The matcher's loose form of a path (case, separators, Unicode composition ignored)."""
    return normalise_path(path)


def _name_key(path: str) -> str:
    return normalise_path(file_name(path))


def _under_any(normalised: str, roots: Iterable[str]) -> bool:
    for root in roots:
        trimmed = root.rstrip("/")
        if normalised == trimmed or normalised.startswith(trimmed + "/"):
            return True
    return False


class _KeyIndex:
    """key → ratingKeys, compact for the common case of exactly one item per key."""

    __slots__ = ("many", "one")

    def __init__(self) -> None:
        self.one: dict[str, str] = {}
        self.many: dict[str, list[str]] = {}

    def add(self, key: str, rating_key: str) -> None:
        holders = self.many.get(key)
        if holders is not None:
            if rating_key not in holders:
                holders.append(rating_key)
            return
        seen = self.one.get(key)
        if seen is None:
            self.one[key] = rating_key
        elif seen != rating_key:
            del self.one[key]
            self.many[key] = [seen, rating_key]

    def get(self, key: str) -> tuple[str, ...]:
        seen = self.one.get(key)
        if seen is not None:
            return (seen,)
        return tuple(self.many.get(key, ()))


@attrs.frozen
class _Match:
    """Where a scene's files led: a ratingKey with its confidence, or candidates, or nothing."""

    rating_key: str | None
    confidence: Confidence
    method: MatchMethod
    candidates: tuple[str, ...] = ()


def _pick(keys: Iterable[str], method: MatchMethod) -> _Match:
    found = tuple(dict.fromkeys(keys))
    if len(found) == 1:
        return _Match(found[0], Confidence.HIGH, method, found)
    return _Match(None, Confidence.LOW, method, found)


class _PlexIndex:
    """Compact views of one paged listing, matched the way the worker's :class:`Matcher` does.

    The worker asks Plex per scene; reconciliation answers the same questions (recorded
    ratingKey verified by path, exact path, loose path, unique file name) from one listing,
    so the two agree on what is matched and a repaired gap does not come back.
    """

    def __init__(self, mapper: PathMapper) -> None:
        self._mapper = mapper
        self.exact = _KeyIndex()
        self.loose = _KeyIndex()
        self.names = _KeyIndex()
        #: ratingKey → (updatedAt, first part path, under a mapped root)
        self.items: dict[str, tuple[int | None, str | None, bool]] = {}
        #: ratingKeys of items with more than one part (stacked films, several versions)
        self.multipart: set[str] = set()

    def stacked_elsewhere(self, rating_key: str, paths: Iterable[str]) -> bool:
        """Whether the item has several parts and its first is none of ``paths``."""
        if rating_key not in self.multipart:
            return False
        first = self.items[rating_key][1]
        if first is None:
            return False
        wanted = _normalise(first)
        return all(_normalise(path) != wanted for path in paths)

    def add(self, ref: PlexItemRef) -> None:
        mapped = False
        for path in ref.part_paths:
            self.exact.add(path, ref.rating_key)
            self.loose.add(_normalise(path), ref.rating_key)
            self.names.add(_name_key(path), ref.rating_key)
            mapped = mapped or self._mapper.to_stash(path) is not None
        first = ref.part_paths[0] if ref.part_paths else None
        self.items[ref.rating_key] = (ref.updated_at, first, mapped)
        if len(ref.part_paths) > 1:
            self.multipart.add(ref.rating_key)

    def match(self, paths: list[str], naming: list[str], recorded: str | None) -> _Match:
        """Recorded (verified), exact, loose, then file name; see :mod:`.matching`.

        ``paths`` are the scene's mapped files; ``naming`` gives each file's name for the
        last step (its mapped path, or the Stash path when no rule maps it).
        """
        first_exact: tuple[str, ...] = ()
        for path in paths:
            keys = self.exact.get(path)
            if recorded is not None and recorded in keys:
                return _Match(recorded, Confidence.HIGH, MatchMethod.RECORDED, (recorded,))
            if keys and not first_exact:
                first_exact = keys
        if first_exact:
            return _pick(first_exact, MatchMethod.EXACT_PATH)
        loose = [key for path in paths for key in self.loose.get(_normalise(path))]
        if recorded is not None and recorded in loose:
            return _Match(recorded, Confidence.HIGH, MatchMethod.RECORDED, (recorded,))
        if loose:
            return _pick(loose, MatchMethod.NORMALISED_PATH)
        named = [key for path in naming for key in self.names.get(_name_key(path))]
        if named:
            return _pick(named, MatchMethod.FILENAME)
        return _Match(None, Confidence.NONE, MatchMethod.NONE)


@attrs.frozen
class _Record:
    rating_key: str
    digest: str
    stash_updated_at: str | None
    plex_updated_at: int | None


def _compact(document: Mapping[str, Any], key: str) -> _Record | None:
    try:
        record = from_document(SyncRecord, document, source=f"state {SYNC_NAMESPACE}/{key}")
    except StateError:
        return None  # an unreadable record is the same as none: the pair gets a detail read
    return _Record(record.rating_key, record.digest, record.stash_updated_at, record.plex_updated_at)


# --- the service -----------------------------------------------------------------------------


class Reconciler:
    """Runs reconciliations against the five ports; build one with :meth:`from_app`.

    :param owner: names this process in the lock (shown when another run is refused).
    """

    def __init__(
        self,
        *,
        settings: Settings,
        plex: PlexGateway,
        stash: StashGateway,
        state: StateStore,
        queue: Queue,
        clock: Clock,
        mapper: PathMapper | None = None,
        owner: str | None = None,
    ) -> None:
        self.settings = settings
        self.plex = plex
        self.stash = stash
        self.state = state
        self.queue = queue
        self.clock = clock
        self.mapper = mapper if mapper is not None else PathMapper.compile(settings.path_rules)
        self.owner = owner or f"reconcile-{uuid.uuid4().hex[:8]}"

    @classmethod
    def from_app(cls, app: App, *, owner: str | None = None, mapper: PathMapper | None = None) -> Reconciler:
        """A reconciler over a built :class:`~stash2plex_core.app.App`."""
        return cls(
            settings=app.settings,
            plex=app.plex,
            stash=app.stash,
            state=app.state,
            queue=app.queue,
            clock=app.clock,
            mapper=mapper,
            owner=owner,
        )

    # -- public API

    def control(self) -> ReconcileControl:
        """The current lock, schedule and watermark."""
        return _read_control(self.state.get(NAMESPACE, CONTROL_KEY))

    def due(self) -> Scope | None:
        """Which scheduled pass would run now (ignoring a live lock)."""
        return due_scope(self.control(), self.clock.now(), self.settings)

    def last_report(self, *, dry_run: bool = False) -> ReconcileReport | None:
        """The last real run's report (``dry_run=True``: the last dry run's)."""
        return last_report(self.state, dry_run=dry_run)

    def run(self, scope: str = "full", *, days: int | None = None, dry_run: bool = False) -> ReconcileReport:
        """Reconcile now, whatever the schedule says.

        :param scope: ``"full"``, ``"incremental"`` (since the watermark; full when there is
            none yet) or ``"days"`` (scenes updated in the last ``days`` days).
        :param dry_run: only report. A dry run claims the dry-run lock, not the one real
            runs and the schedule share, and stores its report apart (see :func:`last_report`).
        :raises ReconcileBusyError: another reconciliation (another dry run, for a dry run) is running.
        """
        checked = _check_scope(scope, days)
        lock, control, busy = self._claim(checked, scheduled=False, dry_run=dry_run)
        if lock is None:
            assert busy is not None
            kind = "dry run" if dry_run else "reconciliation"
            raise ReconcileBusyError(
                f"another {kind} ({busy.scope}, by {busy.owner}) holds the lock until "
                f"{busy.expires_at.isoformat(timespec='seconds')}"
            )
        return self._execute(lock, control, days=days, dry_run=dry_run, trigger="manual")

    def run_if_due(self, *, dry_run: bool = False) -> ReconcileReport | None:
        """Run the scheduled pass if one is due and no other run holds the lock; else ``None``.

        With ``dry_run`` the due pass is only reported: the schedule is read, not claimed,
        so the real scheduled pass stays due.
        """
        lock, control, _ = self._claim(None, scheduled=True, dry_run=dry_run)
        if lock is None:
            return None
        return self._execute(lock, control, days=None, dry_run=dry_run, trigger="schedule")

    # -- claiming

    def _claim(
        self, scope: Scope | None, *, scheduled: bool, dry_run: bool = False
    ) -> tuple[ReconcileLock | None, ReconcileControl, ReconcileLock | None]:
        """``(our lock, the schedule/watermark control, the lock that refused us)``.

        A real run claims the control document itself. A dry run reads it (watermark, due
        scope) and claims the separate dry-run lock, so it never holds up a real run.
        """
        token = uuid.uuid4().hex
        now = self.clock.now()
        expires = now + dt.timedelta(seconds=self.settings.reconcile_lock_seconds)
        schedule = self.control() if dry_run else None

        def claim(document: Document | None) -> Document | None:
            control = _read_control(document)
            if control.lock is not None and control.lock.expires_at > now:
                return document
            chosen = due_scope(control if schedule is None else schedule, now, self.settings) if scheduled else scope
            if chosen is None:
                return document
            lock = ReconcileLock(token=token, owner=self.owner, scope=chosen, acquired_at=now, expires_at=expires)
            return to_document(attrs.evolve(control, lock=lock))

        claimed = _read_control(self.state.update(NAMESPACE, _control_key(dry_run), claim))
        control = claimed if schedule is None else schedule
        if claimed.lock is not None and claimed.lock.token == token:
            return claimed.lock, control, None
        return None, control, claimed.lock

    def _heartbeat(self, lock: ReconcileLock, *, dry_run: bool = False) -> ReconcileLock:
        now = self.clock.now()
        expires = now + dt.timedelta(seconds=self.settings.reconcile_lock_seconds)
        lost: list[bool] = []

        def extend(document: Document | None) -> Document | None:
            control = _read_control(document)
            if control.lock is None or control.lock.token != lock.token:
                lost.append(True)
                return document
            return to_document(attrs.evolve(control, lock=attrs.evolve(control.lock, expires_at=expires)))

        self.state.update(NAMESPACE, _control_key(dry_run), extend)
        if lost:
            raise ReconcileLockLostError("this reconciliation's claim expired and another run took over")
        return attrs.evolve(lock, expires_at=expires)

    def _finish_dry(self, lock: ReconcileLock, error: BaseException | None) -> None:
        """Release the dry-run lock; a dry run moves no schedule and no watermark."""

        def release(document: Document | None) -> Document | None:
            control = _read_control(document)
            if control.lock is None or control.lock.token != lock.token:
                return document
            failure = None if error is None else f"{type(error).__name__}: {error}"[:500]
            return to_document(attrs.evolve(control, lock=None, last_error=failure))

        self.state.update(NAMESPACE, DRY_CONTROL_KEY, release)

    def _finish(
        self, lock: ReconcileLock, *, report: ReconcileReport | None, error: BaseException | None, trigger: str
    ) -> None:
        now = self.clock.now()
        incremental_every = SCHEDULE_SECONDS.get(self.settings.reconcile_schedule)
        full_every = self.settings.reconcile_full_interval_hours * 3600.0

        def later(seconds: float | None) -> dt.datetime | None:
            return None if seconds is None or seconds <= 0 else now + dt.timedelta(seconds=seconds)

        def release(document: Document | None) -> Document | None:
            control = _read_control(document)
            if control.lock is None or control.lock.token != lock.token:
                return document  # taken over after our claim expired: the new holder decides
            changes: dict[str, Any] = {"lock": None}
            if report is not None and not report.dry_run:
                changes["last_success_at"] = now
                changes["last_error"] = None
                if report.scope in ("full", "incremental"):
                    changes["watermark"] = report.watermark
                    changes["next_incremental_at"] = later(incremental_every)
                if report.scope == "full":
                    changes["next_full_at"] = later(full_every)
            elif error is not None:
                changes["last_error"] = f"{type(error).__name__}: {error}"[:500]
                if trigger == "schedule":
                    retry = later(min(RETRY_AFTER_FAILURE_SECONDS, incremental_every or RETRY_AFTER_FAILURE_SECONDS))
                    changes["next_full_at" if lock.scope == "full" else "next_incremental_at"] = retry
                    if control.next_incremental_at is None:
                        changes["next_incremental_at"] = retry
            return to_document(attrs.evolve(control, **changes))

        self.state.update(NAMESPACE, CONTROL_KEY, release)

    # -- running

    def _execute(
        self, lock: ReconcileLock, control: ReconcileControl, *, days: int | None, dry_run: bool, trigger: str
    ) -> ReconcileReport:
        scope = lock.scope
        if scope == "incremental" and control.watermark is None:
            scope = "full"  # nothing to be incremental from yet
        try:
            report = _Run(self, lock, scope, control.watermark, days=days, dry_run=dry_run, trigger=trigger).execute()
        except ReconcileLockLostError:
            raise
        except BaseException as exc:
            if dry_run:
                self._finish_dry(lock, exc)
            else:
                self._finish(lock, report=None, error=exc, trigger=trigger)
            raise
        self.state.put(NAMESPACE, DRY_REPORT_KEY if dry_run else REPORT_KEY, to_document(report))
        if dry_run:
            self._finish_dry(lock, None)
        else:
            self._finish(lock, report=report, error=None, trigger=trigger)
        return report


def _control_key(dry_run: bool) -> str:
    return DRY_CONTROL_KEY if dry_run else CONTROL_KEY


def _check_scope(scope: str, days: int | None) -> Scope:
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    if scope == "days" and (days is None or days < 1):
        raise ValueError("scope 'days' needs days >= 1")
    if scope != "days" and days is not None:
        raise ValueError("days only goes with scope 'days'")
    return scope  # type: ignore[return-value]


class _Run:
    """One reconciliation's working state; lives for one :meth:`Reconciler.run`."""

    def __init__(
        self,
        owner: Reconciler,
        lock: ReconcileLock,
        scope: str,
        watermark: str | None,
        *,
        days: int | None,
        dry_run: bool,
        trigger: str,
    ) -> None:
        self.r = owner
        self.settings = owner.settings
        self.lock = lock
        self.scope = scope
        self.old_watermark = watermark
        self.watermark = watermark if scope == "incremental" else None
        self.days = days
        self.dry_run = dry_run
        self.trigger = trigger
        self.started_at = owner.clock.now()
        self.started_mono = owner.clock.monotonic()
        self.beat_mono = self.started_mono
        self.counts = dict.fromkeys(GAP_KINDS, 0)
        self.examples: dict[str, list[GapExample]] = {kind: [] for kind in GAP_KINDS}
        self.drift_by_field: dict[str, int] = {}
        self.index = _PlexIndex(owner.mapper)
        self.roots: list[str] = []
        self.claimed: set[str] = set()
        self.low_confidence: set[str] = set()
        #: Matches the worker left for review, by scene id; dropped when this pass matches the scene.
        self.pending_reviews: dict[str, Document] = {}
        self.records: dict[str, _Record] | None = None
        self.batch: list[tuple[str, str, DesiredPlexState, str, str | None]] = []
        self.repairs: set[str] = set()
        self.unqueued: list[str] = []
        self.enqueued = 0
        self.scenes = 0
        self.unchanged = 0
        self.out_of_scope = 0
        self.stacked_parts = 0
        self.empty_metadata = 0
        #: Gateway calls, counted where each is made (``stash_listings`` and so on).
        self.calls: dict[str, int] = dict.fromkeys(
            ("stash_listings", "plex_section_reads", "plex_listings", "plex_detail_calls", "plex_details"), 0
        )

    # -- bookkeeping

    def gap(self, kind: str, example: GapExample, *, repair: str | None = None) -> None:
        self.counts[kind] += 1
        if len(self.examples[kind]) < self.settings.reconcile_examples:
            self.examples[kind].append(example)
        if repair is not None and repair not in self.repairs:
            self.repairs.add(repair)
            self.unqueued.append(repair)
            if len(self.unqueued) >= _ENQUEUE_CHUNK:
                self.enqueue()

    def enqueue(self) -> None:
        if self.unqueued and not self.dry_run:
            self.enqueued += self.r.queue.enqueue_many(self.unqueued, REPAIR_REASON)
        self.unqueued = []

    def beat(self) -> None:
        now = self.r.clock.monotonic()
        if now - self.beat_mono >= self.settings.reconcile_lock_seconds / 3:
            self.lock = self.r._heartbeat(self.lock, dry_run=self.dry_run)
            self.beat_mono = now

    def record(self, scene_id: str) -> _Record | None:
        if self.records is not None:
            return self.records.get(scene_id)
        document = self.r.state.get(SYNC_NAMESPACE, scene_id)
        return None if document is None else _compact(document, scene_id)

    # -- the pass

    def since(self) -> str | None:
        if self.scope == "incremental":
            assert self.old_watermark is not None
            return shift_stash_time(self.old_watermark, -self.settings.reconcile_overlap_seconds)
        if self.scope == "days":
            assert self.days is not None
            start = self.started_at - dt.timedelta(days=self.days)
            if self.old_watermark is None or parse_stash_time(self.old_watermark) is None:
                start -= _MAX_OFFSET  # Stash's offset is unknown yet: look back far enough for any
            return format_stash_time(start, like=self.old_watermark)
        return None

    def execute(self) -> ReconcileReport:
        since = self.since()
        self.calls["stash_listings"] += 1
        scenes: Iterator[StashScene] = iter(self.r.stash.iter_scenes(updated_since=since))
        first = next(scenes, None)
        if first is not None or self.scope == "full":
            self.list_plex()
        for key, document in self.r.state.items(REVIEW_NAMESPACE):
            self.pending_reviews[str(document.get("scene_id") or key)] = document
        if self.scope == "full":
            self.records = {}
            for key, document in self.r.state.items(SYNC_NAMESPACE):
                compact = _compact(document, key)
                if compact is not None:
                    self.records[key] = compact
        if first is not None:
            for scene in itertools.chain((first,), scenes):
                self.scene(scene)
        self.flush()
        self.reviews()
        if self.scope == "full":
            self.orphans()
        self.enqueue()
        return self.report(since)

    def list_plex(self) -> None:
        self.calls["plex_section_reads"] += 1
        sections = self.r.plex.sections()
        self.roots = [
            _normalise(location) for section in sections for location in section.locations if clean_path(location)
        ]
        self.calls["plex_listings"] += 1
        for count, ref in enumerate(self.r.plex.iter_items(), 1):
            self.index.add(ref)
            if count % _BEAT_EVERY == 0:
                self.beat()

    def scene(self, scene: StashScene) -> None:
        self.scenes += 1
        if self.scenes % _BEAT_EVERY == 0:
            self.beat()
        if self.scope != "days" and stash_time_after(scene.updated_at, self.watermark):
            self.watermark = scene.updated_at
        mapper = self.r.mapper
        pairs = [(f, mapper.to_plex(f)) for f in dict.fromkeys(scene.files) if f]
        mapped = [p for _, p in pairs if p is not None]
        naming = [p if p is not None else f for f, p in pairs]
        if not naming:
            self.out_of_scope += 1
            return
        shown = mapped[0] if mapped else naming[0]
        record = self.record(scene.id)
        match = self.index.match(mapped, naming, record.rating_key if record is not None else None)
        rating_key = match.rating_key
        if rating_key is None and record is not None and record.rating_key in match.candidates:
            rating_key = record.rating_key  # an ambiguous match the worker already applied
        if rating_key is None:
            if match.candidates:
                # Awaiting review; with allow_low_confidence the worker applies it, so queue it.
                # Its candidates are not orphans: one of them is probably this scene's item.
                self.claimed.update(match.candidates)
                allowed = self.settings.allow_low_confidence
                self.low(scene.id, shown, match.candidates, repair=scene.id if allowed else None)
            elif any(_under_any(_normalise(p), self.roots) for p in mapped):
                self.gap("missing_in_plex", GapExample("missing_in_plex", scene.id, path=shown), repair=scene.id)
            else:
                self.out_of_scope += 1
            return
        self.claimed.add(rating_key)
        self.pending_reviews.pop(scene.id, None)  # settled since: the scene now matches for sure
        if self.index.stacked_elsewhere(rating_key, mapped or naming):
            # A later part of a stacked film: Plex shows one item for several scenes, and the
            # scene holding its first part speaks for it (checking both would never settle).
            self.stacked_parts += 1
            return
        if record is not None and stash_time_after(scene.updated_at, record.stash_updated_at):
            self.gap(
                "stale",
                GapExample(
                    "stale",
                    scene.id,
                    rating_key,
                    shown,
                    detail=f"updated {scene.updated_at}, synced {record.stash_updated_at}",
                ),
                repair=scene.id,
            )
        desired = desired_state(scene, self.settings)
        updated_at = self.index.items[rating_key][0]
        if (
            record is not None
            and record.rating_key == rating_key
            and record.plex_updated_at is not None
            and record.plex_updated_at == updated_at
            and record.digest == digest(desired)
        ):
            self.unchanged += 1
            return
        self.batch.append((scene.id, rating_key, desired, shown, scene.updated_at))
        if len(self.batch) >= self.settings.reconcile_batch_size:
            self.flush()

    def flush(self) -> None:
        if not self.batch:
            return
        batch, self.batch = self.batch, []
        keys = list(dict.fromkeys(key for _, key, _, _, _ in batch))
        self.calls["plex_detail_calls"] += 1
        self.calls["plex_details"] += len(keys)
        states = {state.rating_key: state for state in self.r.plex.get_items(keys)}
        for scene_id, rating_key, desired, path, updated_at in batch:
            current = states.get(rating_key)
            if current is None:
                self.gap(
                    "missing_in_plex",
                    GapExample("missing_in_plex", scene_id, rating_key, path, detail="item vanished during the run"),
                    repair=scene_id,
                )
                continue
            fields = drift_fields(desired, current, self.settings)
            if POSTER_FIELD in fields and self.poster_unavailable(scene_id, desired, updated_at):
                fields = tuple(f for f in fields if f != POSTER_FIELD)
            if not fields:
                continue
            empty = has_empty_metadata(current.metadata)
            self.empty_metadata += empty
            for field in fields:
                self.drift_by_field[field] = self.drift_by_field.get(field, 0) + 1
            self.gap(
                "drift",
                GapExample("drift", scene_id, rating_key, path, fields, detail="empty metadata" if empty else None),
                repair=scene_id,
            )
        self.beat()

    def poster_unavailable(self, scene_id: str, desired: DesiredPlexState, updated_at: str | None) -> bool:
        """Whether the worker already found Stash serving no image for this very poster.

        Then there is nothing to upload and queueing the scene again would change nothing.
        """
        memo = self.r.state.get(POSTER_NAMESPACE, scene_id)
        return (
            memo is not None and memo.get("sha1") is None and memo.get("source") == f"{desired.poster_url}|{updated_at}"
        )

    def orphans(self) -> None:
        for rating_key, (_, first, mapped) in self.index.items.items():
            if mapped and rating_key not in self.claimed:
                self.gap("orphan_in_plex", GapExample("orphan_in_plex", rating_key=rating_key, path=first))

    def low(self, scene_id: str, path: str | None, candidates: Iterable[str], *, repair: str | None = None) -> None:
        if scene_id in self.low_confidence:
            return
        self.low_confidence.add(scene_id)
        shown = list(candidates)
        self.gap(
            "low_confidence",
            GapExample(
                "low_confidence",
                scene_id,
                path=path,
                detail=f"{len(shown)} candidate items: {', '.join(shown[:5])}" if shown else "awaiting review",
            ),
            repair=repair,
        )

    def reviews(self) -> None:
        for scene_id, document in self.pending_reviews.items():
            raw = document.get("candidates")
            candidates: list[str] = []
            if isinstance(raw, list):
                for candidate in raw:
                    value = candidate.get("rating_key") if isinstance(candidate, Mapping) else candidate
                    if isinstance(value, str | int):
                        candidates.append(str(value))
            path = document.get("plex_path") or document.get("path")
            self.claimed.update(candidates)
            self.low(scene_id, path if isinstance(path, str) else None, candidates)

    def report(self, since: str | None) -> ReconcileReport:
        finished = self.r.clock.now()
        watermark = self.old_watermark if self.scope == "days" or self.watermark is None else self.watermark
        plex_items = len(self.index.items)
        calls = GatewayCalls(**self.calls, stash_scenes=self.scenes, plex_items=plex_items)
        return ReconcileReport(
            scope=self.scope,
            started_at=self.started_at,
            finished_at=finished,
            duration_seconds=round(max(0.0, self.r.clock.monotonic() - self.started_mono), 3),
            counts=self.counts,
            examples=tuple(e for kind in GAP_KINDS for e in self.examples[kind]),
            drift_fields=dict(sorted(self.drift_by_field.items(), key=lambda kv: _order(kv[0]))),
            calls=calls,
            dry_run=self.dry_run,
            repairs=len(self.repairs),
            enqueued=self.enqueued if not self.dry_run else 0,
            scenes_checked=self.scenes,
            plex_items_checked=plex_items,
            empty_metadata=self.empty_metadata,
            unchanged=self.unchanged,
            out_of_scope=self.out_of_scope,
            stacked_parts=self.stacked_parts,
            since=since,
            days=self.days,
            watermark=watermark,
            trigger=self.trigger,
        )


# --- library functions -----------------------------------------------------------------------


def reconcile(app: App, scope: str = "full", *, days: int | None = None, dry_run: bool = False) -> ReconcileReport:
    """Reconcile now through a built app (see :meth:`Reconciler.run`)."""
    return Reconciler.from_app(app).run(scope, days=days, dry_run=dry_run)


def reconcile_if_due(app: App, *, dry_run: bool = False) -> ReconcileReport | None:
    """Run the scheduled pass if one is due (see :meth:`Reconciler.run_if_due`)."""
    return Reconciler.from_app(app).run_if_due(dry_run=dry_run)


def last_report(state: StateStore, *, dry_run: bool = False) -> ReconcileReport | None:
    """The report of the last finished reconciliation, or ``None`` before the first.

    Dry runs keep theirs apart, so a comparison never hides the last real run:
    ``dry_run=True`` reads the last dry run's report instead.
    """
    key = DRY_REPORT_KEY if dry_run else REPORT_KEY
    document = state.get(NAMESPACE, key)
    if document is None:
        return None
    return from_document(ReconcileReport, document, source=f"state {NAMESPACE}/{key}")


def report_to_json(report: ReconcileReport) -> dict[str, Any]:
    """The report as plain JSON data (what ``stash2plex reconcile --json`` prints)."""
    data = to_document(report)
    data.pop("schema_version", None)
    data["total_gaps"] = report.total_gaps
    data["calls"]["stash"] = report.calls.stash
    data["calls"]["plex"] = report.calls.plex
    return data


__all__ = [
    "CONTROL_KEY",
    "DRY_CONTROL_KEY",
    "DRY_REPORT_KEY",
    "GAP_KINDS",
    "NAMESPACE",
    "REPORT_KEY",
    "SCOPES",
    "GapExample",
    "GatewayCalls",
    "ReconcileBusyError",
    "ReconcileControl",
    "ReconcileLock",
    "ReconcileLockLostError",
    "ReconcileReport",
    "Reconciler",
    "Scope",
    "drift_fields",
    "due_scope",
    "format_stash_time",
    "has_empty_metadata",
    "last_report",
    "parse_stash_time",
    "reconcile",
    "reconcile_if_due",
    "report_to_json",
    "shift_stash_time",
    "stash_time_after",
]
