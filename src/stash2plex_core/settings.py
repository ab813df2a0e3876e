"""One settings model, filled from layered sources and validated all at once.

Sources, highest first: explicit arguments, the environment (``STASH2PLEX_<KEY>``), a
TOML file, and inside Stash the plugin's settings. This module is pure: it parses
mappings and text that the edges (CLI, plugin, provider) read, so nothing here touches
the environment or the disk. Values are parsed loosely (Stash sends booleans and numbers
in several forms) and every bad key is reported in one :class:`InvalidSettingsError`.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from typing import Any
from typing import Final

import attrs

from stash2plex_core.errors import InvalidSettingsError
from stash2plex_core.errors import SettingProblem
from stash2plex_core.models.matching import PathRule


ENV_PREFIX: Final = "STASH2PLEX_"
#: Environment variables that steer the program rather than set a setting.
CONTROL_VARIABLES: Final = frozenset(
    {
        "STASH2PLEX_CONFIG",
        "STASH2PLEX_DISABLE_PLUGIN_AUTOLOAD",
        "STASH2PLEX_DISABLED_PLUGINS",
        "STASH2PLEX_TRACE_PLUGINS",
    }
)
RECONCILE_SCHEDULES: Final = ("none", "hourly", "daily", "weekly")
#: How a Stash path look-up compares paths (see ``ports.stash``).
STASH_PATH_MATCHES: Final = ("exact", "normalised")
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")


@attrs.frozen(repr=False)
class Secret:
    """A credential that never shows itself in ``repr``, logs or reports."""

    _value: str

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)


# --- loose parsers: each takes a raw value and returns the parsed one or raises ValueError


def _bool(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int | float) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str) and raw.strip().lower() in {"1", "true", "yes", "on"}:
        return True
    if isinstance(raw, str) and raw.strip().lower() in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("expected a boolean (true/false, yes/no, 1/0)")


def _number(kind: type[int] | type[float], minimum: float | None = None) -> Callable[[object], Any]:
    def parse(raw: object) -> int | float:
        if isinstance(raw, bool):
            raise ValueError(f"expected {'an integer' if kind is int else 'a number'}, got a boolean")
        try:
            value = kind(float(raw)) if kind is float else int(str(raw).strip())  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ValueError(f"expected {'an integer' if kind is int else 'a number'}, got {raw!r}") from None
        if minimum is not None and value < minimum:
            raise ValueError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def _optional_str(raw: object) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str | int | float) or isinstance(raw, bool):
        raise ValueError(f"expected text, got {type(raw).__name__}")
    text = str(raw).strip()
    return text or None


def _url(raw: object) -> str | None:
    text = _optional_str(raw)
    if text is None:
        return None
    if not text.startswith(("http://", "https://")):
        raise ValueError(f"expected an http:// or https:// URL, got {text!r}")
    return text.rstrip("/")


def _plain_url(raw: object) -> str | None:
    """An http(s) URL without a query or fragment: ``?X-Plex-Token=...`` belongs in the token setting."""
    text = _url(raw)
    if text is not None and ("?" in text or "#" in text):
        raise ValueError("must not carry a query string or fragment (put the token in plex_token)")
    return text


def _secret(raw: object) -> Secret | None:
    if isinstance(raw, Secret):
        return raw
    text = _optional_str(raw)
    return Secret(text) if text else None


def _choice(options: Iterable[str], *, upper: bool = False) -> Callable[[object], str]:
    allowed = tuple(options)

    def parse(raw: object) -> str:
        text = str(raw).strip()
        text = text.upper() if upper else text.lower()
        if text not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}, got {raw!r}")
        return text

    return parse


def _str_tuple(raw: object) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if isinstance(raw, list | tuple):
        return tuple(str(part).strip() for part in raw if str(part).strip())
    raise ValueError("expected a list or a comma-separated string")


def _path_rules(raw: object) -> tuple[PathRule, ...]:
    if raw is None or raw == "":
        return ()
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"expected a JSON list of rules: {exc}") from None
    if not isinstance(raw, list | tuple):
        raise ValueError("expected a list of rule tables")
    rules = []
    for index, item in enumerate(raw):
        if isinstance(item, PathRule):
            rules.append(item)
            continue
        if not isinstance(item, Mapping):
            raise ValueError(f"rule #{index + 1}: expected a table")
        known = {f.name for f in attrs.fields(PathRule)}
        unknown = sorted(set(item) - known)
        missing = sorted(f.name for f in attrs.fields(PathRule) if f.default is attrs.NOTHING and f.name not in item)
        if unknown or missing:
            raise ValueError(
                f"rule #{index + 1}: "
                + "; ".join(
                    ([f"unknown keys {', '.join(unknown)}"] if unknown else [])
                    + ([f"missing keys {', '.join(missing)}"] if missing else [])
                )
            )
        values = dict(item)
        if "samples" in values:
            values["samples"] = tuple(values["samples"])
        if "case_sensitive" in values:
            values["case_sensitive"] = _bool(values["case_sensitive"])
        rules.append(PathRule(**values))
    return tuple(rules)


PROVIDER_IDENTIFIER_PREFIX: Final = "tv.plex.agents.custom."
_PROVIDER_SCHEDULES: Final = ("none", "hourly", "daily", "weekly")


def _provider_identifier(raw: object) -> str:
    """Plex's rule: ``tv.plex.agents.custom.`` and a suffix of ASCII letters, digits and dots."""
    text = str(raw).strip()
    suffix = text[len(PROVIDER_IDENTIFIER_PREFIX) :]
    if (
        not text.startswith(PROVIDER_IDENTIFIER_PREFIX)
        or not suffix
        or not all(c.isascii() and (c.isalnum() or c == ".") for c in suffix)
        or suffix.startswith(".")
        or suffix.endswith(".")
        or ".." in suffix
    ):
        raise ValueError(
            f"expected {PROVIDER_IDENTIFIER_PREFIX}<suffix> where the suffix holds only ASCII letters, digits and "
            f"single dots (e.g. {PROVIDER_IDENTIFIER_PREFIX}stash2plex.home), got {raw!r}"
        )
    return text


