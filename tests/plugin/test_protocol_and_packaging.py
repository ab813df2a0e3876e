"""The plugin's protocol helpers, manifest and packaging."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from stash2plex_core.settings import Settings
from stash2plex_integrations.cli import main as cli_main
from stash2plex_integrations.stash_plugin import manifest as m
from stash2plex_integrations.stash_plugin import protocol
from stash2plex_integrations.stash_plugin.packaging import build_plugin
from stash2plex_integrations.stash_plugin.stash_logging import StashLogHandler


# Keys Stash's strict manifest decoder accepts (yaml.v2 strict; see the protocol reference).
TOP_KEYS = {"name", "description", "version", "url", "exec", "interface", "errLog", "tasks", "hooks", "settings", "ui"}
TASK_KEYS = {"name", "description", "defaultArgs", "execArgs"}
HOOK_KEYS = {"name", "description", "triggeredBy", "defaultArgs"}
SETTING_KEYS = {"displayName", "description", "type"}


def test_manifest_is_yaml_stash_accepts() -> None:
    data = yaml.safe_load(m.render_manifest("1.2.3"))
    assert data == m.build_manifest("1.2.3")
    assert set(data) <= TOP_KEYS
    assert all(set(t) <= TASK_KEYS for t in data["tasks"])
    assert all(set(h) <= HOOK_KEYS for h in data["hooks"])
    assert all(set(s) <= SETTING_KEYS for s in data["settings"].values())
    assert all(s["type"] in {"STRING", "NUMBER", "BOOLEAN"} for s in data["settings"].values())
    assert all(isinstance(v, str) for t in data["tasks"] for v in t["defaultArgs"].values())
    assert data["exec"] == ["python", "{pluginDir}/stash2plex_plugin.py"]
    assert data["interface"] == "raw"
    assert data["hooks"][0]["triggeredBy"] == ["Scene.Update.Post", "Scene.Create.Post", "Scene.Destroy.Post"]
    assert len({t["name"] for t in data["tasks"]}) == len(data["tasks"])


def test_every_plugin_setting_is_declared_with_its_type_and_default() -> None:
    declared = m.build_manifest("0")["settings"]
    assert declared["sync_tags"]["type"] == "BOOLEAN"
    assert "(default: on)" in declared["sync_tags"]["description"]
    assert declared["max_tags"]["type"] == "NUMBER"
    assert "(default: 100)" in declared["max_tags"]["description"]
    assert declared["plex_token"]["type"] == "STRING"
    for name in Settings.__attrs_attrs__:  # type: ignore[attr-defined]
        if name.name not in m.NOT_IN_PLUGIN and not name.name.startswith(m.NOT_IN_PLUGIN_PREFIXES):
            assert name.name in declared


def test_read_input_names_what_is_wrong() -> None:
    assert protocol.read_input(io.StringIO('{"args": {"task": "status"}}'))["args"] == {"task": "status"}
    for raw, message in [
        ("", "no input"),
        ("{nope", "not JSON"),
        ("[1]", "must be an object"),
        ('{"args": 3}', "'args' must be an object"),
    ]:
        with pytest.raises(protocol.PluginInputError, match=message):
            protocol.read_input(io.StringIO(raw))


def test_output_is_one_json_object() -> None:
    out = io.StringIO()
    protocol.write_output({"queued": 1}, None, stream=out)
    assert json.loads(out.getvalue()) == {"output": {"queued": 1}, "error": None}
    out = io.StringIO()
    protocol.write_output(None, "bad token", stream=out)
    assert json.loads(out.getvalue()) == {"output": None, "error": "bad token"}
    out = io.StringIO()
    protocol.write_output(None, None, stream=out)
    assert json.loads(out.getvalue()) == {"output": "ok", "error": None}


def test_log_lines_follow_stash_levels_and_stay_short() -> None:
    stream = io.StringIO()
    log = logging.getLogger("test-stash-protocol")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    log.addHandler(StashLogHandler(stream))
    log.debug("d")
    log.info("two\nlines")
    log.warning("w")
    log.error("x" * 100_000)
    protocol.progress(1.7, stream)
    lines = stream.getvalue().splitlines()
    assert lines[:4] == ["\x01d\x02d", "\x01i\x02two", "\x01i\x02lines", "\x01w\x02w"]
    assert lines[4].startswith("\x01e\x02x")
    assert len(lines[4]) < 64 * 1024
    assert lines[5] == "\x01p\x021.0000"


def test_package_builds_a_reproducible_zip_and_index(tmp_path: Path) -> None:
    first = build_plugin(tmp_path / "a", version="1.2.3")
    second = build_plugin(tmp_path / "b", version="1.2.3")
    assert first.zip_path.read_bytes() == second.zip_path.read_bytes()
    with zipfile.ZipFile(first.zip_path) as archive:
        assert sorted(archive.namelist()) == ["stash2plex.yml", "stash2plex_plugin.py"]
        assert yaml.safe_load(archive.read("stash2plex.yml"))["version"] == "1.2.3"
    index = yaml.safe_load(first.index_path.read_text(encoding="utf-8"))
    assert len(index) == 1
    entry = index[0]
    assert {"id", "name", "version", "date", "path", "sha256"} <= set(entry)
    assert entry["id"] == "stash2plex"
    assert entry["sha256"] == hashlib.sha256(first.zip_path.read_bytes()).hexdigest()
    assert (first.index_path.parent / entry["path"]).is_file()
    assert len(entry["date"]) == 19  # "YYYY-MM-DD HH:MM:SS", what Stash parses


def test_cli_packages_the_plugin(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["plugin", "package", "--out", str(tmp_path), "--version", "9.9.9"]) == 0
    assert "stash2plex.zip" in capsys.readouterr().out
    assert (tmp_path / "index.yml").is_file()


def test_entry_script_without_the_library_answers_in_json(tmp_path: Path) -> None:
    script = Path(m.__file__).with_name("stash2plex_plugin.py")
    copy = tmp_path / "stash2plex_plugin.py"
    copy.write_bytes(script.read_bytes())
    done = subprocess.run(
        [sys.executable, "-I", "-S", str(copy)],
        input='{"args": {}}',
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    result = json.loads(done.stdout)
    assert result["output"] is None
    assert "stash2plex is not installed" in result["error"]
    assert done.stderr.startswith("\x01e\x02")
