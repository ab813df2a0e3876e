"""Stash's ``updated_at`` strings, and the watermark query built from them.

Stash stores ``updated_at`` as Go ``time.RFC3339`` text in the server's local zone (second
precision, ``Z`` for a zero offset) and compares filter values with that text *as strings*.
A value in another offset, or with another shape, compares wrongly. So we never invent a
timestamp: we take the caller's watermark (one of Stash's own strings), move it back by the
overlap window, write it again in the *same offset and shape*, and then compare instants on
our side.
"""

from __future__ import annotations

from datetime import datetime
from datetime import timedelta
from datetime import timezone
from typing import Final


#: How far before the watermark the server-side query starts.
#:
#: Stash compares local-time text. When the server's zone leaves daylight saving time its
#: local clock runs an hour back, so a scene changed just after the switch can carry text
#: *smaller* than the watermark's although it is later. Two hours covers every offset change
#: in use today (1 h for DST, 30 min on Lord Howe Island, 2 h at Troll station); the extra
#: scenes are dropped on our side by comparing instants.
WATERMARK_OVERLAP: Final = timedelta(hours=2)


def parse_instant(text: str) -> datetime:
    """An RFC 3339 string as an aware datetime; an offset is required (Stash always sends one)."""
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"timestamp {text!r} has no UTC offset; pass one of Stash's own updated_at strings")
    return moment


def format_go_rfc3339(moment: datetime) -> str:
    """Go's ``time.RFC3339`` for an aware datetime: whole seconds, ``Z`` for a zero offset."""
    base = moment.strftime("%Y-%m-%dT%H:%M:%S")
    offset = moment.utcoffset()
    if not offset:
        return base + "Z"
    total = int(offset.total_seconds())
    sign = "+" if total >= 0 else "-"
    total = abs(total)
    return f"{base}{sign}{total // 3600:02d}:{total % 3600 // 60:02d}"


def watermark_floor(updated_since: str, overlap: timedelta = WATERMARK_OVERLAP) -> tuple[str, datetime]:
    """``(text for GREATER_THAN, instant to keep at or after)`` for a watermark.

    The text is the watermark minus ``overlap``, written in the watermark's own offset so
    that the server's string comparison lines up with its own stored values.
    """
    since = parse_instant(updated_since)
    offset = since.utcoffset() or timedelta(0)
    floor = (since - overlap).astimezone(timezone(offset)).replace(microsecond=0)
    return format_go_rfc3339(floor), since


__all__ = ["WATERMARK_OVERLAP", "format_go_rfc3339", "parse_instant", "watermark_floor"]