def _text(raw: object) -> str:
    text = _optional_str(raw)
    if text is None:
        raise ValueError("must not be empty")
    return text


def _port(raw: object) -> int:
    value = int(_number(int, 1)(raw))
    if value > 65535:
        raise ValueError(f"expected a TCP port (1-65535), got {value}")
    return value


def _schedule(raw: object) -> str:
    """``none``, ``hourly``, ``daily``, ``weekly`` or a number of seconds (at least 60)."""
    text = str(raw).strip().lower()
    if text in _PROVIDER_SCHEDULES:
        return text
    try:
        seconds = float(text)
    except ValueError:
        raise ValueError(f"expected one of {', '.join(_PROVIDER_SCHEDULES)} or seconds, got {raw!r}") from None
    if not seconds >= 60:
        raise ValueError(f"a schedule in seconds must be at least 60, got {raw!r}")
    return f"{seconds:g}"


def schedule_seconds(schedule: str) -> float | None:
    """Seconds between runs for a schedule setting's value; ``None`` for ``"none"``."""
    named = {"none": None, "hourly": 3600.0, "daily": 86400.0, "weekly": 604800.0}
    return named[schedule] if schedule in named else float(schedule)


def _setting(default: Any, parse: Callable[[object], Any], doc: str, *, secret: bool = False) -> Any:
    return attrs.field(default=default, metadata={"parse": parse, "doc": doc, "secret": secret})


