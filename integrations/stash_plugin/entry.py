"""What Stash runs: read stdin, dispatch to the hook or a task, print one JSON result.

The hook path stays on the standard library (plus SQLite); tasks import the library.
Whatever happens, stdout carries exactly one ``{"output", "error"}`` object and every
diagnostic goes to stderr in Stash's log format — never a bare traceback.
"""

from __future__ import annotations

import sys

from stash2plex_integrations.stash_plugin import protocol


TYPE_CHECKING = False  # typing costs the hook ~4 ms to import; annotations only need it for mypy
if TYPE_CHECKING:
    from typing import IO
    from typing import Any


def _log(stream: IO[str]) -> Any:
    def log(message: str, level: str = "i") -> None:
        for line in str(message).splitlines() or [""]:
            stream.write(f"\x01{level}\x02{line[: protocol.MAX_LINE]}\n")
        stream.flush()

    return log


def main(stdin: IO[str] | None = None, stdout: IO[str] | None = None, stderr: IO[str] | None = None) -> int:
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    log = _log(stderr)
    try:
        data = protocol.read_input(stdin)
    except protocol.PluginInputError as exc:
        log(f"stash2plex: {exc}", level="e")
        protocol.write_output(None, str(exc), stdout)
        return 0
    args = data.get("args") or {}
    try:
        if "hookContext" in args:
            from stash2plex_integrations.stash_plugin.hook import run_hook

            output: Any = run_hook(data, log)
            log(output, level="d")
        else:
            from stash2plex_integrations.stash_plugin.tasks import run_task

            output = run_task(data, stderr)
    except Exception as exc:  # noqa: BLE001 - the one place that turns any failure into Stash's format
        message = _describe(exc)
        log(f"stash2plex: {message}", level="e")
        if not _expected(exc):
            import traceback  # only on the failure path: it costs the hook ~3 ms to import

            for line in traceback.format_exc().splitlines():
                log(line, level="d")
        protocol.write_output(None, message, stdout)
        return 0
    protocol.write_output(output, None, stdout)
    return 0


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _expected(exc: BaseException) -> bool:
    """Errors that are about the world, not bugs: no traceback needed in the log."""
    from stash2plex_backends.sqlite.hookpath import HookDatabaseError
    from stash2plex_integrations.stash_plugin.hook import HookError

    if isinstance(exc, HookError | HookDatabaseError | protocol.PluginInputError):
        return True
    core = sys.modules.get("stash2plex_core.errors")
    return core is not None and isinstance(exc, core.Stash2PlexError)


__all__ = ["main"]
