"""The next-edit model's answer: parse the rewritten region, reject what should not be shown,
and turn the rest into a minimal diff in document coordinates.

Parsing (``parse_answer``)
--------------------------
The prompt ends with ``REGION_START`` and a line break (``input``), so the answer is the region's
new text up to ``REGION_END``. A repeated ``REGION_START`` at the answer's start is dropped, the
caret marker anywhere is dropped, and after the end marker only whitespace or a code fence may
follow (anything else is the model writing outside the region).

A missing end marker: the engine usually stops *at* the end marker (it is the first stop
string, and stop strings are not returned), so a missing marker is tolerated when the model
finished on its own (``finished``: a stop string or end of turn, not the token limit) **and** the
text is complete: it ends with a line break like the region does (the region is whole lines;
only a region at the end of a file without a final line break may end without one) and it
reached the region's end: its last non-blank line is the region's, or it has at least as many
lines (a model that ends its turn early would otherwise propose deleting the rest). Otherwise it
is ``cut_off``.

Filters (``check_answer``), in order; the first that applies is the ``Rejected.reason``:

* ``cut_off``: stopped at the length limit, or no end marker and not complete (above);
* ``outside_region``: text after the end marker, a second region, or the rewrite repeats the
  (non-blank) line just above or below the region at its start or end (the model rewrote the
  context too);
* ``no_change``: the rewrite is the region;
* ``reverts_edit``: it takes back one of the recent edits of this file: the whole rewrite is the
  region with an edit pair's ``after`` put back to its ``before``, or one of its edits, on the
  pair's line or next to it, turns the pair's trimmed ``after`` back into its trimmed
  ``before``, or the edits inside one place of the pair's ``after`` in the region, all of them
  or any one alone, turn it back into its ``before`` (a rewrite with several edits, one of
  them a revert: seen on click's history);
* ``changes_too_much``: the changed characters (removed plus inserted, by a character diff) are
  more than ``MAX_CHANGED_SHARE`` of the region and rewrite together (regions with fewer than
  ``MIN_SHARE_CHARS`` non-blank characters are exempt: there is little to keep);
* ``unbalances_brackets``: more unclosed or unmatched brackets (outside strings and comments,
  ``brackets.balance``) than the region had.

Otherwise a ``Suggestion``: the diff (``diff_edits``: ``difflib`` over lines, then over word /
space / punctuation tokens inside replaced lines, each changed run trimmed to its characters; a
pure insertion or deletion of lines moved to start at a line start where that gives the same
text) as ``Edit(start, end, text)`` in document offsets;
its kind (``insertion``: nothing removed; ``deletion``: nothing inserted; else ``replacement``);
``at_caret`` when the first edit is on the caret's line; ``ghost`` when it is one insertion at
the caret itself (shown as ghost text; lines inserted right below a caret at its line's end are
written as an insertion at the caret, starting with the line break); ``line``: the first edit's
document line (the jump target when not at the caret). A region with ``\\r\\n`` line ends gets
them in the rewrite too.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from forecode_core.next_edit.brackets import balance
from forecode_core.next_edit.input import CARET, REGION_END, REGION_START, NextEditInput

__all__ = [
    "MAX_CHANGED_SHARE",
    "MIN_SHARE_CHARS",
    "Edit",
    "Parsed",
    "Rejected",
    "Suggestion",
    "check_answer",
    "diff_edits",
    "parse_answer",
]

MAX_CHANGED_SHARE = 0.5
MIN_SHARE_CHARS = 24
# A rewrite whose first (last) line is one of this many non-blank lines above (below) the
# region started (went on) outside it: measured on bench next_edit with a 3-above/5-below
# region, the small models often start at the enclosing block's head above it.
REPEAT_CONTEXT_LINES = 12

Reason = Literal[
    "cut_off",
    "outside_region",
    "no_change",
    "reverts_edit",
    "changes_too_much",
    "unbalances_brackets",
]
Kind = Literal["insertion", "replacement", "deletion"]


@dataclass(frozen=True)
class Rejected:
    reason: Reason
    detail: str = ""


@dataclass(frozen=True)
class Parsed:
    text: str  # the rewritten region, markers removed
    ended: bool  # the end marker was in the answer


@dataclass(frozen=True)
class Edit:
    start: int  # document offsets: text[start:end] becomes ``text``
    end: int
    text: str


@dataclass(frozen=True)
class Suggestion:
    edits: tuple[Edit, ...]  # sorted, disjoint, document offsets
    kind: Kind
    at_caret: bool  # the first edit is on the caret's line
    line: int  # 0-based document line of the first edit
    rewrite: str  # the region's new text (document line ends)
    changed_share: float
    ghost: bool  # one insertion right at the caret: shown as ghost text

    def apply(self, text: str) -> str:
        """``text`` (the document) with the edits made."""
        for e in reversed(self.edits):
            text = text[: e.start] + e.text + text[e.end :]
        return text


_AFTER_END = re.compile(r"\s*(```+\s*)?")


def parse_answer(answer: str, *, finished: bool) -> Parsed | Rejected:
    """The region text in ``answer`` (module doc). ``finished``: the model stopped on its own
    (a stop string or its end of turn), not at the token limit."""
    body = answer
    stripped = body.lstrip()
    if stripped.startswith(REGION_START):
        body = stripped[len(REGION_START) :]
        body = body.removeprefix("\r\n").removeprefix("\n")
    if REGION_START in body:
        return Rejected("outside_region", "a second region")
    end = body.find(REGION_END)
    if end >= 0:
        rest = body[end + len(REGION_END) :]
        if not _AFTER_END.fullmatch(rest):
            return Rejected("outside_region", f"text after the end marker: {rest.strip()[:40]!r}")
        return Parsed(body[:end].replace(CARET, ""), True)
    if not finished:
        return Rejected("cut_off", "stopped at the length limit")
    return Parsed(body.replace(CARET, ""), False)


_TOKEN = re.compile(r"\w+|\s|[^\w\s]")


def _trimmed(removed: str, inserted: str) -> tuple[int, int]:
    """The common prefix and suffix lengths of two strings (not overlapping)."""
    p = 0
    while p < min(len(removed), len(inserted)) and removed[p] == inserted[p]:
        p += 1
    q = 0
    while (
        q < min(len(removed), len(inserted)) - p
        and removed[len(removed) - 1 - q] == inserted[len(inserted) - 1 - q]
    ):
        q += 1
    return p, q


def _token_edits(old: str, new: str, at: int) -> list[tuple[int, int, str]]:
    """The token diff of ``old`` and ``new``; offsets are ``old``'s plus ``at``."""
    a, b = _TOKEN.findall(old), _TOKEN.findall(new)
    a_at, b_at = [0], [0]
    for t in a:
        a_at.append(a_at[-1] + len(t))
    for t in b:
        b_at.append(b_at[-1] + len(t))
    out: list[tuple[int, int, str]] = []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        s, e = a_at[i1], a_at[i2]
        inserted = new[b_at[j1] : b_at[j2]]
        p, q = _trimmed(old[s:e], inserted)
        out.append((at + s + p, at + e - q, inserted[p : len(inserted) - q]))
    return out


