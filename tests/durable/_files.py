"""File-system helpers: modes, a umask, and a read-only directory that binds even root."""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest


def mode(path: Path | str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@contextlib.contextmanager
def umask(value: int) -> Iterator[None]:
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


# Linux capabilities that let root ignore file modes (capability.h).
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH, _CAP_FOWNER = 1, 2, 3
_PR_CAPBSET_DROP = 24


def _drop_mode_override() -> None:
    """In the child before exec: drop root's power to ignore modes from the bounding set,
    so the new program starts without it (root's permitted set is the bounding set)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH, _CAP_FOWNER):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


@contextlib.contextmanager
def read_only_directory(tmp_path: Path) -> Iterator[Path]:
    """A directory with mode 0555 (restored afterwards so pytest can clean up)."""
    target = tmp_path / "read-only ✓"
    target.mkdir()
    target.chmod(0o555)
    try:
        yield target
    finally:
        target.chmod(0o755)


def run_python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter that file modes bind, even when we are root.

    Root ignores directory modes, so as root the child runs without the capabilities
    that allow it (skipped where the container cannot drop them).
    """
    if os.geteuid() != 0:
        preexec = None
    elif sys.platform.startswith("linux"):
        preexec = _drop_mode_override
    else:  # pragma: no cover - root on another system
        pytest.skip("cannot run unprivileged here")
    try:
        return subprocess.run(
            [sys.executable, "-c", code, *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            preexec_fn=preexec,
        )
    except subprocess.SubprocessError as exc:
        pytest.skip(f"cannot drop root's file-mode override: {exc}")
