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

The diff is a patience diff, bounded: the common prefix and suffix are skipped (an edit in a
big file costs little); lines that occur once on each side and keep their order anchor the
alignment, and the gaps between anchors are diffed the same way. A gap with no such line (only
repeated lines: blank lines, braces) is aligned exactly by an LCS table when it is small
(``MAX_LCS_CELLS``) and is otherwise one change, modified where both sides have lines and added
or deleted for the rest; so is any range once the work budget (a few passes over both texts)
is spent, or a side longer than ``MAX_ALIGNED_LINES``. difflib's ``SequenceMatcher`` is not
used: on repeated lines it is cubic (1,000 lines of blank lines and braces: 19 s).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "ADDED",
    "DELETED_ABOVE",
    "DELETED_BELOW",
    "MAX_ALIGNED_LINES",
    "MAX_LCS_CELLS",
    "MODIFIED",
    "ChangeKind",
    "LineChange",
    "gutter_marks",
    "line_changes",
    "split_lines",
]


class ChangeKind(StrEnum):
    ADDED = "added"
    MODIFIED = "modified"
    DELETED = "deleted"


ADDED, MODIFIED, DELETED_ABOVE, DELETED_BELOW = 1, 2, 4, 8

MAX_ALIGNED_LINES = 200_000
MAX_LCS_CELLS = 40_000

_EOL = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class LineChange:
    """Base lines ``[old_start, old_end)`` became current lines ``[start, end)``."""

    kind: ChangeKind
    start: int
    end: int
    old_start: int
    old_end: int


_SPLIT_CHUNK = 1 << 16


def split_lines(text: str) -> list[str]:
    """Lines as Scintilla counts them: split at CRLF, CR or LF; a final line end is followed by
    an empty last line. A long text is split in pieces of about 64 K characters, cut after an
    LF, so a worker thread splitting a big file never holds the GIL for long (one regex split
    of 3 MB held it 67 ms, a stall of the UI thread)."""
    if len(text) <= _SPLIT_CHUNK:
        return _EOL.split(text)
    out: list[str] = []
    start = 0
    while True:
        cut = text.find("\n", start + _SPLIT_CHUNK)
        if cut < 0:
            out.extend(_EOL.split(text[start:]))
            return out
        piece = _EOL.split(text[start : cut + 1])
        piece.pop()  # the "" after the piece's final LF: the next piece starts that line
        out.extend(piece)
        start = cut + 1


def _change(a1: int, a2: int, b1: int, b2: int) -> LineChange:
    if a1 == a2:
        return LineChange(ChangeKind.ADDED, b1, b2, a1, a2)
    if b1 == b2:
        return LineChange(ChangeKind.DELETED, b1, b1, a1, a2)
    return LineChange(ChangeKind.MODIFIED, b1, b2, a1, a2)


def _coarse(a1: int, a2: int, b1: int, b2: int) -> list[LineChange]:
    """One unaligned change: modified where both sides have lines, then the rest."""
    both = min(a2 - a1, b2 - b1)
    out = [_change(a1, a1 + both, b1, b1 + both)] if both else []
    if a1 + both < a2 or b1 + both < b2:
        out.append(_change(a1 + both, a2, b1 + both, b2))
    return out


def _unique_anchors(
    a: Sequence[str], b: Sequence[str], alo: int, ahi: int, blo: int, bhi: int
) -> list[tuple[int, int]]:
    """Patience anchors: lines that occur exactly once on each side of the range, the longest
    run of them in the same order on both sides (an increasing subsequence, O(k log k))."""
    count_a: dict[str, int] = {}
    where_a: dict[str, int] = {}
    for i in range(alo, ahi):
        line = a[i]
        count_a[line] = count_a.get(line, 0) + 1
        where_a[line] = i
    count_b: dict[str, int] = {}
    where_b: dict[str, int] = {}
    for j in range(blo, bhi):
        line = b[j]
        if count_a.get(line) == 1:
            count_b[line] = count_b.get(line, 0) + 1
            where_b[line] = j
    pairs = sorted((where_a[line], where_b[line]) for line, n in count_b.items() if n == 1)
    if not pairs:
        return []
    # Longest increasing subsequence of the b positions (patience sorting).
    tails: list[int] = []  # tails[k]: index in pairs of the smallest tail of a run of k+1
    back: list[int] = [-1] * len(pairs)
    for index, (_i, j) in enumerate(pairs):
        k = _bisect_tails(tails, pairs, j)
        if k > 0:
            back[index] = tails[k - 1]
        if k == len(tails):
            tails.append(index)
        else:
            tails[k] = index
    run: list[tuple[int, int]] = []
    index = tails[-1]
    while index >= 0:
        run.append(pairs[index])
        index = back[index]
    run.reverse()
    return run


