"""``--help`` on every command, the version, and what a wrong command line returns."""

from __future__ import annotations

import argparse
import subprocess

from stash2plex_integrations.cli.exitcodes import EXIT_USAGE
from stash2plex_integrations.cli.main import build_parser
from tests.cli.conftest import COMMAND
from tests.cli.conftest import cli_env
from tests.cli.conftest import run_cli


def command_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and sub-command the parser knows, e.g. ``("dlq", "retry")``."""
    paths = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                paths.append((*prefix, name))
                paths.extend(command_paths(child, (*prefix, name)))
    return paths


def test_every_command_has_help() -> None:
    paths = command_paths(build_parser())
    assert {("sync",), ("worker",), ("dlq", "purge"), ("simulate", "stash"), ("reconcile",), ("demo",)} <= set(paths)
    # Started together: each is a separate interpreter, so this costs about one start-up per core.
    running = {
        path: subprocess.Popen(
            [*COMMAND, *path, "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env()
        )
        for path in [(), *paths]
    }
    for path, process in running.items():
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, (path, err)
        assert out.startswith(f"usage: {' '.join(('stash2plex', *path))}"), (path, out[:200])
        assert err == "", (path, err)


def test_settings_options_on_every_command_that_reads_settings() -> None:
    parser = build_parser()
    needs_settings = [("sync",), ("worker",), ("status",), ("health",), ("doctor",), ("reconcile",), ("dlq", "list")]
    for path in needs_settings:
        sub = parser
        for name in path:
            sub = next(a for a in sub._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
        options = {o for a in sub._actions for o in a.option_strings}
        assert {"--config", "--plex-url", "--plex-token", "--set"} <= options, path


def test_version_and_bare_command() -> None:
    version = run_cli("--version")
    assert version.returncode == 0
    assert version.stdout.startswith("stash2plex ")
    bare = run_cli()
    assert bare.returncode == 0
    assert "COMMAND" in bare.stdout


def test_usage_errors_have_their_own_exit_code() -> None:
    for args in (["no-such-command"], ["sync", "--bogus"], ["dlq", "purge"], ["demo", "--scenes", "0"]):
        done = run_cli(*args)
        assert done.returncode == EXIT_USAGE, (args, done.returncode, done.stderr)
        assert "usage:" in done.stderr
        assert "Traceback" not in done.stderr
