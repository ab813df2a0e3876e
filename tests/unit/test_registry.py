from __future__ import annotations

from typing import ClassVar

import pytest

from stash2plex_backends.memory import MemoryPlex
from stash2plex_backends.memory import MemoryQueue
from stash2plex_backends.memory import MemoryStash
from stash2plex_backends.memory import MemoryStateStore
from stash2plex_core import Settings
from stash2plex_core import build_app
from stash2plex_core.clocks import ManualClock
from stash2plex_core.clocks import SystemClock
from stash2plex_core.errors import BackendNotFoundError
from stash2plex_core.errors import ConfigurationError
from stash2plex_core.plugin import BackendRegistry
from stash2plex_core.plugin import build_registry
from stash2plex_core.plugin import hookimpl


@pytest.fixture
def registry() -> BackendRegistry:
    """Only the fakes and the system clock, so these tests do not depend on which real backends exist."""
    import stash2plex_backends.memory
    import stash2plex_backends.system

    return build_registry(autoload=False, plugins=[stash2plex_backends.memory, stash2plex_backends.system])


MEMORY = Settings(queue_backend="memory", state_backend="memory", plex_backend="memory", stash_backend="memory")


def test_registry_lists_ids_best_first(registry: BackendRegistry) -> None:
    assert registry.ids("clock") == ["system", "memory"]
    assert registry.ids("queue") == ["memory"]


def test_unknown_id_names_port_id_and_available(registry: BackendRegistry) -> None:
    with pytest.raises(BackendNotFoundError) as info:
        registry.select("queue", "redis")
    message = str(info.value)
    assert "queue" in message
    assert "'redis'" in message
    assert "memory" in message
    assert info.value.available == ("memory",)


def test_known_but_missing_backend_says_how_to_get_it(registry: BackendRegistry) -> None:
    with pytest.raises(BackendNotFoundError, match="ships with stash2plex"):
        registry.select("queue", "sqlite")


def test_fakes_are_never_chosen_silently(registry: BackendRegistry) -> None:
    with pytest.raises(BackendNotFoundError, match="no recommended queue backend"):
        registry.select("queue")
    assert registry.select("clock") is SystemClock
    assert registry.select("queue", "memory") is MemoryQueue


def test_unviable_backend_is_refused_by_id() -> None:
    class Broken(MemoryQueue):
        id: ClassVar[str] = "broken"
        priority: ClassVar[int] = 5

        @classmethod
        def viable(cls) -> bool:
            return False

    registry = BackendRegistry()
    registry.add_queue(Broken)
    with pytest.raises(BackendNotFoundError, match="cannot run here"):
        registry.select("queue", "broken")
    with pytest.raises(BackendNotFoundError):
        registry.select("queue")


def test_registration_checks_port_and_duplicates() -> None:
    registry = BackendRegistry()
    with pytest.raises(ConfigurationError, match="must subclass"):
        registry.add_queue(MemoryStateStore)
    registry.add_queue(MemoryQueue)

    class Twin(MemoryQueue):
        pass

    with pytest.raises(ConfigurationError, match="registered twice"):
        registry.add_queue(Twin)
    with pytest.raises(ConfigurationError, match="unknown port"):
        registry.add("cache", MemoryQueue)


def test_third_party_plugin_registers_like_ours(registry: BackendRegistry) -> None:
    class FancyQueue(MemoryQueue):
        id: ClassVar[str] = "fancy"
        priority: ClassVar[int] = 10

    class Plugin:
        @hookimpl
        def stash2plex_register_backends(self, registry: BackendRegistry) -> None:
            registry.add_queue(FancyQueue)

    reg = build_registry(autoload=False, plugins=[Plugin()])
    assert reg.select("queue") is FancyQueue


def test_misspelled_hook_fails_at_startup() -> None:
    class Plugin:
        @hookimpl
        def stash2plex_register_backend(self, registry: BackendRegistry) -> None:  # missing "s"
            pass

    with pytest.raises(Exception, match="unknown hook"):
        build_registry(autoload=False, plugins=[Plugin()])


def test_blocked_plugins_are_skipped() -> None:
    import stash2plex_backends.memory as memory

    reg = build_registry(autoload=False, plugins=[memory], environ={"STASH2PLEX_DISABLED_PLUGINS": "memory"})
    # blocking applies to entry-point names; an explicitly passed module still registers
    assert reg.ids("queue") == ["memory"]


def test_build_app_wires_every_port(registry: BackendRegistry) -> None:
    app = build_app(MEMORY, registry=registry)
    assert isinstance(app.queue, MemoryQueue)
    assert isinstance(app.state, MemoryStateStore)
    assert isinstance(app.plex, MemoryPlex)
    assert isinstance(app.stash, MemoryStash)
    assert isinstance(app.clock, SystemClock)
    assert app.queue.clock is app.clock


def test_build_app_takes_overrides_instead_of_monkeypatching(registry: BackendRegistry) -> None:
    clock = ManualClock()
    queue = MemoryQueue(clock)
    with build_app(MEMORY, registry=registry, overrides={"clock": clock, "queue": queue}) as app:
        assert app.queue is queue
        assert app.clock is clock
        assert app.state.clock is clock


def test_build_app_reports_the_missing_backend(registry: BackendRegistry) -> None:
    with pytest.raises(BackendNotFoundError, match="no recommended queue backend"):
        build_app(Settings(), registry=registry)
    with pytest.raises(ConfigurationError, match="unknown port"):
        build_app(MEMORY, registry=registry, overrides={"cache": object()})
