"""Opt-in pytest plugin with the fixtures the contract suites share.

Enable it in a ``conftest.py`` with ``pytest_plugins = ["stash2plex_core.testing.plugin"]``.
It is never auto-registered, so installing stash2plex changes no other project's tests.
"""

from __future__ import annotations

import pytest

from stash2plex_core.clocks import ManualClock


@pytest.fixture
def manual_clock() -> ManualClock:
    """A clock at a fixed instant that moves only when the test advances it."""
    return ManualClock()
