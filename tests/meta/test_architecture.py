"""Meta-tests that keep the architecture and the extension surface honest."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import stash2plex_core
from stash2plex_core.plugin import build_registry
from stash2plex_core.testing.contracts import CONTRACTS
from tests.conftest import BACKEND_PLUGINS


ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "src" / "stash2plex_core"
FORBIDDEN = ("stash2plex_backends", "stash2plex_integrations", "plexapi", "stashapi", "requests", "urllib3", "sqlite3")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted(CORE.rglob("*.py")), ids=lambda p: str(p.relative_to(CORE)))
def test_core_source_imports_no_adapter_or_io_library(path: Path) -> None:
    bad = sorted(n for n in _imports(path) if n.split(".")[0] in FORBIDDEN)
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_importing_all_of_core_loads_no_adapter_or_io_library() -> None:
    modules = [m.name for m in pkgutil.walk_packages(stash2plex_core.__path__, "stash2plex_core.")]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n    importlib.import_module(name)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def _entry_point_modules() -> dict[str, str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return dict(data["project"]["entry-points"]["stash2plex.backends"])


def test_test_suite_registers_exactly_the_shipped_entry_points() -> None:
    assert sorted(_entry_point_modules().values()) == sorted(m.__name__ for m in BACKEND_PLUGINS)  # type: ignore[attr-defined]


def _contract_tests() -> dict[str, set[str]]:
    """Backend ids that have a contract test class, by port."""
    tests_root = ROOT / "tests"
    for path in tests_root.rglob("test_*.py"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        if "simulators" not in module:
            importlib.import_module(module)
    covered: dict[str, set[str]] = {port: set() for port in CONTRACTS}

    def walk(cls: type) -> list[type]:
        return [cls, *(c for sub in cls.__subclasses__() for c in walk(sub))]

    for port, contract in CONTRACTS.items():
        for cls in walk(contract):
            if cls.__name__.startswith("Test") and cls.__module__.startswith("tests."):
                covered[port].add(getattr(cls, "backend_id", "?"))
    return covered


def test_every_registered_backend_runs_its_contract() -> None:
    modules = [importlib.import_module(m) for m in _entry_point_modules().values()]
    registry = build_registry(autoload=False, plugins=modules)
    covered = _contract_tests()
    missing = {
        port: sorted(set(registry.ids(port)) - covered[port])
        for port in CONTRACTS
        if set(registry.ids(port)) - covered[port]
    }
    assert not missing, f"backends without a contract test class (set `backend_id`): {missing}"


def test_hook_specs_are_documented() -> None:
    from stash2plex_core.plugin import spec

    docs = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "docs").rglob("*.md"))
    hooks = [name for name in dir(spec) if name.startswith("stash2plex_")]
    assert hooks
    for hook in hooks:
        assert hook in docs, f"hook {hook} is not documented in docs/"
