"""Output helpers for the CLI: tables, JSON, and a progress bar on stderr."""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from collections.abc import Sequence
from enum import Enum
from typing import Any
from typing import TextIO

import attrs


def to_jsonable(value: Any) -> Any:
    """attrs values, enums, datetimes and mappings as plain JSON data."""
    if attrs.has(type(value)):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in attrs.fields(type(value))}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    return value


def print_json(value: Any, stream: TextIO | None = None) -> None:
    print(json.dumps(to_jsonable(value), indent=2, ensure_ascii=False, sort_keys=False), file=stream or sys.stdout)


def table(rows: Sequence[Sequence[object]], headers: Sequence[str], stream: TextIO | None = None) -> None:
    """A plain aligned text table."""
    cells = [[str(h) for h in headers], *[["" if c is None else str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    out = stream or sys.stdout
    for n, row in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), file=out)
        if n == 0:
            print("  ".join("-" * w for w in widths), file=out)


class ProgressBar:
    """``[#####-----]  52/100  12.3/s`` on stderr: redrawn in place on a terminal,
    a line every few seconds otherwise (logs stay readable)."""

    def __init__(self, label: str, stream: TextIO | None = None, width: int = 30, every: float = 5.0) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self.every = every
        self.started = time.monotonic()
        self._last_line = 0.0
        self._last_shown: tuple[int, int] | None = None
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def __call__(self, done: int, total: int) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        fraction = 1.0 if total <= 0 else min(1.0, done / total)
        filled = int(self.width * fraction)
        text = f"{self.label} [{'#' * filled}{'-' * (self.width - filled)}] {done}/{total}  {done / elapsed:.1f}/s"
        if self.tty:
            self.stream.write("\r" + text)
            self.stream.flush()
        elif (time.monotonic() - self._last_line >= self.every or done >= total) and self._last_shown != (done, total):
            self._last_shown = (done, total)
            self.stream.write(text + "\n")
            self.stream.flush()
            self._last_line = time.monotonic()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


__all__ = ["ProgressBar", "print_json", "table", "to_jsonable"]