def diff_edits(old: str, new: str) -> list[tuple[int, int, str]]:
    """``(start, end, text)`` in ``old``'s offsets, sorted: the changes that make ``new``. Lines
    first (whole lines inserted or deleted stay whole), then within each run of replaced lines a
    diff of word / space / punctuation tokens, each changed run trimmed to the characters that
    differ."""
    a, b = old.splitlines(keepends=True), new.splitlines(keepends=True)
    a_at, b_at = [0], [0]
    for t in a:
        a_at.append(a_at[-1] + len(t))
    for t in b:
        b_at.append(b_at[-1] + len(t))
    out: list[tuple[int, int, str]] = []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        s, e = a_at[i1], a_at[i2]
        inserted = new[b_at[j1] : b_at[j2]]
        if op == "replace":
            out += _token_edits(old[s:e], inserted, s)
        else:
            out.append((s, e, inserted))
    return out


def _line_aligned(old: str, edit: tuple[int, int, str], caret: int) -> tuple[int, int, str]:
    """A pure insertion or deletion of whole lines moved (where the text allows: the same
    result) to start at a line start: ``"x\\n" + "\\ny"`` is ``"x\\n" + "y\\n"`` before the next
    line. An insertion at the caret stays there."""
    s, e, text = edit
    if s == e and s != caret:
        while text.startswith("\n") and old[s : s + 1] == "\n":
            s, e, text = s + 1, e + 1, text[1:] + "\n"
    elif not text:
        while old[s : s + 1] == "\n" and old[e : e + 1] == "\n":
            s, e = s + 1, e + 1
    return s, e, text


