"""``stash2plex doctor`` and the exit codes that tell failure kinds apart."""

from __future__ import annotations

import json
import socket

from stash2plex_integrations.cli.exitcodes import EXIT_AUTHENTICATION
from stash2plex_integrations.cli.exitcodes import EXIT_CONFIGURATION
from stash2plex_integrations.cli.exitcodes import EXIT_ERROR
from stash2plex_integrations.cli.exitcodes import EXIT_UNAVAILABLE
from tests.cli.conftest import World
from tests.cli.conftest import run_cli


SECRET = "wrong-token-5c1e9b7d"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_doctor_passes_a_good_configuration(world: World) -> None:
    done = world.cli("doctor")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert {line.split(":")[0] for line in lines} >= {"ok   settings", "ok   plex", "ok   stash", "ok   plex libraries"}
    assert not [line for line in lines if line.startswith("FAIL")]


def test_doctor_says_exactly_what_to_fix(world: World) -> None:
    bad = world.write_config(world.tmp / "bad.toml", plex_url="ftp://plex.local", plex_concurrency="lots")
    done = run_cli("doctor", "--config", str(bad))
    assert done.returncode == EXIT_CONFIGURATION
    assert "FAIL settings:" in done.stdout
    assert "plex_url: expected an http:// or https:// URL, got 'ftp://plex.local'" in done.stdout
    assert "plex_concurrency: expected an integer, got 'lots'" in done.stdout
    assert "fix: " in done.stdout

    world.data_dir.mkdir(mode=0o755)
    world.data_dir.chmod(0o755)  # (umask)
    checks = json.loads(world.cli("doctor", "--json", "--plex-token", SECRET).stdout)
    by_name = {c["name"]: c for c in checks}
    assert by_name["state directory"]["ok"] is False
    assert by_name["state directory"]["fix"] == f"chmod 700 {world.data_dir} && chmod 600 {world.data_dir}/*.db*"
    assert by_name["plex"]["kind"] == "authentication"
    assert by_name["plex"]["fix"] == "set plex_token to a valid X-Plex-Token"
    assert by_name["stash"]["ok"] is True


def test_doctor_exit_code_names_the_failure_kind(world: World) -> None:
    wrong = world.cli("doctor", "--plex-token", SECRET)
    assert wrong.returncode == EXIT_AUTHENTICATION
    assert SECRET not in wrong.stdout + wrong.stderr
    down = world.cli("doctor", "--stash-url", f"http://127.0.0.1:{closed_port()}")
    assert down.returncode == EXIT_UNAVAILABLE
    assert "FAIL stash:" in down.stdout
    missing = world.write_config(world.tmp / "missing.toml", plex_token="")
    unset = run_cli("doctor", "--config", str(missing))
    assert unset.returncode == EXIT_CONFIGURATION
    assert "not set: plex_token" in unset.stdout


def test_configuration_authentication_and_unavailability_exit_codes(world: World) -> None:
    config = world.cli("sync", "--set", "plex_concurrency=lots")
    assert config.returncode == EXIT_CONFIGURATION
    assert "plex_concurrency" in config.stderr

    auth = world.cli("sync", "--scene", "1", "--plex-token", SECRET)
    assert auth.returncode == EXIT_AUTHENTICATION
    assert "worker stopped: AuthenticationError" in auth.stderr
    assert SECRET not in auth.stdout + auth.stderr
    assert world.counts().ready == 1  # no job spent
    health = world.cli("health", "--stash-api-key", SECRET)
    assert health.returncode == EXIT_AUTHENTICATION
    assert SECRET not in health.stdout + health.stderr

    port = closed_port()
    down = world.cli("health", "--plex-url", f"http://127.0.0.1:{port}")
    assert down.returncode == EXIT_UNAVAILABLE
    unreachable = world.cli("sync", "--stash-url", f"http://127.0.0.1:{port}")
    assert unreachable.returncode == EXIT_UNAVAILABLE
    assert "try again later" in unreachable.stderr


def test_an_unexpected_error_is_one_line_unless_debugging(world: World) -> None:
    done = world.cli("dlq", "purge", "--older-than-days", "1e12", "--plex-token", SECRET)
    assert done.returncode == EXIT_ERROR
    [line] = done.stderr.splitlines()
    assert line.startswith("stash2plex: unexpected error: OverflowError: ")
    assert "--debug" in line
    assert SECRET not in done.stderr

    debug = run_cli("--debug", "dlq", "purge", "--older-than-days", "1e12", "--config", str(world.config))
    assert debug.returncode == EXIT_ERROR
    assert "Traceback (most recent call last)" in debug.stderr

    with socket.socket() as busy:  # an OSError: the port is taken
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = run_cli("simulate", "plex", "--port", str(busy.getsockname()[1]), "--token", "t")
    assert taken.returncode == EXIT_ERROR
    assert taken.stderr.startswith("stash2plex: unexpected error: OSError")
    assert "Traceback" not in taken.stderr
