"""Optional behaviours a backend declares instead of the suite guessing by name."""

from __future__ import annotations

import attrs


@attrs.frozen
class Capabilities:
    #: Data survives closing the backend and opening it again on the same storage.
    durable: bool = False
    #: Several processes may use the same storage at once.
    multi_process: bool = False
    #: Plex: a scan reveals files staged on disk.
    scan_reveals_staged: bool = True


__all__ = ["Capabilities"]
