"""``stash2plex provider serve`` as a user runs it: settings from the environment, JSON logs, SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import requests


SECRET = "serve-command-canary-secret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_starts_from_the_environment_and_stops_on_sigterm(tmp_path) -> None:
    port = _free_port()
    config = tmp_path / "config.toml"
    config.write_text("", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("STASH2PLEX_")}
    env.update(
        {
            "STASH2PLEX_CONFIG": str(config),
            "STASH2PLEX_DISABLE_PLUGIN_AUTOLOAD": "0",
            "STASH2PLEX_STASH_BACKEND": "memory",
            "STASH2PLEX_QUEUE_BACKEND": "memory",
            "STASH2PLEX_STATE_BACKEND": "memory",
            "STASH2PLEX_PLEX_BACKEND": "memory",
            "STASH2PLEX_PROVIDER_SECRET": SECRET,
            "STASH2PLEX_PROVIDER_LIBRARY_ROOTS": "/media/library",
            "STASH2PLEX_PROVIDER_IDENTIFIER": "tv.plex.agents.custom.stash2plex.test",
            "STASH2PLEX_PROVIDER_PORT": str(port),
        }
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "stash2plex_integrations.cli", "provider", "serve", "--host", "127.0.0.1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.communicate()
            try:
                if requests.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert requests.get(base + "/", timeout=5).status_code == 401
        root = requests.get(f"{base}/{SECRET}/", timeout=5).json()["MediaProvider"]
        assert root["identifier"] == "tv.plex.agents.custom.stash2plex.test"
        found = requests.post(
            f"{base}/{SECRET}/library/metadata/matches", json={"type": 1, "filename": "a/b.mp4"}, timeout=5
        )
        assert found.json()["MediaContainer"]["Metadata"] == []
        requests.get(f"{base}/library/metadata/scene-1", params={"secret": SECRET}, timeout=5)
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    # uvicorn shuts down gracefully, then re-raises the signal (so the exit status says SIGTERM).
    assert process.returncode in (0, -signal.SIGTERM), err
    records = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(r["msg"] == "Application shutdown complete." for r in records)
    assert any(r["msg"] == "provider ready" for r in records)
    access = [r for r in records if r["logger"] == "stash2plex.provider.access"]
    assert {r["status"] for r in access} >= {200, 401}
    assert any(r["msg"] == "no Stash scene for a file Plex asked about" for r in records)
    assert SECRET not in err
    assert SECRET not in out