@attrs.frozen
class Settings:
    """Every setting stash2plex reads, with its default.

    Build one with :func:`parse_settings` (validating) or directly in code and tests.
    """

    # Plex
    plex_url: str | None = _setting(None, _plain_url, "Plex server URL, e.g. http://127.0.0.1:32400")
    plex_token: Secret | None = _setting(None, _secret, "Plex authentication token", secret=True)
    plex_connect_timeout: float = _setting(5.0, _number(float, 0.1), "Seconds to wait for a Plex connection")
    plex_read_timeout: float = _setting(30.0, _number(float, 0.1), "Seconds to wait for a Plex response")
    plex_verify_tls: bool = _setting(True, _bool, "Verify Plex's TLS certificate")
    plex_sections: tuple[str, ...] = _setting(
        (), _str_tuple, "Plex library sections to use (empty: all movie sections)"
    )
    # Stash
    stash_url: str | None = _setting(None, _url, "Stash URL, e.g. http://127.0.0.1:9999")
    stash_api_key: Secret | None = _setting(None, _secret, "Stash API key", secret=True)
    stash_timeout: float = _setting(30.0, _number(float, 0.1), "Seconds to wait for a Stash response")
    stash_verify_tls: bool = _setting(True, _bool, "Verify Stash's TLS certificate")
    stash_path_match: str = _setting(
        "exact",
        _choice(STASH_PATH_MATCHES),
        "Stash path look-ups: exact, or normalised (ignore case, separators and NFC/NFD)",
    )
    # Where state lives and which backends serve each port
    data_dir: str | None = _setting(
        None, _optional_str, "Directory for the state database (default: platform data dir)"
    )
    queue_backend: str | None = _setting(None, _optional_str, "Queue backend id (default: best available)")
    state_backend: str | None = _setting(None, _optional_str, "State store backend id")
    plex_backend: str | None = _setting(None, _optional_str, "Plex gateway backend id")
    stash_backend: str | None = _setting(None, _optional_str, "Stash gateway backend id")
    clock_backend: str | None = _setting(None, _optional_str, "Clock backend id")
    # What to sync
    sync_title: bool = _setting(True, _bool, "Sync the title")
    sync_summary: bool = _setting(True, _bool, "Sync details as the summary")
    sync_date: bool = _setting(True, _bool, "Sync the date (originally available and year)")
    sync_studio: bool = _setting(True, _bool, "Sync the studio")
    sync_performers: bool = _setting(True, _bool, "Sync performers as actors")
    sync_performer_photos: bool = _setting(True, _bool, "Give actors the performer's photo URL")
    sync_tags: bool = _setting(True, _bool, "Sync tags as genres")
    sync_studio_collection: bool = _setting(True, _bool, "Put items in a collection named after the studio")
    sync_group_collections: bool = _setting(False, _bool, "Put items in a collection per Stash group")
    sync_rating: bool = _setting(True, _bool, "Sync rating100 as the user rating (0-10)")
    sync_code: bool = _setting(True, _bool, "Sync the scene code (as the tagline)")
    sync_director: bool = _setting(True, _bool, "Sync the director")
    sync_poster: bool = _setting(True, _bool, "Upload the scene screenshot as the poster")
    content_rating: str | None = _setting(None, _optional_str, "Content rating to set on every item (e.g. XXX)")
    preserve_plex_edits: bool = _setting(False, _bool, "Only fill fields that are empty in Plex; leave locks alone")
    lock_fields: bool = _setting(True, _bool, "Lock managed fields so Plex agents keep their hands off")
    max_tags: int = _setting(100, _number(int, 0), "Most genres sent per item")
    max_performers: int = _setting(50, _number(int, 0), "Most actors sent per item")
    # Matching
    path_rules: tuple[PathRule, ...] = _setting((), _path_rules, "Ordered path rules (TOML tables or a JSON list)")
    allow_low_confidence: bool = _setting(False, _bool, "Apply low-confidence (ambiguous filename) matches")
    # Retries, queue and schedule
    max_attempts: int = _setting(
        8,
        _number(int, 1),
        "Fewest attempts before a failing job may be dead-lettered (it must also outlast the horizon)",
    )
    retry_base_seconds: float = _setting(5.0, _number(float, 0.0), "First retry window (doubling, full jitter)")
    retry_max_seconds: float = _setting(600.0, _number(float, 1.0), "Longest retry window for a transient failure")
    retry_horizon_seconds: float = _setting(
        21600.0, _number(float, 0.0), "How long a transient failure is retried before dead-lettering (6 h)"
    )
    retry_after_max_seconds: float = _setting(
        3600.0, _number(float, 0.0), "Longer server-sent Retry-After waits are still honoured, but logged as warnings"
    )
    not_in_plex_retry_seconds: float = _setting(
        60.0, _number(float, 1.0), "First retry window while Plex has not scanned a file (doubling, full jitter)"
    )
    not_in_plex_retry_max_seconds: float = _setting(
        3600.0, _number(float, 1.0), "Longest retry window while Plex has not scanned a file"
    )
    not_in_plex_horizon_seconds: float = _setting(
        86400.0, _number(float, 0.0), "How long a file missing from Plex is retried before dead-lettering (24 h)"
    )
    attempt_ceiling: int = _setting(
        1000, _number(int, 1), "Hard limit on attempts of one job (stops a job that crashes its worker every time)"
    )
    # Circuit breaker in front of Plex
    breaker_window: int = _setting(50, _number(int, 1), "Recent Plex calls the breaker's failure rate is taken over")
    breaker_min_failures: int = _setting(
        20, _number(int, 1), "Failed calls the window must hold before its failure rate can open the breaker"
    )
    breaker_failure_rate: float = _setting(0.6, _number(float, 0.0), "Failure rate (0-1) above which the breaker opens")
    breaker_consecutive_failures: int = _setting(
        20, _number(int, 1), "Consecutive failed Plex calls that open the breaker whatever the window holds"
    )
    breaker_refusals: int = _setting(5, _number(int, 1), "Consecutive refused connections that open the breaker")
    breaker_probe_base_seconds: float = _setting(
        5.0, _number(float, 0.1), "First probe of an open breaker after this long (then doubling)"
    )
    breaker_probe_max_seconds: float = _setting(60.0, _number(float, 0.1), "Longest pause between probes")
    breaker_half_open_probe_seconds: float = _setting(
        1.0, _number(float, 0.0), "Pause between probes once one succeeded (half-open)"
    )
    breaker_close_after_probes: int = _setting(3, _number(int, 1), "Successful probes in a row that close the breaker")
    breaker_listen_seconds: float = _setting(
        0.25,
        _number(float, 0.0),
        "While the breaker is open on refused connections, how often to check (a TCP connect, no request)"
        " whether Plex listens again, and probe at once when it does; 0 turns it off",
    )
    # Draining
    plex_concurrency: int = _setting(
        4,
        _number(int, 1),
        "Requests to Plex in flight at once; the worker works on half as many jobs again (needs thread-safe adapters)",
    )
    ramp_window_seconds: float = _setting(
        60.0, _number(float, 0.0), "After an outage, seconds over which draining ramps up to full rate"
    )
    ramp_start_fraction: float = _setting(0.15, _number(float, 0.0), "Fraction (0-1] of full rate the ramp starts at")
    ramp_full_rate: float = _setting(
        50.0, _number(float, 0.1), "Least jobs/s the ramp climbs to (the measured pre-outage rate when higher)"
    )
    ramp_error_rate: float = _setting(
        0.3, _number(float, 0.0), "Error rate (0-1) during the ramp above which the rate halves"
    )
    lease_seconds: float = _setting(300.0, _number(float, 1.0), "How long a worker owns a claimed job")
    reconcile_schedule: str = _setting(
        "daily", _choice(RECONCILE_SCHEDULES), "How often incremental reconciliation runs"
    )
    reconcile_full_interval_hours: float = _setting(
        168.0, _number(float, 0.0), "Hours between scheduled full reconciliation passes (0: never scheduled)"
    )
    reconcile_overlap_seconds: float = _setting(
        600.0, _number(float, 0.0), "Seconds an incremental reconciliation looks back before its watermark"
    )
    reconcile_batch_size: int = _setting(
        100, _number(int, 1), "Plex items whose details reconciliation reads per batch"
    )
    reconcile_lock_seconds: float = _setting(
        1800.0, _number(float, 10.0), "How long a reconciliation's claim lasts without a heartbeat"
    )
    reconcile_examples: int = _setting(5, _number(int, 0), "Examples kept per gap kind in a reconciliation report")
    # Plex metadata provider (``stash2plex provider serve``)
    provider_host: str = _setting(
        "127.0.0.1", _text, "Address the metadata provider binds to (0.0.0.0 for every interface)"
    )
    provider_port: int = _setting(9090, _port, "TCP port the metadata provider listens on")
    provider_secret: Secret | None = _setting(
        None, _secret, "Shared secret Plex must send (path prefix, header or query parameter)", secret=True
    )
    provider_identifier: str = _setting(
        "tv.plex.agents.custom.stash2plex",
        _provider_identifier,
        "Provider identifier and GUID scheme (unique per Stash instance)",
    )
    provider_title: str = _setting("Stash (stash2plex)", _text, "Provider name Plex shows")
    provider_public_url: str | None = _setting(
        None, _url, "Base URL Plex uses to fetch images from the provider (default: the URL Plex called)"
    )
    provider_library_roots: tuple[str, ...] = _setting(
        (), _str_tuple, "Plex library folders for paths no path rule maps (Plex and Stash see the same paths)"
    )
    provider_cache_seconds: float = _setting(
        30.0, _number(float, 0.0), "How old a Stash answer the provider may serve (0: always ask Stash)"
    )
    provider_stash_concurrency: int = _setting(8, _number(int, 1), "Most Stash requests the provider makes at once")
    provider_upstream_timeout: float = _setting(
        10.0, _number(float, 0.1), "Seconds the provider waits for Stash before answering Plex with an error"
    )
    provider_index_seconds: float = _setting(
        3600.0,
        _number(float, 0.0),
        "Seconds between full rebuilds of the provider's scene index (0: no index, every answer asks Stash)",
    )
    provider_gap_schedule: str = _setting(
        "daily",
        _schedule,
        "How often the provider compares Stash and Plex for gaps (none, hourly, daily, weekly, or seconds)",
    )
    log_level: str = _setting("INFO", _choice(LOG_LEVELS, upper=True), "Log level")

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{f.name}={getattr(self, f.name)!r}" for f in attrs.fields(Settings) if getattr(self, f.name) != f.default
        )
        return f"Settings({shown})"

    def redacted(self) -> dict[str, Any]:
        """Every setting as plain data, secrets replaced by ``"***"`` (for reports and logs)."""
        out: dict[str, Any] = {}
        for f in attrs.fields(Settings):
            value = getattr(self, f.name)
            if f.metadata.get("secret"):
                out[f.name] = "***" if value else None
            elif f.name == "path_rules":
                out[f.name] = [attrs.asdict(rule) for rule in value]
            else:
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


