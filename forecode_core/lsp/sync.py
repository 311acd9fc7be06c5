"""One incremental ``textDocument/didChange`` between two versions of a document's text.

The editor sends the whole new text to the LSP thread after a pause in typing; this finds the
one range that differs (common prefix and suffix, by code points) and says it in the old
text's LSP positions, so a keystroke in a 5,000-line file sends one character, not the file.
A boundary never splits a ``\\r\\n`` (a position between the two is not a valid one)."""

from __future__ import annotations

from dataclasses import dataclass

from .positions import Position, position_at

__all__ = ["TextChange", "change_between"]


@dataclass(frozen=True)
class TextChange:
    """Replace ``start``..``end`` (LSP positions in the old text) with ``text``."""

    start: Position
    end: Position
    text: str


def _inside_crlf(text: str, index: int) -> bool:
    return 0 < index < len(text) and text[index - 1] == "\r" and text[index] == "\n"


_CHUNK = 1024


def _common_prefix(a: str, b: str, limit: int) -> int:
    """How many leading code points ``a`` and ``b`` share (at most ``limit``), compared a
    chunk at a time in C: a loop over characters took ~200 ms of the language thread for a
    100 k-character file, holding the GIL the UI thread waits for (``bench next_edit_ui``)."""
    n = 0
    while n + _CHUNK <= limit and a[n : n + _CHUNK] == b[n : n + _CHUNK]:
        n += _CHUNK
    while n < limit and a[n] == b[n]:
        n += 1
    return n


def _common_suffix(a: str, b: str, limit: int) -> int:
    """How many trailing code points ``a`` and ``b`` share (at most ``limit``)."""
    n = 0
    la, lb = len(a), len(b)
    while n + _CHUNK <= limit and a[la - n - _CHUNK : la - n] == b[lb - n - _CHUNK : lb - n]:
        n += _CHUNK
    while n < limit and a[la - 1 - n] == b[lb - 1 - n]:
        n += 1
    return n


def change_between(old: str, new: str) -> TextChange | None:
    """The smallest single change that turns ``old`` into ``new``; None when equal."""
    if old == new:
        return None
    limit = min(len(old), len(new))
    prefix = _common_prefix(old, new, limit)
    suffix = _common_suffix(old, new, limit - prefix)
    if _inside_crlf(old, prefix):  # the change would start inside a \r\n
        prefix -= 1
    if _inside_crlf(old, len(old) - suffix):  # ... or end inside one
        suffix -= 1
    start = position_at(old, prefix)
    end = position_at(old, len(old) - suffix)
    return TextChange(start, end, new[prefix : len(new) - suffix])
