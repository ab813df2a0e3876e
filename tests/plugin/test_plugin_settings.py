"""The plugin's settings composition: what the tasks read must be what the hook writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from stash2plex_core.errors import InvalidSettingsError
from stash2plex_integrations.stash_plugin.tasks import plugin_settings


def connection(tmp_path: Path) -> dict[str, object]:
    return {"Scheme": "http", "Host": "127.0.0.1", "Port": 9999, "PluginDir": str(tmp_path)}


def test_tasks_read_the_sqlite_queue_the_hook_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STASH2PLEX_DATA_DIR", raising=False)
    monkeypatch.delenv("STASH2PLEX_QUEUE_BACKEND", raising=False)
    settings = plugin_settings(connection(tmp_path), {"plex_url": "http://127.0.0.1:32400", "plex_token": "t"})
    assert settings.queue_backend == "sqlite"
    assert Path(settings.data_dir) == tmp_path


def test_another_queue_backend_inside_stash_is_refused_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STASH2PLEX_QUEUE_BACKEND", raising=False)
    with pytest.raises(InvalidSettingsError) as caught:
        plugin_settings(connection(tmp_path), {"queue_backend": "memory", "retry_base_seconds": "soon"})
    keys = {problem.key for problem in caught.value.problems}
    assert keys >= {"queue_backend", "retry_base_seconds"}, "every problem is reported at once"
    assert "sqlite" in str(caught.value)