SETTING_NAMES: Final = frozenset(f.name for f in attrs.fields(Settings))


def describe_settings() -> list[tuple[str, str, Any]]:
    """``(name, description, default)`` for every setting, for docs and ``--help``."""
    return [(f.name, f.metadata["doc"], f.default) for f in attrs.fields(Settings)]


def parse_settings(values: Mapping[str, object], *, ignore_unknown: bool = False) -> Settings:
    """Validate raw ``values`` into :class:`Settings`, reporting every problem at once.

    :param ignore_unknown: skip keys that are not settings instead of reporting them
        (Stash sends settings of other plugin versions).
    :raises InvalidSettingsError: naming each bad key and the expected form.
    """
    problems: list[SettingProblem] = []
    parsed: dict[str, Any] = {}
    for key in sorted(values):
        if key not in SETTING_NAMES:
            if not ignore_unknown:
                problems.append(SettingProblem(key, "unknown setting"))
            continue
    for f in attrs.fields(Settings):
        if f.name not in values:
            continue
        try:
            parsed[f.name] = f.metadata["parse"](values[f.name])
        except ValueError as exc:
            problems.append(SettingProblem(f.name, str(exc)))
    if problems:
        raise InvalidSettingsError(problems)
    settings = Settings(**parsed)
    problems = _cross_check(settings)
    if problems:
        raise InvalidSettingsError(problems)
    return settings


