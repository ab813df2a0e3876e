"""The one sanitiser: examples for each rule, and properties over arbitrary text."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import example
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from stash2plex_core.services.sanitize import NAME_LIMIT
from stash2plex_core.services.sanitize import SUMMARY_LIMIT
from stash2plex_core.services.sanitize import sanitize_name
from stash2plex_core.services.sanitize import sanitize_summary
from stash2plex_core.services.sanitize import sanitize_text


# Any code point, lone surrogates included, plus the characters the rules single out.
ANY_CHAR = st.characters(exclude_categories=())
TRICKY = st.sampled_from(
    list("\r\n\t\x0b\x0c\x85\u2028\u2029\x00\x1b\u200b\u200c\u200d\u202e\ufeff\u00ad e\u0301\u0308 \u3000\U0001f3fd")
)
TEXT = st.text(st.one_of(ANY_CHAR, TRICKY), max_size=400)
LIMITS = st.integers(min_value=1, max_value=300)


@pytest.mark.parametrize("value", [None, "", "   ", "\n\t\r", "\x00\u200b\ufeff"])
def test_nothing_left_is_none(value: str | None) -> None:
    assert sanitize_text(value, limit=10) is None
    assert sanitize_summary(value) is None


def test_nfc() -> None:
    assert sanitize_name("Cafe\u0301") == "Café"
    assert sanitize_name("\u212b") == "\u00c5"  # Angstrom sign is canonically Å


def test_control_and_format_characters_are_removed() -> None:
    assert sanitize_name("a\x00b\x1bc\x7f") == "abc"
    assert sanitize_name("\ufeffTitle\u200b \u202eevil\u202c") == "Title evil"
    assert sanitize_name("soft\u00adhyphen") == "softhyphen"


def test_joiners_that_text_needs_are_kept() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert sanitize_name(f"We {family} it") == f"We {family} it"
    assert (
        sanitize_name("\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645")
        == "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"
    )


def test_nothing_else_changes() -> None:
    text = "“Quotes” — dashes… and emoji 🎬 [brackets] 50% & more"
    assert sanitize_name(text) == text


def test_single_line_collapses_all_whitespace() -> None:
    assert sanitize_name("  A\tB\r\nC\u2028D\u3000\u00a0E  ") == "A B C D E"


def test_summary_keeps_lines_and_one_blank_line() -> None:
    raw = "\n\n  First   line  \r\nSecond\tline\r\r\r\n\n\nThird\u2029\n\n"
    assert sanitize_summary(raw) == "First line\nSecond line\n\nThird"


def test_cut_at_a_word_boundary() -> None:
    assert sanitize_text("alpha beta gamma", limit=12) == "alpha beta"
    assert sanitize_text("alpha beta gamma", limit=10) == "alpha beta"
    assert sanitize_text("alpha beta gamma", limit=16) == "alpha beta gamma"


def test_cut_hard_when_no_boundary_is_near_without_splitting_marks() -> None:
    assert sanitize_text("abcdefghij", limit=4) == "abcd"
    # "e" with two marks becomes "ẹ" + U+0301 under NFC: a cut keeps or drops the pair whole.
    cluster = unicodedata.normalize("NFC", "e\u0301\u0323")
    assert len(cluster) == 2
    assert sanitize_text("abc" + cluster * 3, limit=5) == "abc" + cluster
    assert sanitize_text("abc" + cluster * 3, limit=6) == "abc" + cluster
    assert sanitize_text("ab\U0001f44d\U0001f3fd", limit=3) == "ab"


def test_summary_limit_applies() -> None:
    words = " ".join(["word"] * 5000)
    out = sanitize_summary(words)
    assert out is not None
    assert len(out) <= SUMMARY_LIMIT
    assert out.endswith("word")
    assert sanitize_name("x" * 1000) == "x" * NAME_LIMIT


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="limit"):
        sanitize_text("x", limit=0)


@settings(max_examples=1500, deadline=None)
@given(TEXT, LIMITS, st.booleans())
@example("e\u0301" * 10, 3, False)
@example("\ud800abc def", 5, True)
@example("a \u0301b", 2, False)
def test_properties(value: str, limit: int, multiline: bool) -> None:
    out = sanitize_text(value, limit=limit, multiline=multiline)
    if out is None:
        return
    assert out  # empty is spelled None
    assert len(out) <= limit
    assert unicodedata.is_normalized("NFC", out)
    assert sanitize_text(out, limit=limit, multiline=multiline) == out  # idempotent
    assert out == out.strip()
    for ch in out:
        category = unicodedata.category(ch)
        assert category not in ("Cc", "Cs") or (multiline and ch == "\n")
        assert category != "Cf" or ch in "\u200c\u200d"
    if not multiline:
        assert "\n" not in out
        assert "  " not in out
    assert sanitize_text(value, limit=limit, multiline=multiline) == out  # deterministic


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=600))
def test_name_and_summary_defaults(value: str) -> None:
    name = sanitize_name(value)
    summary = sanitize_summary(value)
    assert name is None or len(name) <= NAME_LIMIT
    assert summary is None or len(summary) <= SUMMARY_LIMIT
