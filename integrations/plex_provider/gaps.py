"""Gaps: files Plex asked about that Stash does not have, and the scheduled comparison.

* Every match that finds no scene is logged and written to the StateStore at once
  (namespace :data:`GAPS_NAMESPACE`, one document per file, or per set of hints for a
  request without a ``filename``), and removed again when a later match for the same file
  (or hints) succeeds.
* Every scene Plex matched through the provider is remembered (namespace
  :data:`SEEN_NAMESPACE`), so a comparison can list Stash scenes under the library roots
  that Plex never asked about.
* The comparison, run on ``provider_gap_schedule`` and on demand (``POST /gaps/run``),
  puts both lists together with a dry-run reconciliation
  (:class:`~stash2plex_core.services.reconcile.Reconciler`) when Plex is configured, and
  keeps the result as the latest gap report. Being a dry run, it neither replaces the last
  real reconciliation report nor holds the lock a scheduled reconciliation needs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
import time
from typing import Any
from typing import Final

from stash2plex_core.app import App
from stash2plex_core.ports.clock import Clock
from stash2plex_core.ports.state import StateStore
from stash2plex_core.services.pathrules import PathMapper
from stash2plex_integrations.plex_provider.paths import LibraryPaths
from stash2plex_integrations.plex_provider.protocol import iso_now


log = logging.getLogger("stash2plex.provider")

GAPS_NAMESPACE: Final = "provider-gaps"
SEEN_NAMESPACE: Final = "provider-seen"
REPORT_NAMESPACE: Final = "provider"
REPORT_KEY: Final = "gap-report"
#: Items listed per kind in a report (the counts are always complete).
REPORT_EXAMPLES: Final = 100


def gap_key(filename: str) -> str:
    return hashlib.sha256(filename.encode("utf-8", "surrogatepass")).hexdigest()[:40]


class GapBook:
    """The provider's gap records in the StateStore, with in-memory sets to spare writes.

    Thread-safe; each method does at most one StateStore write, so call it off the event loop.
    """

    def __init__(self, state: StateStore, clock: Clock) -> None:
        self.state = state
        self.clock = clock
        self._lock = threading.Lock()
        self._gaps: set[str] = set(state.keys(GAPS_NAMESPACE))
        self._seen: set[str] = set(state.keys(SEEN_NAMESPACE))
        self._unsaved: dict[str, dict[str, Any]] = {}

    # -- unmatched files

    def record(
        self,
        subject: str,
        *,
        reason: str,
        plex_paths: list[str],
        stash_paths: list[str],
        candidates: list[str] | None = None,
        title: str | None = None,
        filename: str | None = None,
        hints: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Write (or update) the gap for ``subject`` now; returns the stored document.

        ``subject`` is the request's ``filename`` (the default for ``filename``), or for a
        request without one a text naming its other hints, which ``hints`` then holds.
        """
        now = iso_now(self.clock.now())
        key = gap_key(subject)
        if filename is None and hints is None:
            filename = subject

        def update(current: dict[str, Any] | None) -> dict[str, Any]:
            document: dict[str, Any] = {
                "filename": filename,
                "reason": reason,
                "plex_paths": plex_paths,
                "stash_paths": stash_paths,
                "candidates": candidates or [],
                "title": title,
                "first_seen": (current or {}).get("first_seen", now),
                "last_seen": now,
                "count": int((current or {}).get("count", 0)) + 1,
            }
            if hints is not None:
                document["hints"] = hints
            return document

        document = self.state.update(GAPS_NAMESPACE, key, update)
        with self._lock:
            self._gaps.add(key)
        assert document is not None
        return document

    def has(self, subject: str) -> bool:
        """Whether a gap is recorded for ``subject`` (from memory: no StateStore read)."""
        with self._lock:
            return gap_key(subject) in self._gaps

    def clear(self, subject: str) -> bool:
        """Forget the gap for ``subject`` (it matched); no write when there was none."""
        key = gap_key(subject)
        with self._lock:
            if key not in self._gaps:
                return False
            self._gaps.discard(key)
        return self.state.delete(GAPS_NAMESPACE, key)

    def unmatched(self) -> list[dict[str, Any]]:
        """Every recorded gap, most recent first."""
        docs = [doc for _, doc in self.state.items(GAPS_NAMESPACE)]
        docs.sort(key=lambda d: (str(d.get("last_seen") or ""), str(d.get("filename") or "")), reverse=True)
        return docs

    @property
    def unmatched_count(self) -> int:
        with self._lock:
            return len(self._gaps)

    # -- scenes Plex matched

    def seen(self, scene_id: str, plex_path: str | None) -> None:
        """Remember that Plex matched ``scene_id`` (kept in memory until :meth:`flush_seen`)."""
        with self._lock:
            if scene_id in self._seen:
                return
            self._seen.add(scene_id)
            self._unsaved[scene_id] = {"first_seen": iso_now(self.clock.now()), "plex_path": plex_path}

    def flush_seen(self) -> int:
        with self._lock:
            batch, self._unsaved = self._unsaved, {}
        if batch:
            try:
                self.state.put_many(SEEN_NAMESPACE, batch)
            except BaseException:
                with self._lock:
                    self._unsaved = {**batch, **self._unsaved}
                raise
        return len(batch)

    def seen_ids(self) -> set[str]:
        with self._lock:
            return set(self._seen)

    # -- reports

    def latest_report(self) -> dict[str, Any] | None:
        return self.state.get(REPORT_NAMESPACE, REPORT_KEY)

    def save_report(self, report: dict[str, Any]) -> None:
        self.state.put(REPORT_NAMESPACE, REPORT_KEY, report)


