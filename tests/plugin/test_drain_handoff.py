"""The drain task lets go of the lease without losing a save that lands at that moment.

A hook that queues while a drain is finishing finds the lease held and starts nothing;
the drain must then see the job after releasing the lease and take it again. The save
is injected at exactly that point: on the drain's last progress report, written after
the worker has returned and before the lease is released.
"""

from __future__ import annotations

import io
import threading

from stash2plex_backends.sqlite import hookpath
from stash2plex_core.plugin import BackendRegistry
from stash2plex_integrations.stash_plugin import tasks
from tests.plugin.conftest import PluginHarness


class SaveAsTheDrainEnds(io.StringIO):
    """Stash's stderr, where a hook for scene 9 runs once the worker has finished."""

    def __init__(self, db: str) -> None:
        super().__init__()
        self.db = db
        self.reserved: list[bool] = []

    def write(self, text: str) -> int:
        worker_running = any(t.name == "stash2plex-drain" for t in threading.enumerate())
        if text.startswith("\x01p\x02") and not self.reserved and not worker_running:
            hookpath.enqueue(self.db, "9", reason="Scene.Update.Post")  # what the hook does first
            self.reserved.append(hookpath.reserve_drain(self.db, "hook:racing", 120.0))
        return super().write(text)


def test_a_save_landing_as_the_drain_lets_go_is_drained(harness: PluginHarness, registry: BackendRegistry) -> None:
    harness.stash.plugin_task_handler = None  # Stash starts no task: only this drain runs
    assert harness.hook(3).error is None
    harness.stash.update_scene("9", title="Saved at the last moment")
    data = {"server_connection": harness.connection(), "args": {"task": "process"}}
    stream = SaveAsTheDrainEnds(str(harness.db))
    app, _ = tasks.build_plugin_app(data, registry=registry)
    with app:
        result = tasks._drain(app, data, stream)
    assert stream.reserved == [False], "the late hook found the lease held and started no drain"
    assert len(result["windows"]) == 2, "the drain took the lease again for the late job"
    assert harness.pending() == 0
    assert hookpath.lease_holder(str(harness.db)) is None
    item = harness.plex.item_by_path(harness.stash.scene("9").files[0].path)
    assert item is not None
    assert item.values.get("title") == "Saved at the last moment"
