"""Timestamps the way Stash writes them.

Stash stores ``created_at``/``updated_at`` as Go ``time.RFC3339`` text in the server's local
zone, at second precision, and compares filter values with that text as strings. Go writes
``Z`` (not ``+00:00``) when the offset is zero, so a UTC server and a ``+02:00`` server
produce strings that do not compare the same way; the simulator reproduces both.
"""

from __future__ import annotations

import re
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from datetime import tzinfo
from zoneinfo import ZoneInfo


_OFFSET = re.compile(r"([+-])(\d{2}):?(\d{2})")


def make_tz(spec: str | tzinfo) -> tzinfo:
    """``"+02:00"``, ``"-0530"``, ``"Z"``/``"UTC"`` or an IANA name such as ``"Europe/Berlin"``.

    An IANA zone changes offset with daylight saving time, as a real server's does, so the
    stored strings of one library can carry two different offsets.
    """
    if isinstance(spec, tzinfo):
        return spec
    if spec in {"Z", "UTC", "utc", "z"}:
        return UTC
    match = _OFFSET.fullmatch(spec)
    if match:
        sign = -1 if match.group(1) == "-" else 1
        delta = timedelta(hours=int(match.group(2)), minutes=int(match.group(3)))
        return timezone(sign * delta)
    return ZoneInfo(spec)


def format_time(moment: datetime) -> str:
    """Go's ``time.RFC3339``: second precision, ``Z`` for a zero offset."""
    base = moment.strftime("%Y-%m-%dT%H:%M:%S")
    offset = moment.utcoffset()
    if not offset:
        return base + "Z"
    total = int(offset.total_seconds())
    sign = "+" if total >= 0 else "-"
    total = abs(total)
    return f"{base}{sign}{total // 3600:02d}:{total % 3600 // 60:02d}"


def to_zone(text: str, tz: tzinfo) -> str:
    """Re-express an RFC 3339 string in ``tz`` (how Stash would have stored it)."""
    if tz is UTC and text.endswith("Z"):
        return text
    return format_time(datetime.fromisoformat(text).astimezone(tz))


def unix_seconds(text: str) -> int:
    """Unix time of an RFC 3339 string, as Stash puts it in image URLs (``?t=``)."""
    return int(datetime.fromisoformat(text).timestamp())


__all__ = ["format_time", "make_tz", "to_zone", "unix_seconds"]
