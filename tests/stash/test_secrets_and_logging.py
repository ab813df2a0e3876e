"""The API key never leaks, and importing/using stashapi never disturbs the process's logging."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stash2plex_backends.simulators import Fault
from stash2plex_backends.simulators.stash import GraphQLFault
from stash2plex_backends.simulators.stash import StashSimulator
from stash2plex_backends.stash import StashApiGateway
from stash2plex_core.errors import Stash2PlexError
from tests.stash.conftest import KEY


def _chain(exc: BaseException | None) -> list[str]:
    texts: list[str] = []
    while exc is not None:
        texts += [str(exc), repr(exc), *(str(a) for a in exc.args)]
        exc = exc.__cause__ or exc.__context__
    return texts


def test_api_key_appears_in_no_message_log_or_url(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # urllib3, stashapi's messages, ours
    texts: list[str] = []
    with StashSimulator(api_key=KEY) as sim:
        sim.add_scene("/data/library/k.mp4")
        wrong = StashApiGateway(sim.url, api_key=KEY + "-wrong", timeout=0.5)
        with pytest.raises(Stash2PlexError) as info:
            wrong.ping()
        texts += _chain(info.value)
        gateway = StashApiGateway(sim.url, api_key=KEY, timeout=0.5)
        texts.append(repr(gateway))
        faults = [
            lambda: sim.faults.add(Fault(path="^/graphql$", status=401, times=1)),
            lambda: sim.faults.add(Fault(path="^/graphql$", status=503, times=1)),
            lambda: sim.faults.add(Fault(path="^/graphql$", action="malformed", times=1)),
            lambda: sim.faults.add(Fault(path="^/graphql$", action="hang", delay=3, times=1)),
            lambda: sim.graphql_faults.add(GraphQLFault(message=f"echo {KEY}", times=1)),
            lambda: sim.graphql_faults.add(GraphQLFault(field="findScene", times=1)),
            lambda: sim.graphql_faults.add(GraphQLFault.database_locked(times=4)),
        ]
        for add_fault in faults:
            add_fault()
            with pytest.raises(Stash2PlexError) as info:
                gateway.get_scene("1")
            texts += _chain(info.value)
        scene = gateway.get_scene("1")
        assert scene is not None
        assert scene.screenshot_url is not None
        sim.faults.add(Fault(path="^/scene/", status=302, headers={"Location": "/login"}, times=1))
        with pytest.raises(Stash2PlexError) as info:
            gateway.fetch_image(scene.screenshot_url)
        texts += _chain(info.value)
        urls = [r.path + json.dumps(r.query) for r in sim.requests.all()]
    assert any("echo ***" in t for t in texts)  # a server echoing the key is scrubbed too
    assert caplog.records
    for record in caplog.records:
        assert KEY not in record.getMessage()
        assert KEY not in repr(record.args)
    assert KEY not in caplog.text
    assert not [t for t in texts if KEY in t]
    assert not [u for u in urls if KEY in u]


def test_stashapi_never_renames_critical_or_writes_to_stderr(tmp_path: Path) -> None:
    """stashapi.log (imported when no Logger is passed) renames CRITICAL and writes \\x01 lines."""
    code = f"""
import logging, sys
from stash2plex_backends.simulators.stash import StashSimulator
from stash2plex_backends.stash import StashApiGateway
with StashSimulator(scenes=3, api_key={KEY!r}) as sim:
    gateway = StashApiGateway(sim.url, api_key={KEY!r}, timeout=5)
    gateway.ping(); list(gateway.iter_scenes())
    sim.graphql_faults.add(__import__("stash2plex_backends.simulators.stash", fromlist=["x"]).GraphQLFault(times=1))
    try:
        gateway.get_scene("1")
    except Exception as exc:
        print(type(exc).__name__)
print(logging.getLevelName(logging.CRITICAL), "stashapi.log" in sys.modules)
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2] / "src"), *sys.path])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True, timeout=60)
    assert out.stdout.split() == ["TransientError", "CRITICAL", "False"]
    assert "\x01" not in out.stderr
    assert out.stderr == ""


def test_importing_the_package_loads_neither_stashapi_nor_requests() -> None:
    code = (
        "import sys, stash2plex_backends.stash, stash2plex_backends.stash.plugin\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('stashapi', 'requests', 'urllib3')))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2] / "src"), *sys.path])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