def _bisect_tails(tails: list[int], pairs: list[tuple[int, int]], j: int) -> int:
    lo, hi = 0, len(tails)
    while lo < hi:
        mid = (lo + hi) // 2
        if pairs[tails[mid]][1] < j:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _lcs_changes(
    a: Sequence[str], b: Sequence[str], alo: int, ahi: int, blo: int, bhi: int
) -> list[LineChange]:
    """Exact line LCS by dynamic programming (small ranges only: O(n·m) cells)."""
    n, m = ahi - alo, bhi - blo
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        row, below = table[i], table[i + 1]
        ai = a[alo + i]
        for j in range(m - 1, -1, -1):
            row[j] = below[j + 1] + 1 if ai == b[blo + j] else max(below[j], row[j + 1])
    out: list[LineChange] = []
    i = j = 0
    start_i = start_j = 0
    while i < n or j < m:
        if i < n and j < m and a[alo + i] == b[blo + j]:
            if (i, j) != (start_i, start_j):
                out.append(_change(alo + start_i, alo + i, blo + start_j, blo + j))
            i += 1
            j += 1
            start_i, start_j = i, j
        elif j < m and (i == n or table[i][j + 1] >= table[i + 1][j]):
            j += 1
        else:
            i += 1
    if (i, j) != (start_i, start_j):
        out.append(_change(alo + start_i, alo + n, blo + start_j, blo + m))
    return out


def line_changes(base: str | Sequence[str], current: str | Sequence[str]) -> list[LineChange]:
    """The changes from ``base`` to ``current`` (texts, or lists of lines without endings)."""
    a = split_lines(base) if isinstance(base, str) else list(base)
    b = split_lines(current) if isinstance(current, str) else list(current)
    out: list[LineChange] = []
    budget = 8 * (len(a) + len(b)) + 10_000  # lines looked at, in all ranges together
    ranges = [(0, len(a), 0, len(b))]
    while ranges:
        alo, ahi, blo, bhi = ranges.pop()
        while alo < ahi and blo < bhi and a[alo] == b[blo]:
            alo += 1
            blo += 1
        while ahi > alo and bhi > blo and a[ahi - 1] == b[bhi - 1]:
            ahi -= 1
            bhi -= 1
        if alo == ahi and blo == bhi:
            continue
        if alo == ahi or blo == bhi:
            out.append(_change(alo, ahi, blo, bhi))
            continue
        size = (ahi - alo) + (bhi - blo)
        if budget < size or ahi - alo > MAX_ALIGNED_LINES or bhi - blo > MAX_ALIGNED_LINES:
            out.extend(_coarse(alo, ahi, blo, bhi))
            continue
        budget -= size
        anchors = _unique_anchors(a, b, alo, ahi, blo, bhi)
        if anchors:
            prev_a, prev_b = alo, blo
            for i, j in anchors:
                ranges.append((prev_a, i, prev_b, j))
                prev_a, prev_b = i + 1, j + 1
            ranges.append((prev_a, ahi, prev_b, bhi))
        elif (ahi - alo) * (bhi - blo) <= MAX_LCS_CELLS:
            out.extend(_lcs_changes(a, b, alo, ahi, blo, bhi))
        else:  # only repeated lines (blank lines, braces) and too many of them: one change
            out.extend(_coarse(alo, ahi, blo, bhi))
    out.sort(key=lambda c: (c.start, c.old_start))
    return out


def gutter_marks(changes: Sequence[LineChange], line_count: int) -> dict[int, int]:
    """Line → mark bits (``ADDED | MODIFIED | DELETED_ABOVE | DELETED_BELOW``) for a buffer of
    ``line_count`` lines; lines past the end are left out."""
    marks: dict[int, int] = {}

    def mark(line: int, bit: int) -> None:
        if 0 <= line < line_count:
            marks[line] = marks.get(line, 0) | bit

    for change in changes:
        if change.kind is ChangeKind.DELETED:
            mark(change.start, DELETED_ABOVE)
            mark(change.start - 1, DELETED_BELOW)
        else:
            bit = ADDED if change.kind is ChangeKind.ADDED else MODIFIED
            for line in range(change.start, min(change.end, line_count)):
                mark(line, bit)
    return marks
