from __future__ import annotations

import pytest

from stash2plex_core.errors import InvalidSettingsError
from stash2plex_core.models.matching import PathRule
from stash2plex_core.settings import Secret
from stash2plex_core.settings import Settings
from stash2plex_core.settings import parse_settings
from stash2plex_core.settings import resolve_settings
from stash2plex_core.settings import settings_from_toml


def test_defaults_are_valid() -> None:
    assert parse_settings({}) == Settings()


def test_loose_values_as_stash_sends_them() -> None:
    s = parse_settings({"sync_tags": "false", "sync_title": 1, "max_tags": "12", "plex_read_timeout": "2.5"})
    assert (s.sync_tags, s.sync_title, s.max_tags, s.plex_read_timeout) == (False, True, 12, 2.5)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(InvalidSettingsError) as info:
        parse_settings(
            {"plex_url": "localhost:32400", "max_tags": "many", "sync_tags": "perhaps", "bogus": 1, "lease_seconds": 0}
        )
    keys = {p.key for p in info.value.problems}
    assert keys == {"plex_url", "max_tags", "sync_tags", "bogus", "lease_seconds"}
    message = str(info.value)
    assert "5 invalid setting(s)" in message
    assert "expected an http:// or https:// URL" in message
    assert "unknown setting" in message


def test_secrets_never_show() -> None:
    s = parse_settings({"plex_token": "tok-SECRET-123", "stash_api_key": "key-SECRET-456"})
    assert isinstance(s.plex_token, Secret)
    assert s.plex_token.reveal() == "tok-SECRET-123"
    for text in (repr(s), str(s), repr(s.redacted())):
        assert "SECRET" not in text
    assert s.redacted()["plex_token"] == "***"


def test_precedence_explicit_env_file_plugin() -> None:
    s = resolve_settings(
        explicit={"max_tags": 1},
        environ={"STASH2PLEX_MAX_TAGS": "2", "STASH2PLEX_MAX_PERFORMERS": "3", "PATH": "/bin"},
        file_values={"max_tags": 4, "max_performers": 4, "lease_seconds": 40},
        plugin_values={"max_tags": 5, "lease_seconds": 50, "retry_base_seconds": 6, "someOtherPluginKey": True},
    )
    assert (s.max_tags, s.max_performers, s.lease_seconds, s.retry_base_seconds) == (1, 3, 40.0, 6.0)


def test_unknown_environment_variable_is_reported_with_other_problems() -> None:
    with pytest.raises(InvalidSettingsError) as info:
        resolve_settings(environ={"STASH2PLEX_PLEX_TOKN": "x", "STASH2PLEX_MAX_TAGS": "x", "STASH2PLEX_CONFIG": "/x"})
    assert {p.key for p in info.value.problems} == {"STASH2PLEX_PLEX_TOKN", "max_tags"}


def test_toml_file_with_path_rules() -> None:
    values = settings_from_toml(
        """
        [stash2plex]
        plex_url = "http://127.0.0.1:32400"
        [[stash2plex.path_rules]]
        name = "nas"
        stash_pattern = '^/data/(?P<rest>.*)$'
        plex_template = "/media/{rest}"
        plex_pattern = '^/media/(?P<rest>.*)$'
        stash_template = "/data/{rest}"
        """
    )
    s = parse_settings(values)
    assert s.path_rules == (
        PathRule("nas", "^/data/(?P<rest>.*)$", "/media/{rest}", "^/media/(?P<rest>.*)$", "/data/{rest}"),
    )


def test_bad_path_rule_names_the_rule_and_keys() -> None:
    with pytest.raises(InvalidSettingsError, match=r"rule #1: unknown keys colour; missing keys plex_pattern"):
        parse_settings(
            {
                "path_rules": [
                    {"name": "x", "stash_pattern": "a", "plex_template": "b", "stash_template": "c", "colour": 1}
                ]
            }
        )


def test_path_rules_from_json_text() -> None:
    s = parse_settings(
        {
            "path_rules": '[{"name": "x", "stash_pattern": "a", "plex_template": "b", "plex_pattern": "b", "stash_template": "a"}]'
        }
    )
    assert s.path_rules[0].name == "x"


def test_invalid_toml_names_the_file() -> None:
    with pytest.raises(InvalidSettingsError, match=r"my\.toml: not valid TOML"):
        settings_from_toml("x = [", source="my.toml")
