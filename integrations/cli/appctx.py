"""Building settings and the app from the command line's global options."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs

from stash2plex_core.app import App
from stash2plex_core.app import build_app
from stash2plex_core.errors import ConfigurationError
from stash2plex_core.plugin import build_registry
from stash2plex_core.settings import Secret
from stash2plex_core.settings import Settings
from stash2plex_integrations.config import default_data_dir
from stash2plex_integrations.config import load_settings


#: Flags that set a setting directly (highest precedence).
FLAG_SETTINGS = ("plex_url", "plex_token", "stash_url", "stash_api_key", "data_dir")
#: Environment variables that may hold a credential, scrubbed from error messages.
SECRET_VARIABLES = ("STASH2PLEX_PLEX_TOKEN", "STASH2PLEX_STASH_API_KEY")
_SECRET_PATTERNS = (
    re.compile(r"(X-Plex-Token[=:]\s*)[^&\s'\"]+", re.IGNORECASE),
    re.compile(r"(ApiKey[=:]\s*)[^&\s'\"]+", re.IGNORECASE),
)
#: Credentials of the settings built in this process (so an error that quotes one is scrubbed).
_known_secrets: set[str] = set()


def remember_secrets(settings: Settings) -> None:
    for field in attrs.fields(type(settings)):
        value = getattr(settings, field.name)
        if isinstance(value, Secret) and value.reveal():
            _known_secrets.add(value.reveal())


def scrub(text: str, args: argparse.Namespace | None = None) -> str:
    """``text`` without any credential this process knows of (settings, flags, environment)."""
    secrets = set(_known_secrets)
    secrets.update(os.environ[name] for name in SECRET_VARIABLES if os.environ.get(name))
    if args is not None:
        for name in ("plex_token", "stash_api_key"):
            if getattr(args, name, None):
                secrets.add(str(getattr(args, name)))
        for pair in getattr(args, "set_values", None) or []:
            key, _, value = pair.partition("=")
            if key.strip() in ("plex_token", "stash_api_key") and value:
                secrets.add(value)
    for secret in sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "***")
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(r"\1***", text)
    return text


def add_global_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("settings (override the config file and STASH2PLEX_* variables)")
    group.add_argument(
        "--config", metavar="PATH", help="settings file (default: $STASH2PLEX_CONFIG or the platform config dir)"
    )
    for name in FLAG_SETTINGS:
        group.add_argument(f"--{name.replace('_', '-')}", dest=name, default=None, metavar="VALUE")
    group.add_argument(
        "--set", dest="set_values", action="append", default=[], metavar="KEY=VALUE", help="any setting (repeatable)"
    )


def explicit_settings(args: argparse.Namespace) -> dict[str, object]:
    values: dict[str, object] = {}
    for pair in getattr(args, "set_values", []) or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigurationError(f"--set {pair!r}: expected KEY=VALUE")
        values[key.strip()] = value
    for name in FLAG_SETTINGS:
        value = getattr(args, name, None)
        if value is not None:
            values[name] = value
    return values


def settings_from_args(args: argparse.Namespace) -> Settings:
    config = getattr(args, "config", None)
    settings = load_settings(explicit_settings(args), path=Path(config) if config else None)
    if settings.data_dir is None:
        from attrs import evolve

        settings = evolve(settings, data_dir=str(default_data_dir()))
    remember_secrets(settings)
    return settings


@contextmanager
def open_app(args: argparse.Namespace, settings: Settings | None = None) -> Iterator[App]:
    """The app built from the command line's settings, closed afterwards."""
    registry = build_registry(environ=os.environ)
    settings = settings or settings_from_args(args)
    remember_secrets(settings)
    app = build_app(settings, registry=registry)
    try:
        yield app
    finally:
        app.close()


__all__ = ["add_global_options", "explicit_settings", "open_app", "remember_secrets", "scrub", "settings_from_args"]
