"""The drain lease for the command's workers, in the Stash plugin's own protocol.

The plugin's hook reserves the ``drain`` lease (owner ``hook:<pid>``) before it asks Stash
to run the *Process queue* task, and that task takes it over with
:func:`~stash2plex_backends.sqlite.hookpath.take_drain`. ``stash2plex worker`` and
``stash2plex sync`` use the very same functions on the same database, so while one of
them drains, a hook starts no second drain (and a reservation is taken over, not waited for).
"""

from __future__ import annotations

import os
import socket

from stash2plex_backends.sqlite import hookpath
from stash2plex_backends.sqlite.queue import SQLiteQueue
from stash2plex_core.app import App
from stash2plex_core.services.admin import DrainLease


class SQLiteDrainLeases:
    """:class:`~stash2plex_core.services.admin.DrainLeaseStore` over one state database file."""

    def __init__(self, db_path: str) -> None:
        self.db_path = db_path

    def take(self, owner: str, seconds: float) -> bool:
        return hookpath.take_drain(self.db_path, owner, seconds)

    def renew(self, owner: str, seconds: float) -> bool:
        return hookpath.renew_lease(self.db_path, owner, seconds)

    def release(self, owner: str) -> bool:
        return hookpath.release_lease(self.db_path, owner)

    def holder(self) -> str | None:
        return hookpath.lease_holder(self.db_path)


def owner_name(role: str) -> str:
    """``<role>:<host>:<pid>``: unique, and says who holds the lease when another waits."""
    return f"{role}:{socket.gethostname()}:{os.getpid()}"


def drain_lease(app: App, role: str) -> DrainLease | None:
    """The app's drain lease, or ``None`` for a queue no other process can share (in memory)."""
    if not isinstance(app.queue, SQLiteQueue):
        return None
    return DrainLease(SQLiteDrainLeases(app.queue.path), owner_name(role), app.clock)


def drain_holder(app: App) -> str | None:
    """Who holds the app's drain lease now (a worker, a plugin task, a hook's reservation)."""
    if not isinstance(app.queue, SQLiteQueue):
        return None
    return SQLiteDrainLeases(app.queue.path).holder()


__all__ = ["SQLiteDrainLeases", "drain_holder", "drain_lease", "owner_name"]
