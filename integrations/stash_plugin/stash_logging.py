"""A logging handler that writes Stash's levelled stderr lines (tasks only; hooks log by hand)."""

from __future__ import annotations

import logging
import sys
from typing import IO

from stash2plex_integrations.stash_plugin.protocol import MAX_LINE


_LEVELS = ((logging.ERROR, "e"), (logging.WARNING, "w"), (logging.INFO, "i"), (logging.DEBUG, "d"))


def _level_char(levelno: int) -> str:
    for threshold, char in _LEVELS:
        if levelno >= threshold:
            return char
    return "t"


class StashLogHandler(logging.Handler):
    """Write log records in Stash's levelled stderr format, one short line each."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        super().__init__()
        self.stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record).replace("\r", " ")
            char = _level_char(record.levelno)
            stream = self.stream or sys.stderr
            for line in message.splitlines() or [""]:
                stream.write(f"\x01{char}\x02{line[:MAX_LINE]}\n")
            stream.flush()
        except Exception:  # noqa: BLE001 - logging must never take the plugin down
            self.handleError(record)


__all__ = ["StashLogHandler"]
