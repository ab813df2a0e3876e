"""Reusable contract suites that prove a backend keeps its port's promises.

Enable the fixtures with ``pytest_plugins = ["stash2plex_core.testing.plugin"]`` and
subclass the contract for your port (see ``docs/howto/backend-authors.md``). Needs the
``testing`` extra (pytest, hypothesis).
"""

import pytest


pytest.register_assert_rewrite(
    "stash2plex_core.testing.contracts",
    "stash2plex_core.testing.worlds",
)
