"""The changed-lines gutter: which lines of a buffer differ from the file's committed version.

Pure. ``line_changes(base, current)`` diffs the two texts line by line (line endings ignored, so
a CRLF checkout of an LF blob is unchanged) and returns VS Code's three kinds of change, in the
current text's line numbers (0-based, as Scintilla counts: ``"a\\n"`` has lines ``a`` and ``""``):

* ``added``: lines the base does not have (an insertion);
* ``modified``: lines that replace base lines (VS Code marks the whole replacing range);
* ``deleted``: base lines removed, shown between two lines: ``start == end`` is the line the
  removal happened above.

``gutter_marks(changes, line_count)`` maps them to per-line mark bits for the editor's margin:
a deletion puts ``DELETED_ABOVE`` on the line below the gap and ``DELETED_BELOW`` on the line
above it, so the editor can draw one triangle across the boundary.

The diff: the common prefix and suffix are skipped first (an edit in a big file costs little),
then difflib's ``SequenceMatcher`` (no junk heuristic) aligns the middle. A middle longer than
``MAX_ALIGNED_LINES`` on either side is not aligned (that can take seconds): it becomes one
change, modified where both sides have lines and added or deleted for the rest.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Literal

__all__ = [
    "ADDED",
    "DELETED_ABOVE",
    "DELETED_BELOW",
    "MAX_ALIGNED_LINES",
    "MODIFIED",
    "ChangeKind",
    "LineChange",
    "gutter_marks",
    "line_changes",
    "split_lines",
]

ChangeKind = Literal["added", "modified", "deleted"]

ADDED, MODIFIED, DELETED_ABOVE, DELETED_BELOW = 1, 2, 4, 8

MAX_ALIGNED_LINES = 5000

_EOL = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class LineChange:
    """Base lines ``[old_start, old_end)`` became current lines ``[start, end)``."""

    kind: ChangeKind
    start: int
    end: int
    old_start: int
    old_end: int


def split_lines(text: str) -> list[str]:
    """Lines as Scintilla counts them: split at CRLF, CR or LF; a final line end is followed by
    an empty last line."""
    return _EOL.split(text)


def _change(a1: int, a2: int, b1: int, b2: int) -> LineChange:
    if a1 == a2:
        return LineChange("added", b1, b2, a1, a2)
    if b1 == b2:
        return LineChange("deleted", b1, b1, a1, a2)
    return LineChange("modified", b1, b2, a1, a2)


def _coarse(a1: int, a2: int, b1: int, b2: int) -> list[LineChange]:
    """One unaligned change: modified where both sides have lines, then the rest."""
    both = min(a2 - a1, b2 - b1)
    out = [_change(a1, a1 + both, b1, b1 + both)] if both else []
    if a1 + both < a2 or b1 + both < b2:
        out.append(_change(a1 + both, a2, b1 + both, b2))
    return out


def line_changes(base: str | Sequence[str], current: str | Sequence[str]) -> list[LineChange]:
    """The changes from ``base`` to ``current`` (texts, or lists of lines without endings)."""
    a = split_lines(base) if isinstance(base, str) else list(base)
    b = split_lines(current) if isinstance(current, str) else list(current)
    lo = 0
    top = min(len(a), len(b))
    while lo < top and a[lo] == b[lo]:
        lo += 1
    ea, eb = len(a), len(b)
    while ea > lo and eb > lo and a[ea - 1] == b[eb - 1]:
        ea -= 1
        eb -= 1
    if lo == ea and lo == eb:
        return []
    if ea - lo > MAX_ALIGNED_LINES or eb - lo > MAX_ALIGNED_LINES:
        return _coarse(lo, ea, lo, eb)
    out: list[LineChange] = []
    matcher = SequenceMatcher(None, a[lo:ea], b[lo:eb], autojunk=False)
    for tag, a1, a2, b1, b2 in matcher.get_opcodes():
        if tag != "equal":
            out.append(_change(lo + a1, lo + a2, lo + b1, lo + b2))
    return out


def gutter_marks(changes: Sequence[LineChange], line_count: int) -> dict[int, int]:
    """Line → mark bits (``ADDED | MODIFIED | DELETED_ABOVE | DELETED_BELOW``) for a buffer of
    ``line_count`` lines; lines past the end are left out."""
    marks: dict[int, int] = {}

    def mark(line: int, bit: int) -> None:
        if 0 <= line < line_count:
            marks[line] = marks.get(line, 0) | bit

    for change in changes:
        if change.kind == "deleted":
            mark(change.start, DELETED_ABOVE)
            mark(change.start - 1, DELETED_BELOW)
        else:
            bit = ADDED if change.kind == "added" else MODIFIED
            for line in range(change.start, min(change.end, line_count)):
                mark(line, bit)
    return marks
