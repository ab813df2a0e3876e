"""The ``stash2plex`` command's exit codes, one per kind of failure, so scripts can tell them apart.

Documented in ``docs/reference/cli.md``; ``2`` stays "configuration" (as it has been for
``reconcile`` and ``provider serve``), so argparse's usage errors get ``64`` (``EX_USAGE``).
"""

from __future__ import annotations


EXIT_OK = 0
#: Something failed that is none of the kinds below (including unexpected errors).
EXIT_ERROR = 1
#: The user must change a setting; the message names it.
EXIT_CONFIGURATION = 2
#: Plex or Stash rejected the token / API key.
EXIT_AUTHENTICATION = 3
#: A server is unreachable or overloaded, or the database stayed locked: try again later.
EXIT_UNAVAILABLE = 4
#: Another process holds the drain lease (or the reconciliation lock); queued work is kept.
EXIT_BUSY = 5
#: The command line itself was wrong (argparse).
EXIT_USAGE = 64
#: Ctrl-C outside the commands that treat it as "stop".
EXIT_INTERRUPTED = 130

#: :func:`stash2plex_core.services.admin.failure_kind` → exit code.
BY_KIND = {
    "authentication": EXIT_AUTHENTICATION,
    "configuration": EXIT_CONFIGURATION,
    "unavailable": EXIT_UNAVAILABLE,
    "error": EXIT_ERROR,
}
#: When several checks fail, the code of the most fundamental one wins.
PRIORITY = ("configuration", "authentication", "unavailable", "error")


def for_kinds(kinds: list[str | None]) -> int:
    """The exit code for a set of failure kinds (``None`` entries passed): ``0`` when empty."""
    failed = [k or "error" for k in kinds]
    for kind in PRIORITY:
        if kind in failed:
            return BY_KIND[kind]
    return EXIT_OK if not failed else EXIT_ERROR


def for_stop_reason(reason: str | None) -> int:
    """The exit code for a worker that stopped itself (:attr:`SyncWorker.stop_reason`).

    The worker stops only for configuration errors; its reason starts with the error's
    class name, so a rejected credential is told apart from another setting.
    """
    if not reason:
        return EXIT_OK
    return EXIT_AUTHENTICATION if reason.startswith("AuthenticationError") else EXIT_CONFIGURATION


__all__ = [
    "BY_KIND",
    "EXIT_AUTHENTICATION",
    "EXIT_BUSY",
    "EXIT_CONFIGURATION",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "for_kinds",
    "for_stop_reason",
]
