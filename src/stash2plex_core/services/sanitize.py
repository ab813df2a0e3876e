"""The one text sanitiser every path to Plex uses (sync, reconciliation, the metadata provider).

Rules, in order (DESIGN §5: "nothing else changed"):

1. line breaks unified (``\\r\\n``, ``\\r``, U+2028/U+2029, NEL, VT, FF become ``\\n``); in
   single-line text they become spaces;
2. control characters (Cc), format characters (Cf) and lone surrogates (Cs) removed, except
   the zero-width (non-)joiners that emoji sequences and several scripts need; tabs become
   spaces;
3. Unicode NFC;
4. whitespace collapsed to one space inside each line, lines stripped; in multi-line text at
   most one blank line in a row and none at either end;
5. cut to ``limit`` characters at a word boundary (a hard cut that never splits a character
   from its combining marks when no boundary is near).

Quotes, dashes, emoji and letters are left alone. The result is ``None`` when nothing is left,
which is how the models spell "empty". The function is deterministic, idempotent and never
raises on any ``str``.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final


#: Titles, names, studio, tagline, tag names.
NAME_LIMIT: Final = 255
#: Summaries.
SUMMARY_LIMIT: Final = 10_000

_ZWJ: Final = "\u200d"
_ZWNJ: Final = "\u200c"
_KEEP_FORMAT: Final = frozenset({_ZWJ, _ZWNJ})
_LINE_BREAKS: Final = re.compile("\r\n|[\r\u2028\u2029\x85\x0b\x0c]")
_BLANK_RUN: Final = re.compile(r"\n{3,}")
#: Emoji skin-tone modifiers join the preceding emoji although they are not marks.
_MODIFIERS: Final = range(0x1F3FB, 0x1F400)


#: Control characters of ASCII (C0 and DEL): dropped, except newline kept and tab made a space.
_ASCII_CONTROLS: Final = dict.fromkeys((*range(0x20), 0x7F)) | {ord("\n"): "\n", ord("\t"): " "}


def _drop_invisible(text: str) -> str:
    if text.isascii():  # the common case: one C-level pass instead of a loop per character
        return text.translate(_ASCII_CONTROLS)
    if all(line.isprintable() for line in text.split("\n")):  # C-level too: nothing to drop
        return text
    out = []
    for ch in text:
        if ch.isprintable() or ch == "\n":  # isprintable() is never true of Cc, Cf or Cs
            out.append(ch)
        elif ch == "\t":
            out.append(" ")
        elif unicodedata.category(ch) in ("Cc", "Cs") or (unicodedata.category(ch) == "Cf" and ch not in _KEEP_FORMAT):
            continue
        else:
            out.append(ch)
    return "".join(out)


def _collapse(text: str, *, multiline: bool) -> str:
    if not multiline:
        return " ".join(text.split())
    lines = [" ".join(line.split()) for line in text.split("\n")]
    return _BLANK_RUN.sub("\n\n", "\n".join(lines)).strip("\n")


def _joins_previous(text: str, index: int) -> bool:
    """Whether cutting before ``text[index]`` would split one user-perceived character."""
    ch = text[index]
    return (
        unicodedata.category(ch).startswith("M")
        or ch == _ZWJ
        or ord(ch) in _MODIFIERS
        or (index > 0 and text[index - 1] == _ZWJ)
    )


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    # The last whitespace at or before the limit ends the last whole word that fits.
    boundary = max(text.rfind(" ", 0, limit + 1), text.rfind("\n", 0, limit + 1))
    if boundary >= limit // 2:
        return text[:boundary].rstrip()
    cut = limit
    while cut > 0 and _joins_previous(text, cut):
        cut -= 1
    if cut == 0:  # nothing but marks: cut hard rather than return nothing
        cut = limit
    return text[:cut].rstrip()


def _once(text: str, limit: int, multiline: bool) -> tuple[str, bool]:
    """One cleaning pass, and whether it had to cut the text to ``limit``."""
    text = _LINE_BREAKS.sub("\n", text)
    if not multiline:
        text = text.replace("\n", " ")
    text = _collapse(unicodedata.normalize("NFC", _drop_invisible(text)), multiline=multiline)
    return _cut(text, limit), len(text) > limit


def sanitize_text(value: str | None, *, limit: int, multiline: bool = False) -> str | None:
    """Clean ``value`` for Plex (see the module docstring); ``None`` when nothing is left.

    :param limit: most characters kept (at least 1); the cut falls on a word boundary.
    :param multiline: keep line breaks (summaries); otherwise they become spaces.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    if value is None:
        return None
    text, cut = _once(str(value), limit, multiline)
    # Cutting can, in rare scripts, leave a prefix that NFC composes further; settle it so
    # sanitising is idempotent. Each pass only shrinks the text, so this ends quickly. An
    # uncut pass is already a fixed point (every step is idempotent), so it needs none.
    for _ in range(4 if cut else 0):
        again, _ = _once(text, limit, multiline)
        if again == text:
            break
        text = again
    return text or None


def sanitize_name(value: str | None, *, limit: int = NAME_LIMIT) -> str | None:
    """A single-line value: title, studio, tagline, tag, performer or collection name."""
    return sanitize_text(value, limit=limit)


def sanitize_summary(value: str | None, *, limit: int = SUMMARY_LIMIT) -> str | None:
    """A summary: line breaks and single blank lines kept."""
    return sanitize_text(value, limit=limit, multiline=True)


__all__ = ["NAME_LIMIT", "SUMMARY_LIMIT", "sanitize_name", "sanitize_summary", "sanitize_text"]
