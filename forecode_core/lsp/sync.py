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


def change_between(old: str, new: str) -> TextChange | None:
    """The smallest single change that turns ``old`` into ``new``; None when equal."""
    if old == new:
        return None
    limit = min(len(old), len(new))
    prefix = 0
    while prefix < limit and old[prefix] == new[prefix]:
        prefix += 1
    suffix = 0
    while suffix < limit - prefix and old[-1 - suffix] == new[-1 - suffix]:
        suffix += 1
    if _inside_crlf(old, prefix):  # the change would start inside a \r\n
        prefix -= 1
    if _inside_crlf(old, len(old) - suffix):  # ... or end inside one
        suffix -= 1
    start = position_at(old, prefix)
    end = position_at(old, len(old) - suffix)
    return TextChange(start, end, new[prefix : len(new) - suffix])
