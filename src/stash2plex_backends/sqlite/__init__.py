"""SQLite backends: the durable queue and the state store, in one database file.

The default database is ``<data_dir>/stash2plex.db`` (the platform's user data directory
when ``data_dir`` is unset). :mod:`~stash2plex_backends.sqlite.hookpath` is the Stash
hook's standard-library-only way in, and :mod:`~stash2plex_backends.sqlite.schema` the
layout and SQL both sides share.

Importing this package must stay as cheap as importing :mod:`sqlite3`, because the hook
imports ``stash2plex_backends.sqlite.hookpath`` and so runs this file first. Hence the
classes load lazily (PEP 562), and the hook implementation carries pluggy's marker
options (the documented ``pluggy.HookimplOpts`` that ``@hookimpl`` would attach) without
importing pluggy or the core: pluggy discovers implementations statically, so the
function itself must be here. A test checks the options equal the real marker's.
"""

from __future__ import annotations


TYPE_CHECKING = False
if TYPE_CHECKING:
    from stash2plex_backends.sqlite._db import default_database_path
    from stash2plex_backends.sqlite.queue import SQLiteQueue
    from stash2plex_backends.sqlite.state import SQLiteStateStore
    from stash2plex_core.plugin import BackendRegistry

_LAZY = {
    "SQLiteQueue": "stash2plex_backends.sqlite.queue",
    "SQLiteStateStore": "stash2plex_backends.sqlite.state",
    "default_database_path": "stash2plex_backends.sqlite._db",
}

#: The options ``stash2plex_core.plugin.hookimpl`` attaches to an undecorated implementation.
HOOKIMPL_OPTS: dict[str, object] = {
    "wrapper": False,
    "hookwrapper": False,
    "optionalhook": False,
    "tryfirst": False,
    "trylast": False,
    "specname": None,
}


def stash2plex_register_backends(registry: BackendRegistry) -> None:
    """Register :class:`SQLiteQueue` and :class:`SQLiteStateStore` (id ``"sqlite"``)."""
    from stash2plex_backends.sqlite._plugin import register

    register(registry)


stash2plex_register_backends.__dict__["stash2plex_impl"] = dict(HOOKIMPL_OPTS)


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = ["SQLiteQueue", "SQLiteStateStore", "default_database_path", "stash2plex_register_backends"]
