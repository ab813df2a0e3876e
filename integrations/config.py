"""Reading settings at the edge: environment, the TOML file, explicit arguments.

This is the only place that looks at ``os.environ`` and the settings file, and it does
so when called, never at import.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from stash2plex_core.errors import InvalidSettingsError
from stash2plex_core.errors import SettingProblem
from stash2plex_core.settings import Settings
from stash2plex_core.settings import resolve_settings
from stash2plex_core.settings import settings_from_toml


APP_NAME = "stash2plex"


def default_config_file() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def default_data_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME))


def config_file(environ: Mapping[str, str]) -> Path:
    """``STASH2PLEX_CONFIG`` if set, else the platform config dir's ``config.toml``."""
    explicit = environ.get("STASH2PLEX_CONFIG")
    return Path(explicit) if explicit else default_config_file()


def load_settings(
    explicit: Mapping[str, object] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    plugin_values: Mapping[str, object] | None = None,
    path: Path | None = None,
) -> Settings:
    """Settings from every source by precedence (explicit > env > file > plugin).

    A missing default settings file is fine; a missing file named by
    ``STASH2PLEX_CONFIG`` or ``path`` is an error, reported with any other problem.
    """
    env = dict(os.environ if environ is None else environ)
    named = path is not None or "STASH2PLEX_CONFIG" in env
    file_path = path or config_file(env)
    file_values: dict[str, object] = {}
    try:
        file_values = settings_from_toml(file_path.read_text(encoding="utf-8"), source=str(file_path))
    except FileNotFoundError:
        if named:
            raise InvalidSettingsError([SettingProblem(str(file_path), "settings file does not exist")]) from None
    return resolve_settings(explicit=explicit, environ=env, file_values=file_values, plugin_values=plugin_values)


__all__ = ["config_file", "default_config_file", "default_data_dir", "load_settings"]
