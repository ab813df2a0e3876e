"""Start-up: broken path rules stop the provider before it listens, naming the rule and why."""

from __future__ import annotations

import json
import logging
import os

import pytest

from stash2plex_backends.memory import MemoryStash
from stash2plex_core.errors import InvalidSettingsError
from stash2plex_core.models.matching import PathRule
from stash2plex_integrations.cli.main import build_parser
from stash2plex_integrations.cli.main import main
from stash2plex_integrations.plex_provider.web import create_app
from stash2plex_integrations.plex_provider.web import provider_settings
from tests.provider.conftest import RULE
from tests.provider.conftest import make_app
from tests.provider.conftest import settings


def _start(registry, **values) -> None:
    config = settings(**values)
    create_app(config, app=make_app(config, MemoryStash(), registry), schedule=False)


def test_a_rule_whose_sample_does_not_round_trip_stops_start_up(registry) -> None:
    broken = PathRule(
        name="lossy",
        stash_pattern=r"/stash/(?P<rest>.+)",
        plex_template="/plex/{rest}",
        plex_pattern=r"/plex/(?P<rest>.+)",
        stash_template="/stash/other/{rest}",
        library_root="/plex",
        samples=("/stash/a.mp4",),
    )
    with pytest.raises(InvalidSettingsError) as caught:
        _start(registry, path_rules=(broken,))
    message = str(caught.value)
    assert "'lossy'" in message
    assert "does not round-trip" in message


def test_a_library_root_no_rule_maps_stops_start_up(registry) -> None:
    wrong_root = PathRule(
        name="tv",
        stash_pattern=r"/stash/media/(?P<rest>.+)",
        plex_template="/plex/Movies/{rest}",
        plex_pattern=r"/plex/Movies/(?P<rest>.+)",
        stash_template="/stash/media/{rest}",
        library_root="/plex/TV",
    )
    with pytest.raises(InvalidSettingsError) as caught:
        _start(registry, path_rules=(wrong_root,))
    problem = caught.value.problems[0]
    assert problem.key == "path_rules[0] 'tv'"
    assert "library_root '/plex/TV'" in problem.message
    assert "maps to no Stash path" in problem.message


def test_a_library_root_that_does_not_round_trip_stops_start_up(registry) -> None:
    one_way = PathRule(
        name="one-way",
        stash_pattern=r"/stash/media/(?P<rest>.+)",
        plex_template="/plex/Movies/{rest}",
        plex_pattern=r"/plex/(?P<rest>.+)",
        stash_template="/stash/media/{rest}",
        library_root="/plex/Movies",
    )
    with pytest.raises(InvalidSettingsError, match=r"'one-way'.*does not round-trip"):
        _start(registry, path_rules=(one_way,))


def test_a_provider_library_root_outside_every_rule_stops_start_up(registry) -> None:
    with pytest.raises(InvalidSettingsError, match=r"provider_library_roots\[0\]"):
        _start(registry, provider_library_roots=("/elsewhere",))


def test_a_regex_that_does_not_compile_stops_start_up(registry) -> None:
    bad = PathRule(
        name="typo",
        stash_pattern=r"/stash/(?P<rest>.+",
        plex_template="/plex/{rest}",
        plex_pattern=r"/plex/(?P<rest>.+)",
        stash_template="/stash/{rest}",
    )
    with pytest.raises(InvalidSettingsError, match=r"'typo'.*stash_pattern"):
        _start(registry, path_rules=(bad,))


def test_good_rules_start(registry) -> None:
    _start(registry, path_rules=(RULE,))
    _start(registry, path_rules=(), provider_library_roots=("/srv/media",))


def test_stash_timeout_is_capped_by_the_provider_timeout() -> None:
    assert provider_settings(settings(stash_timeout=30.0, provider_upstream_timeout=5.0)).stash_timeout == 5.0
    assert provider_settings(settings(stash_timeout=2.0, provider_upstream_timeout=5.0)).stash_timeout == 2.0


def test_cli_parses_provider_serve() -> None:
    args = build_parser().parse_args(["provider", "serve", "--host", "0.0.0.0", "--port", "9191"])
    assert (args.command, args.provider_command, args.host, args.port) == ("provider", "serve", "0.0.0.0", 9191)


@pytest.fixture
def _root_logging():
    """``serve`` installs its JSON handler on the root logger; put the root back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("_root_logging")
def test_cli_reports_a_broken_rule_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    rule = {
        "name": "lossy",
        "stash_pattern": "/stash/(?P<rest>.+)",
        "plex_template": "/plex/{rest}",
        "plex_pattern": "/plex/(?P<rest>.+)",
        "stash_template": "/stash/other/{rest}",
        "library_root": "/plex",
        "samples": ["/stash/a.mp4"],
    }
    for name in [n for n in os.environ if n.startswith("STASH2PLEX_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("STASH2PLEX_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("", encoding="utf-8")
    monkeypatch.setenv("STASH2PLEX_PATH_RULES", json.dumps([rule]))
    monkeypatch.setenv("STASH2PLEX_STASH_BACKEND", "memory")
    monkeypatch.setenv("STASH2PLEX_QUEUE_BACKEND", "memory")
    monkeypatch.setenv("STASH2PLEX_STATE_BACKEND", "memory")
    monkeypatch.setenv("STASH2PLEX_PLEX_BACKEND", "memory")
    assert main(["provider", "serve", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "configuration problem" in err
    assert "'lossy'" in err
    assert "round-trip" in err