def _cross_check(settings: Settings) -> list[SettingProblem]:
    """Rules that involve more than one setting, or a range one parser cannot express."""
    problems: list[SettingProblem] = []
    for low, high in (
        ("retry_base_seconds", "retry_max_seconds"),
        ("not_in_plex_retry_seconds", "not_in_plex_retry_max_seconds"),
        ("breaker_probe_base_seconds", "breaker_probe_max_seconds"),
    ):
        if getattr(settings, high) < getattr(settings, low):
            problems.append(SettingProblem(high, f"must not be smaller than {low}"))
    for name in ("breaker_failure_rate", "ramp_error_rate"):
        if not 0.0 < getattr(settings, name) < 1.0:
            problems.append(SettingProblem(name, f"must be between 0 and 1, got {getattr(settings, name)}"))
    if not 0.0 < settings.ramp_start_fraction <= 1.0:
        problems.append(SettingProblem("ramp_start_fraction", f"must be in (0, 1], got {settings.ramp_start_fraction}"))
    return problems


def settings_from_env(environ: Mapping[str, str]) -> tuple[dict[str, str], list[SettingProblem]]:
    """Pick ``STASH2PLEX_<KEY>`` variables out of ``environ``.

    Returns the raw values by setting name and a problem for each unknown
    ``STASH2PLEX_*`` variable (a typo would otherwise be silently ignored).
    """
    values: dict[str, str] = {}
    problems: list[SettingProblem] = []
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name in CONTROL_VARIABLES or name.endswith("_BACKEND_PATH"):
            continue
        key = name[len(ENV_PREFIX) :].lower()
        if key in SETTING_NAMES:
            values[key] = value
        else:
            problems.append(SettingProblem(name, "unknown setting in the environment"))
    return values, problems