def _trim(before: str, after: str) -> tuple[str, str]:
    p, q = _trimmed(before, after)
    return before[p : len(before) - q], after[p : len(after) - q]


def _first_line(text: str) -> str:
    return text.split("\n", 1)[0].rstrip("\r")


def _last_line(text: str) -> str:
    return text.rstrip("\r\n").rsplit("\n", 1)[-1].rstrip("\r")


def _outside(inp: NextEditInput, rewrite: str) -> str:
    """Why the rewrite repeats the context around the region (its first line one of the
    ``REPEAT_CONTEXT_LINES`` non-blank lines above the region, or its last line one of those
    below, where the region's own first/last line differs: the model started or went on
    outside the region) or lost the format (a code fence of its own), or ``""``."""
    region = inp.region
    above = [ln.rstrip("\r") for ln in inp.excerpt[: inp.region_start].split("\n") if ln.strip()]
    below = [ln.rstrip("\r") for ln in inp.excerpt[inp.region_end :].split("\n") if ln.strip()]
    first, last = _first_line(rewrite), _last_line(rewrite)
    if (
        rewrite.strip()
        and first in above[-REPEAT_CONTEXT_LINES:]
        and _first_line(region) != first
        and first.strip() not in region
    ):
        return "repeats the lines above the region"
    if (
        rewrite.strip()
        and last in below[:REPEAT_CONTEXT_LINES]
        and _last_line(region) != last
        and last.strip() not in region
    ):
        return "repeats the lines below the region"
    fences = {ln.strip() for ln in rewrite.split("\n") if ln.strip().startswith("```")}
    if any(f not in region for f in fences):
        return "a code fence: the answer lost the format"
    return ""


def _reverts(inp: NextEditInput, rewrite: str, edits: list[tuple[int, int, str]]) -> str:
    """Which recent edit the rewrite takes back, or ``""``."""
    region = inp.region
    for pair in reversed(inp.events):
        if pair.path != inp.path or pair.before == pair.after:
            continue
        after, before = pair.after.replace("\r\n", "\n"), pair.before.replace("\r\n", "\n")
        plain = region.replace("\r\n", "\n")
        if (
            after
            and after in plain
            and plain.replace(after, before, 1) == rewrite.replace("\r\n", "\n")
        ):
            return f"line {pair.line + 1}"
        if _reverts_in_part(region, edits, after, before):
            return f"line {pair.line + 1}"
        core_before, core_after = _trim(before, after)
        for s, e, text in edits:
            line = inp.line_of(inp.region_start + s)
            if abs(line - pair.line) > max(1, pair.after.count("\n")):
                continue
            if _trim(region[s:e], text) == (core_after, core_before):
                return f"line {pair.line + 1}"
    return ""


def _reverts_in_part(
    region: str, edits: list[tuple[int, int, str]], after: str, before: str
) -> bool:
    """Whether the edits inside one place of the pair's ``after`` text in the region, all of
    them or any one alone, put its ``before`` back (a rewrite with several edits, one of them
    a revert; the diff may cut a deletion at another space than the pair's trim does, as in
    ``"output in "`` / ``" output in"``)."""
    if "\r\n" in region:
        after, before = after.replace("\n", "\r\n"), before.replace("\n", "\r\n")
    if not after.strip():
        return False
    at = region.find(after)
    while at >= 0:
        end = at + len(after)
        touching = [(s, e, t) for s, e, t in edits if (s < end and at < e) or at < s == e < end]
        inside = all(at <= s and e <= end for s, e, _t in touching)
        # all of them together, or any one alone (another may change the same line too)
        tries = [touching, *([x] for x in touching)] if inside and touching else []
        for subset in tries:
            span = after
            for s, e, t in sorted(subset, reverse=True):
                span = span[: s - at] + t + span[e - at :]
            if span == before:
                return True
        at = region.find(after, at + 1)
    return False


