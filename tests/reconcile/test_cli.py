"""``stash2plex reconcile`` end to end: settings from the environment, the real backends
(plexapi, stashapi, SQLite state and queue) and both simulators."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from stash2plex_backends.simulators.plex import PlexSimulator
from stash2plex_backends.simulators.stash import StashSimulator
from stash2plex_integrations.cli.main import main
from tests.reconcile._world import RULE


ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def _installed_entry_points(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Make the backends pyproject.toml declares discoverable, as an installed stash2plex's are.

    The CLI builds its app from the installed entry points; a development install made
    before a backend was added does not list it yet, so a dist-info with the declared
    entry points goes on ``sys.path`` for this test (names already installed are skipped).
    """
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["entry-points"]
    group = declared["stash2plex.backends"]
    dist = tmp_path / "site" / "stash2plex_declared-0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: stash2plex-declared\nVersion: 0\n", encoding="utf-8")
    lines = "".join(f"{name} = {target}\n" for name, target in group.items())
    (dist / "entry_points.txt").write_text(f"[stash2plex.backends]\n{lines}", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))


@pytest.fixture
def env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, _installed_entry_points: None
) -> Iterator[tuple[StashSimulator, PlexSimulator]]:
    with (
        StashSimulator(12, 4, "/data/library", api_key="k") as stash_sim,
        PlexSimulator(12, 4, library_root="/media/library", token="t") as plex_sim,
    ):
        for name in [n for n in os.environ if n.startswith("STASH2PLEX_")]:
            monkeypatch.delenv(name)
        (tmp_path / "config.toml").write_text("", encoding="utf-8")
        rule = {
            "name": RULE.name,
            "stash_pattern": RULE.stash_pattern,
            "plex_template": RULE.plex_template,
            "plex_pattern": RULE.plex_pattern,
            "stash_template": RULE.stash_template,
        }
        for key, value in {
            "CONFIG": str(tmp_path / "config.toml"),
            "DATA_DIR": str(tmp_path / "data"),
            "PLEX_URL": plex_sim.url,
            "PLEX_TOKEN": "t",
            "STASH_URL": stash_sim.url,
            "STASH_API_KEY": "k",
            "PATH_RULES": json.dumps([rule]),
        }.items():
            monkeypatch.setenv(f"STASH2PLEX_{key}", value)
        yield stash_sim, plex_sim


def test_reconcile_json_then_last_then_dry_run(
    env: tuple[StashSimulator, PlexSimulator], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["reconcile", "--last"]) == 0
    assert capsys.readouterr().out.strip() == "no reconciliation has run yet"

    assert main(["reconcile", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["scope"] == "full"
    assert data["counts"]["drift"] == data["enqueued"] > 0
    assert set(data["counts"]) == {"missing_in_plex", "orphan_in_plex", "drift", "stale", "low_confidence"}
    assert data["calls"]["stash"] == 1  # one paged listing call
    assert data["calls"]["plex"] >= 2  # sections, listing (and detail batches)

    assert main(["reconcile", "--last"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("reconciliation (full)")
    assert "drift" in text

    assert main(["reconcile", "--scope", "days", "--days", "3", "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "reconciliation (days, dry run)" in text
    assert "dry run:" in text


def test_reconcile_if_due_runs_the_scheduled_pass_once(
    env: tuple[StashSimulator, PlexSimulator], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["reconcile", "--if-due", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["trigger"] == "schedule"
    assert main(["reconcile", "--if-due"]) == 0
    assert capsys.readouterr().out.strip() == "no reconciliation is due"


def test_reconcile_rejects_days_without_a_count(
    env: tuple[StashSimulator, PlexSimulator], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["reconcile", "--scope", "days"]) == 2
    assert "days" in capsys.readouterr().err
