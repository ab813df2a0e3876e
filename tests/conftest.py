"""Shared fixtures. The suite is hermetic: entry-point autoload is off and the plugins it
needs are registered explicitly."""

from __future__ import annotations

import pytest

import stash2plex_backends.jsonstate
import stash2plex_backends.memory
import stash2plex_backends.plex.plugin
import stash2plex_backends.sqlite
import stash2plex_backends.stash.plugin
import stash2plex_backends.system
from stash2plex_core.plugin import BackendRegistry
from stash2plex_core.plugin import build_registry


pytest_plugins = ["stash2plex_core.testing.plugin"]

#: Every backend plugin module the project ships; the meta-tests check this list against
#: the entry points in pyproject.toml.
BACKEND_PLUGINS: list[object] = [
    stash2plex_backends.memory,
    stash2plex_backends.plex.plugin,
    stash2plex_backends.system,
    stash2plex_backends.sqlite,
    stash2plex_backends.jsonstate,
    stash2plex_backends.stash.plugin,
]


@pytest.fixture
def registry() -> BackendRegistry:
    return build_registry(autoload=False, plugins=BACKEND_PLUGINS)


@pytest.fixture(autouse=True)
def _no_plugin_autoload(monkeypatch: pytest.MonkeyPatch) -> None:
    """Our own suite never loads whatever plugins happen to be installed."""
    monkeypatch.setenv("STASH2PLEX_DISABLE_PLUGIN_AUTOLOAD", "1")
