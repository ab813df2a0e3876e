"""Structured logs without secrets.

One JSON object per line (``ts``, ``level``, ``logger``, ``msg`` and the record's extra
fields), and a handler-level filter that scrubs every registered secret from the message,
its arguments, the extra fields and exception text, whichever logger the record came from
(reliability §10.1: a filter on one logger misses records propagated from others).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from collections.abc import Iterable
from typing import Any

from stash2plex_core.settings import Settings


#: Attributes every LogRecord has; anything else on a record came in through ``extra``.
_STANDARD = frozenset(vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None))) | {"message", "asctime"}
MASK = "***"
#: Extra fields other libraries add that only make sense on a terminal.
_SKIP = frozenset({"color_message"})


class RedactingFilter(logging.Filter):
    """Replaces each secret (and its URL-encoded form) with ``***`` in everything a record carries."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        super().__init__()
        import urllib.parse

        found: set[str] = set()
        for secret in secrets:
            if secret and len(secret) >= 4:
                found.update({secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)})
        self.secrets = sorted(found, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def _value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, bytes | bytearray):
            return self.scrub(bytes(value).decode("utf-8", "replace"))
        if isinstance(value, int | float | bool) or value is None:
            return value
        return self.scrub(repr(value) if not isinstance(value, BaseException) else str(value))

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        record.msg = self.scrub(record.getMessage())
        record.args = None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD:
                setattr(record, key, self._value(value))
        if record.exc_info:
            record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = self.scrub(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", ...extra}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in data and key not in _SKIP:
                data[key] = value if isinstance(value, str | int | float | bool | type(None)) else repr(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            data["exc"] = record.exc_text
        return json.dumps(data, ensure_ascii=False, default=str)


def secrets_of(settings: Settings) -> list[str]:
    return [s.reveal() for s in (settings.provider_secret, settings.stash_api_key, settings.plex_token) if s]


def configure_logging(settings: Settings, *, stream: Any = None) -> logging.Handler:
    """Send every log record to ``stream`` (stderr) as JSON, secrets scrubbed; returns the handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter(secrets_of(settings)))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_stash2plex_provider", False)]:
        root.removeHandler(old)
    handler._stash2plex_provider = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    return handler


__all__ = ["JsonFormatter", "RedactingFilter", "configure_logging", "secrets_of"]