def settings_from_toml(text: str, *, source: str = "settings file") -> dict[str, Any]:
    """Parse a TOML settings file; keys may sit at the top level or under ``[stash2plex]``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidSettingsError([SettingProblem(source, f"not valid TOML: {exc}")]) from None
    table = data.get("stash2plex", data)
    if not isinstance(table, dict):
        raise InvalidSettingsError([SettingProblem(source, "[stash2plex] must be a table")])
    return dict(table)


def merge_sources(*layers: Mapping[str, object] | None) -> dict[str, object]:
    """Merge raw layers, later ones winning (pass lowest precedence first)."""
    merged: dict[str, object] = {}
    for layer in layers:
        if layer:
            merged.update(layer)
    return merged


def resolve_settings(
    *,
    explicit: Mapping[str, object] | None = None,
    environ: Mapping[str, str] | None = None,
    file_values: Mapping[str, object] | None = None,
    plugin_values: Mapping[str, object] | None = None,
) -> Settings:
    """Combine every source by precedence and validate the result in one go."""
    env_values, problems = settings_from_env(environ or {})
    merged = merge_sources(
        {k: v for k, v in (plugin_values or {}).items() if k in SETTING_NAMES},
        file_values,
        env_values,
        explicit,
    )
    try:
        settings = parse_settings(merged)
    except InvalidSettingsError as exc:
        raise InvalidSettingsError([*problems, *exc.problems]) from None
    if problems:
        raise InvalidSettingsError(problems)
    return settings


__all__ = [
    "CONTROL_VARIABLES",
    "ENV_PREFIX",
    "SETTING_NAMES",
    "Secret",
    "Settings",
    "describe_settings",
    "merge_sources",
    "parse_settings",
    "resolve_settings",
    "schedule_seconds",
    "settings_from_env",
    "settings_from_toml",
]
