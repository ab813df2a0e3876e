from __future__ import annotations

import pytest

from stash2plex_core.clocks import SystemClock
from stash2plex_core.testing.contracts import ClockContract


class TestSystemClock(ClockContract):
    backend_id = "system"

    @pytest.fixture
    def clock(self) -> SystemClock:
        return SystemClock()
