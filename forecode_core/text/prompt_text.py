"""Quoting text inside a model's prompt: a Markdown fence no run of backticks in the text can
close, and a format's special strings broken so quoted text cannot act as one."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["break_markers", "fence_for"]


def fence_for(*texts: str) -> str:
    """A backtick fence longer than any run of backticks in ``texts`` (at least three)."""
    longest = 0
    for text in texts:
        run = 0
        for ch in text:
            run = run + 1 if ch == "`" else 0
            longest = max(longest, run)
    return "`" * max(3, longest + 1)


def break_markers(text: str, markers: Iterable[str]) -> str:
    """``text`` with each of ``markers`` broken by a zero-width space after its first
    character, so it cannot end a turn, start another or mark a region."""
    for marker in markers:
        if marker in text:
            text = text.replace(marker, marker[0] + "\u200b" + marker[1:])
    return text
