"""``stash2plex simulate plex|stash``: a simulator started by hand, queried with the real clients."""

from __future__ import annotations

import re
import signal

import plexapi.exceptions
import plexapi.server
import pytest
import requests
from stashapi.stashapp import StashInterface

from tests.cli.conftest import start_cli
from tests.cli.conftest import wait_until


def started_url(lines: list[str]) -> str | None:
    match = re.search(r"listening on (http://[\d.]+:\d+)", "".join(lines))
    return match.group(1) if match else None


def test_simulate_plex_serves_the_seeded_library_until_sigint() -> None:
    server = start_cli("simulate", "plex", "--port", "0", "--token", "hand-token", "--items", "8", "--seed", "2")
    try:
        wait_until(lambda: started_url(server.out) is not None, what="the simulator to listen")
        url = started_url(server.out)
        assert url is not None
        items = int(re.search(r"\((\d+) items", server.stdout).group(1))  # type: ignore[union-attr]
        plex = plexapi.server.PlexServer(url, "hand-token", timeout=10)
        [section] = plex.library.sections()
        assert len(section.all()) == items > 0
        with pytest.raises(plexapi.exceptions.Unauthorized):
            plexapi.server.PlexServer(url, "wrong-token", timeout=10)
    finally:
        code = server.stop(signal.SIGINT)
    assert code == 0, server.stderr
    assert "Traceback" not in server.stderr
    assert "stopped" in server.stderr


def test_simulate_stash_serves_scenes_behind_its_api_key_until_sigint() -> None:
    server = start_cli("simulate", "stash", "--port", "0", "--api-key", "hand-key", "--scenes", "6", "--seed", "2")
    try:
        wait_until(lambda: started_url(server.out) is not None, what="the simulator to listen")
        url = started_url(server.out)
        assert url is not None
        port = int(url.rsplit(":", 1)[1])
        stash = StashInterface({"Scheme": "http", "Host": "127.0.0.1", "Port": port, "ApiKey": "hand-key"})
        scenes = stash.find_scenes(fragment="id title")
        assert len(scenes) == 6
        refused = requests.post(f"{url}/graphql", json={"query": "{ version { version } }"}, timeout=10)
        assert refused.status_code == 401  # no ApiKey header
    finally:
        code = server.stop(signal.SIGINT)
    assert code == 0, server.stderr
    assert "Traceback" not in server.stderr
    assert "stopped" in server.stderr
