"""Stash's raw plugin protocol, with the standard library only.

* stdin: one JSON document (``server_connection``, ``args``), read in full first — Stash
  logs a broken pipe if a plugin exits without reading it.
* stdout: exactly one ``{"output": ..., "error": ...}`` object, nothing else.
* stderr: one line per record, ``\\x01<level>\\x02<message>``, level one of ``t d i w e p``
  (``p`` is task progress, a float from 0 to 1). Lines stay far below Stash's 64 KiB
  scanner limit, which would otherwise stop Stash reading our stderr.
"""

from __future__ import annotations

import json
import sys


TYPE_CHECKING = False  # typing costs the hook ~4 ms to import; annotations only need it for mypy
if TYPE_CHECKING:
    from typing import IO
    from typing import Any


MAX_LINE = 16_000


class PluginInputError(ValueError):
    """Stash's stdin was not the JSON document the protocol promises."""


def read_input(stream: IO[str] | None = None) -> dict[str, Any]:
    """Read and parse all of stdin; raise :class:`PluginInputError` naming what is wrong."""
    raw = (stream or sys.stdin).read()
    if not raw.strip():
        raise PluginInputError("no input on stdin (expected Stash's plugin JSON)")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise PluginInputError(f"stdin is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(data, dict):
        raise PluginInputError(f"stdin JSON must be an object, got {type(data).__name__}")
    args = data.get("args")
    if args is not None and not isinstance(args, dict):
        raise PluginInputError("'args' must be an object")
    return data


def write_output(output: Any = None, error: str | None = None, stream: IO[str] | None = None) -> None:
    """Print the one result object Stash reads from stdout."""
    out = stream or sys.stdout
    if output is None and error is None:
        output = "ok"
    out.write(json.dumps({"output": output, "error": error}, default=str))
    out.write("\n")
    out.flush()


def progress(value: float, stream: IO[str] | None = None) -> None:
    """Report task progress (clamped to 0..1); Stash shows it as the job's percentage."""
    clamped = min(1.0, max(0.0, float(value)))
    out = stream or sys.stderr
    out.write(f"\x01p\x02{clamped:.4f}\n")
    out.flush()


__all__ = ["MAX_LINE", "PluginInputError", "progress", "read_input", "write_output"]