def _changed_share(old: str, new: str) -> float:
    if not old and not new:
        return 0.0
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    same = sum(size for _, _, size in matcher.get_matching_blocks())
    return (len(old) + len(new) - 2 * same) / (len(old) + len(new))


def _suggestion(
    inp: NextEditInput, rewrite: str, edits: list[tuple[int, int, str]], share: float
) -> Suggestion:
    """The edits (region offsets) as a suggestion in document offsets, classified."""
    region = inp.region
    caret = inp.caret - inp.region_start
    edits = [_line_aligned(region, edit, caret) for edit in edits]
    if len(edits) == 1:
        s, e, t = edits[0]
        if s == e == caret + 1 and region[caret : caret + 1] == "\n" and t.endswith("\n"):
            # new lines right after the caret's line, the caret at its end: typed from the caret
            edits = [(caret, caret, "\n" + t[:-1])]
    base = inp.region_offset
    doc_edits = tuple(Edit(base + s, base + e, t) for s, e, t in edits)
    if all(e.start == e.end for e in doc_edits):
        kind: Kind = "insertion"
    elif all(not e.text for e in doc_edits):
        kind = "deletion"
    else:
        kind = "replacement"
    first = edits[0][0]
    line = inp.line_of(inp.region_start + first)
    caret_line = inp.line_of(inp.caret)
    ghost = kind == "insertion" and len(doc_edits) == 1 and doc_edits[0].start == inp.caret_offset
    return Suggestion(doc_edits, kind, line == caret_line, line, rewrite, share, ghost)


def check_answer(
    inp: NextEditInput,
    answer: str,
    *,
    finished: bool = True,
    parse: Callable[..., Parsed | Rejected] = parse_answer,
) -> Suggestion | Rejected:
    """The suggestion in the model's ``answer`` for ``inp``, or why it is not shown (module
    doc). ``parse``: the answer format's parser (a native format's, e.g.
    ``native_zeta.parse_zeta_answer``; the filters after it are the same)."""
    parsed = parse(answer, finished=finished)
    if isinstance(parsed, Rejected):
        return parsed
    region = inp.region
    rewrite = parsed.text.replace("\r\n", "\n")
    plain_region = region.replace("\r\n", "\n")
    if not parsed.ended and (
        (region.endswith("\n") and not rewrite.endswith("\n"))
        or (
            _last_line(rewrite) != _last_line(plain_region)
            and rewrite.count("\n") < plain_region.count("\n")
        )
    ):
        return Rejected("cut_off", "no end marker and the rewrite does not reach the region's end")
    if not region.endswith("\n") and rewrite.endswith("\n"):
        rewrite = rewrite[:-1]  # the renderer ended the file's last line for the markers
    if "\r\n" in region:
        rewrite = rewrite.replace("\n", "\r\n")
    why = _outside(inp, rewrite)
    if why:
        return Rejected("outside_region", why)
    if rewrite == region:
        return Rejected("no_change")
    edits = diff_edits(region, rewrite)
    why = _reverts(inp, rewrite, edits)
    if why:
        return Rejected("reverts_edit", why)
    share = _changed_share(region, rewrite)
    if len("".join(region.split())) >= MIN_SHARE_CHARS and share > MAX_CHANGED_SHARE:
        return Rejected("changes_too_much", f"{share:.0%} of the region changed")
    if balance(rewrite, inp.language).errors > balance(region, inp.language).errors:
        return Rejected("unbalances_brackets")
    return _suggestion(inp, rewrite, edits, share)