def _reconciliation(app: App, mapper: PathMapper) -> dict[str, Any]:
    """A dry-run full reconciliation as JSON, or why there is none."""
    if not app.settings.plex_url:
        return {"skipped": "plex_url is not set: only the provider's own comparison ran"}
    from stash2plex_core.services.reconcile import ReconcileBusyError
    from stash2plex_core.services.reconcile import Reconciler
    from stash2plex_core.services.reconcile import last_report
    from stash2plex_core.services.reconcile import report_to_json

    reconciler = Reconciler.from_app(app, owner="provider", mapper=mapper)
    try:
        # A dry run claims only the dry-run lock and keeps its report apart: the user's last
        # real report and the reconciliation schedule are left as they were.
        return report_to_json(reconciler.run("full", dry_run=True))
    except ReconcileBusyError as exc:
        previous = last_report(app.state, dry_run=True)
        return {
            "skipped": f"busy: {exc}",
            "last_report": None if previous is None else report_to_json(previous),
        }


def compare(app: App, book: GapBook, paths: LibraryPaths, *, trigger: str, reconcile: bool = True) -> dict[str, Any]:
    """Both directions, in one paged pass over Stash (plus reconciliation when Plex is set).

    * ``plex_without_stash`` — files Plex asked to match that no Stash scene has;
    * ``stash_not_requested`` — Stash scenes whose file lies under a library root but that
      Plex never matched through this provider (not in Plex yet, or matched by another agent);
    * ``reconciliation`` — the dry-run report, or why it was skipped or failed.
    """
    started = app.clock.now()
    began = time.monotonic()
    book.flush_seen()
    unmatched = book.unmatched()
    seen = book.seen_ids()
    not_requested: list[dict[str, Any]] = []
    count = 0
    scenes = 0
    error: str | None = None
    try:
        for scene in app.stash.iter_scenes():
            scenes += 1
            if scene.id in seen or not scene.files:
                continue
            plex_path = paths.mapper.to_plex(scene.files[0])
            if plex_path is None or not any(
                plex_path == root or plex_path.startswith(root.rstrip("/") + "/") for root in paths.roots
            ):
                continue
            count += 1
            if len(not_requested) < REPORT_EXAMPLES:
                not_requested.append({"scene_id": scene.id, "title": scene.title, "plex_path": plex_path})
    except Exception as exc:  # noqa: BLE001 - the report says what failed
        error = f"{type(exc).__name__}: {exc}"
    reconciliation: dict[str, Any]
    if not reconcile:
        reconciliation = {"skipped": "disabled"}
    else:
        try:
            reconciliation = _reconciliation(app, paths.mapper)
        except Exception as exc:  # noqa: BLE001 - the report says what failed
            reconciliation = {"error": f"{type(exc).__name__}: {exc}"}
    report: dict[str, Any] = {
        "trigger": trigger,
        "started_at": iso_now(started),
        "finished_at": iso_now(app.clock.now()),
        "duration_seconds": round(time.monotonic() - began, 3),
        "stash_scenes": scenes,
        "plex_without_stash": {"count": len(unmatched), "items": unmatched[:REPORT_EXAMPLES]},
        "stash_not_requested": {"count": count, "items": not_requested},
        "reconciliation": reconciliation,
    }
    if error is not None:
        report["error"] = error
    book.save_report(report)
    log.info(
        "gap comparison finished",
        extra={
            "trigger": trigger,
            "plex_without_stash": len(unmatched),
            "stash_not_requested": count,
            "duration_seconds": report["duration_seconds"],
        },
    )
    return report


def next_run(
    last_started: str | None, interval: float | None, now: dt.datetime, up_since: dt.datetime, *, first_delay: float
) -> float | None:
    """Seconds from ``now`` until the next scheduled comparison; ``None`` without a schedule.

    ``last_started`` is the previous report's ISO time, so a restart keeps the rhythm;
    without one, the first comparison runs ``first_delay`` seconds after ``up_since``.
    """
    if interval is None:
        return None
    if last_started:
        try:
            previous = dt.datetime.fromisoformat(last_started.replace("Z", "+00:00"))
        except ValueError:
            previous = None
        if previous is not None:
            return max(0.0, interval - (now - previous).total_seconds())
    return max(0.0, first_delay - (now - up_since).total_seconds())


__all__ = [
    "GAPS_NAMESPACE",
    "REPORT_KEY",
    "REPORT_NAMESPACE",
    "SEEN_NAMESPACE",
    "GapBook",
    "compare",
    "gap_key",
    "next_run",
]
