from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import attrs
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


# -- entry points and the switches that stop them loading


FAKE_ENTRY_POINT = "s2p-fake"

_FAKE_PLUGIN = """
from typing import ClassVar

from stash2plex_backends.memory import MemoryQueue
from stash2plex_core.plugin import hookimpl


class FakeQueue(MemoryQueue):
    id: ClassVar[str] = "fake"
    priority: ClassVar[int] = 3


@hookimpl
def stash2plex_register_backends(registry):
    registry.add_queue(FakeQueue)
"""


@pytest.fixture
def fake_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An installed distribution (a dist-info on ``sys.path``) whose ``stash2plex.backends``
    entry point ``s2p-fake`` registers a queue with id ``"fake"``; yields its module name.

    The module gets a fresh name per test, so "it was imported" is observable in
    ``sys.modules`` and never leaks from one test to the next.
    """
    module = f"s2p_fake_backend_{uuid.uuid4().hex}"
    site = tmp_path / "site"
    dist = site / "s2p_fake-1.0.dist-info"
    dist.mkdir(parents=True)
    (site / f"{module}.py").write_text(_FAKE_PLUGIN, encoding="utf-8")
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: s2p-fake\nVersion: 1.0\n", encoding="utf-8")
    (dist / "entry_points.txt").write_text(f"[stash2plex.backends]\n{FAKE_ENTRY_POINT} = {module}\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(site))
    yield module
    sys.modules.pop(module, None)


def test_an_installed_entry_point_loads_without_switches(fake_distribution: str) -> None:
    reg = build_registry(environ={})
    assert fake_distribution in sys.modules
    assert reg.select("queue", "fake").__module__ == fake_distribution


@pytest.mark.parametrize("value", ["1", "true", " Yes ", "ON"])
def test_disable_autoload_switch_stops_entry_points_loading(fake_distribution: str, value: str) -> None:
    reg = build_registry(environ={"STASH2PLEX_DISABLE_PLUGIN_AUTOLOAD": value})
    assert fake_distribution not in sys.modules, "the entry point's module must not even be imported"
    assert "fake" not in reg.ids("queue")


@pytest.mark.parametrize("value", ["", "0", "false", "no"])
def test_disable_autoload_switch_off_still_loads(fake_distribution: str, value: str) -> None:
    reg = build_registry(environ={"STASH2PLEX_DISABLE_PLUGIN_AUTOLOAD": value})
    assert "fake" in reg.ids("queue")


def test_disabled_plugins_blocks_entry_points_by_name(fake_distribution: str) -> None:
    reg = build_registry(environ={"STASH2PLEX_DISABLED_PLUGINS": f"nonexistent, {FAKE_ENTRY_POINT} ,"})
    assert fake_distribution not in sys.modules
    assert "fake" not in reg.ids("queue")
    assert "memory" in reg.ids("queue"), "only the named entry point is blocked"


def test_blocked_argument_blocks_entry_points_by_name(fake_distribution: str) -> None:
    reg = build_registry(environ={}, blocked=[FAKE_ENTRY_POINT])
    assert fake_distribution not in sys.modules
    assert "fake" not in reg.ids("queue")


def test_blocked_plugins_are_skipped_but_explicit_modules_register(fake_distribution: str) -> None:
    """Blocking names entry points; a module passed explicitly is the caller's choice and registers."""
    import stash2plex_backends.memory as memory

    reg = build_registry(plugins=[memory], environ={"STASH2PLEX_DISABLED_PLUGINS": f"memory,{FAKE_ENTRY_POINT}"})
    assert "fake" not in reg.ids("queue")
    assert "memory" in reg.ids("queue")


def test_build_app_applies_the_environ_it_is_given(fake_distribution: str) -> None:
    settings = attrs.evolve(MEMORY, queue_backend="fake")
    with build_app(settings, environ={}) as app:
        assert type(app.queue).__module__ == fake_distribution
    sys.modules.pop(fake_distribution)
    with pytest.raises(BackendNotFoundError, match="registered: none"):
        build_app(settings, environ={"STASH2PLEX_DISABLE_PLUGIN_AUTOLOAD": "1"})
    with pytest.raises(BackendNotFoundError, match="'fake'"):
        build_app(settings, environ={"STASH2PLEX_DISABLED_PLUGINS": FAKE_ENTRY_POINT})
    assert fake_distribution not in sys.modules


def test_build_app_without_environ_applies_no_switches(fake_distribution: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The core never reads ``os.environ``: only an environ passed in switches loading off."""
    monkeypatch.setenv("STASH2PLEX_DISABLE_PLUGIN_AUTOLOAD", "1")
    with build_app(attrs.evolve(MEMORY, queue_backend="fake")) as app:
        assert type(app.queue).__module__ == fake_distribution


def test_build_app_refuses_a_registry_and_an_environ(registry: BackendRegistry) -> None:
    with pytest.raises(ConfigurationError, match="not both"):
        build_app(MEMORY, registry=registry, environ={})


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
