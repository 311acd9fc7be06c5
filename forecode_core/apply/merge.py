"""A three-way merge of lines, for accepting a reviewed edit after the buffer changed (issue 16).

A review is computed against ``base`` (the buffer's text when the edit was proposed); the user
may change the buffer meanwhile (``ours``: typed in another view, a reload from disk, a
formatter). Accepting then merges the reviewed result (``theirs``: ``base`` with the accepted
hunks) into the buffer as it is now, as git's merge does: the changes of both sides are kept
when they touch different lines; when both change the same or neighbouring lines (or insert at
the same place) differently, the merge is a conflict and ``merge3`` answers ``None`` -- the
review then refuses, as before, and changes nothing. No conflict markers are ever written into
a buffer: a user who wants to resolve by hand asks again.

Pure: ``difflib`` matches the lines (the merge needs no more than the regions each side
changed, so the small ``merge3`` package, considered, would add a dependency for a loop).
Lines keep their endings, so CRLF stays CRLF on both sides.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

__all__ = ["Change", "changes", "merge3"]


@dataclass(frozen=True)
class Change:
    """``base[start:end]`` became ``lines`` (an insertion when ``start == end``)."""

    start: int
    end: int
    lines: tuple[str, ...]


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def changes(base: list[str], other: list[str]) -> list[Change]:
    """The regions of ``base`` that ``other`` changed, in order, none overlapping."""
    matcher = difflib.SequenceMatcher(None, base, other, autojunk=False)
    return [
        Change(i1, i2, tuple(other[j1:j2]))
        for tag, i1, i2, j1, j2 in matcher.get_opcodes()
        if tag != "equal"
    ]


def _clash(a: Change, b: Change) -> bool:
    """Whether two changes of the same base touch: overlapping, adjacent, or inserting at the
    same place (git's rule: changes to neighbouring lines conflict, so a merge never joins two
    edits of one statement that neither side saw together)."""
    return a.start <= b.end and b.start <= a.end


def _merge_changes(ours: list[Change], theirs: list[Change]) -> list[Change] | None:
    """Both sides' changes in base order, an identical change once; ``None`` on a conflict."""
    merged: list[Change] = []
    pending = sorted([*ours, *theirs], key=lambda c: (c.start, c.end))
    for change in pending:
        if merged and _clash(merged[-1], change):
            if merged[-1] == change:  # both sides made the same change
                continue
            return None
        merged.append(change)
    return merged


def merge3(base: str, ours: str, theirs: str) -> str | None:
    """``ours`` with ``theirs``'s changes to ``base`` (or the other way round: the result is
    the same); ``None`` when the two change the same lines differently."""
    if ours in (base, theirs):
        return theirs
    if theirs == base:
        return ours
    base_lines = _lines(base)
    merged = _merge_changes(changes(base_lines, _lines(ours)), changes(base_lines, _lines(theirs)))
    if merged is None:
        return None
    out: list[str] = []
    at = 0
    for change in merged:
        out.extend(base_lines[at : change.start])
        out.extend(change.lines)
        at = change.end
    out.extend(base_lines[at:])
    return "".join(out)
